"""Segments benchmark (issue 21): the daily RFM pass, one member's refresh on a paid order, and a segment's
count and preview, on a shop of up to ~100,000 members (SQLite file; `--database-url` for PostgreSQL).

Run: `.venv/bin/python -m bench.bench_segments [--members 100000]`. The shop is written with bulk INSERTs:
each member has a Page-scoped id and 0-6 paid orders over two years (some returned), a third of them a tag.
Baseline measured in the same run over the same rows: the RFM figures the members API has always given
(`GET /api/members/rfm`: every member loaded and worked out in Python, no quantiles). Each step is timed
best-of-N; the figures are printed and saved under bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.common import print_table, save
from bot.store.db import create_engine
from bot.store.migrations import upgrade
from carts.order_tables import Order
from crm_bridge.members import fetch_all_members, member_rfm
from crm_bridge.segment_rules import parse_segment_definition
from crm_bridge.segment_tables import MemberTag
from crm_bridge.segments import count_segment, preview_segment, refresh_figures, refresh_member_figures
from crm_bridge.tables import Member, MemberIdentity

PAGE = "1000000000001"
ZERO = {"period_spend": Decimal(0), "total_spend": Decimal(0)}
NOW = datetime(2026, 12, 1, tzinfo=UTC)
SEGMENT = {
    "match": [{"field": "r_score", "op": "min", "value": 4}, {"field": "tags", "op": "any", "value": ["VIP"]}],
    "exclude": [{"field": "napl", "op": "in", "value": ["lapsed"]}],
}


async def build(sessions: async_sessionmaker[AsyncSession], members: int, seed: int = 21) -> int:
    rng = random.Random(seed)
    orders = 0
    batch = 5000
    for start in range(0, members, batch):
        ids = range(start + 1, min(members, start + batch) + 1)
        member_rows, identity_rows, order_rows, tag_rows = [], [], [], []
        for i in ids:
            joined = NOW - timedelta(days=rng.randint(0, 730))
            member_rows.append(
                {
                    "id": i,
                    "code": f"M{i:08d}",
                    "tier_key": "member",
                    **ZERO,
                    "period_start": joined,
                    "created_at": joined,
                    "updated_at": joined,
                }
            )
            identity_rows.append({"member_id": i, "kind": "psid", "value": f"{PAGE}:{i}", "created_at": joined})
            for k in range(rng.choice([0, 1, 1, 1, 2, 2, 3, 6])):
                at = NOW - timedelta(days=rng.randint(0, 730), minutes=rng.randint(0, 1440))
                total = Decimal(rng.choice([80, 120, 300, 480, 999, 1680]))
                order_rows.append(
                    {
                        "number": f"PO-{i:07d}{k}",
                        "page_id": PAGE,
                        "psid": str(i),
                        "checkout_nonce": f"b-{i}-{k}",
                        "status": rng.choice(["paid", "delivered", "delivered", "delivered", "returned"]),
                        "currency": "HKD",
                        "subtotal": total,
                        "total": total,
                        "customer_name": "x",
                        "phone": "",
                        "delivery_method": "pickup",
                        "placed_at": at,
                        "paid_at": at,
                        "updated_at": at,
                        "shipping_fee": Decimal(0),
                    }
                )
            if i % 3 == 0:
                tag_rows.append({"member_id": i, "tag": "VIP", "source": "hand", "created_at": joined})
        async with sessions() as session, session.begin():
            await session.execute(insert(Member), member_rows)
            await session.execute(insert(MemberIdentity), identity_rows)
            if order_rows:
                await session.execute(insert(Order), order_rows)
            if tag_rows:
                await session.execute(insert(MemberTag), tag_rows)
        orders += len(order_rows)
    return orders


async def timed(step: Callable[[], Awaitable[Any]], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        await step()
        best = min(best, time.perf_counter() - started)
    return best


async def run(url: str, members: int, repeat: int) -> list[dict[str, object]]:
    engine = create_engine(url)
    await upgrade(engine)  # the real schema, migrations and all
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    started = time.perf_counter()
    orders = await build(sessions, members)
    print(f"built {members:,} members, {orders:,} orders in {time.perf_counter() - started:.1f} s", flush=True)
    definition = parse_segment_definition(SEGMENT)

    async def baseline() -> None:
        async with sessions() as session:
            for member in await fetch_all_members(session):
                member_rfm(member, NOW)

    async def daily() -> None:
        async with sessions() as session, session.begin():
            await refresh_figures(session, NOW)

    async def one_member() -> None:
        async with sessions() as session, session.begin():
            await refresh_member_figures(session, members // 2, NOW)

    async def count() -> None:
        async with sessions() as session:
            await count_segment(session, definition, NOW)

    async def preview() -> None:
        async with sessions() as session:
            await preview_segment(session, definition, NOW)

    rows = []
    base = await timed(baseline, repeat)
    for name, step in (
        ("baseline: members API's RFM in Python", baseline),
        ("daily pass: figures, cuts, scores", daily),
        ("one member on a paid order", one_member),
        ("segment count", count),
        ("segment preview (20)", preview),
    ):
        seconds = base if step is baseline else await timed(step, repeat)
        rows.append({"step": name, "ms": round(seconds * 1000, 1), "x baseline": round(seconds / base, 2)})
    await engine.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        rows = asyncio.run(run(url, args.members, args.repeat))
    print_table(rows, ["step", "ms", "x baseline"])
    save("segments", {"members": args.members, "rows": rows})


if __name__ == "__main__":
    main()
