"""Fulfilment of a paid order: packed (paid → packed), shipped with a carrier and a tracking number
(paid or packed → shipped), delivered (shipped → delivered).

Each change locks the order row, checks the move with `fulfilment_refusal` (pure), stamps its time column
and records an `OrderEvent` (`packed`, `shipped`, `delivered`) in the caller's one transaction, the same
shape as `carts.orders`. Doing again what is already done (a double click, a retried request) changes
nothing and says so (`changed=False`). `page_ids`, when given, limits the change to those Pages' orders:
another Page's order is "not found". Telling the shopper is the caller's (this module knows no Messenger).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from carts.order_rules import OrderError, OrderErrorCode, OrderStatus
from carts.order_tables import Order
from carts.orders import OrderChange, _order_info, _record_event

CARRIER_MAX = 60
TRACKING_MAX = 80


class FulfilmentStep(StrEnum):
    PACK = "pack"
    SHIP = "ship"
    DELIVER = "deliver"


# What each step needs the order to be, and what it makes it.
_FROM: dict[FulfilmentStep, frozenset[OrderStatus]] = {
    FulfilmentStep.PACK: frozenset({OrderStatus.PAID}),
    FulfilmentStep.SHIP: frozenset({OrderStatus.PAID, OrderStatus.PACKED}),
    FulfilmentStep.DELIVER: frozenset({OrderStatus.SHIPPED}),
}
_TO = {
    FulfilmentStep.PACK: OrderStatus.PACKED,
    FulfilmentStep.SHIP: OrderStatus.SHIPPED,
    FulfilmentStep.DELIVER: OrderStatus.DELIVERED,
}
_EVENT = {FulfilmentStep.PACK: "packed", FulfilmentStep.SHIP: "shipped", FulfilmentStep.DELIVER: "delivered"}
_REASON = {
    OrderStatus.PENDING_PAYMENT: "it is not paid yet",
    OrderStatus.CANCELLED: "it was cancelled",
    OrderStatus.EXPIRED: "it expired unpaid",
    OrderStatus.PARTLY_RETURNED: "it was partly returned",
    OrderStatus.RETURNED: "it was returned",
}


def fulfilment_refusal(status: str, step: FulfilmentStep) -> str | None:
    """Why an order in `status` cannot take `step`, in words; None when it can (or already has)."""
    if status in _FROM[step] or status == _TO[step]:
        return None
    if status in _REASON:
        reason = _REASON[OrderStatus(status)]
    elif step is FulfilmentStep.DELIVER:
        reason = "it has not been shipped"
    else:
        reason = f"it is already {status}"
    return f"the order is {status}; it cannot be {_EVENT[step]}: {reason}"


async def _lock(session: AsyncSession, number: str, page_ids: Collection[str] | None) -> Order:
    stmt = select(Order).where(Order.number == number.strip().upper())
    if page_ids is not None:
        stmt = stmt.where(Order.page_id.in_(list(page_ids)))  # type: ignore[attr-defined]
    order = (await session.execute(stmt.with_for_update())).scalar_one_or_none()
    if order is None:
        raise OrderError(OrderErrorCode.NOT_FOUND, f"no order {number}")
    return order


async def _step(
    session: AsyncSession,
    number: str,
    step: FulfilmentStep,
    now: datetime,
    page_ids: Collection[str] | None,
    shipment: tuple[str, str] | None = None,
) -> OrderChange:
    order = await _lock(session, number, page_ids)
    refusal = fulfilment_refusal(order.status, step)
    if refusal is not None:
        raise OrderError(OrderErrorCode.WRONG_STATUS, refusal)
    if order.status == _TO[step]:
        if shipment is not None and shipment != (order.carrier, order.tracking_number):
            raise OrderError(
                OrderErrorCode.WRONG_STATUS,
                f"the order was already shipped with {order.carrier} {order.tracking_number}",
            )
        return OrderChange(await _order_info(session, order), changed=False)
    order.status, order.updated_at = _TO[step], now
    if step is FulfilmentStep.PACK:
        order.packed_at = now
    elif step is FulfilmentStep.SHIP:
        assert shipment is not None
        order.shipped_at = now
        order.carrier, order.tracking_number = shipment
    else:
        order.delivered_at = now
    session.add(order)
    await session.flush()
    info = await _order_info(session, order)
    # No money moves: the event's amount is the order's total, for consumers that list it.
    _record_event(session, info, _EVENT[step], info.total, (), now)
    await session.flush()
    return OrderChange(info, changed=True)


async def pack_order(
    session: AsyncSession, number: str, now: datetime, page_ids: Collection[str] | None = None
) -> OrderChange:
    """A paid order is packed."""
    return await _step(session, number, FulfilmentStep.PACK, now, page_ids)


def check_shipment(carrier: str, tracking_number: str) -> tuple[str, str]:
    """The carrier and tracking number, trimmed; `OrderError` (bad_shipment) naming what is wrong."""
    carrier, tracking_number = carrier.strip(), tracking_number.strip()
    if not carrier or len(carrier) > CARRIER_MAX:
        raise OrderError(OrderErrorCode.BAD_SHIPMENT, f"carrier: a name of 1 to {CARRIER_MAX} characters is required")
    if not tracking_number or len(tracking_number) > TRACKING_MAX or not tracking_number.isprintable():
        raise OrderError(
            OrderErrorCode.BAD_SHIPMENT, f"tracking_number: 1 to {TRACKING_MAX} printable characters are required"
        )
    return carrier, tracking_number


async def ship_order(
    session: AsyncSession,
    number: str,
    carrier: str,
    tracking_number: str,
    now: datetime,
    page_ids: Collection[str] | None = None,
) -> OrderChange:
    """A paid (or packed) order leaves with `carrier`, trackable by `tracking_number`."""
    shipment = check_shipment(carrier, tracking_number)
    return await _step(session, number, FulfilmentStep.SHIP, now, page_ids, shipment)


async def deliver_order(
    session: AsyncSession, number: str, now: datetime, page_ids: Collection[str] | None = None
) -> OrderChange:
    """A shipped order arrived."""
    return await _step(session, number, FulfilmentStep.DELIVER, now, page_ids)
