"""Two workers whose transactions each recorded a claim, then allocate: no deadlock (PostgreSQL's row locks)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.runtime.clock import utcnow
from carts.stock import allocate_products
from carts.tables import StockClaim
from tests.conftest import TEST_DATABASE, database_url
from tests.pg_cluster import PostgresCluster
from tests.test_carts.test_orders import PAGE, shop_sessions


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[PostgresCluster | None]:
    """Row locks are PostgreSQL's (SQLite has one write lock per database, taken at BEGIN, so two such open
    transactions cannot exist there): in the SQLite pass this module starts a throwaway cluster of its own."""
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


def pending(product_id: int, n: int) -> StockClaim:
    return StockClaim(
        key=f"k{n}",
        campaign_id=1,
        product_id=product_id,
        page_id=PAGE,
        psid=f"p{n}",
        comment_id=f"c{n}",
        qty=1,
        arrival=f"{n:06d}",
        status="pending",
        created_at=utcnow(),
    )


async def test_workers_that_recorded_claims_then_allocate_do_not_deadlock(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # A claim's foreign key takes a KEY SHARE lock on its product row; the allocator's ordered lock must not
    # conflict with it, or worker A (claimed product 2) and worker B (claimed product 1) wait on each other.
    async with sessions() as a, sessions() as b:
        await a.begin()
        await b.begin()
        a.add(pending(2, 1))
        await a.flush()
        b.add(pending(1, 2))
        await b.flush()

        async def allocate(session: AsyncSession) -> None:
            await allocate_products(session, [1, 2], watermark="999999", now=utcnow() + timedelta(seconds=1))
            await session.commit()

        results = await asyncio.wait_for(asyncio.gather(allocate(a), allocate(b), return_exceptions=True), 20)
        assert results == [None, None]
