"""Tests for carts.orders: checkout and orders on a real SQLite database (given / when / then)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.runtime.clock import utcnow
from carts.order_rules import CheckoutForm, OrderError, OrderErrorCode, ReturnItem
from carts.order_tables import CheckoutToken, Order, OrderEvent
from carts.orders import (
    cancel_order,
    fetch_checkout,
    fetch_or_create_checkout_token,
    fetch_order,
    mark_paid,
    place_order,
    return_lines,
)
from carts.tables import Campaign, CampaignProduct, Product, StockClaim
from tests.conftest import database_sessions, database_url

PAGE = "1000000000001"
FORM = CheckoutForm("Chan Tai Man", "+852 9123 4567", "delivery", "1 Queen's Road, Central")


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with shop_sessions(database_url(tmp_path)) as factory:
        yield factory


@asynccontextmanager
async def shop_sessions(url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the database at `url`, with products A (3 units) and B (no limit) in campaign "c"."""
    now = utcnow()
    async with database_sessions(url) as factory:
        async with factory() as session, session.begin():
            session.add_all(
                [
                    Product(code="A", name="Rose", price=Decimal("380"), stock=3, created_at=now, updated_at=now),
                    Product(
                        code="B", name="Shirt", price=Decimal("890.50"), stock=None, created_at=now, updated_at=now
                    ),
                ]
            )
            campaign = Campaign(
                key="c",
                title="C",
                page_id=PAGE,
                post_id=f"{PAGE}_1",
                starts_at=now,
                ends_at=now + timedelta(hours=1),
                created_at=now,
                updated_at=now,
            )
            session.add(campaign)
            await session.flush()
            session.add_all(
                [
                    CampaignProduct(campaign_id=campaign.id, product_id=1, order_code="Rose"),  # type: ignore[arg-type]
                    CampaignProduct(campaign_id=campaign.id, product_id=2, order_code="B"),  # type: ignore[arg-type]
                ]
            )
        yield factory


async def claim(
    sessions: async_sessionmaker[AsyncSession],
    psid: str,
    product_id: int,
    qty: int,
    status: str = "held",
    minutes: float = 30,
    variant: str = "",
) -> None:
    """Given a decided claim (held stock is counted on the product, as the allocator does)."""
    now = utcnow()
    async with sessions() as session, session.begin():
        n = len((await session.execute(select(StockClaim))).all())
        session.add(
            StockClaim(
                key=f"k{n}",
                campaign_id=1,
                product_id=product_id,
                page_id=PAGE,
                psid=psid,
                comment_id=f"c{n}",
                variant=variant,
                qty=qty,
                arrival=f"{n:06d}",
                status=status,
                expires_at=now + timedelta(minutes=minutes) if status == "held" else None,
                created_at=now,
            )
        )
        if status == "held":
            product = await session.get(Product, product_id)
            assert product is not None
            product.held += qty


async def counts(sessions: async_sessionmaker[AsyncSession], product_id: int) -> tuple[int, int]:
    async with sessions() as session:
        product = await session.get(Product, product_id)
        assert product is not None
        return product.held, product.sold


async def checkout(sessions: async_sessionmaker[AsyncSession], psid: str) -> tuple[str, str]:
    async with sessions() as session, session.begin():
        token = await fetch_or_create_checkout_token(session, PAGE, psid, utcnow())
        info = await fetch_checkout(session, token, utcnow())
        assert info is not None
        return token, info.nonce


async def place(sessions: async_sessionmaker[AsyncSession], psid: str) -> str:
    token, nonce = await checkout(sessions, psid)
    async with sessions() as session, session.begin():
        return (await place_order(session, token, nonce, FORM, utcnow())).order.number


async def events(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str, Decimal]]:
    async with sessions() as session:
        rows = await session.execute(select(OrderEvent).order_by(OrderEvent.id))
        return [(e.order_number, e.kind, Decimal(e.amount)) for e in rows.scalars()]


