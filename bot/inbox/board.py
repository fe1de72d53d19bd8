"""The live board of a campaign (per product: stock, held, sold, waitlist; comments per minute; the
comment trail with CSV export), and dead letters as the inbox shows them, each to the users of its Pages.
Reads only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.inbound.ingest import DeadLetter, IngestStream
from bot.inbox.core import parsed_as, spreadsheet_csv
from bot.inbox.orders import local_time
from bot.replies.i18n import gettext
from bot.replies.statuses import comment_outcome, comment_verb, item_outcome, send_reason, send_status
from bot.runtime.clock import utcnow
from bot.store.tables import CommentLog, Conversation, LiveVideo, OutboxMessage
from carts.stock_rules import ClaimStatus
from carts.tables import Campaign, CampaignProduct, Product, StockClaim
from parsers.normalize import storable_text

RATE_MINUTES = 15


@dataclass(frozen=True)
class CampaignRow:
    key: str
    title: str
    page_id: str
    starts_at: datetime
    ends_at: datetime
    open: bool


async def list_campaigns(session: AsyncSession, pages: frozenset[str]) -> list[CampaignRow]:
    now = utcnow()
    rows = (
        await session.execute(select(Campaign).where(Campaign.page_id.in_(pages)).order_by(Campaign.starts_at.desc()))
    ).scalars()
    return [
        CampaignRow(c.key, c.title, c.page_id, c.starts_at, c.ends_at, c.starts_at <= now < c.ends_at) for c in rows
    ]


@dataclass(frozen=True)
class ProductLine:
    code: str
    name: str
    stock: int | None
    held: int
    sold: int
    waitlist: int

    @property
    def left(self) -> int | None:
        return None if self.stock is None else max(self.stock - self.held - self.sold, 0)


@dataclass(frozen=True)
class Board:
    campaign: Campaign
    products: list[ProductLine]
    per_minute: list[tuple[datetime, int]]  # minute (UTC) -> comments, the last RATE_MINUTES minutes
    comments_total: int

    @property
    def last_minute(self) -> int:
        return self.per_minute[-1][1] if self.per_minute else 0

    @property
    def peak(self) -> int:
        return max((n for _, n in self.per_minute), default=0)


def _comments_of(campaign: Campaign) -> Any:
    clauses = []
    if campaign.post_id:
        clauses.append(CommentLog.post_id == campaign.post_id)
    if campaign.live_video_id:
        # The video's post as Meta named it (learned when reading began), or `{page}_{video}` before that.
        named = select(LiveVideo.post_id).where(
            LiveVideo.video_id == campaign.live_video_id, LiveVideo.post_id.is_not(None)
        )
        clauses.append(CommentLog.post_id == f"{campaign.page_id}_{campaign.live_video_id}")
        clauses.append(CommentLog.post_id.in_(named))
    return or_(*clauses) if clauses else CommentLog.id < 0


async def fetch_board(session: AsyncSession, pages: frozenset[str], key: str) -> Board | None:
    campaign = (await session.execute(select(Campaign).where(Campaign.key == key))).scalar_one_or_none()
    if campaign is None or campaign.page_id not in pages:
        return None
    rows = (
        await session.execute(
            select(Product, CampaignProduct.order_code)
            .join(CampaignProduct, CampaignProduct.product_id == Product.id)
            .where(CampaignProduct.campaign_id == campaign.id)
            .order_by(CampaignProduct.order_code)
        )
    ).all()
    waiting = dict(
        (
            await session.execute(
                select(StockClaim.product_id, func.sum(StockClaim.qty))
                .where(StockClaim.campaign_id == campaign.id, StockClaim.status == ClaimStatus.WAITLISTED)
                .group_by(StockClaim.product_id)
            )
        ).all()
    )
    products = [ProductLine(code, p.name, p.stock, p.held, p.sold, int(waiting.get(p.id, 0) or 0)) for p, code in rows]
    now = utcnow()
    since = (now - timedelta(minutes=RATE_MINUTES - 1)).replace(second=0, microsecond=0)
    times = (
        await session.execute(
            select(CommentLog.received_at).where(
                _comments_of(campaign), CommentLog.verb == "add", CommentLog.received_at >= since
            )
        )
    ).scalars()
    # Keyed by the minute itself: the page shows it in the shop's zone (|hm), not as UTC text.
    buckets = {since + timedelta(minutes=i): 0 for i in range(RATE_MINUTES)}
    for at in times:
        minute = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).replace(second=0, microsecond=0)
        key = minute.replace(tzinfo=since.tzinfo)
        if key in buckets:
            buckets[key] += 1
    total = (
        await session.execute(select(func.count(CommentLog.id)).where(_comments_of(campaign), CommentLog.verb == "add"))
    ).scalar_one()
    return Board(campaign, products, list(buckets.items()), int(total))


@dataclass(frozen=True)
class TrailItem:
    """One item of a comment as the parser read it, and what became of it (carts.comment_orders.ItemOutcome)."""

    code: str
    qty: str
    variant: str
    outcome: str


@dataclass(frozen=True)
class TrailRow:
    received_at: datetime
    author: str
    comment: str
    parsed_as: str
    outcome: str
    reply_status: str
    reply_error: str
    verb: str = "add"
    items: tuple[TrailItem, ...] = ()
    reply_reason: str = ""  # why the reply did not go, as a code (bot.replies.statuses.send_reason)
    conversation_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        row = {k: v for k, v in self.__dict__.items() if k not in ("items", "conversation_id")}
        row["outcome"] = self.outcome if self.verb == "add" else f"{self.verb}: {self.outcome}"
        return {**row, "received_at": self.received_at.isoformat()}


def trail_items(detail: str | None) -> tuple[TrailItem, ...]:
    """A comment's items from its log's detail (the same JSON as `parsed_as` reads)."""
    try:
        items = json.loads(detail or "{}").get("items", [])
    except (ValueError, AttributeError):
        return ()
    found = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        variant = item.get("variant")
        found.append(
            TrailItem(
                str(item.get("code") or (f"#{item['product_id']}" if item.get("product_id") else "?")),
                str(item.get("qty", "?")),
                " / ".join(str(v) for v in variant.values()) if isinstance(variant, dict) else "",
                str(item.get("outcome", "")),
            )
        )
    return tuple(found)


async def fetch_trail(session: AsyncSession, campaign: Campaign, limit: int | None = 200) -> list[TrailRow]:
    """The campaign's comments, newest first: text, what the parser read, outcome, whether the reply reached them.

    The reply's state is its outbox row's when there is one: a reply joined into an earlier one, or sent
    since, is not "queued" for ever on the board (the log keeps the state it had when the reply was queued).
    """
    stmt = (
        select(CommentLog, OutboxMessage.status, OutboxMessage.error_class, Conversation.id)
        .outerjoin(OutboxMessage, OutboxMessage.id == CommentLog.reply_outbox_id)
        .outerjoin(
            Conversation,
            (Conversation.page_id == CommentLog.page_id) & (Conversation.psid == CommentLog.author_id),
        )
        .where(_comments_of(campaign))
        .order_by(CommentLog.id.desc())  # type: ignore[union-attr]
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [
        TrailRow(
            row.received_at,
            row.author_name or row.author_id or "",
            row.message or "",
            parsed_as(row.detail),
            row.outcome,
            (sent_status if row.reply_status == "queued" and sent_status else row.reply_status) or "",
            row.reply_error or "",
            row.verb,
            trail_items(row.detail),
            error_class or "",
            conversation_id,
        )
        for row, sent_status, error_class, conversation_id in (await session.execute(stmt)).all()
    ]


# The trail's export: what the board shows, in words in the reader's language, then the raw codes for a
# program that reads the file (their headers stay as they are in every language).
TRAIL_EXPORT_COLUMNS = ("Time", "Shopper", "Comment", "Read as", "What happened", "Private reply", "Why not sent")
TRAIL_CODE_COLUMNS = ("outcome", "reply_status", "reply_reason")
_NOT_SENT = ("failed", "refused")


def trail_outcome_words(row: TrailRow, locale: str) -> str:
    """The comment's outcome as the board says it, each item's own when a comment has several."""
    words = comment_outcome(locale, row.outcome)
    if row.verb != "add":
        words = f"{comment_verb(locale, row.verb)}: {words}"
    if len(row.items) > 1:
        items = "; ".join(
            f"{item.code} ×{item.qty}"
            + (f" ({item.variant})" if item.variant else "")
            + f": {item_outcome(locale, item.outcome)}"
            for item in row.items
        )
        words = f"{words} ({items})"
    return words


def trail_as_csv(rows: list[TrailRow], zone: ZoneInfo, locale: str) -> str:
    """The comment trail for a spreadsheet: times in the shop's zone, outcomes and reply states in words."""
    header = [gettext(locale, column) for column in TRAIL_EXPORT_COLUMNS] + list(TRAIL_CODE_COLUMNS)
    return spreadsheet_csv(
        header,
        (
            [
                local_time(row.received_at, zone),
                row.author,
                row.comment,
                ", ".join(
                    f"{item.code} ×{item.qty}" + (f" ({item.variant})" if item.variant else "") for item in row.items
                ),
                trail_outcome_words(row, locale),
                send_status(locale, row.reply_status) if row.reply_status else "",
                send_reason(locale, row.reply_reason)
                if row.reply_reason and row.reply_status in _NOT_SENT
                else row.reply_error,
                row.outcome if row.verb == "add" else f"{row.verb}:{row.outcome}",
                row.reply_status,
                row.reply_reason,
            ]
            for row in rows
        ),
    )


