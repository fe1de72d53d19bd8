"""Comments on a campaign's post become stock claims; the allocator decides them in arrival order.

The decisions are the domain's (`carts.comment_orders`, `carts.stock`); this module is their place in the
event flow. `CommentOrders.handle` runs in the comment's transaction: it finds the campaign of the post
(`carts.comment_order_repository.CampaignLookup`), plans the comment (`carts.comment_orders.plan_new_comment`),
records the outcome in the comment log and inserts a pending `StockClaim` for each item that can take stock.
`Allocator.run` (after the worker has acknowledged a batch, and now and then) decides pending claims below
the stream's watermark, oldest first (`carts.stock`), records each comment's final outcome, and composes
the private replies that go out through the outbox.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import bindparam, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.handlers.handoff import agent_is_handling, fetch_conversation
from bot.inbound.events import Channel, CommentEvent, CommentVerb, Event, LiveVideoEvent
from bot.inbound.ingest import IngestStream
from bot.inbound.live_comments import live_video_of_post
from bot.inbound.live_status import LivePhase, live_phase
from bot.inbound.payloads import IG_LIVE_SOURCE
from bot.inbound.recorders import comment_log_values, record_comment
from bot.inbound.router import HandlerContext
from bot.outbound.messaging_rules import STANDARD_WINDOW
from bot.outbound.outbox import (
    OutboxKind,
    OutboxNotifier,
    OutboxStatus,
    PrivateReplyRequest,
    enqueue_messages,
    enqueue_order_update,
    enqueue_private_replies,
)
from bot.outbound.shopper_locale import locale_of
from bot.replies.carts import (
    CommentResult,
    ItemResult,
    cart_buttons,
    hold_news,
    hold_time_left,
    render_comment_reply,
)
from bot.replies.chat import public_fallback
from bot.replies.i18n import pick_locale, script_locale
from bot.replies.orders import order_expired, order_expiring
from bot.replies.render import MAX_BUTTON_TEXT, render_buttons, render_text
from bot.runtime.clock import from_epoch_s, utcnow
from bot.store.blocked_buyers import blocked_among
from bot.store.conversations import fetch_locale_candidates
from bot.store.pointer import LivePointerMoves, moves_of
from bot.store.tables import CommentLog, OutboxMessage
from carts.comment_order_repository import (
    CampaignLookup,
    apply_edit,
    attach_live_video,
    claim_statuses_of_comments,
    claimed_quantities,
    insert_claims,
)
from carts.comment_orders import (
    CampaignInfo,
    CommentOutcome,
    CommentPlan,
    ItemOutcome,
    OrderComment,
    hold_back,
    plan_new_comment,
    settled_outcome,
)
from carts.core import format_money
from carts.coupon_rules import OfferClaimStatus
from carts.coupons import (
    ActiveOffer,
    allocate_offer_claims,
    fetch_active_offers,
    fetch_voucher_news,
    insert_offer_claims,
    offer_claims,
    offer_statuses_of_comments,
)
from carts.order_rules import OrderInfo
from carts.orders import (
    expire_unpaid_orders,
    fetch_or_create_checkout_token,
    fetch_or_create_checkout_tokens,
    orders_to_remind,
)
from carts.pointer_rules import on_screen
from carts.repository import (
    fetch_cart,
    fetch_carts,
    fetch_claim_rows_of_comments,
    fetch_claims_of_comment,
    fetch_hold_expiry,
)
from carts.stock import allocate_pending, expire_holds, holds_to_remind, release_claims
from carts.stock_rules import (
    END_OF_STREAM,
    LIVE_STATUSES,
    ClaimChange,
    ClaimDecision,
    ClaimSource,
    ClaimStatus,
    arrival_key,
    claim_decision,
)
from carts.tables import Product, ShopInfo, StockClaim

log = logging.getLogger(__name__)


async def handle_live_video(event: LiveVideoEvent, ctx: HandlerContext) -> None:
    """A live video started: the Page's "next live" campaign that is open now takes it. A scheduled video
    waits for its `live` (the merchant may schedule several), an unknown status is only logged."""
    if live_phase(event.status) is not LivePhase.LIVE:
        return
    campaign = await attach_live_video(ctx.session, event.page_id, event.video_id, utcnow())
    if campaign is not None:
        log.info("campaign %s now sells on live video %s", campaign.key, event.video_id)


def _order_comment(event: CommentEvent) -> OrderComment:
    assert event.author_id is not None
    return OrderComment(event.comment_id, event.page_id, event.author_id, event.message or "")


def _on_screen(
    pointers: dict[int, LivePointerMoves], campaign: CampaignInfo, created: datetime | None
) -> tuple[str, ...]:
    """The live's products the viewer may have seen when commenting (`created`: Meta's creation time, else
    when it reached us): what a quantity without a code orders (carts.pointer_rules)."""
    found = pointers.get(campaign.id)
    if found is None or created is None:
        return ()
    return on_screen(found.moves, created, found.grace_s)


def _created(event: CommentEvent, now: datetime) -> datetime:
    return from_epoch_s(event.created_time) if event.created_time else now


def _arrival(ctx: HandlerContext) -> str:
    """The comment's place in line: its stream entry and its position in the delivery."""
    return arrival_key(ctx.stream_id or "0-0", ctx.position)


