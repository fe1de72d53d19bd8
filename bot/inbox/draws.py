"""Lucky draws on a campaign: announce (rules and a committed seed), draw (entrants from the database, winners
by `bot.inbox.draw_rules`, each told once), cancel, and what the board and a draw's page show.

Who enters: the commenters of the campaign's post or live video (the comment log), each once, meeting every
rule the merchant ticked (the rules in `DrawRules`). A winner is told in Messenger when their 24-hour window
is open, else by a private reply to one of their comments on the campaign that has none yet (Meta allows
one per comment, within 7 days: docs/meta-platform.md §4), else not at all (the page says so, and the host
announces it on the live). Nothing here reads the clock: `now` is the caller's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.inbound.payloads import IG_LIVE_SOURCE
from bot.inbox.board import _comments_of as comments_of  # the board's one definition of a campaign's comments
from bot.inbox.draw_rules import DrawRules, commitment, draw_winners, keyword_matches, new_seed, order_entrants
from bot.inbox.tables import LuckyDraw, LuckyDrawSeed
from bot.outbound.messaging_rules import STANDARD_WINDOW
from bot.outbound.outbox import OutboxKind, PrivateReplyRequest, enqueue_messages, enqueue_private_replies
from bot.replies.draws import draw_win
from bot.replies.i18n import pick_locale, script_locale
from bot.replies.render import render_text
from bot.store.blocked_buyers import blocked_among
from bot.store.conversations import fetch_locale_candidates
from bot.store.tables import CommentLog, Conversation, OutboxMessage
from carts.order_tables import Order
from carts.sql import dialect_insert
from carts.stock_rules import LIVE_STATUSES
from carts.tables import Campaign, StockClaim
from crm_bridge.members import IdentityKind, psid_identity
from crm_bridge.tables import MemberIdentity

PRIVATE_REPLY_DAYS = timedelta(days=7)  # Meta: a private reply within 7 days of the comment


class DrawError(Exception):
    """A draw that cannot be made or announced: the reason as a msgid with its values; nothing changed."""

    def __init__(self, status: int, msgid: str, **params: object) -> None:
        super().__init__(msgid)
        self.status, self.msgid, self.params = status, msgid, params


@dataclass
class Entrant:
    psid: str
    name: str | None
    comments: list[Any] = field(default_factory=list)  # their comment log rows on the campaign, oldest first


async def fetch_entrants(session: AsyncSession, campaign: Campaign, rules: DrawRules) -> dict[str, Entrant]:
    """The commenters who meet the rules, by PSID."""
    rows = (
        await session.execute(
            select(
                CommentLog.author_id,
                CommentLog.author_name,
                CommentLog.comment_id,
                CommentLog.message,
                CommentLog.created_time,
                CommentLog.received_at,
                CommentLog.channel,
                CommentLog.source,
            )
            .where(comments_of(campaign), CommentLog.verb == "add", CommentLog.author_id.is_not(None))
            .order_by(CommentLog.id)
        )
    ).all()
    found: dict[str, Entrant] = {}
    for row in rows:
        if rules.exclude_page and row.author_id == campaign.page_id:
            continue
        if not keyword_matches(rules.keyword, row.message):
            continue
        entrant = found.setdefault(row.author_id, Entrant(row.author_id, row.author_name))
        entrant.name = row.author_name or entrant.name
        entrant.comments.append(row)
    if not found:
        return found
    # The campaign's own claims and orders are few beside its comments: read them whole, no long IN lists.
    if rules.ordered:
        ordered = await session.execute(
            select(StockClaim.psid).where(
                StockClaim.campaign_id == campaign.id,
                StockClaim.page_id == campaign.page_id,
                StockClaim.status.in_(LIVE_STATUSES),
            )
        )
        keep = set(ordered.scalars())
        found = {p: e for p, e in found.items() if p in keep}
    if rules.paid and found:
        paid = await session.execute(
            select(StockClaim.psid)
            .join(Order, Order.id == StockClaim.order_id)
            .where(
                StockClaim.campaign_id == campaign.id,
                StockClaim.page_id == campaign.page_id,
                Order.paid_at.is_not(None),
            )
        )
        keep = set(paid.scalars())
        found = {p: e for p, e in found.items() if p in keep}
    if rules.member and found:
        names = {psid_identity(campaign.page_id, p): p for p in found}
        keep = set()
        for part in _chunks(sorted(names)):
            members = await session.execute(
                select(MemberIdentity.value).where(
                    MemberIdentity.kind == IdentityKind.PSID, MemberIdentity.value.in_(part)
                )
            )
            keep.update(names[v] for v in members.scalars())
        found = {p: e for p, e in found.items() if p in keep}
    if rules.exclude_winners and found:
        earlier = await session.execute(select(LuckyDraw.winners).where(LuckyDraw.campaign_id == campaign.id))
        won = {w["psid"] for text in earlier.scalars() for w in json.loads(text)}
        found = {p: e for p, e in found.items() if p not in won}
    if rules.exclude_blocked and found:
        blocked = {psid for _, psid in await blocked_among(session, [(campaign.page_id, p) for p in found])}
        found = {p: e for p, e in found.items() if p not in blocked}
    return found


async def fetch_campaign(session: AsyncSession, pages: frozenset[str], key: str) -> Campaign | None:
    """The campaign a URL names, if it is on one of the user's Pages (another Page's is none)."""
    campaign = (await session.execute(select(Campaign).where(Campaign.key == key))).scalar_one_or_none()
    return campaign if campaign is not None and campaign.page_id in pages else None


async def announce_draw(
    session: AsyncSession, campaign: Campaign, rules: DrawRules, by: str, now: datetime
) -> LuckyDrawSeed:
    """Fix the rules and a fresh secret seed; only its commitment is shown until the draw."""
    seed = new_seed()
    values = {
        "campaign_id": campaign.id or 0,
        "seed": seed,
        "commitment": commitment(seed),
        "rules": rules.to_json(),
        "announced_by": by,
        "announced_at": now,
    }
    # One announcement per campaign, even when two owners press at once: the second finds the first's.
    insert = dialect_insert(session)(LuckyDrawSeed.__table__).values(values)
    result = await session.execute(insert.on_conflict_do_nothing(index_elements=["campaign_id"]))
    if not result.rowcount:  # type: ignore[attr-defined]
        raise DrawError(409, "A draw is already announced here: draw it or cancel it first.")
    return LuckyDrawSeed(**values)


async def cancel_draw(session: AsyncSession, campaign: Campaign) -> bool:
    result = await session.execute(delete(LuckyDrawSeed).where(LuckyDrawSeed.campaign_id == campaign.id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def make_draw(
    session: AsyncSession, campaign: Campaign, shown_commitment: str, by: str, now: datetime
) -> LuckyDraw:
    """Draw the announced draw: store it with its entrants and winners and queue each winner's news.

    The announcement is taken first (deleted; a refusal below rolls the transaction back and it stays), so
    two clicks or two owners at once make one draw. Refused with nothing changed: no draw announced, a
    commitment other than the one shown, nobody eligible, more winners than entrants.
    """
    announced = (
        await session.execute(
            delete(LuckyDrawSeed)
            .where(LuckyDrawSeed.campaign_id == campaign.id)
            .returning(LuckyDrawSeed.seed, LuckyDrawSeed.commitment, LuckyDrawSeed.rules, LuckyDrawSeed.announced_at)
        )
    ).first()
    if announced is None:
        raise DrawError(409, "No draw is announced here: announce one first.")
    if announced.commitment != shown_commitment:
        raise DrawError(409, "The draw announced here is not the one on your screen: reload the board.")
    rules = DrawRules.from_json(announced.rules)
    found = await fetch_entrants(session, campaign, rules)
    if not found:
        raise DrawError(409, "No commenter meets the draw's rules yet: nothing was drawn.")
    if rules.winners > len(found):
        raise DrawError(
            409,
            "{winners} winners asked for, but only {n} commenters meet the rules: nothing was drawn.",
            winners=rules.winners,
            n=len(found),
        )
    entrants = order_entrants(found)
    winners = draw_winners(announced.seed, entrants, rules.winners)
    draw = LuckyDraw(
        campaign_id=campaign.id or 0,
        page_id=campaign.page_id,
        seed=announced.seed,
        commitment=announced.commitment,
        rules=announced.rules,
        entrants=json.dumps(entrants),
        winners="[]",
        announced_at=announced.announced_at,
        drawn_by=by,
        drawn_at=now,
    )
    session.add(draw)
    await session.flush()
    told = await _tell_winners(session, campaign, draw.id or 0, [found[p] for p in winners], now)
    draw.winners = json.dumps(told, ensure_ascii=False)
    session.add(draw)
    await session.flush()
    return draw


async def _tell_winners(
    session: AsyncSession, campaign: Campaign, draw_id: int, winners: list[Entrant], now: datetime
) -> list[dict[str, Any]]:
    """Queue each winner's news, once (its outbox key names the draw and the winner); how each was told."""
    shoppers = {(campaign.page_id, w.psid) for w in winners}
    own, shop = await fetch_locale_candidates(session, shoppers)
    windows = dict(
        (
            await session.execute(
                select(Conversation.psid, Conversation.last_user_at).where(
                    Conversation.page_id == campaign.page_id, Conversation.psid.in_(sorted(w.psid for w in winners))
                )
            )
        ).all()
    )
    answered = set(
        (
            await session.execute(
                select(OutboxMessage.comment_id).where(
                    OutboxMessage.kind == OutboxKind.PRIVATE_REPLY,
                    OutboxMessage.comment_id.in_([c.comment_id for w in winners for c in w.comments]),
                )
            )
        ).scalars()
    )
    told: list[dict[str, Any]] = []
    for winner in winners:
        script = next((s for c in winner.comments if (s := script_locale(c.message)) is not None), None)
        locale = pick_locale(own.get((campaign.page_id, winner.psid)), script, shop)
        text = draw_win(locale, winner.name, campaign.title)
        how, comment_id = "none", None
        last_user_at = _aware(windows.get(winner.psid))
        if winner.psid == campaign.page_id:
            pass  # the Page itself (when the rules let it in): nobody to tell
        elif last_user_at is not None and now - last_user_at <= STANDARD_WINDOW:
            await enqueue_messages(
                session,
                key=f"draw:{draw_id}:{winner.psid}",
                page_id=campaign.page_id,
                psid=winner.psid,
                messages=render_text(text),
            )
            how = "message"
        else:
            # The latest of their comments that has had no private reply and is within Meta's 7 days.
            for c in reversed(winner.comments):
                created = _aware(c.created_time or c.received_at)
                if c.comment_id in answered or created is None or now - created > PRIVATE_REPLY_DAYS:
                    continue
                request = PrivateReplyRequest(
                    page_id=campaign.page_id,
                    comment_id=c.comment_id,
                    psid=winner.psid,
                    comment_created_at=c.created_time,
                    message=render_text(text)[0],
                    channel=c.channel,  # an Instagram comment's reply goes by Instagram's rules
                    on_live=c.source == IG_LIVE_SOURCE,
                )
                if c.comment_id in await enqueue_private_replies(session, [request]):
                    await session.execute(
                        update(CommentLog).where(CommentLog.comment_id == c.comment_id).values(reply_status="queued")
                    )
                    how, comment_id = "private_reply", c.comment_id
                    break
        told.append({"psid": winner.psid, "name": winner.name, "comment_id": comment_id, "told": how})
    return told


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class DrawPanel:
    """What the board's draw section shows."""

    announced: LuckyDrawSeed | None
    rules: DrawRules | None
    eligible: int  # commenters who meet the announced rules now
    draws: list[tuple[LuckyDraw, list[dict[str, Any]]]]  # the latest, with their winners


