"""A coupon's last use taken by two checkouts at once: exactly one order gets it (PostgreSQL's row locks).

SQLite's writers take turns at BEGIN IMMEDIATE, so the race is PostgreSQL's: in the SQLite pass this module
starts a throwaway cluster of its own, as tests/test_crm_bridge/test_redeem_locks.py does. The second
checkout is let go only once it waits on a lock (or has finished): no sleep, whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.replies.coupons import refusal_text
from bot.runtime.clock import utcnow
from carts.coupon_rules import CouponRefusal
from carts.coupon_tables import CouponUse
from carts.coupons import CouponRefused, save_coupon
from carts.order_tables import Order
from carts.orders import PlacedOrder, place_order
from carts.tables import Product, StockClaim
from tests.conftest import TEST_DATABASE, database_url, wait_until
from tests.pg_cluster import PostgresCluster
from tests.test_carts.test_coupons import spec
from tests.test_carts.test_orders import FORM, checkout, claim, shop_sessions


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[PostgresCluster | None]:
    if TEST_DATABASE == "postgresql":
        yield None
        return
    cluster = PostgresCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def sessions(
    tmp_path: Path, own_cluster: PostgresCluster | None
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    if own_cluster is None:
        url = database_url(tmp_path)
    else:
        url = own_cluster.url(own_cluster.create_database()).replace("postgresql://", "postgresql+asyncpg://", 1)
    async with shop_sessions(url) as factory:
        yield factory


async def race(
    sessions: async_sessionmaker[AsyncSession],
    first: Callable[[AsyncSession], Awaitable[object]],
    second: Callable[[AsyncSession], Awaitable[object]],
) -> asyncio.Task[object]:
    """`first` done in a transaction left open until `second`, in its own, waits on a lock (or finished)."""

    async def other() -> object:
        async with sessions() as session, session.begin():
            return await second(session)

    async def waiting_on_a_lock() -> bool:
        async with sessions() as session:
            rows = await session.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            )
            return bool(rows.scalar_one())

    async with sessions() as session, session.begin():
        await first(session)
        task = asyncio.create_task(other())

        async def blocked_or_done() -> bool:
            return task.done() or await waiting_on_a_lock()

        await wait_until(blocked_or_done, what="the second checkout to wait for the first, or to finish")
    return task


async def placing(
    sessions: async_sessionmaker[AsyncSession], psid: str, code: str
) -> Callable[[AsyncSession], Awaitable[object]]:
    token, nonce = await checkout(sessions, psid)

    async def place(session: AsyncSession) -> object:
        return await place_order(session, token, nonce, FORM, utcnow(), coupon=code)

    return place


async def state(sessions: async_sessionmaker[AsyncSession]) -> tuple[list[str], list[tuple[str, str]], int]:
    async with sessions() as session:
        orders = [o.psid for o in (await session.execute(select(Order).order_by(Order.id))).scalars()]
        uses = [(u.psid, u.status) for u in (await session.execute(select(CouponUse))).scalars()]
        held = len((await session.execute(select(StockClaim).where(StockClaim.status == "held"))).all())
    return orders, uses, held


@pytest.mark.parametrize(("terms", "refusal"), [({"budget": "1", "per_member_limit": ""}, CouponRefusal.BUDGET_SPENT)])
async def test_two_shoppers_taking_a_coupons_last_use_at_once_one_gets_it_the_other_is_told_why(
    sessions: async_sessionmaker[AsyncSession], terms: dict[str, str], refusal: CouponRefusal
) -> None:
    async with sessions() as session, session.begin():
        await save_coupon(session, spec(code="LAST", **terms), utcnow())
    # Different products: their locks do not queue the two checkouts; only the coupon's can.
    await claim(sessions, "1", 1, 1)
    await claim(sessions, "2", 2, 1)
    first = await placing(sessions, "1", "LAST")
    second = await placing(sessions, "2", "last")

    task = await race(sessions, first, second)

    with pytest.raises(CouponRefused) as refused:
        await task
    assert refused.value.decision.refusal is refusal
    assert refusal_text("zh_Hant", refusal, refused.value.decision.detail, "HKD") != refusal_text(
        "en", refusal, refused.value.decision.detail, "HKD"
    )
    orders, uses, held = await state(sessions)
    # Nothing of the second changed: no order, no use, its stock still held for it.
    assert (orders, uses, held) == (["1"], [("1", "reserved")], 1)
    async with sessions() as session:
        shirt = await session.get(Product, 2)
        assert shirt is not None and (shirt.held, shirt.sold) == (1, 0)


async def test_one_shopper_in_two_tabs_gets_one_order_and_one_use(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        await save_coupon(session, spec(code="ONCE", per_member_limit="1"), utcnow())
    await claim(sessions, "1", 2, 1)
    tab = await placing(sessions, "1", "ONCE")  # both tabs show one form: the same token and nonce

    task = await race(sessions, tab, tab)

    again = await task
    assert isinstance(again, PlacedOrder) and again.replayed  # the second tab is shown the order the first placed
    orders, uses, held = await state(sessions)
    assert (orders, uses, held) == (["1"], [("1", "reserved")], 0)
    async with sessions() as session:
        [order] = (await session.execute(select(Order))).scalars()
    assert (order.coupon_code, Decimal(order.coupon_discount)) == ("ONCE", Decimal(10))