def _with_offers(
    plan: CommentPlan, comment: OrderComment, offers: list[ActiveOffer], arrival: str, now: datetime
) -> tuple[CommentPlan, list[dict[str, Any]]]:
    """The comment's claims on the campaign's first-N offers whose keyword it says (`SALE`, `SALE A+1`): a
    comment with one waits for the allocator, which decides the vouchers in arrival order as it decides
    stock, so its one private reply tells both."""
    if not offers or plan.outcome == CommentOutcome.CAMPAIGN_CLOSED or not comment.psid:
        return plan, []
    claims = offer_claims(offers, comment.comment_id, comment.page_id, comment.psid, comment.message, arrival, now)
    if not claims:
        return plan, []
    return CommentPlan(CommentOutcome.PENDING, plan.detail, plan.claims), claims


class CommentOrders:
    """The bot handler for order comments, with campaigns and their parsers cached per version."""

    def __init__(self, checkout_link: CheckoutLink | None = None) -> None:
        self.campaigns = CampaignLookup(live_video_of_post)
        self.checkout_link = checkout_link

    async def fetch_campaign(self, session: AsyncSession, page_id: str, post_id: str) -> CampaignInfo | None:
        return await self.campaigns.fetch(session, page_id, post_id, utcnow())

    async def on_campaign_post(self, event: CommentEvent, ctx: HandlerContext) -> dict[str, Any] | bool:
        """Filter: a new comment on a campaign's post; hands the campaign to the handler."""
        if event.verb not in (CommentVerb.ADD, CommentVerb.EDITED, CommentVerb.REMOVE) or event.author_id is None:
            return False
        campaign = await self.fetch_campaign(ctx.session, event.page_id, event.post_id)
        return {"campaign": campaign} if campaign is not None else False

    async def handle(self, event: CommentEvent, ctx: HandlerContext, campaign: CampaignInfo) -> None:
        assert event.author_id is not None
        if event.verb is CommentVerb.REMOVE:
            await self._removed(event, ctx)
            return
        if event.verb is CommentVerb.EDITED:
            await self._edited(event, ctx, campaign)
            return
        used = await claimed_quantities(ctx.session, [campaign], {event.author_id})
        now = utcnow()
        screen = _on_screen(await moves_of(ctx.session, [campaign.id]), campaign, _created(event, now))
        plan = plan_new_comment(_order_comment(event), campaign, _arrival(ctx), now, used, screen)
        if await blocked_among(ctx.session, [(event.page_id, event.author_id)]):
            # Before any claim: a blocked buyer's order holds nothing, and their keyword takes no voucher.
            plan, wanted = hold_back(plan), []
        else:
            offers = (await fetch_active_offers(ctx.session, [campaign.id])).get(campaign.id, [])
            plan, wanted = _with_offers(plan, _order_comment(event), offers, _arrival(ctx), now)
        await insert_claims(ctx.session, plan.claims)
        await insert_offer_claims(ctx.session, wanted)
        await _set_outcome(ctx.session, event.key, plan.outcome, plan.detail)
        if plan.answer_now:  # decided already: nothing waits for the allocator
            await self._reply(event, ctx)

    # The batch handler protocol (`bot.inbound.router.BatchHandler`): new comments of a live, many at a time.
    covers_recorders = (record_comment,)  # its comment log rows are inserted by `handle_batch`

    def accepts(self, event: Event) -> bool:
        return (
            isinstance(event, CommentEvent)
            and event.verb is CommentVerb.ADD
            and event.author_id is not None
            and not event.from_page
            and event.key is not None
        )

    async def handle_batch(self, session: AsyncSession, items: list[tuple[CommentEvent, HandlerContext]]) -> None:
        """New comments, as `record_comment` and `handle` would one by one: a few statements for them all."""
        now = utcnow()
        campaigns: dict[tuple[str, str], CampaignInfo | None] = {}
        for event, _ in items:
            if (event.page_id, event.post_id) not in campaigns:
                campaigns[(event.page_id, event.post_id)] = await self.campaigns.fetch(
                    session, event.page_id, event.post_id, now
                )
        used = await claimed_quantities(
            session, [c for c in campaigns.values() if c is not None], {e.author_id for e, _ in items if e.author_id}
        )
        # One query for the whole batch (not one per comment): which authors the shop blocked.
        blocked = await blocked_among(
            session,
            {(e.page_id, e.author_id) for e, _ in items if e.author_id and campaigns[(e.page_id, e.post_id)]},
        )
        # The live pointers' moves, read once for the batch in its transaction (one query, none pointed: empty).
        pointers = await moves_of(session, sorted({c.id for c in campaigns.values() if c is not None}))
        offers = await fetch_active_offers(session, [c.id for c in campaigns.values() if c is not None])
        logs: list[dict[str, Any]] = []
        claims: list[dict[str, Any]] = []
        wanted: list[dict[str, Any]] = []
        for event, ctx in items:
            row = comment_log_values(event, ctx)
            campaign = campaigns[(event.page_id, event.post_id)]
            if campaign is not None:  # else a comment on another post: logged as received, as one by one
                screen = _on_screen(pointers, campaign, _created(event, now))
                plan = plan_new_comment(_order_comment(event), campaign, _arrival(ctx), now, used, screen)
                if (event.page_id, event.author_id) in blocked:
                    plan = hold_back(plan)  # no hold, no voucher
                else:
                    plan, more = _with_offers(
                        plan, _order_comment(event), offers.get(campaign.id, []), _arrival(ctx), now
                    )
                    wanted += more
                row["outcome"], row["detail"] = plan.outcome, json.dumps(plan.detail, ensure_ascii=False)
                claims += plan.claims
                if plan.answer_now:  # decided already: its reply is composed after the commit
                    row["reply_status"] = REPLY_DUE
            logs.append(row)
        await session.execute(insert(CommentLog.__table__), logs)  # Core executemany: no ORM objects
        await insert_claims(session, claims)
        await insert_offer_claims(session, wanted)

    async def _removed(self, event: CommentEvent, ctx: HandlerContext) -> None:
        """The shopper deleted the comment: release what it claimed, unless an order already has it."""
        claims = await fetch_claims_of_comment(ctx.session, event.comment_id)
        released = await release_claims(ctx.session, claims, utcnow())
        items = [{"product_id": d.product_id, "qty": d.qty, "outcome": d.status} for d in released]
        outcome = CommentOutcome.RELEASED if released else CommentOutcome.NOTHING_TO_RELEASE
        await _set_outcome(ctx.session, event.key, outcome, {"items": items})

    async def _edited(self, event: CommentEvent, ctx: HandlerContext, campaign: CampaignInfo) -> None:
        """The shopper edited the comment: apply the difference between what it asks now and what it claimed.

        More of an item is a new claim, in line from the edit's arrival (an edit cannot jump the queue);
        less releases the latest units first.
        """
        claims = await fetch_claims_of_comment(ctx.session, event.comment_id)
        comment = _order_comment(event)
        if await blocked_among(ctx.session, [(event.page_id, comment.psid)]):  # an edit claims nothing more either
            await _set_outcome(ctx.session, event.key, CommentOutcome.BLOCKED, {"items": [], "held_back": True})
            return
        now = utcnow()
        pointed = await self._pointed_product(ctx.session, event, campaign, claims, now)
        changes = await apply_edit(
            ctx.session, comment, campaign, claims, _arrival(ctx), event.key[-16:], now, now_selling=pointed
        )
        outcome = CommentOutcome.EDITED if changes else CommentOutcome.UNCHANGED
        await _set_outcome(ctx.session, event.key, outcome, {"items": changes})

    async def _pointed_product(
        self, session: AsyncSession, event: CommentEvent, campaign: CampaignInfo, claims: Sequence[Any], now: datetime
    ) -> str | None:
        """What a quantity without a code stands for in an edited comment: the one product its claims hold
        (on screen when it was written, or chosen in the chat), else the one on screen when it was written."""
        held = {c.product_id for c in claims if c.status in LIVE_STATUSES}
        codes = [code for code, p in campaign.products.items() if p.product_id in held]
        if len(codes) == 1:
            return codes[0]
        if codes:
            return None  # several products: the comment named them, so it has no bare quantity to read
        created = (
            await session.execute(
                select(CommentLog.created_time).where(
                    CommentLog.comment_id == event.comment_id, CommentLog.verb == CommentVerb.ADD
                )
            )
        ).scalar_one_or_none()
        screen = _on_screen(await moves_of(session, [campaign.id]), campaign, created or _created(event, now))
        return screen[0] if len(screen) == 1 else None

    async def _reply(self, event: CommentEvent, ctx: HandlerContext) -> None:
        await ctx.session.flush()
        if await queue_comment_reply(ctx.session, event.comment_id, self.checkout_link) is not None:
            ctx.wake_outbox()


