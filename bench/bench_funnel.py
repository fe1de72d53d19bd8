"""What-sold report benchmark (issue 20): the funnel of a live of 50,000 comments, against a bare count.

Run: `.venv/bin/python -m bench.bench_funnel [--comments 50000] [--database postgresql | --database-url URL]`.
A live's rows are written straight into a fresh database (SQLite in a temporary folder, Debian's PostgreSQL
in one with `--database postgresql`, analysed after the load as autovacuum would be): comments over
three hours, one in eight an order of one of 20 products (stock 40 each, so most sell out and the waitlist
fills), holds, expiries, promotions from the waitlist, orders paid, unpaid and cancelled, with their lines.
Then, best of N runs each: the baseline, `SELECT COUNT(*)` over the same comment trail (what any report
must at least read), and the whole funnel (`bot.inbox.funnel.fetch_funnel`: every figure, the per-minute
series and the products), and its Excel export. Printed: each time, and the funnel's time as a multiple of
the baseline's.
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
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, text

from bot.inbox.board import _comments_of
from bot.inbox.funnel import fetch_funnel
from bot.inbox.funnel_xlsx import funnel_xlsx
from bot.store.db import create_engine, create_schema, session_factory
from bot.store.tables import CommentLog
from carts.order_tables import Order, OrderLine
from carts.tables import Campaign, CampaignProduct, Product, StockClaim

PAGE = "1000000000001"
POST = f"{PAGE}_2000000000001"
PRODUCTS = 20
STOCK = 40
HK = ZoneInfo("Asia/Hong_Kong")


async def seed(sessions: Any, comments: int, rng: random.Random) -> Campaign:
    start = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    async with sessions() as session, session.begin():
        products = [
            Product(code=f"P{i}", name=f"Product {i}", price=Decimal(100 + 10 * i), stock=STOCK,
                    created_at=start, updated_at=start)
            for i in range(PRODUCTS)
        ]  # fmt: skip
        session.add_all(products)
        campaign = Campaign(key="live", title="Live", page_id=PAGE, post_id=POST, starts_at=start,
                            ends_at=start + timedelta(hours=3), created_at=start, updated_at=start)  # fmt: skip
        session.add(campaign)
        await session.flush()
        session.add_all(
            CampaignProduct(campaign_id=campaign.id or 0, product_id=p.id or 0, order_code=p.code) for p in products
        )
        logs, claims, orders, lines = [], [], [], []
        sold: dict[int, int] = {p.id or 0: 0 for p in products}
        for n in range(comments):
            at = start + timedelta(seconds=rng.uniform(0, 3 * 3600))
            is_order = n % 8 == 0
            psid = f"3{rng.randrange(10_000):09d}"
            outcome = "not_an_order"
            if is_order:
                product = products[rng.randrange(PRODUCTS)]
                pid = product.id or 0
                taken = sold[pid] < STOCK
                sold[pid] += taken
                outcome = "added" if taken else "waitlisted"
                status = rng.choice(["held", "sold", "sold", "sold", "expired"]) if taken else "waitlisted"
                order_id = None
                if status == "sold":
                    order_id = len(orders) + 1
                    paid = rng.random() < 0.7
                    orders.append({
                        "id": order_id, "number": f"PO-{order_id:06d}", "page_id": PAGE, "psid": psid,
                        "checkout_nonce": f"n{order_id}", "currency": "HKD", "subtotal": product.price,
                        "total": product.price, "customer_name": "x", "phone": "1", "delivery_method": "pickup",
                        "status": "paid" if paid else rng.choice(["pending_payment", "cancelled"]),
                        "placed_at": at, "paid_at": at if paid else None, "updated_at": at,
                    })  # fmt: skip
                    lines.append({"order_id": order_id, "product_id": pid, "code": product.code, "name": product.name,
                                  "qty": 1, "unit_price": product.price, "variant": "{}"})  # fmt: skip
                claims.append({
                    "key": f"c{n}", "campaign_id": campaign.id, "product_id": pid, "page_id": PAGE, "psid": psid,
                    "comment_id": f"2000000000001_{n}", "qty": 1, "arrival": f"{n:015d}", "status": status,
                    "order_id": order_id, "created_at": at,
                    "promoted_at": at if status != "waitlisted" and rng.random() < 0.05 else None,
                })  # fmt: skip
            logs.append({
                "event_key": f"comment:{n}:add", "page_id": PAGE, "channel": "facebook", "post_id": POST,
                "comment_id": f"2000000000001_{n}", "author_id": psid, "verb": "add", "message": "A+1",
                "created_time": at.replace(microsecond=0), "outcome": outcome, "received_at": at,
            })  # fmt: skip
        for table, rows in ((CommentLog, logs), (Order, orders), (OrderLine, lines), (StockClaim, claims)):
            for i in range(0, len(rows), 2000):
                await session.execute(insert(table), rows[i : i + 2000])
    return campaign


async def best_of(runs: int, fn: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(runs):
        began = time.perf_counter()
        result = await fn()
        best = min(best, time.perf_counter() - began)
    return best, result


async def run(comments: int, url: str | None, runs: int) -> None:
    folder = tempfile.mkdtemp(prefix="bench-funnel-")
    engine = await asyncio.to_thread(create_engine, url or f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}")
    await create_schema(engine)
    sessions = session_factory(engine)
    began = time.perf_counter()
    campaign = await seed(sessions, comments, random.Random(20))
    print(f"seeded {comments:,} comments in {time.perf_counter() - began:.1f}s ({engine.dialect.name})")
    if engine.dialect.name == "postgresql":  # as autovacuum would have by then: a fresh bulk load has no statistics
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    now = campaign.ends_at + timedelta(hours=1)

    async def baseline() -> int:
        async with sessions() as session:
            return (await session.execute(select(func.count(CommentLog.id)).where(_comments_of(campaign)))).scalar_one()

    async def funnel() -> Any:
        async with sessions() as session:
            return await fetch_funnel(session, campaign, HK, now)

    base_s, counted = await best_of(runs, baseline)
    funnel_s, figures = await best_of(runs, funnel)
    xlsx_s, book = await best_of(runs, lambda: asyncio.to_thread(funnel_xlsx, figures, HK, "en"))
    await engine.dispose()
    assert counted == figures.stages.comments == comments
    print(f"{'measure':<34}{'best of ' + str(runs):>14}")
    print(f"{'baseline: COUNT(*) of the trail':<34}{base_s * 1000:>11.1f} ms")
    print(f"{'the funnel (every figure)':<34}{funnel_s * 1000:>11.1f} ms  ({funnel_s / base_s:.1f}x the baseline)")
    print(f"{'its Excel export':<34}{xlsx_s * 1000:>11.1f} ms  ({len(book):,} bytes)")
    s = figures.stages
    print(
        f"figures: {s.comments:,} comments, {s.order_comments:,} order comments, {s.held:,} held, "
        f"{s.checked_out:,} checked out, {s.paid:,} paid; GMV {figures.gmv:,}, {figures.paid_orders:,} paid orders, "
        f"{len(figures.series.buckets)} buckets of {figures.series.minutes} min"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comments", type=int, default=50_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--database-url", default=None, help="an SQLAlchemy async URL (default: SQLite in a temp dir)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if args.database == "postgresql" and args.database_url is None:
        from tests.pg_cluster import PostgresCluster  # Debian's PostgreSQL in a temp dir, as bench_live does

        postgres = PostgresCluster(durable=True)
        postgres.start()
        try:
            url = postgres.url(postgres.create_database())
            asyncio.run(run(args.comments, "postgresql+asyncpg://" + url.removeprefix("postgresql://"), args.runs))
        finally:
            postgres.stop()
        return
    asyncio.run(run(args.comments, args.database_url, args.runs))


if __name__ == "__main__":
    main()
