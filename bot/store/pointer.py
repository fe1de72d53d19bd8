"""The "now selling" pointer of live campaigns in SQL: its moves, its grace window, its chapters.

Each move is a `live_pointer_move` row (the truth, kept for the replay's chapters); what is on screen now
is the latest. The comment handler reads a campaign's moves once per batch in the batch's own transaction
(`moves_of`), so a comment is matched against the moves committed before it was decided; the rules are
`carts.pointer_rules`. Moving and validating is `bot.web.pointer_api`'s (the admin API and the live board
share it).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.tables import CommentLog, LivePointer, LivePointerMove
from carts.pointer_rules import DEFAULT_GRACE_S, Chapter, PointerMove, chapters
from carts.stock_rules import ClaimSource, ClaimStatus
from carts.tables import CampaignProduct, StockClaim


@dataclass(frozen=True)
class LivePointerMoves:
    grace_s: int
    moves: tuple[PointerMove, ...]  # in the order they were made


async def moves_of(session: AsyncSession, campaign_ids: Collection[int]) -> dict[int, LivePointerMoves]:
    """Each campaign's pointer moves and grace window (campaigns never pointed at are left out)."""
    if not campaign_ids:
        return {}
    rows = (
        await session.execute(
            select(LivePointerMove.campaign_id, LivePointerMove.product_code, LivePointerMove.moved_at)
            .where(LivePointerMove.campaign_id.in_(campaign_ids))
            .order_by(LivePointerMove.campaign_id, LivePointerMove.moved_at, LivePointerMove.id)
        )
    ).all()
    if not rows:
        return {}
    graces = dict(
        (
            await session.execute(
                select(LivePointer.campaign_id, LivePointer.grace_s).where(LivePointer.campaign_id.in_(campaign_ids))
            )
        ).all()
    )
    found: dict[int, list[PointerMove]] = {}
    for campaign_id, code, moved_at in rows:
        found.setdefault(campaign_id, []).append(PointerMove(code, moved_at))
    return {cid: LivePointerMoves(graces.get(cid, DEFAULT_GRACE_S), tuple(moves)) for cid, moves in found.items()}


async def grace_of(session: AsyncSession, campaign_id: int) -> int:
    grace = (
        await session.execute(select(LivePointer.grace_s).where(LivePointer.campaign_id == campaign_id))
    ).scalar_one_or_none()
    return DEFAULT_GRACE_S if grace is None else int(grace)


@dataclass(frozen=True)
class ChapterRow:
    """A chapter of the live with the units ordered of its product while it was on screen (and the grace
    after, when late viewers still order it)."""

    code: str
    name: str
    start: datetime
    end: datetime | None
    ordered: int
    comments: int

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "name": self.name,
            "start": self.start.isoformat(),
            "end": self.end.isoformat() if self.end else None,
            "ordered": self.ordered,
            "comments": self.comments,
        }


@dataclass(frozen=True)
class PointerView:
    """What the board and the API show: the product on screen now (None: nothing), since when, the grace
    window, and the chapters so far."""

    code: str | None
    since: datetime | None
    moved_by: str | None
    grace_s: int
    chapters: tuple[ChapterRow, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "now_selling": self.code,
            "since": self.since.isoformat() if self.since else None,
            "moved_by": self.moved_by,
            "grace_s": self.grace_s,
            "chapters": [c.as_dict() for c in self.chapters],
        }


# Claims that ordered something (a claim given back by an edit still was an order when it was made).
_ORDERED = (ClaimStatus.PENDING, ClaimStatus.HELD, ClaimStatus.WAITLISTED, ClaimStatus.SOLD, ClaimStatus.EXPIRED)


async def fetch_pointer(session: AsyncSession, campaign_id: int, names: dict[str, str]) -> PointerView:
    """The campaign's pointer as shown; `names`: order code -> product name."""
    rows = (
        await session.execute(
            select(LivePointerMove)
            .where(LivePointerMove.campaign_id == campaign_id)
            .order_by(LivePointerMove.moved_at, LivePointerMove.id)  # type: ignore[arg-type]
        )
    ).scalars()
    moves = list(rows)
    grace = await grace_of(session, campaign_id)
    found = chapters([PointerMove(m.product_code, m.moved_at) for m in moves])
    orders = await _orders_by_code(session, campaign_id) if found else {}
    rows_out = tuple(
        ChapterRow(c.code, names.get(c.code, ""), c.start, c.end, *_in_chapter(orders.get(c.code, []), c, grace))
        for c in found
    )
    last = moves[-1] if moves else None
    return PointerView(
        last.product_code if last else None,
        last.moved_at if last else None,
        last.moved_by if last else None,
        grace,
        rows_out,
    )


async def _orders_by_code(session: AsyncSession, campaign_id: int) -> dict[str, list[tuple[datetime, str, int]]]:
    """The campaign's ordered units by order code: (the comment's creation time, comment id, units), one query."""
    created = func.coalesce(CommentLog.created_time, CommentLog.received_at)
    rows = await session.execute(
        select(CampaignProduct.order_code, created, StockClaim.comment_id, StockClaim.qty)
        .join(CampaignProduct, CampaignProduct.product_id == StockClaim.product_id)
        .join(CommentLog, (CommentLog.comment_id == StockClaim.comment_id) & (CommentLog.verb == "add"))
        .where(
            StockClaim.campaign_id == campaign_id,
            CampaignProduct.campaign_id == campaign_id,
            StockClaim.source.in_([ClaimSource.COMMENT, ClaimSource.MESSENGER]),
            StockClaim.status.in_(_ORDERED),
        )
    )
    found: dict[str, list[tuple[datetime, str, int]]] = {}
    for code, at, comment_id, qty in rows.all():
        found.setdefault(code, []).append((at if at.tzinfo else at.replace(tzinfo=UTC), comment_id, int(qty)))
    return found


def _in_chapter(orders: list[tuple[datetime, str, int]], chapter: Chapter, grace_s: int) -> tuple[int, int]:
    """Units and comments that ordered the chapter's product from comments made while it was on screen
    (by the comment's creation time, up to the grace window after it left the screen)."""
    until = chapter.end + timedelta(seconds=grace_s) if chapter.end is not None else None
    inside = [(cid, qty) for at, cid, qty in orders if at >= chapter.start and (until is None or at < until)]
    return sum(qty for _, qty in inside), len({cid for cid, _ in inside})