async def _set_outcome(session: AsyncSession, event_key: str, outcome: CommentOutcome, detail: dict[str, Any]) -> None:
    await session.execute(
        update(CommentLog)
        .where(CommentLog.event_key == event_key)
        .values(outcome=outcome, detail=json.dumps(detail, ensure_ascii=False))
    )


REPLY_WINDOW_S = 3.0  # comments from one shopper this close together get one private reply
_NO_REPLY = {
    CommentOutcome.NOT_AN_ORDER,
    CommentOutcome.PENDING,
    CommentOutcome.RECEIVED,
    CommentOutcome.IGNORED,
    CommentOutcome.NO_CAMPAIGN,
}


def _variant_text(variant: Any) -> str:
    return " / ".join(str(v) for _, v in sorted(variant.items())) if isinstance(variant, dict) else ""


def comment_result(log_row: Any, claims: Sequence[Any], names: dict[int, str]) -> CommentResult:
    """What one comment did, item by item, from its recorded outcome and its decided claims. Pure.

    `log_row`: a comment log row or object (comment_id, outcome, detail); `claims`: its claims' rows or
    objects (product_id, variant, qty, status)."""
    detail = json.loads(log_row.detail or "{}")
    if log_row.outcome == CommentOutcome.CAMPAIGN_CLOSED:
        return CommentResult(log_row.comment_id, (), closed_text=detail.get("closed_reply"), closed=True)
    if log_row.outcome == CommentOutcome.BLOCKED:
        return CommentResult(log_row.comment_id, (), held_back=True)
    results: list[ItemResult] = []
    for item in detail.get("items", []):
        outcome, code, qty = item["outcome"], item.get("code") or "", item.get("qty") or 0
        if outcome == ItemOutcome.CLAIMED:
            continue  # reported from the claims below, as held or waitlisted
        results.append(
            ItemResult(
                code,
                item.get("name", ""),
                qty,
                outcome,
                _variant_text(item.get("variant")),
                limit=item.get("limit"),
                chosen=item.get("variant") or {},
                missing=[(m, item.get("values", {}).get(m, [])) for m in item.get("missing", [])],
                candidates=[(c.get("code", ""), c.get("name", "")) for c in item.get("candidates", [])],
            )
        )
    codes = {i.get("product_id"): i.get("code") for i in detail.get("items", []) if i.get("product_id")}
    for claim in claims:
        outcome = CommentOutcome.ADDED if claim.status == ClaimStatus.HELD else claim.status
        variant = json.loads(claim.variant) if claim.variant else None
        results.append(
            ItemResult(
                codes.get(claim.product_id, ""),
                names.get(claim.product_id, ""),
                claim.qty,
                outcome,
                _variant_text(variant),
            )
        )
    return CommentResult(log_row.comment_id, tuple(results))