def delivery_pages(body: bytes) -> frozenset[str]:
    """The Pages a delivery is about: its entries' ids (Meta's `entry[].id` is the Page's id). Empty when
    the body is not such a delivery, so that nobody's inbox shows it (the admin API still does)."""
    try:
        entries = json.loads(body).get("entry")
    except (ValueError, AttributeError):
        return frozenset()
    if not isinstance(entries, list) or not entries:
        return frozenset()
    ids = [e.get("id") if isinstance(e, dict) else None for e in entries]
    return frozenset(str(i) for i in ids) if all(isinstance(i, str | int) and str(i) for i in ids) else frozenset()


def dead_letter_is_for(letter: DeadLetter, pages: frozenset[str]) -> bool:
    """Only when every Page of the delivery is one of the user's: its preview shows all of it, and a retry
    replays all of it."""
    found = delivery_pages(letter.body)
    return bool(found) and found <= pages


async def dead_letters_for(
    ingest: IngestStream, pages: frozenset[str], limit: int = 100, scan: int = 5000
) -> list[DeadLetter]:
    """The oldest `limit` dead letters of these Pages, looking at no more than `scan` of all Pages'."""
    found: list[DeadLetter] = []
    start, seen, batch_size = "-", 0, 200
    while len(found) < limit and seen < scan:
        batch = await ingest.list_dead_letters(start, batch_size)
        seen += len(batch)
        found += [letter for letter in batch if dead_letter_is_for(letter, pages)]
        if len(batch) < batch_size:
            break
        start = f"({batch[-1].id}"  # exclusive: after the last one read
    return found[:limit]


async def dead_letter_for(ingest: IngestStream, pages: frozenset[str], dead_id: str) -> DeadLetter | None:
    """The dead letter `dead_id` if it is one of these Pages'; None for no such one or another Page's."""
    letters = await ingest.list_dead_letters(dead_id, 1)
    if not letters or letters[0].id != dead_id or not dead_letter_is_for(letters[0], pages):
        return None
    return letters[0]


@dataclass(frozen=True)
class DeadLetterView:
    id: str
    failed_at: datetime
    attempts: int
    source: str
    error: str
    preview: str


def dead_letter_view(letter: DeadLetter) -> DeadLetterView:
    try:
        # storable_text: a body may hold a lone surrogate (valid JSON), which the page could not encode.
        preview = storable_text(json.dumps(json.loads(letter.body), ensure_ascii=False)[:400])
    except ValueError:
        preview = letter.body[:400].decode(errors="replace")
    return DeadLetterView(
        letter.id,
        datetime.fromtimestamp(letter.failed_at_ms / 1000, UTC),
        letter.attempts,
        letter.source,
        letter.error,
        preview,
    )
