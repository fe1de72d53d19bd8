"""CRM dashboard benchmark (issue 21): every figure of the dashboard for the last 30, 90 and 365 days on a shop
of ~100,000 members and ~200,000 orders (SQLite file; `--database-url` for PostgreSQL).

Run: `.venv/bin/python -m bench.bench_dashboard [--members 100000]`. The shop is `bench.bench_segments`'s
(bulk INSERTs: each member 0-6 paid orders over two years, some returned), with one points row per order,
a redemption on every fifth, a referral edge for every tenth member and a coupon use on every tenth order,
then the segments' daily pass. Baseline, in the same run over the same rows: a bare `SELECT COUNT(*)` of the
orders (what the cheapest look at the orders costs). Each step is timed best-of-N; the figures are printed
and saved under bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.bench_segments import NOW, PAGE, build, timed
from bench.common import print_table, save
from bot.store.db import create_engine
from bot.store.migrations import upgrade
from carts.coupon_tables import Coupon, CouponUse
from carts.order_tables import Order
from carts.tables import ShopInfo
from crm_bridge.dashboard import fetch_dashboard
from crm_bridge.dashboard_rules import parse_period
from crm_bridge.segments import refresh_figures
from crm_bridge.tables import Member, PointsEntry, ReferralEdge


async def add_crm_rows(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Points, referral edges and coupon uses, each one INSERT ... SELECT over the orders or members."""
    async with sessions() as session, session.begin():
        session.add(ShopInfo(id=1, name="Bench", currency="HKD", timezone="Asia/Hong_Kong", updated_at=NOW))
        session.add(Coupon(id=1, code="BENCH", title="Bench", kind="amount", value=50, created_at=NOW, updated_at=NOW))
        await session.flush()
        member = func.cast(Order.psid, Member.id.type)  # bench_segments: member i has psid "i"
        for kind, sign, every in (("earn", 1, 1), ("redeem", -1, 5)):
            await session.execute(
                insert(PointsEntry).from_select(
                    ["key", "member_id", "kind", "points", "reason", "order_id", "available_at", "created_at"],
                    select(
                        literal(f"{kind}:") + func.cast(Order.id, Order.psid.type),
                        member,
                        literal(kind),
                        func.cast(Order.total / 20, Member.id.type) * sign,
                        literal("bench"),
                        Order.id,
                        Order.paid_at,
                        Order.paid_at,
                    ).where(Order.id % every == 0),
                )
            )
        await session.execute(
            insert(ReferralEdge).from_select(
                ["member_id", "referrer_id", "source", "created_at"],
                select(Member.id, Member.id - 1, literal("SHORTLINK"), Member.created_at).where(Member.id % 10 == 0),
            )
        )
        await session.execute(
            insert(CouponUse).from_select(
                ["coupon_id", "code", "order_id", "page_id", "psid", "amount", "status", "created_at", "updated_at"],
                select(
                    literal(1), literal("BENCH"), Order.id, literal(PAGE), Order.psid, literal(50), literal("used"),
                    Order.paid_at, Order.paid_at,
                ).where(Order.id % 10 == 0),
            )
        )  # fmt: skip


async def run(url: str, members: int, repeat: int) -> tuple[list[dict[str, object]], dict[str, object]]:
    engine = create_engine(url)
    await upgrade(engine)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    started = time.perf_counter()
    orders = await build(sessions, members)
    await add_crm_rows(sessions)
    async with sessions() as session, session.begin():
        await refresh_figures(session, NOW)
    print(f"built {members:,} members, {orders:,} orders in {time.perf_counter() - started:.1f} s", flush=True)
    today = (NOW - timedelta(hours=1)).date()

    async def baseline() -> None:
        async with sessions() as session:
            await session.execute(select(func.count()).select_from(Order))

    def dashboard(days: str):  # type: ignore[no-untyped-def]
        async def step() -> None:
            async with sessions() as session:
                await fetch_dashboard(session, parse_period(days, None, None, today), NOW)

        return step

    rows = []
    base = await timed(baseline, repeat)
    for name, step in (
        ("baseline: SELECT COUNT(*) of the orders", baseline),
        ("dashboard, last 30 days (5 weekly buckets)", dashboard("30")),
        ("dashboard, last 90 days (13 weekly buckets)", dashboard("90")),
        ("dashboard, last 365 days (13 monthly buckets)", dashboard("365")),
    ):
        seconds = base if step is baseline else await timed(step, repeat)
        rows.append({"step": name, "ms": round(seconds * 1000, 1), "x baseline": round(seconds / base, 1)})
    async with sessions() as session:
        d = await fetch_dashboard(session, parse_period("365", None, None, today), NOW)
    figures: dict[str, object] = {
        "members": d.members,
        "orders (365 days)": d.orders,
        "GMV": str(d.gmv),
        "repurchase rate": str(d.repurchase_rate),
        "mean days between orders": str(d.mean_gap_days),
        "states now": d.states_now,
        "points": asdict(d.points),
        "coupon orders": d.coupons.orders,
        "referral joins": d.referrals.joins,
    }
    await engine.dispose()
    return rows, figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        rows, figures = asyncio.run(run(url, args.members, args.repeat))
    print_table(rows, ["step", "ms", "x baseline"])
    for key, value in figures.items():
        print(f"{key}: {value}")
    save("dashboard", {"members": args.members, "rows": rows, "figures": figures})


if __name__ == "__main__":
    main()