async def test_one_token_per_shopper_and_page(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        first = await fetch_or_create_checkout_token(session, PAGE, "1", utcnow())
        again = await fetch_or_create_checkout_token(session, PAGE, "1", utcnow())
        other = await fetch_or_create_checkout_token(session, PAGE, "2", utcnow())
    assert first == again != other
    assert len(first) == 32


async def test_placing_an_order_sells_the_held_stock(sessions: async_sessionmaker[AsyncSession]) -> None:
    # given: two units of A and one B held, one A expired, and another shopper's hold
    await claim(sessions, "1", 1, 1)
    await claim(sessions, "1", 1, 1)
    await claim(sessions, "1", 2, 1, variant=json.dumps({"size": "L"}))
    await claim(sessions, "1", 1, 1, status="expired")
    await claim(sessions, "2", 1, 1)
    token, nonce = await checkout(sessions, "1")
    # when
    async with sessions() as session, session.begin():
        placed = await place_order(session, token, nonce, FORM, utcnow())
    # then
    order = placed.order
    assert not placed.replayed
    assert order.number == "PO-000001" and order.status == "pending_payment" and order.currency == "HKD"
    lines = [(line.code, line.variant, line.qty) for line in order.lines]
    assert lines == [("Rose", (), 2), ("B", (("size", "L"),), 1)]
    assert order.total == Decimal("1650.50")
    assert (order.customer_name, order.address) == (FORM.name, FORM.address)
    assert await counts(sessions, 1) == (1, 2)  # the other shopper's unit is still held
    assert await counts(sessions, 2) == (0, 1)
    async with sessions() as session:
        statuses = sorted((c.psid, c.status) for c in (await session.execute(select(StockClaim))).scalars())
    assert statuses == [("1", "expired"), ("1", "sold"), ("1", "sold"), ("1", "sold"), ("2", "held")]
    assert await events(sessions) == [("PO-000001", "placed", Decimal("1650.50"))]


async def test_the_same_form_twice_places_one_order(sessions: async_sessionmaker[AsyncSession]) -> None:
    await claim(sessions, "1", 1, 1)
    token, nonce = await checkout(sessions, "1")
    async with sessions() as session, session.begin():
        first = await place_order(session, token, nonce, FORM, utcnow())
    await claim(sessions, "1", 1, 1)  # a new comment after ordering: it waits for the next checkout
    async with sessions() as session, session.begin():
        again = await place_order(session, token, nonce, FORM, utcnow())
    assert again.replayed and again.order == first.order
    assert await counts(sessions, 1) == (1, 1)
    async with sessions() as session:
        assert len((await session.execute(select(Order))).all()) == 1
    _, fresh = await checkout(sessions, "1")
    assert fresh != nonce  # the next visit has a new form


@pytest.mark.parametrize(
    ("setup", "code"),
    [("wrong nonce", OrderErrorCode.NONCE_MISMATCH), ("no cart", OrderErrorCode.EMPTY_CART)],
)
async def test_refused_checkouts_change_nothing(
    sessions: async_sessionmaker[AsyncSession], setup: str, code: OrderErrorCode
) -> None:
    if setup == "wrong nonce":
        await claim(sessions, "1", 1, 1)
    await claim(sessions, "1", 1, 1, minutes=-1)  # past its time, not expired yet: not sold either
    token, nonce = await checkout(sessions, "1")
    with pytest.raises(OrderError) as caught:
        async with sessions() as session, session.begin():
            await place_order(session, token, "forged" if setup == "wrong nonce" else nonce, FORM, utcnow())
    assert caught.value.code is code
    assert await counts(sessions, 1) == (2 if setup == "wrong nonce" else 1, 0)
    assert await events(sessions) == []


async def test_a_changed_cart_is_noticed(sessions: async_sessionmaker[AsyncSession]) -> None:
    await claim(sessions, "1", 1, 1)
    async with sessions() as session:
        token = await fetch_or_create_checkout_token(session, PAGE, "1", utcnow())
        await session.commit()
        seen = await fetch_checkout(session, token, utcnow())
    assert seen is not None
    await claim(sessions, "1", 2, 1)
    with pytest.raises(OrderError) as caught:
        async with sessions() as session, session.begin():
            await place_order(session, token, seen.nonce, FORM, utcnow(), cart_version=seen.version)
    assert caught.value.code is OrderErrorCode.CART_CHANGED


async def test_unknown_token(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        assert await fetch_checkout(session, "nope", utcnow()) is None
        with pytest.raises(OrderError) as caught:
            await place_order(session, "nope", "n", FORM, utcnow())
    assert caught.value.code is OrderErrorCode.NOT_FOUND


async def test_payment_checks_amount_and_currency_and_is_idempotent(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await claim(sessions, "1", 1, 2)
    number = await place(sessions, "1")
    for amount, currency, code in [
        (Decimal("760.01"), "HKD", OrderErrorCode.AMOUNT_MISMATCH),
        (Decimal("760"), "TWD", OrderErrorCode.CURRENCY_MISMATCH),
    ]:
        with pytest.raises(OrderError) as caught:
            async with sessions() as session, session.begin():
                await mark_paid(session, number, amount=amount, currency=currency, now=utcnow())
        assert caught.value.code is code
    async with sessions() as session, session.begin():
        paid = await mark_paid(session, number, amount=Decimal("760.00"), currency="hkd", reference="tx1", now=utcnow())
        again = await mark_paid(session, number, now=utcnow())
    assert paid.changed and not again.changed
    assert (paid.order.status, paid.order.payment_reference) == ("paid", "tx1") and paid.order.paid_at is not None
    assert [kind for _, kind, _ in await events(sessions)] == ["placed", "paid"]
    with pytest.raises(OrderError) as caught:
        async with sessions() as session, session.begin():
            await cancel_order(session, number, utcnow())
    assert caught.value.code is OrderErrorCode.WRONG_STATUS


async def test_cancelling_restocks_and_serves_the_waitlist(sessions: async_sessionmaker[AsyncSession]) -> None:
    # given: all 3 units of A sold to shopper 1, shopper 2 waiting for 2
    await claim(sessions, "1", 1, 3)
    number = await place(sessions, "1")
    await claim(sessions, "2", 1, 2, status="waitlisted")
    # when
    async with sessions() as session, session.begin():
        cancelled = await cancel_order(session, number, utcnow())
        again = await cancel_order(session, number, utcnow())
    # then
    assert cancelled.order.status == "cancelled" and not again.changed
    assert [(d.psid, d.status, d.qty) for d in cancelled.promoted] == [("2", "promoted", 2)]
    assert await counts(sessions, 1) == (2, 0)
    assert (await events(sessions))[-1] == (number, "cancelled", Decimal("1140"))


async def test_returns_restock_part_then_all(sessions: async_sessionmaker[AsyncSession]) -> None:
    await claim(sessions, "1", 1, 2)
    await claim(sessions, "1", 2, 1)
    number = await place(sessions, "1")
    async with sessions() as session, session.begin():
        await mark_paid(session, number, now=utcnow())
    with pytest.raises(OrderError):
        async with sessions() as session, session.begin():
            await return_lines(session, number, [ReturnItem("Rose", 3)], utcnow())
    async with sessions() as session, session.begin():
        part = await return_lines(session, number, [ReturnItem("rose", 1)], utcnow())
    assert part.order.status == "partly_returned"
    assert [line.returned_qty for line in part.order.lines] == [1, 0]
    assert await counts(sessions, 1) == (0, 1)
    async with sessions() as session, session.begin():
        rest = await return_lines(session, number, [ReturnItem("Rose", 1), ReturnItem("B", 1)], utcnow())
    assert rest.order.status == "returned"
    assert await counts(sessions, 1) == (0, 0) and await counts(sessions, 2) == (0, 0)
    assert [(kind, amount) for _, kind, amount in await events(sessions)][2:] == [
        ("returned", Decimal("380")),
        ("returned", Decimal("1270.50")),
    ]
    async with sessions() as session:
        order = await fetch_order(session, number.lower())
        token_rows = (await session.execute(select(CheckoutToken))).all()
    assert order is not None and order.status == "returned" and len(token_rows) == 1
