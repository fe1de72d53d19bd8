"""The CRM repository tests' data: two Pages, the programme, the time, and orders with their events.

The `sessions` fixture (tests/test_crm_bridge/conftest.py) opens a real SQLite database with `PROGRAM`
applied at `T0`; `add_order` and `add_event` put a paid order and its feed events in it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

from sqlalchemy.ext.asyncio import AsyncSession

from carts.order_tables import Order, OrderEvent
from crm_bridge.rules import Program, ReferralLevel, ReferralRules, Reward, Tier

PAGE, OTHER_PAGE = "1000000000001", "1000000000002"
PROGRAM = Program(
    tiers=(
        Tier("member", "Member", D(0), earn_points=1, earn_per=D(20)),
        Tier("silver", "Silver", D(1000), earn_points=2, earn_per=D(20), bonus=100),
    ),
    return_window_days=7,
    expiry_months=12,
    birthday_points=88,
    referral=ReferralRules(
        new_member_points=10, levels=(ReferralLevel(signup=5, first_purchase=Reward(percent=D(10))),), daily_cap=1
    ),
)
T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
# The sample shop's tiers (config/samples/demo_shop.yaml) for the tier stories: silver at a spend of 3000
# within the 12-month period or by one order of 2000, gold at 10000; spend above a new tier carries over.
TIERED = Program(
    tiers=(
        Tier("member", "Member", D(0), earn_points=1, earn_per=D(20)),
        Tier("silver", "Silver", D(3000), earn_points=3, earn_per=D(40), express_upgrade=D(2000), bonus=200),
        Tier("gold", "Gold", D(10000), earn_points=1, earn_per=D(10), bonus=800),
    ),
    period_months=12,
    carry_over=True,
    return_window_days=7,
)


async def add_order(session: AsyncSession, psid: str, total: str, phone: str = "9123 4567") -> Order:
    order = Order(
        page_id=PAGE,
        psid=psid,
        checkout_nonce=f"nonce-{psid}-{total}",
        status="paid",
        currency="HKD",
        subtotal=D(total),
        total=D(total),
        customer_name=f"Shopper {psid}",
        phone=phone,
        delivery_method="pickup",
        placed_at=T0,
        paid_at=T0,
        updated_at=T0,
    )
    session.add(order)
    await session.flush()
    order.number = f"PO-{order.id:06d}"
    return order


async def add_event(session: AsyncSession, order: Order, kind: str, amount: str) -> OrderEvent:
    event = OrderEvent(
        order_id=order.id or 0,
        order_number=order.number or "",
        kind=kind,
        amount=D(amount),
        currency="HKD",
        created_at=T0,
    )
    session.add(event)
    await session.flush()
    return event
