"""The shopper's news of their order's changes, queued in the outbox: paid, packed, shipped, delivered, a receipt
rejected.

One place for every path that changes an order (the admin API, the signed payment notification, Stripe's
webhook, the inbox's buttons and bulk actions, a confirmed receipt), so the shopper hears each piece of news
once whichever path made it: each message is keyed by the order and its news (invariant 2). Sent when Meta's
rules allow (`bot.outbound.sender`); texts in the shop's language (`bot.replies`).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from bot.outbound.outbox import enqueue_messages
from bot.replies.fulfilment import order_delivered, order_packed, order_shipped
from bot.replies.i18n import pick_locale
from bot.replies.payments import payment_received, proof_rejected
from bot.replies.render import Message, render_text
from carts.order_rules import OrderInfo, OrderStatus
from carts.orders import OrderChange
from carts.payments import fetch_shop_payments

_FULFILMENT_NEWS: dict[OrderStatus, Callable[[OrderInfo], list[Message]]] = {
    OrderStatus.PACKED: lambda order: order_packed(order.number),
    OrderStatus.SHIPPED: lambda order: order_shipped(order.number, order.carrier or "", order.tracking_number or ""),
    OrderStatus.DELIVERED: lambda order: order_delivered(order.number),
}


async def shop_locale(session: AsyncSession) -> str:
    """The shop's language (shop file `shop.language`): no shopper's own language is known in Messenger yet."""
    return pick_locale((await fetch_shop_payments(session)).language)


async def _queue(session: AsyncSession, key: str, order: OrderInfo, messages: list[Message]) -> int:
    await enqueue_messages(session, key=key, page_id=order.page_id, psid=order.psid, messages=messages)
    return 1


async def tell_order_paid(session: AsyncSession, change: OrderChange) -> int:
    """Queue "payment received" for an order that just became paid; the number queued (0 or 1).

    Keyed `order-paid:<number>`: a second path marking the same order paid (a retry, Stripe and the merchant
    both) finds it queued and adds nothing.
    """
    order = change.order
    if not change.changed or order.status != OrderStatus.PAID:
        return 0
    text = payment_received(await shop_locale(session), order.number)
    return await _queue(session, f"order-paid:{order.number}", order, render_text(text))


async def tell_fulfilment(session: AsyncSession, change: OrderChange) -> int:
    """Queue the shopper's news of a fulfilment change (packed, shipped, delivered); the number queued (0 or 1).

    Keyed by the order and its new status, so a retried change never tells twice.
    """
    order = change.order
    if not change.changed or order.status not in _FULFILMENT_NEWS:
        return 0
    # The shopper's 24-hour window has usually closed by the time an order ships: this is where the
    # order-update utility template goes (sale-templates); until then a normal message, sent when Meta allows.
    messages = _FULFILMENT_NEWS[OrderStatus(order.status)](order)
    return await _queue(session, f"order-{order.status}:{order.number}", order, messages)


async def tell_order_news(session: AsyncSession, change: OrderChange) -> int:
    """Whatever the shopper should hear of `change`: paid, or a fulfilment step; the number queued."""
    return await tell_order_paid(session, change) + await tell_fulfilment(session, change)


async def tell_proof_rejected(session: AsyncSession, order: OrderInfo, proof_id: int) -> int:
    """The merchant could not match the shopper's receipt: ask for it again. Keyed by the receipt."""
    text = proof_rejected(await shop_locale(session), order.number)
    return await _queue(session, f"proof-rejected:{proof_id}", order, render_text(text))
