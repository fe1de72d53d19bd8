"""The shopper says which product on screen their comment meant (issue 20's "ask which one").

A `+1` made while the live's pointer moved within the viewers' delay is answered with the products that
were on screen as quick replies (`v1:POINT:<comment>:<code>`, bot.replies.carts). The tap is checked
against the shopper's own comment and the products it was asked about, so an old or forged payload gets a
friendly answer and changes nothing. The comment is then read again with that product on screen
(`carts.comment_orders.plan_product_choice`), its claims join the line at the comment's own arrival
(first come, first served by the comment, never oversold: the allocator decides them) and are answered
in this chat, which the tap opened. A size still missing is asked as any size is (bot.handlers.cart_commands).
"""

from __future__ import annotations

import json

from sqlalchemy import select

from bot.inbound.events import EventKind, MessageEvent
from bot.inbound.live_comments import live_video_of_post
from bot.inbound.router import HandlerContext, Router
from bot.outbound.outbox import enqueue_messages
from bot.outbound.shopper_locale import locale_of
from bot.replies.carts import already_chosen, expired_choice, parse_point_payload, render_choice_question
from bot.replies.payload_codec import PayloadAction, decode_payload
from bot.replies.render import render_text
from bot.runtime.clock import utcnow
from bot.store.tables import CommentLog
from carts.comment_order_repository import CampaignLookup, claimed_quantities, insert_claims
from carts.comment_orders import CommentOutcome, ItemOutcome, OrderComment, plan_product_choice
from carts.stock_rules import arrival_key


def point_filter(event: MessageEvent, _ctx: HandlerContext) -> dict[str, tuple[str, str] | None] | bool:
    if decode_payload(event.quick_reply_payload).action is not PayloadAction.POINT:
        return False
    # A choice we cannot read (forged, or another version) is still a choice: it gets the choice's answer.
    return {"choice": parse_point_payload(event.quick_reply_payload or "")}


class ProductChoices:
    """The handler, with the campaigns' parsers cached as the comment handler caches them."""

    def __init__(self) -> None:
        self.campaigns = CampaignLookup(live_video_of_post)

    async def handle(self, event: MessageEvent, ctx: HandlerContext, choice: tuple[str, str] | None) -> None:
        key = f"point:{event.key}"
        locale = await locale_of(ctx.session, event.page_id, event.sender_id)
        log_row = await self._comment(ctx, event, choice[0]) if choice is not None else None
        if choice is None or log_row is None:
            await self._send(ctx, key, event, render_text(expired_choice(locale)))
            return
        comment_id, code = choice
        detail = json.loads(log_row.detail or "{}")
        items = detail.get("items", [])
        if log_row.outcome == CommentOutcome.PRODUCT_CHOSEN:  # tapped twice
            chosen = next((i.get("code") for i in items if i.get("pointed")), code)
            await self._send(ctx, key, event, render_text(already_chosen(locale, str(chosen))))
            return
        asked = next((i for i in items if i.get("outcome") == ItemOutcome.CHOOSE_PRODUCT), None)
        codes = [c.get("code") for c in asked.get("candidates", [])] if asked else []
        now = utcnow()
        campaign = await self.campaigns.fetch(ctx.session, log_row.page_id, log_row.post_id, now)
        if asked is None or code not in codes or campaign is None:
            await self._send(ctx, key, event, render_text(expired_choice(locale)))
            return
        comment = OrderComment(comment_id, log_row.page_id, event.sender_id, log_row.message or "")
        used = await claimed_quantities(ctx.session, [campaign], {event.sender_id})
        # In line where the comment came, not where the tap came: first come, first served by the comment.
        arrival = arrival_key(log_row.stream_id or "0-0", 0)
        entries, claims = plan_product_choice(comment, campaign, code, arrival, now, used)
        if not entries:  # the campaign closed, or the product left it, since the question
            await self._send(ctx, key, event, render_text(expired_choice(locale)))
            return
        await insert_claims(ctx.session, claims)
        others = [i for i in items if i is not asked]
        log_row.outcome = CommentOutcome.PRODUCT_CHOSEN
        log_row.detail = json.dumps({**detail, "items": [*others, *entries], "asked": asked}, ensure_ascii=False)
        ctx.session.add(log_row)
        await ctx.session.flush()
        question = next((e for e in entries if e["outcome"] == ItemOutcome.NEEDS_VARIANT), None)
        if question is not None:  # the allocator answers the claims; a missing size is asked here
            option = question["missing"][0]
            messages = render_choice_question(
                locale,
                comment_id,
                question["code"],
                question.get("name", ""),
                int(question.get("qty") or 1),
                dict(question.get("variant") or {}),
                option,
                question["values"][option],
            )
            await self._send(ctx, key, event, messages)

    async def _comment(self, ctx: HandlerContext, event: MessageEvent, comment_id: str) -> CommentLog | None:
        """The shopper's own comment on this Page (anyone else's is as good as forged)."""
        return (
            await ctx.session.execute(
                select(CommentLog).where(
                    CommentLog.comment_id == comment_id,
                    CommentLog.verb == "add",
                    CommentLog.author_id == event.sender_id,
                    CommentLog.page_id == event.page_id,
                )
            )
        ).scalar_one_or_none()

    async def _send(self, ctx: HandlerContext, key: str, event: MessageEvent, messages: list[dict]) -> None:
        await enqueue_messages(ctx.session, key=key, page_id=event.page_id, psid=event.sender_id, messages=messages)
        ctx.wake_outbox()


def build_point_router() -> Router:
    router = Router("pointer_choice")
    router.register(ProductChoices().handle, point_filter, kinds=[EventKind.MESSAGE], name="pick_product")
    return router
