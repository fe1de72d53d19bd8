"""Two ids of one member checking out at once spend its points once (PostgreSQL's row locks).

SQLite's writers take turns at BEGIN IMMEDIATE, so the race is PostgreSQL's: in the SQLite pass this module
starts a throwaway cluster of its own, as tests/test_carts/test_stock_locks.py does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal as D
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_bridge.contact_claims import confirm_claim, give_contact
from crm_bridge.ledger import apply_redeem, fetch_balance, plan_redeem
from crm_bridge.members import IdentityKind, fetch_or_create_member
from crm_bridge.program import apply_program
from crm_bridge.rules import RuleError
from crm_bridge.tables import PointsEntry
from tests.conftest import TEST_DATABASE, database_sessions, database_url, wait_until
from tests.pg_cluster import PostgresCluster
from tests.test_crm_bridge.crm_db import OTHER_PAGE, PAGE, PROGRAM, T0


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
    async with database_sessions(url) as factory:
        async with factory() as session, session.begin():
            await apply_program(session, PROGRAM, T0)
        yield factory


async def spend(session: AsyncSession, page_id: str, psid: str, order_id: int) -> None:
    """A checkout paying 100 points, as bot/web/checkout.py does: plan, then take them, in one transaction."""
    plan = await plan_redeem(session, page_id, psid, D(1000), 100, T0)
    order = SimpleNamespace(id=order_id, page_id=page_id, psid=psid, number=f"PO-{order_id:06d}")
    await apply_redeem(session, order, plan, T0)


async def test_two_ids_of_one_member_cannot_both_spend_the_same_points(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # given: one member under two Pages' ids (joined with the merchant's confirmation), with 100 points
    async with sessions() as session, session.begin():
        first, _ = await fetch_or_create_member(session, PAGE, "111", now=T0)
        await give_contact(session, first, IdentityKind.PHONE, "+85291234567", T0)
        second, _ = await fetch_or_create_member(session, OTHER_PAGE, "222", now=T0)
        claim = await give_contact(session, second, IdentityKind.PHONE, "+85291234567", T0)
        assert claim is not None
        member = await confirm_claim(session, claim.id or 0, T0)
        assert member is not None
        session.add(
            PointsEntry(
                key="gift",
                member_id=member.id or 0,
                kind="adjust",
                points=100,
                reason="t",
                available_at=T0,
                created_at=T0,
            )
        )
        member_id = member.id or 0

    async def second_checkout() -> None:
        async with sessions() as session, session.begin():
            await spend(session, OTHER_PAGE, "222", 2)

    async def waiting_on_a_lock() -> bool:
        async with sessions() as session:
            rows = await session.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            )
            return bool(rows.scalar_one())

    # when: the first id's checkout has taken the points but not committed, and the second id checks out
    async with sessions() as first_session, first_session.begin():
        await spend(first_session, PAGE, "111", 1)
        other = asyncio.create_task(second_checkout())

        async def blocked_or_done() -> bool:
            return other.done() or await waiting_on_a_lock()

        await wait_until(blocked_or_done, what="the second checkout to wait for the first, or to finish")
    # then: the second checkout, let through once the first committed, sees the points gone and is refused
    with pytest.raises(RuleError):
        await other
    async with sessions() as session:
        assert (await fetch_balance(session, member_id, T0)).available == 0
        redeemed = (
            await session.execute(select(func.count(PointsEntry.id)).where(PointsEntry.kind == "redeem"))
        ).scalar_one()
        assert redeemed == 1
