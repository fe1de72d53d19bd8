"""Orders a shopper placed and never paid: still waiting for payment, expired unpaid, or cancelled unpaid.

What the inbox shows on each buyer (a shopper who keeps ordering and never pays is one a shop blocks).
An order merged into another (its lines moved there, its amounts zero) is not counted: the order it went
into is. Reads only.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from sqlalchemy import and_, func, not_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from carts.order_rules import OrderStatus
from carts.order_tables import Order

UNPAID_STATUSES = (OrderStatus.PENDING_PAYMENT, OrderStatus.EXPIRED, OrderStatus.CANCELLED)
Shopper = tuple[str, str]  # (page id, psid)


def unpaid_condition() -> object:
    """The SQL condition of an order placed and never paid (merged-away orders left out)."""
    merged_away = and_(Order.status == OrderStatus.CANCELLED, Order.subtotal == Decimal(0))
    return and_(Order.paid_at.is_(None), Order.status.in_(UNPAID_STATUSES), not_(merged_away))


async def unpaid_order_counts(session: AsyncSession, shoppers: Iterable[Shopper]) -> dict[Shopper, int]:
    """How many orders each shopper placed and never paid (shoppers with none are left out); one query."""
    wanted = sorted(set(shoppers))
    counts: dict[Shopper, int] = {}
    for start in range(0, len(wanted), 500):
        rows = await session.execute(
            select(Order.page_id, Order.psid, func.count(Order.id))
            .where(tuple_(Order.page_id, Order.psid).in_(wanted[start : start + 500]), unpaid_condition())
            .group_by(Order.page_id, Order.psid)
        )
        counts.update({(page, psid): int(n) for page, psid, n in rows.all()})
    return counts