CheckoutLink = Callable[[str], str]  # checkout token -> the page's URL


async def queue_comment_reply(
    session: AsyncSession, comment_id: str, checkout_link: CheckoutLink | None = None
) -> int | None:
    """Queue (or join) the shopper's private reply for one decided comment; the outbox row id, if any."""
    return (await queue_comment_replies(session, [comment_id], checkout_link)).get(comment_id)


Shopper = tuple[str, str]  # (page id, psid)
# A private reply to compose: one still waiting in the outbox (its row id), or a new one (its shopper).
ReplyKey = int | Shopper


async def queue_comment_replies(
    session: AsyncSession, comment_ids: list[str], checkout_link: CheckoutLink | None = None
) -> dict[str, int]:
    """Queue (or join) private replies for decided comments, in bulk; comment id -> outbox row id.

    One private reply per shopper per few seconds: a comment joins the shopper's reply still waiting to
    go (created within REPLY_WINDOW_S), else starts one. Each touched reply is rendered again for every
    comment it answers, with the cart as it is now. A handful of statements per batch, whatever its size:

    1. read the comments' log rows; those answered before (a replay) keep their reply;
    2. group the rest by the reply that answers them (`_group_by_reply`);
    3. render every reply (`_render_replies`), then insert the new ones with their message
       (`_queue_new_replies`) and update the waiting ones (`_write_replies`).
    """
    if not comment_ids:
        return {}
    # Columns, not CommentLog objects, and Core writes: this runs for every batch of a live, and ORM objects
    # (loaded, changed, flushed) cost several times more per comment than the rest of the reply.
    logs = (
        await session.execute(
            select(*_REPLY_COLUMNS)
            .where(CommentLog.comment_id.in_(comment_ids), CommentLog.verb == CommentVerb.ADD)
            .order_by(CommentLog.id)
        )
    ).all()
    answered = {r.comment_id: r.reply_outbox_id for r in logs if r.reply_outbox_id is not None}  # replays
    todo = [r for r in logs if r.reply_outbox_id is None and r.outcome not in _NO_REPLY and r.author_id]
    if not todo:
        return answered
    now = utcnow()
    by_reply = await _group_by_reply(session, todo, now)
    messages = await _render_replies(session, by_reply, checkout_link, now)
    created = await _queue_new_replies(session, by_reply, messages)
    await _write_replies(session, by_reply, messages, created, answered)
    return answered


async def _group_by_reply(session: AsyncSession, todo: list[Any], now: datetime) -> dict[ReplyKey, list[Any]]:
    """The comments each reply answers, oldest first: a waiting reply's (keyed by its outbox id) and, for a
    shopper with none waiting, the new reply started by their first comment here (keyed by the shopper).

    A waiting reply this call joins answers earlier comments of the window too, which only the log knows:
    they come first in its list.
    """
    shoppers = {(r.page_id, r.author_id) for r in todo}
    waiting = await session.execute(
        select(OutboxMessage.id, OutboxMessage.page_id, OutboxMessage.psid)
        .where(
            OutboxMessage.kind == OutboxKind.PRIVATE_REPLY,
            OutboxMessage.status == OutboxStatus.PENDING,
            tuple_(OutboxMessage.page_id, OutboxMessage.psid).in_(shoppers),
            OutboxMessage.created_at >= now - timedelta(seconds=REPLY_WINDOW_S),
        )
        .order_by(OutboxMessage.id)
    )
    reply_of: dict[Shopper, int] = {(page, psid): rid for rid, page, psid in waiting.all()}
    by_reply: dict[ReplyKey, list[Any]] = {}
    for log_row in todo:
        shopper = (log_row.page_id, log_row.author_id)
        by_reply.setdefault(reply_of.get(shopper, shopper), []).append(log_row)
    earlier = sorted(k for k in by_reply if isinstance(k, int))
    if earlier:
        rows = await session.execute(
            select(*_REPLY_COLUMNS).where(CommentLog.reply_outbox_id.in_(earlier)).order_by(CommentLog.id)
        )
        joined_rows: dict[int, list[Any]] = {reply_id: [] for reply_id in earlier}
        for r in rows.all():
            joined_rows[r.reply_outbox_id].append(r)
        for reply_id in earlier:
            by_reply[reply_id] = joined_rows[reply_id] + by_reply[reply_id]
    return by_reply


async def _render_replies(
    session: AsyncSession, by_reply: dict[ReplyKey, list[Any]], checkout_link: CheckoutLink | None, now: datetime
) -> dict[ReplyKey, dict[str, Any]]:
    """Every reply's message, from what its comments did and the shopper's cart as it is now.

    Rendered before anything is written: a new reply is inserted with its message, and only the waiting
    ones are updated (one statement each way, whatever the batch's size)."""
    covered = [r for rows in by_reply.values() for r in rows]
    claims = await fetch_claim_rows_of_comments(session, {r.comment_id for r in covered})
    names = dict((await session.execute(select(Product.id, Product.name))).all())
    carts = await fetch_carts(session, {(r.page_id, r.author_id) for r in covered if r.author_id})
    locales = await _reply_locales(session, by_reply)
    tokens: dict[Shopper, str] = {}
    if checkout_link is not None:
        tokens = await fetch_or_create_checkout_tokens(
            session, {shopper for shopper, cart in carts.items() if not cart.is_empty}, now
        )
    vouchers = await fetch_voucher_news(session, {r.comment_id for r in covered})
    zone = await _shop_zone(session) if vouchers else None
    messages: dict[ReplyKey, dict[str, Any]] = {}
    for key, rows in by_reply.items():
        shopper = (rows[0].page_id, rows[0].author_id)
        results = [
            replace(comment_result(r, claims[r.comment_id], names), voucher=vouchers.get(r.comment_id)) for r in rows
        ]
        token = tokens.get(shopper)
        url = checkout_link(token) if checkout_link is not None and token is not None else None
        messages[key] = render_comment_reply(locales[key], rows[-1].author_name, results, carts[shopper], url, zone)
    return messages


