"""Tests for carts.coupons beyond checkout: coupons made by hand (one check, by field), member codes issued
once per holder, and each coupon's figures through the order's life (redeemed, returned whole or in part,
cancelled, expired, merged), compared with what the rows say."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.runtime.clock import utcnow
from carts.coupon_rules import CodeMode, CouponSource, CouponSpec, Discount, DiscountKind, parse_coupon
from carts.coupon_tables import CouponCode, CouponUse
from carts.coupons import CouponError, CouponInfo, fetch_coupons, issue_member_code, save_coupon, stop_coupon
from carts.order_rules import ReturnItem
from carts.order_tables import Order
from carts.orders import (
    cancel_order,
    expire_unpaid_orders,
    mark_paid,
    merge_orders,
    place_order,
    return_lines,
)
from tests.conftest import database_url
from tests.test_carts.test_orders import FORM, PAGE, checkout, claim, shop_sessions


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with shop_sessions(database_url(tmp_path)) as factory:
        yield factory


def spec(**changes: object) -> CouponSpec:
    data: dict[str, object] = {"title": "Ten off", "mode": "shared", "code": "TEN", "kind": "amount", "value": "10"}
    made, errors = parse_coupon({**data, **changes}, None, None)
    assert made is not None, errors
    return made


async def make(sessions: async_sessionmaker[AsyncSession], made: CouponSpec, **kw: object) -> int:
    async with sessions() as session, session.begin():
        coupon = await save_coupon(session, made, utcnow(), **kw)  # type: ignore[arg-type]
        assert coupon.id is not None
        return coupon.id


async def place_with(sessions: async_sessionmaker[AsyncSession], psid: str, code: str) -> str:
    token, nonce = await checkout(sessions, psid)
    async with sessions() as session, session.begin():
        return (await place_order(session, token, nonce, FORM, utcnow(), coupon=code)).order.number


async def figures(sessions: async_sessionmaker[AsyncSession], coupon_id: int) -> CouponInfo:
    async with sessions() as session:
        [info] = await fetch_coupons(session, coupon_id)
    return info


def test_a_coupons_fields_are_checked_by_field_with_the_offers_words() -> None:
    made, errors = parse_coupon(
        {"title": "", "mode": "both", "kind": "percent", "value": "120", "budget": "0", "per_member_limit": "x"},
        None,
        None,
    )
    assert made is None
    assert errors == {
        "title": "Give the coupon a name, like Welcome 10% off.",
        "mode": "Choose one shared code or one code per member.",
        "value": "A percentage can be at most 100.",  # the offers' words
        "budget": "Uses in all: a whole number, like 100, or empty for no limit.",
        "per_member_limit": "Uses by one member: a whole number, like 1, or empty for no limit.",
    }
    now = utcnow()
    _, errors = parse_coupon({"title": "t", "code": "a b!", "kind": "amount", "value": "5"}, now, now)
    assert set(errors) == {"code", "ends_at"}
    made, errors = parse_coupon(
        {"title": "VIP", "mode": "personal", "kind": "amount", "value": "50", "products": "A, b", "budget": ""},
        None,
        None,
    )
    assert errors == {} and made is not None
    assert (made.mode, made.code, made.products, made.budget, made.discount) == (
        CodeMode.PERSONAL,
        None,
        ("A", "b"),
        None,
        Discount(DiscountKind.AMOUNT, Decimal(50)),
    )


async def test_saving_refuses_unknown_products_and_a_taken_code_and_changes_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    first = await make(sessions, spec())
    with pytest.raises(CouponError) as refused:
        await make(sessions, spec(title="Other", code="", products="A, ZZZ", campaigns="nope"))
    assert refused.value.errors == {
        "products": "No product has the code {code}.",
        "campaigns": "No campaign has the key {key}.",
    }
    assert refused.value.params == {"code": "ZZZ", "key": "nope"}
    with pytest.raises(CouponError) as taken:
        await make(sessions, spec(title="Other", code="ten"))
    assert taken.value.errors == {"code": "Another coupon has this code."}
    async with sessions() as session:
        assert [c.coupon.id for c in await fetch_coupons(session)] == [first]
    # A product by its code in any case; an edit keeps the row; a shared coupon without a code gets one.
    await make(sessions, spec(title="Roses", products="a", code=""), coupon_id=first)
    info = await figures(sessions, first)
    assert (info.coupon.title, info.coupon.product_ids, info.coupon.code) == ("Roses", "[1]", "TEN")
    fresh = await figures(sessions, await make(sessions, spec(title="Spring sale", code="")))
    assert fresh.coupon.code is not None and fresh.coupon.code.startswith("SPRINGSALE-")


async def test_a_member_code_is_issued_once_per_holder_even_when_asked_twice_at_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    coupon_id = await make(sessions, spec(title="Welcome", mode="personal"), source=CouponSource.SIGNUP)
    now = utcnow()

    async def issue(psid: str) -> str:
        async with sessions() as session, session.begin():
            return await issue_member_code(session, coupon_id, (PAGE, psid), now)

    one, again = await asyncio.gather(issue("1"), issue("1"))
    assert one == again and one.startswith("WELCOME-")
    assert await issue("1") == one
    other = await issue("2")
    assert other != one
    async with sessions() as session:
        codes = (await session.execute(select(func.count()).select_from(CouponCode))).scalar_one()
    assert codes == 2
    assert (await figures(sessions, coupon_id)).codes_issued == 2
    with pytest.raises(LookupError):
        async with sessions() as session:
            await issue_member_code(session, 999, (PAGE, "1"), now)


async def test_a_coupons_figures_follow_each_orders_life(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Eight shoppers use one shared code: the list's figures are what each order became."""
    coupon_id = await make(sessions, spec(code="TEN", per_member_limit=""))
    orders: dict[str, str] = {}
    for psid in ("paid", "part", "whole", "cancel", "expire", "unpaid"):
        await claim(sessions, psid, 2, 2)  # 2 shirts, HK$1781 before the coupon
        orders[psid] = await place_with(sessions, psid, "TEN")
    # Two unpaid orders of one shopper merged: one order keeps both uses.
    await claim(sessions, "merge", 2, 1)
    first = await place_with(sessions, "merge", "TEN")
    await claim(sessions, "merge", 2, 1)
    second = await place_with(sessions, "merge", "TEN")
    now = utcnow()
    async with sessions() as session, session.begin():
        for psid in ("paid", "part", "whole"):
            await mark_paid(session, orders[psid], now=now)
        await return_lines(session, orders["part"], [ReturnItem("B", 1)], now)
        await return_lines(session, orders["whole"], [ReturnItem("B", 2)], now)
        await cancel_order(session, orders["cancel"], now)
        await merge_orders(session, first, [second], now)
    async with sessions() as session, session.begin():
        expired = await expire_unpaid_orders(session, now + timedelta(days=30))
    assert {c.order.number for c in expired} == {orders["expire"], orders["unpaid"], first}
    # Put one back to unpaid to keep a reserved use: the "unpaid" one is placed again.
    await claim(sessions, "unpaid", 2, 1)
    await place_with(sessions, "unpaid", "TEN")

    info = await figures(sessions, coupon_id)
    # redeemed: paid + part (a partial return keeps the use); returned: whole; cancelled: cancel, expire,
    # the old "unpaid" one and the merged order's two uses (expired together); reserved: the new one.
    assert (info.redeemed, info.returned, info.cancelled, info.reserved) == (2, 1, 5, 1)
    assert info.cost == Decimal(20)
    shirt = Decimal("890.50")
    assert info.sales == (2 * shirt - 10) + (2 * shirt - 10 - shirt)
    # The same figures, counted from the rows.
    async with sessions() as session:
        rows = (
            await session.execute(
                select(CouponUse.status, Order.status, CouponUse.amount).join(Order, Order.id == CouponUse.order_id)
            )
        ).all()
    assert info.redeemed == sum(1 for use, _, _ in rows if use == "used")
    assert info.returned == sum(1 for use, order, _ in rows if use == "released" and order == "returned")
    assert info.cancelled == sum(1 for use, order, _ in rows if use == "released" and order != "returned")
    assert info.cost == sum((amount for use, _, amount in rows if use == "used"), Decimal(0))


async def test_a_stopped_coupon_is_refused_at_checkout_and_listed_as_stopped(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    coupon_id = await make(sessions, spec())
    async with sessions() as session, session.begin():
        await stop_coupon(session, coupon_id, utcnow())
        await stop_coupon(session, coupon_id, utcnow())  # idempotent
    assert (await figures(sessions, coupon_id)).status(utcnow()) == "stopped"
    await claim(sessions, "1", 2, 1)
    with pytest.raises(Exception, match="stopped"):
        await place_with(sessions, "1", "TEN")


async def test_a_shared_code_shoppers_used_stays_shared(sessions: async_sessionmaker[AsyncSession]) -> None:
    coupon_id = await make(sessions, spec(code="KEEP"))
    await claim(sessions, "1", 2, 1)
    await place_with(sessions, "1", "KEEP")
    with pytest.raises(CouponError) as refused:
        await make(sessions, spec(code="", mode="personal"), coupon_id=coupon_id)
    assert refused.value.errors == {"mode": "Shoppers used its shared code: it stays a shared code."}
    assert (await figures(sessions, coupon_id)).coupon.code == "KEEP"
