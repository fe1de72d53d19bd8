"""The shopper's news of their order's changes, queued in the outbox: paid, packed, shipped, delivered, a receipt
rejected.

One place for every path that changes an order (the admin API, the signed payment notification, Stripe's
webhook, the inbox's buttons and bulk actions, a confirmed receipt), so the shopper hears each piece of news
once whichever path made it: each message is keyed by the order and its news (invariant 2). Sent when Meta's
rules allow (`bot.outbound.sender`); texts in the shopper's language (`bot.outbound.shopper_locale`, `bot.replies`).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from bot.outbound.outbox import enqueue_messages, enqueue_order_update
from bot.outbound.shopper_locale import locale_of
from bot.replies.fulfilment import order_delivered, order_packed, order_shipped
from bot.replies.orders import order_cancelled, order_returned
from bot.replies.payments import payment_received, proof_rejected
from bot.replies.render import Message, render_text
from carts.core import format_money
from carts.order_rules import OrderInfo, OrderStatus
from carts.orders import OrderChange

_FULFILMENT_NEWS: dict[OrderStatus, Callable[[str, OrderInfo], list[Message]]] = {
    OrderStatus.PACKED: lambda locale, order: order_packed(locale, order.number),
    OrderStatus.SHIPPED: lambda locale, order: order_shipped(
        locale, order.number, order.carrier or "", order.tracking_number or ""
    ),
    OrderStatus.DELIVERED: lambda locale, order: order_delivered(locale, order.number),
}
# The news a Page's approved utility template may carry once the shopper's 24-hour window has closed.
_TEMPLATES = {OrderStatus.PAID: "payment_received", OrderStatus.SHIPPED: "shipped"}


async def _queue(session: AsyncSession, key: str, order: OrderInfo, messages: list[Message]) -> int:
    template = _TEMPLATES.get(OrderStatus(order.status)) if key.startswith("order-") else None
    if template is None or len(messages) != 1:
        await enqueue_messages(session, key=key, page_id=order.page_id, psid=order.psid, messages=messages)
        return 1
    # An order update: inside the window the message, outside it the approved template (bot.outbound.sender).
    await enqueue_order_update(
        session,
        key=f"{key}:0",  # the same key as a one-part message would have
        page_id=order.page_id,
        psid=order.psid,
        message=dict(messages[0]),
        template=template,
        params={
            "order_number": order.number,
            "shopper_name": order.customer_name,
            "total": format_money(order.total, order.currency),
            "status": order.status,
            "carrier": order.carrier or "",
            "tracking_number": order.tracking_number or "",
        },
    )
    return 1


async def tell_order_paid(session: AsyncSession, change: OrderChange) -> int:
    """Queue "payment received" for an order that just became paid; the number queued (0 or 1).

    Keyed `order-paid:<number>`: a second path marking the same order paid (a retry, Stripe and the merchant
    both) finds it queued and adds nothing.
    """
    order = change.order
    if not change.changed or order.status != OrderStatus.PAID:
        return 0
    text = payment_received(await locale_of(session, order.page_id, order.psid), order.number)
    return await _queue(session, f"order-paid:{order.number}", order, render_text(text))


async def tell_fulfilment(session: AsyncSession, change: OrderChange) -> int:
    """Queue the shopper's news of a fulfilment change (packed, shipped, delivered); the number queued (0 or 1).

    Keyed by the order and its new status, so a retried change never tells twice.
    """
    order = change.order
    if not change.changed or order.status not in _FULFILMENT_NEWS:
        return 0
    messages = _FULFILMENT_NEWS[OrderStatus(order.status)](await locale_of(session, order.page_id, order.psid), order)
    return await _queue(session, f"order-{order.status}:{order.number}", order, messages)


async def tell_order_ended(session: AsyncSession, change: OrderChange) -> int:
    """Queue news of a cancellation or a return; the number queued (0 or 1).

    A return is keyed by the units back so far, so each further return is news once."""
    order = change.order
    if not change.changed:
        return 0
    locale = await locale_of(session, order.page_id, order.psid)
    if order.status == OrderStatus.CANCELLED:
        return await _queue(
            session, f"order-cancelled:{order.number}", order, render_text(order_cancelled(locale, order.number))
        )
    if order.status in (OrderStatus.RETURNED, OrderStatus.PARTLY_RETURNED):
        units = sum(line.returned_qty for line in order.lines)
        text = order_returned(locale, order.number, units, order.status == OrderStatus.RETURNED)
        return await _queue(session, f"order-return:{order.number}:{units}", order, render_text(text))
    return 0


async def tell_order_news(session: AsyncSession, change: OrderChange) -> int:
    """Whatever the shopper should hear of `change`: paid, a fulfilment step, a cancellation or a return; the
    number queued."""
    return (
        await tell_order_paid(session, change)
        + await tell_fulfilment(session, change)
        + await tell_order_ended(session, change)
    )


async def tell_proof_rejected(session: AsyncSession, order: OrderInfo, proof_id: int) -> int:
    """The merchant could not match the shopper's receipt: ask for it again. Keyed by the receipt."""
    text = proof_rejected(await locale_of(session, order.page_id, order.psid), order.number)
    return await _queue(session, f"proof-rejected:{proof_id}", order, render_text(text))