async def _shop_zone(session: AsyncSession) -> ZoneInfo:
    """The shop's time zone (a voucher's end is told in it)."""
    name = (await session.execute(select(ShopInfo.timezone).where(ShopInfo.id == 1))).scalar_one_or_none()
    try:
        # In a thread: the first ZoneInfo of a name reads tzdata from disk.
        return await asyncio.to_thread(ZoneInfo, name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):  # checked when the shop file was loaded; tzdata may change
        return ZoneInfo("UTC")


async def _reply_locales(session: AsyncSession, by_reply: dict[ReplyKey, list[Any]]) -> dict[ReplyKey, str]:
    """The language of each reply: the shopper's own (their choice, or what they wrote in the chat), else the
    script of the comments it answers, else the shop's (bot.replies.i18n's rule)."""
    own, shop = await fetch_locale_candidates(
        session, {(rows[0].page_id, rows[0].author_id) for rows in by_reply.values()}
    )
    return {
        key: pick_locale(
            own.get((rows[0].page_id, rows[0].author_id)),
            next((found for r in rows if (found := script_locale(r.message)) is not None), None),
            shop,
        )
        for key, rows in by_reply.items()
    }


async def _queue_new_replies(
    session: AsyncSession, by_reply: dict[ReplyKey, list[Any]], messages: dict[ReplyKey, dict[str, Any]]
) -> dict[str, int]:
    """Queue the replies no waiting one covers, each as a private reply to the shopper's first comment here
    (with a public fallback under the post); starter comment id -> outbox row id."""
    starters = {key: rows[0] for key, rows in by_reply.items() if not isinstance(key, int)}
    locales = await _reply_locales(session, by_reply)
    return await enqueue_private_replies(
        session,
        [
            PrivateReplyRequest(
                page_id=r.page_id,
                comment_id=r.comment_id,
                psid=r.author_id,
                comment_created_at=r.created_time,
                message=messages[shopper],
                public_fallback=_public_fallback(r, locales[shopper]),
                channel=r.channel,
                on_live=r.source == IG_LIVE_SOURCE,
            )
            for shopper, r in starters.items()
        ],
        delay_s=REPLY_WINDOW_S,
    )


async def _write_replies(
    session: AsyncSession,
    by_reply: dict[ReplyKey, list[Any]],
    messages: dict[ReplyKey, dict[str, Any]],
    created: dict[str, int],
    answered: dict[str, int],
) -> None:
    """Link this call's comments to their reply (and add them to `answered`), and give the waiting replies
    they joined their new message."""
    queued: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for key, rows in by_reply.items():
        if isinstance(key, int):
            reply_id = key
            updates.append({"_id": reply_id, "payload": json.dumps(messages[key], ensure_ascii=False)})
        elif rows[0].comment_id in created:
            reply_id = created[rows[0].comment_id]
        else:
            continue  # the starter's reply was queued before (a replay): nothing to join
        for log_row in rows:
            if log_row.reply_outbox_id is None:  # this call's comments, not the earlier ones it joined
                queued.append({"_id": log_row.id, "reply_outbox_id": reply_id})
                answered[log_row.comment_id] = reply_id
    if queued:
        table = CommentLog.__table__
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values(reply_outbox_id=bindparam("reply_outbox_id"), reply_status="queued"),
            queued,
        )
    if updates:
        outbox = OutboxMessage.__table__
        await session.execute(
            update(outbox).where(outbox.c.id == bindparam("_id")).values(payload=bindparam("payload")), updates
        )


REPLY_DUE = "due"  # comment_log.reply_status of a decided comment whose private reply is still to be composed
DUE_REPLIES_PER_PASS = 2_000