async def draw_panel(session: AsyncSession, campaign: Campaign) -> DrawPanel:
    announced = await session.get(LuckyDrawSeed, campaign.id)
    rules = DrawRules.from_json(announced.rules) if announced is not None else None
    eligible = len(await fetch_entrants(session, campaign, rules)) if rules is not None else 0
    draws = (
        (
            await session.execute(
                select(LuckyDraw).where(LuckyDraw.campaign_id == campaign.id).order_by(LuckyDraw.id.desc()).limit(10)  # type: ignore[union-attr]
            )
        )
        .scalars()
        .all()
    )
    return DrawPanel(announced, rules, eligible, [(d, json.loads(d.winners)) for d in draws])


async def fetch_draw(session: AsyncSession, campaign: Campaign, draw_id: int) -> LuckyDraw | None:
    draw = await session.get(LuckyDraw, draw_id)
    return draw if draw is not None and draw.campaign_id == campaign.id else None


async def entrant_names(session: AsyncSession, draw: LuckyDraw) -> dict[str, str]:
    """The names the entrants commented under (the latest), for the draw's page."""
    names: dict[str, str] = {}
    for part in _chunks(json.loads(draw.entrants)):
        rows = await session.execute(
            select(CommentLog.author_id, CommentLog.author_name)
            .where(
                CommentLog.page_id == draw.page_id,
                CommentLog.author_id.in_(part),
                CommentLog.author_name.is_not(None),
            )
            .order_by(CommentLog.id)
        )
        names.update({psid: name for psid, name in rows.all()})
    return names


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    """Bounded IN lists: a big live's entrants in several queries."""
    return [items[i : i + size] for i in range(0, len(items), size)]
