"""Receipts in Messenger: an image a shopper sends while they have an unpaid order is attached to that order.

Only the sender's own latest unpaid order on that Page can get it (`carts.payments.attach_proof`), so a receipt
can never land on someone else's order. The merchant confirms or rejects it from the inbox
(`bot.inbox.views.proofs`). With no unpaid order the image goes on to the other handlers, as any message does.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.inbound.events import EventKind, MessageEvent
from bot.inbound.router import HandlerContext, Router
from bot.outbound.outbox import enqueue_messages
from bot.outbound.shopper_locale import locale_of
from bot.replies.payments import proof_received
from bot.replies.render import render_text
from bot.runtime.clock import utcnow
from carts.order_rules import OrderStatus
from carts.order_tables import Order
from carts.payments import attach_proof


def receipt_url(event: MessageEvent) -> str | None:
    """The first image's URL, https only: it is shown in the merchant's browser, so nothing else is trusted."""
    return next(
        (a.url for a in event.attachments if a.type == "image" and a.url and a.url.startswith("https://")), None
    )


async def _is_receipt(event: MessageEvent, ctx: HandlerContext) -> dict[str, Any] | None:
    url = receipt_url(event)
    if url is None:
        return None
    unpaid = await ctx.session.execute(
        select(Order.id)
        .where(Order.page_id == event.page_id, Order.psid == event.psid, Order.status == OrderStatus.PENDING_PAYMENT)
        .limit(1)
    )
    return {"image_url": url} if unpaid.first() is not None else None


def build_proof_router() -> Router:
    router = Router("payment_proofs")

    @router.on(EventKind.MESSAGE, filters=[_is_receipt])
    async def handle_receipt(event: MessageEvent, ctx: HandlerContext, image_url: str) -> None:
        attached = await attach_proof(ctx.session, event.page_id, event.psid, event.mid, image_url, utcnow())
        if attached is None:
            return  # paid a moment ago, between the filter and here: nothing to attach to
        proof, order = attached
        locale = await locale_of(ctx.session, event.page_id, event.psid)
        await enqueue_messages(
            ctx.session,
            key=f"proof-received:{proof.id}",
            page_id=event.page_id,
            psid=event.psid,
            messages=render_text(proof_received(locale, order.number)),
        )
        ctx.wake_outbox()

    return router
