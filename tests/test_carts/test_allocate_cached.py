"""The allocator writes with Core statements; objects a caller's session already holds must not go stale."""

from __future__ import annotations

from sqlalchemy import select

from bot.runtime.clock import utcnow
from carts.stock import allocate_products
from carts.stock_rules import END_OF_STREAM
from carts.tables import Campaign, Product, StockClaim
from tests.test_bot.test_handlers import test_comments as orders_tests
from tests.test_bot.test_handlers.test_comments import PAGE_ID, Shop

shop = orders_tests.shop  # product A: 50 units


async def test_allocation_updates_the_products_and_claims_the_session_holds(shop: Shop) -> None:
    async with shop.sessions() as session, session.begin():
        product = (await session.execute(select(Product).where(Product.code == "A"))).scalar_one()
        campaign_id = (await session.execute(select(Campaign.id))).scalar_one()
        claims = [
            StockClaim(
                key=f"k{n}",
                campaign_id=campaign_id,
                product_id=product.id,  # type: ignore[arg-type]
                page_id=PAGE_ID,
                psid=str(n),
                comment_id=f"c{n}",
                qty=qty,
                arrival=f"{n:015d}",
                created_at=utcnow(),
            )
            for n, qty in ((1, 30), (2, 30))
        ]
        session.add_all(claims)
        await session.flush()
        decisions = await allocate_products(session, [product.id], END_OF_STREAM, utcnow())  # type: ignore[list-item]
        # The objects loaded before say what the rows say, and flushing them again changes nothing.
        assert product.held == 50
        assert [(c.status, c.qty) for c in claims] == [("held", 30), ("held", 20)]
        assert all(c.decided_at is not None and c.expires_at is not None for c in claims)
        await session.flush()
    assert [(d.psid, d.status, d.qty) for d in decisions] == [
        ("1", "held", 30),
        ("2", "waitlisted", 10),
        ("2", "held", 20),
    ]
    assert all(d.claim_id > 0 for d in decisions)  # the split-off waitlisted part has its own row
    async with shop.sessions() as session:
        assert (await session.execute(select(Product.held).where(Product.id == product.id))).scalar_one() == 50
        rows = (await session.execute(select(StockClaim.psid, StockClaim.status, StockClaim.qty))).all()
    assert sorted(tuple(r) for r in rows) == [("1", "held", 30), ("2", "held", 20), ("2", "waitlisted", 10)]