async def queue_due_replies(
    session: AsyncSession, checkout_link: CheckoutLink | None = None, limit: int = DUE_REPLIES_PER_PASS
) -> int:
    """Compose and queue the private replies of comments marked `REPLY_DUE`, oldest first; how many replies.

    A batch of a live commits its stock decisions without their replies, which cost about as much again to
    compose: the worker composes them here once the stream is drained (or at least once a second), in a
    transaction of their own. They lose nothing by waiting that long, since a reply waits REPLY_WINDOW_S
    for the shopper's next comments anyway. A comment that gets no reply (no author, or answered before)
    leaves the due state, so it is not looked at again.
    """
    query = (
        select(CommentLog.comment_id)
        .where(CommentLog.reply_status == REPLY_DUE)
        .order_by(CommentLog.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL: two workers' passes take different comments (SQLite: none)
    )
    due = list((await session.execute(query)).scalars())
    if not due:
        return 0
    answered = await queue_comment_replies(session, due, checkout_link)
    unanswered = [c for c in due if c not in answered]
    if unanswered:
        await session.execute(
            update(CommentLog)
            .where(CommentLog.comment_id.in_(unanswered), CommentLog.reply_status == REPLY_DUE)
            .values(reply_status=None)
        )
    return len(set(answered.values()))


# What a private reply needs of a comment's log row.
_REPLY_COLUMNS = (
    CommentLog.id,
    CommentLog.comment_id,
    CommentLog.page_id,
    CommentLog.post_id,
    CommentLog.author_id,
    CommentLog.author_name,
    CommentLog.created_time,
    CommentLog.outcome,
    CommentLog.detail,
    CommentLog.reply_outbox_id,
    CommentLog.channel,
    CommentLog.source,
    CommentLog.message,  # its script: a comment in Chinese characters is answered in Chinese
)


def _public_fallback(r: Any, locale: str) -> tuple[str, str] | None:
    """What to say under the comment if the private reply fails for good. None under an Instagram live's
    comment: its reply fails when the live has ended, and then there is nothing left to comment under."""
    if r.channel == Channel.INSTAGRAM.value:
        if r.source == IG_LIVE_SOURCE:
            return None
        return (f"public-fallback:{r.post_id}:{r.author_id}", public_fallback(locale, instagram=True))
    return (f"public-fallback:{r.post_id}:{r.author_id}", public_fallback(locale))


# A comment left `received` this long found no campaign when it came (a live video not attached yet, or
# detached): long enough for the merchant to attach the video, short enough for a timely reply.
STUCK_AFTER = timedelta(minutes=10)
STUCK_PER_PASS = 500


async def decide_stuck_comments(
    session: AsyncSession, lookup: CampaignLookup, now: datetime, limit: int = STUCK_PER_PASS
) -> int:
    """Give every comment still `received` after STUCK_AFTER an outcome (invariant 5); how many were decided.

    A new comment whose post a campaign sells on now (its live video was attached since) is planned as it
    would have been when it came: judged at its arrival time, in line from its stream entry; the allocator
    decides its claims. Any other gets a final `no_campaign` (or `ignored` without an author) with the reason.
    """
    rows = (
        (
            await session.execute(
                select(CommentLog)
                .where(CommentLog.outcome == CommentOutcome.RECEIVED, CommentLog.received_at <= now - STUCK_AFTER)
                .order_by(CommentLog.id)
                .limit(limit)
                .with_for_update(skip_locked=True)  # PostgreSQL: two workers' passes take different comments
            )
        )
        .scalars()
        .all()
    )
    for row in rows:
        if row.author_id is None:
            row.outcome, row.detail = CommentOutcome.IGNORED, json.dumps({"reason": "the comment has no author"})
            continue
        campaign = None
        if row.verb == CommentVerb.ADD:
            campaign = await lookup.fetch(session, row.page_id, row.post_id, row.received_at)
        if campaign is None:
            reason = (
                "no campaign sells on this post or live video"
                if row.verb == CommentVerb.ADD
                else f"{row.verb}: the comment was never taken by a campaign"
            )
            row.outcome, row.detail = CommentOutcome.NO_CAMPAIGN, json.dumps({"reason": reason})
            continue
        comment = OrderComment(row.comment_id, row.page_id, row.author_id, row.message or "")
        used = await claimed_quantities(session, [campaign], {row.author_id})
        arrival = arrival_key(row.stream_id or "0-0", 0)
        screen = _on_screen(await moves_of(session, [campaign.id]), campaign, row.created_time or row.received_at)
        plan = plan_new_comment(comment, campaign, arrival, row.received_at, used, screen)
        if await blocked_among(session, [(row.page_id, row.author_id)]):
            plan, wanted = hold_back(plan), []
        else:
            offers = (await fetch_active_offers(session, [campaign.id])).get(campaign.id, [])
            plan, wanted = _with_offers(plan, comment, offers, arrival, row.received_at)
        await insert_claims(session, plan.claims)
        await insert_offer_claims(session, wanted)
        row.outcome, row.detail = plan.outcome, json.dumps(plan.detail, ensure_ascii=False)
        if plan.answer_now:
            row.reply_status = REPLY_DUE  # composed by this pass's `queue_due_replies`
    if rows:
        log.info("decided %d comments left without an outcome", len(rows))
    await session.flush()
    return len(rows)


class Allocator:
    """Decides pending stock claims that are safe to decide (below the stream's watermark).

    Two ways in. `in_batch` runs inside a worker's batch transaction, just before it commits: everything
    earlier than the oldest entry not in this batch is already committed, so the batch's own claims (and
    any older ones) are decided at once, and the cart lines commit with the comments. `run` follows once
    the stream is drained (and at least once a second): it composes the private replies of the comments
    decided since (`queue_due_replies`), expires holds, sends reminders, decides comments left without an
    outcome (`decide_stuck_comments`), and decides claims that had to wait for another worker's earlier
    entries.
    """

    def __init__(
        self,
        stream: IngestStream,
        sessions: async_sessionmaker[AsyncSession],
        notifier: OutboxNotifier | None = None,
        checkout_link: CheckoutLink | None = None,
        handoff_quiet: timedelta | None = None,
        on_decided: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.stream = stream
        self.sessions = sessions
        self.notifier = notifier
        self.checkout_link = checkout_link
        self.quiet = handoff_quiet  # automated hold news stays out of a chat a person handles
        # Told after the commit of any decision, whichever way in decided it (carts and boards changed).
        self.on_decided = on_decided
        self._last_housekeeping = 0.0
        self.campaigns = CampaignLookup(live_video_of_post)

    async def in_batch(self, session: AsyncSession, entry_ids: list[str]) -> list[Callable[[], Awaitable[None]]]:
        """Decide what the batch in hand makes decidable, in its transaction; callbacks for after commit."""
        watermark_id = await self.stream.watermark(excluding=entry_ids)
        watermark = END_OF_STREAM if watermark_id is None else arrival_key(watermark_id, 0)
        decided, replies = await decide_pending(session, watermark, utcnow(), self.quiet, self.checkout_link)
        after_commit: list[Callable[[], Awaitable[None]]] = []
        if replies and self.notifier is not None:
            after_commit.append(self.notifier.wake)
        if decided and self.on_decided is not None:
            after_commit.append(self.on_decided)
        return after_commit

    async def run(self, now: datetime | None = None) -> int:
        """Decide what can be decided now (`now`: the clock's, unless a test moves it); the claims decided."""
        watermark_id = await self.stream.watermark()
        watermark = END_OF_STREAM if watermark_id is None else arrival_key(watermark_id, 0)
        async with self.sessions() as session, session.begin():
            now = now or utcnow()
            replies = 0
            # Expiry and reminders are minute-scale: once a second is plenty, even under a flood of batches.
            if time.monotonic() - self._last_housekeeping >= 1.0:
                self._last_housekeeping = time.monotonic()
                for change in await expire_holds(session, now):
                    replies += await tell_about_hold(session, change, now, self.quiet, self.checkout_link)
                for claim in await holds_to_remind(session, REMIND_BEFORE, now):
                    if claim.expires_at is not None and claim.expires_at - now <= min(
                        REMIND_BEFORE, timedelta(minutes=claim.hold_minutes / 2)
                    ):
                        claim.reminded_at = now
                        session.add(claim)
                        replies += await tell_about_hold(
                            session,
                            claim_decision(claim, ClaimChange.REMINDER),
                            now,
                            self.quiet,
                            self.checkout_link,
                        )
                replies += await expire_and_remind_orders(session, now, self.checkout_link, self.quiet)
                await decide_stuck_comments(session, self.campaigns, now)
            decided, more = await decide_pending(session, watermark, now, self.quiet, self.checkout_link)
            replies += more + await queue_due_replies(session, self.checkout_link)
        if replies and self.notifier is not None:
            await self.notifier.wake()
        if decided and self.on_decided is not None:
            await self.on_decided()
        return decided


async def decide_pending(
    session: AsyncSession,
    watermark: str,
    now: datetime,
    quiet: timedelta | None = None,
    checkout_link: CheckoutLink | None = None,
) -> tuple[int, int]:
    """Decide every pending claim before `watermark`; (decided, replies queued).

    A comment whose claims are all decided gets its outcome and is marked `REPLY_DUE`: its private reply is
    composed by `queue_due_replies`, after the decision has committed (see `Allocator`). A size picked in
    the chat is answered there at once.
    """
    vouchers = await allocate_offer_claims(session, watermark, now)  # first-N offers, in the same arrival order
    decisions = await allocate_pending(session, watermark, now)
    if not decisions and not vouchers:
        return 0, 0
    comments = {d.comment_id for d in decisions if d.source != ClaimSource.MESSENGER}
    comments |= {v.comment_id for v in vouchers}
    picks = [d for d in decisions if d.source == ClaimSource.MESSENGER]
    await _settle_comments(session, comments)
    replies = 0
    for decision in picks:  # answered in the chat, where the choice was made (the window is open)
        replies += await tell_about_hold(session, decision, now, quiet, checkout_link)
    return len(decisions) + len(vouchers), replies


REMIND_BEFORE = timedelta(minutes=10)
# News of units the shopper now holds: the moment to offer the checkout.
_HELD_NEWS = frozenset({ClaimChange.HELD, ClaimChange.PROMOTED, ClaimChange.REMINDER})


async def _may_tell(session: AsyncSession, page_id: str, psid: str, now: datetime, quiet: timedelta | None) -> bool:
    """Whether the bot may message the shopper now: inside the 24-hour window Meta allows, and (when `quiet`
    is given) not while a person handles the conversation."""
    conversation = await fetch_conversation(session, page_id, psid)
    if conversation is None or conversation.last_user_at is None:
        return False
    if now - conversation.last_user_at > STANDARD_WINDOW:
        return False
    return quiet is None or not agent_is_handling(conversation, now, quiet)


async def expire_and_remind_orders(
    session: AsyncSession,
    now: datetime,
    checkout_link: Callable[[str], str] | None = None,
    quiet: timedelta | None = None,
) -> int:
    """Unpaid orders past their time expire (stock back, waitlist served and told); those near it are reminded.

    The shopper is told when Meta allows a message; otherwise the order event records it and the order page
    shows it. Messages queued here are order updates (a utility template's case once the window is closed).
    """
    replies = 0
    for change in await expire_unpaid_orders(session, now):
        locale = await locale_of(session, change.order.page_id, change.order.psid)
        replies += await _tell_order(
            session, change.order, f"order-expired:{change.order.id}", order_expired(locale, change.order), now, quiet
        )
        for decision in change.promoted:
            replies += await tell_about_hold(session, decision, now, quiet)
    for order in await orders_to_remind(session, now):
        link = None
        if checkout_link is not None:
            tokens = await fetch_or_create_checkout_tokens(session, {(order.page_id, order.psid)}, now)
            link = checkout_link(tokens[(order.page_id, order.psid)])
        if quiet is not None and await _person_handles(session, order.page_id, order.psid, now, quiet):
            continue
        locale = await locale_of(session, order.page_id, order.psid)
        # Usually past the 24-hour window: the sender sends the Page's approved "order_expiring" template then.
        await enqueue_order_update(
            session,
            key=f"order-expiring:{order.id}",
            page_id=order.page_id,
            psid=order.psid,
            message=render_text(order_expiring(await locale_of(session, order.page_id, order.psid), order, now, link))[
                0
            ],
            template="order_expiring",
            params={
                "order_number": order.number,
                "shopper_name": order.customer_name,
                "total": format_money(order.total, order.currency),
                "status": order.status,
                "checkout_url": link or "",
                "expires_at": order.expires_at.isoformat() if order.expires_at else "",
                "time_left": _hours_left(order.expires_at, now),
            },
        )
        replies += 1
    return replies


def _hours_left(expires_at: datetime | None, now: datetime) -> str:
    if expires_at is None:
        return ""
    return f"{max(1, math.ceil((expires_at - now).total_seconds() / 3600))} h"


async def _person_handles(session: AsyncSession, page_id: str, psid: str, now: datetime, quiet: timedelta) -> bool:
    conversation = await fetch_conversation(session, page_id, psid)
    return conversation is not None and agent_is_handling(conversation, now, quiet)


async def _tell_order(
    session: AsyncSession, order: OrderInfo, key: str, text: str, now: datetime, quiet: timedelta | None
) -> int:
    if not await _may_tell(session, order.page_id, order.psid, now, quiet):
        return 0
    await enqueue_messages(session, key=key, page_id=order.page_id, psid=order.psid, messages=render_text(text))
    return 1


async def tell_about_hold(
    session: AsyncSession,
    change: ClaimDecision,
    now: datetime,
    quiet: timedelta | None = None,
    checkout_link: CheckoutLink | None = None,
) -> int:
    """Tell the shopper their hold changed, when Meta allows a message (else the trail and the inbox show it).

    `quiet`: the hand-off quiet period; automated news then waits out a person handling the chat. Callers
    acting for a person (the inbox) leave it out. With `checkout_link`, news of units held carries the
    Checkout button and the hold's time left (the window is open: use it).
    """
    reminder = change.status == ClaimChange.REMINDER and checkout_link is not None
    # Past the window only a reminder may still go, as the Page's approved "hold_expiring" template.
    if not await _may_tell(session, change.page_id, change.psid, now, quiet) and (
        not reminder or (quiet is not None and await _person_handles(session, change.page_id, change.psid, now, quiet))
    ):
        return 0
    product = await session.get(Product, change.product_id)
    if product is None:
        return 0
    claim = await session.get(StockClaim, change.claim_id) if change.claim_id > 0 else None
    variant = _variant_text(json.loads(claim.variant)) if claim is not None and claim.variant else ""
    label = f"{product.code} {product.name}" + (f" ({variant})" if variant else "")
    cart = await fetch_cart(session, change.page_id, change.psid)
    locale = await locale_of(session, change.page_id, change.psid)
    text = hold_news(locale, change.status, label, change.qty, cart)
    messages = render_text(text)
    if checkout_link is not None and not cart.is_empty and change.status in _HELD_NEWS:
        hold = hold_time_left(locale, await fetch_hold_expiry(session, change.page_id, change.psid), now)
        token = await fetch_or_create_checkout_token(session, change.page_id, change.psid, now)
        full = "\n".join([text, *([hold] if hold else [])])
        if len(full) <= MAX_BUTTON_TEXT:
            messages = [render_buttons(full, cart_buttons(locale, cart, checkout_link(token)))]
    # Each decision about a claim happens once, so its key is the claim's key and the decision.
    key = f"hold-{change.status}:{change.key}"
    if reminder and checkout_link is not None and len(messages) == 1:
        token = await fetch_or_create_checkout_token(session, change.page_id, change.psid, now)
        expires_at = await fetch_hold_expiry(session, change.page_id, change.psid)
        await enqueue_order_update(
            session,
            key=f"{key}:0",  # the same key as a one-part message would have
            page_id=change.page_id,
            psid=change.psid,
            message=messages[0],
            template="hold_expiring",
            params={
                "checkout_url": checkout_link(token),
                "expires_at": expires_at.isoformat() if expires_at else "",
                "time_left": _minutes_left(expires_at, now),
                "total": format_money(cart.subtotal, cart.currency),
            },
        )
        return 1
    await enqueue_messages(session, key=key, page_id=change.page_id, psid=change.psid, messages=messages)
    return 1


def _minutes_left(expires_at: datetime | None, now: datetime) -> str:
    if expires_at is None:
        return ""
    return f"{max(1, math.ceil((expires_at - now).total_seconds() / 60))} min"


async def _settle_comments(session: AsyncSession, comment_ids: set[str]) -> None:
    """Comments whose claims are all decided get their outcome, added (something held) or waitlisted (or
    `offer` when they only said an offer's keyword), and are marked `REPLY_DUE`."""
    statuses = await claim_statuses_of_comments(session, comment_ids)
    offers = await offer_statuses_of_comments(session, comment_ids)
    settled: dict[CommentOutcome, list[str]] = {
        CommentOutcome.ADDED: [],
        CommentOutcome.WAITLISTED: [],
        CommentOutcome.OFFER: [],
    }
    for comment_id in sorted(set(statuses) | set(offers)):
        if OfferClaimStatus.PENDING in offers.get(comment_id, ()):
            continue  # its voucher is still to be decided: one reply tells both
        outcome = settled_outcome(statuses[comment_id]) if comment_id in statuses else CommentOutcome.OFFER
        if outcome is not None:
            settled[outcome].append(comment_id)
    for outcome, ids in settled.items():
        if ids:
            await session.execute(
                update(CommentLog)
                .where(
                    CommentLog.comment_id.in_(ids),
                    CommentLog.verb == CommentVerb.ADD,
                    CommentLog.outcome == CommentOutcome.PENDING,
                )
                .values(outcome=outcome, reply_status=REPLY_DUE)
            )
