"""Raising a cart line's quantity extends its one hold (carts.stock.extend_hold), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.runtime.clock import utcnow
from carts.stock import StockShort, extend_hold
from carts.stock_rules import ClaimStatus
from carts.tables import Campaign, Product, StockClaim
from tests.test_bot.test_handlers import test_comments as orders_tests
from tests.test_bot.test_handlers.test_comments import PAGE_ID, Shop

shop = orders_tests.shop  # product A: 50 units


async def _hold(shop: Shop, qty: int, *, status: str = ClaimStatus.HELD, psid: str = "3000000000001") -> int:
    """A claim of product A for `psid`; held ones count in the product's `held` and expire in 5 minutes."""
    now = utcnow()
    async with shop.sessions() as session, session.begin():
        product = (await session.execute(select(Product).where(Product.code == "A"))).scalar_one()
        campaign_id = (await session.execute(select(Campaign.id))).scalar_one()
        claim = StockClaim(
            key=f"k-{psid}-{status}",
            campaign_id=campaign_id,
            product_id=product.id,  # type: ignore[arg-type]
            page_id=PAGE_ID,
            psid=psid,
            comment_id=f"c-{psid}",
            qty=qty,
            arrival="000000000000001",
            status=status,
            hold_minutes=30,
            expires_at=now + timedelta(minutes=5) if status == ClaimStatus.HELD else None,
            created_at=now,
        )
        session.add(claim)
        if status == ClaimStatus.HELD:
            product.held += qty
        await session.flush()
        return claim.id or 0


async def _claims(shop: Shop) -> list[StockClaim]:
    async with shop.sessions() as session:
        return list((await session.execute(select(StockClaim).order_by(StockClaim.id))).scalars())


async def test_more_units_join_the_one_hold_and_move_its_expiry(shop: Shop) -> None:
    claim_id = await _hold(shop, 2)
    now = utcnow() + timedelta(minutes=1)  # the agent raises it a minute later
    async with shop.sessions() as session, session.begin():
        claims = list((await session.execute(select(StockClaim))).scalars())
        extended = await extend_hold(session, claims, 3, now)
    assert extended is not None and extended.id == claim_id
    [claim] = await _claims(shop)
    assert (claim.status, claim.qty) == (ClaimStatus.HELD, 5)
    assert claim.expires_at is not None
    assert claim.expires_at.replace(tzinfo=None) == (now + timedelta(minutes=30)).replace(tzinfo=None)
    assert (await shop.product("A")).held == 5


async def test_more_than_is_free_is_refused_and_changes_nothing(shop: Shop) -> None:
    await _hold(shop, 2)
    await _hold(shop, 45, psid="3000000000002")  # 47 of 50 held: 3 free
    async with shop.sessions() as session, session.begin():
        mine = list((await session.execute(select(StockClaim).where(StockClaim.psid == "3000000000001"))).scalars())
        with pytest.raises(StockShort) as refused:
            await extend_hold(session, mine, 4, utcnow())
    assert refused.value.free == 3
    assert [c.qty for c in await _claims(shop)] == [2, 45]
    assert (await shop.product("A")).held == 47


async def test_while_earlier_claims_wait_for_the_allocator_nothing_is_taken_ahead_of_them(shop: Shop) -> None:
    await _hold(shop, 2)
    await _hold(shop, 1, status=ClaimStatus.PENDING, psid="3000000000003")  # a comment not decided yet
    async with shop.sessions() as session, session.begin():
        mine = list((await session.execute(select(StockClaim).where(StockClaim.psid == "3000000000001"))).scalars())
        assert await extend_hold(session, mine, 1, utcnow()) is None
    assert [c.qty for c in await _claims(shop)] == [2, 1]
    assert (await shop.product("A")).held == 2
