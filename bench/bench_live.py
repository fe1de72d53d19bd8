"""Live-stream benchmark (issue 5): comments from 1,000 shoppers on 20 products, as fast as the server takes them.

Run: `.venv/bin/python -m bench.bench_live`. `plusone serve` runs as a child on embedded Redis and SQLite, on
its defaults as `make run` starts it (on two cores or more, the web in its process and a worker process
beside it; `--workers 0` for one process, `--workers N` for N worker processes the bench starts itself),
in demo mode (the Graph emulator takes the private replies), with a 20-product shop loaded by
`plusone load`. The comments (orders, chatter, emoji, Chinese, and re-sent duplicates) go to
`POST /webhook` signed like Meta's. For every order comment it measures the time from the webhook's 200
to its stock decision committed in SQL, then prints comments/s, p50 and p99 of that delay, and checks:
lost (an acknowledged comment with no recorded outcome), duplicated (a comment claimed twice) and oversold
(held + sold above stock). Goal: 2,000 comments/s, p99 under 250 ms, zero lost, duplicated or oversold.
The baseline, measured in the same run, is how fast the same webhook alone acknowledges the same load.

`--database postgresql` runs on a throwaway PostgreSQL cluster (Debian's binaries, with PostgreSQL's
durable defaults: fsync and synchronous commit on) instead of SQLite; `--redis debian` on Debian's
redis-server (append-only, fsync on every write) instead of the embedded one. bench.bench_faults reuses the
pieces below.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

import aiohttp
import redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import ROOT, child, free_port, print_table, save, wait_http
from bench.loadgen import _read_response, build_request
from bot.emulator.config import DEMO_APP_ID, DEMO_PAGE_TOKEN
from bot.inbound import webhook_factory as wf
from bot.runtime.embedded_redis import EmbeddedRedis
from bot.runtime.redis_keys import RedisKeys
from bot.store.db import READ_ONLY, create_engine
from bot.store.tables import CommentLog
from carts.tables import Product, StockClaim
from config.settings import Settings
from parsers.order_comment import OrderParser
from tests.pg_cluster import PostgresCluster
from tests.redis_servers import debian_redis

SECRET = "bench-app-secret"
PAGE_ID = "1000000000001"
POST = "2000000000001"
CHATTER = ["好靚！", "how much?", "❤️❤️❤️", "幾時有貨", "@Amy look", "pretty!!", "L size有冇", "wow"]


def shop_yaml(products: int, stock: int) -> str:
    lines = ["shop: {name: Bench Shop, currency: HKD, page_id: '1000000000001'}", "products:"]
    for i in range(1, products + 1):
        lines.append(f"  - {{code: P{i:02d}, name: Product {i}, price: {100 + i}, stock: {stock}}}")
    lines += [
        "campaigns:",
        "  - key: bench-live",
        "    title: Bench live",
        f"    post_id: '{PAGE_ID}_{POST}'",
        "    starts_at: 2020-01-01 00:00",
        "    ends_at: 2099-12-31 23:00",
        "    hold_minutes: 60",
        "    products:",
    ]
    lines += [f"      - product: P{i:02d}" for i in range(1, products + 1)]
    return "\n".join(lines) + "\n"


def comments(shoppers: int, products: int, seed: int = 7) -> list[tuple[str, str, bool]]:
    """(comment id, text, is an order), with about 10% re-sent as Meta retries do."""
    rng = random.Random(seed)
    out = []
    for i in range(shoppers):
        if rng.random() < 0.25:
            out.append((f"{POST}_{i}", rng.choice(CHATTER), False))
        else:
            code = f"P{rng.randint(1, products):02d}"
            text = rng.choice(
                [f"{code}+1", f"{code.lower()}+{rng.randint(1, 3)}", f"我要{code}+1 謝謝", f"＋１ {code}+1"]
            )
            out.append((f"{POST}_{i}", text, True))
    out += rng.sample(out, len(out) // 10)  # duplicates
    return out


async def send_all(
    port: int, bodies: list[tuple[str, bytes]], connections: int, rate: float | None = None
) -> tuple[dict[str, float], float]:
    """Post every body (as fast as the server takes them, or `rate` per second); the time each comment id was
    first acknowledged, and the whole duration."""
    acked: dict[str, float] = {}
    queue: asyncio.Queue[tuple[int, tuple[str, bytes]]] = asyncio.Queue()
    for item in enumerate(bodies):
        queue.put_nowait(item)
    started = time.perf_counter()

    async def conn() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while not queue.empty():
                index, (comment_id, request) = queue.get_nowait()
                if rate:  # the i-th delivery leaves at i / rate seconds: a steady stream, as in a live
                    await asyncio.sleep(max(0.0, started + index / rate - time.perf_counter()))
                writer.write(request)
                if await _read_response(reader) == 200:
                    acked.setdefault(comment_id, time.time())
        finally:
            writer.close()

    await asyncio.gather(*(conn() for _ in range(connections)))
    return acked, time.perf_counter() - started


def wait_for_workers(port: int, redis_url: str, limit: float = 60.0) -> None:
    """Wait until a worker has processed a warm-up delivery (a worker takes seconds to import and connect)."""
    payload = wf.comment_delivery(page_id=PAGE_ID, post_id="warmup", message="hello", user_id="1", comment_id="w_1")
    body, headers = wf.signed(payload, SECRET)
    request = urllib.request.Request(f"http://127.0.0.1:{port}/webhook", data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    client = redis.Redis.from_url(redis_url)
    deadline = time.time() + limit
    try:
        while time.time() < deadline:
            if client.xlen(RedisKeys("plusone").ingest_stream) == 0:  # acknowledged entries are deleted
                return
            time.sleep(0.1)
    finally:
        client.close()
    raise SystemExit(f"no worker processed a delivery within {limit:.0f} s")


async def register_comments(emulator: str, plan: list[tuple[str, str, bool]]) -> None:
    async with aiohttp.ClientSession() as http:
        for comment_id, _, _ in dict.fromkeys(plan):
            body = {
                "page_id": PAGE_ID,
                "comment_id": comment_id,
                "post_id": f"{PAGE_ID}_{POST}",
                "author_id": author_of(comment_id),
            }
            async with http.post(f"{emulator}/_emulator/comments", json=body) as response:
                response.raise_for_status()


def author_of(comment_id: str) -> str:
    return str(3_000_000 + int(comment_id.rsplit("_", 1)[1]))


@dataclass
class Services:
    """The servers a run uses beside PlusOne's processes, and how PlusOne and the bench reach them."""

    env: dict[str, str]  # PLUSONE_* settings naming them (empty: the embedded defaults)
    redis_url: str
    database_url: str  # async SQLAlchemy URL the bench reads the results through
    postgres: PostgresCluster | None = None
    redis: EmbeddedRedis | None = None  # a Redis server the bench started (and may restart)


@contextlib.contextmanager
def services(data: Path, database: str = "sqlite", redis_server: str = "embedded") -> Iterator[Services]:
    """Start the database and Redis a run asks for; SQLite and the embedded Redis are PlusOne's own defaults."""
    env: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        postgres = None
        database_url = f"sqlite+aiosqlite:///{(data / 'plusone.db').resolve()}"
        if database == "postgresql":
            postgres = PostgresCluster(durable=True)  # a benchmark of a database that may lose commits proves little
            postgres.start()
            stack.callback(postgres.stop)
            url = postgres.url(postgres.create_database())
            env["PLUSONE_DATABASE_URL"] = url
            database_url = "postgresql+asyncpg://" + url.removeprefix("postgresql://")
        server = None
        redis_url = EmbeddedRedis(data).url  # `plusone serve` starts it in the data dir
        if redis_server == "debian":
            # The embedded set-up (Unix socket, append-only file fsynced on every write) on Debian's server,
            # in a folder of its own so that the bench, not `plusone serve`, starts and restarts it.
            server = EmbeddedRedis(data.parent / "redis", appendfsync="always", executable=debian_redis())
            server.start()
            stack.callback(server.stop)
            redis_url = env["PLUSONE_REDIS_URL"] = server.url
        yield Services(env, redis_url, database_url, postgres, server)


@dataclass
class Results:
    decided: dict[str, float] = field(default_factory=dict)  # comment id -> when its stock decision committed
    claims: dict[str, int] = field(default_factory=dict)  # comment id -> units claimed
    stock: list[tuple[str, int | None, int, int]] = field(default_factory=list)  # code, stock, held, sold
    outcomes: dict[str, str] = field(default_factory=dict)  # comment id -> its logged outcome


async def read_engine(database_url: str) -> AsyncEngine:
    """PlusOne's own engine, reading only: on SQLite it begins DEFERRED and never queues behind the writers.
    Made in a thread: SQLAlchemy resolves a SQLite file's path with blocking calls."""
    engine = await asyncio.to_thread(create_engine, database_url)
    return engine.execution_options(**{READ_ONLY: True})


async def read_results(engine: AsyncEngine) -> Results:
    """The same queries on SQLite and PostgreSQL, through the tables' own column types."""
    decided_at = select(StockClaim.comment_id, func.max(StockClaim.decided_at))
    claimed = select(StockClaim.comment_id, func.sum(StockClaim.qty)).group_by(StockClaim.comment_id)
    added = select(CommentLog.comment_id, CommentLog.outcome).where(CommentLog.verb == "add")
    async with engine.connect() as conn:
        decided = {
            cid: (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
            for cid, at in await conn.execute(
                decided_at.where(StockClaim.decided_at.is_not(None)).group_by(StockClaim.comment_id)
            )
        }
        claims = {cid: int(qty) for cid, qty in await conn.execute(claimed)}
        stock = [
            (code, units, held, sold)
            for code, units, held, sold in await conn.execute(
                select(Product.code, Product.stock, Product.held, Product.sold)
            )
        ]
        outcomes = {cid: outcome for cid, outcome in await conn.execute(added)}
    return Results(decided, claims, stock, outcomes)


async def wait_results(database_url: str, done: Callable[[Results], bool], limit: float) -> Results:
    """Read the results until `done` says they are complete or `limit` seconds pass; the last reading."""
    engine = await read_engine(database_url)
    deadline = time.time() + limit
    results = Results()
    try:
        while time.time() < deadline:
            # The tables may not exist yet, or the database is restarting: keep the last reading.
            with contextlib.suppress(Exception):
                results = await read_results(engine)
            if done(results):
                break
            await asyncio.sleep(0.25)
    finally:
        await engine.dispose()
    return results


def signed_requests(plan: list[tuple[str, str, bool]], port: int) -> list[tuple[str, bytes]]:
    """(comment id, the raw HTTP request of its signed comment webhook) for every comment of the plan."""
    requests = []
    for comment_id, text, _ in plan:
        payload = wf.comment_delivery(
            page_id=PAGE_ID, post_id=POST, message=text, user_id=author_of(comment_id), comment_id=comment_id
        )
        body, headers = wf.signed(payload, SECRET)
        requests.append((comment_id, build_request("127.0.0.1", port, "/webhook", body, headers)))
    return requests


def asked_units(plan: list[tuple[str, str, bool]], products: int) -> dict[str, int]:
    """Units each order comment asks for, by the same grammar the server uses."""
    grammar = OrderParser.from_codes([f"P{i:02d}" for i in range(1, products + 1)])
    return {cid: sum(item.qty for item in grammar.parse(text).items) for cid, text, is_order in plan if is_order}


def layout(workers: int | None) -> str:
    """How the run's PlusOne processes were laid out, for the report."""
    if workers is None:
        children = Settings().worker_process_count  # what `auto` makes of this machine, as serve decides it
        return f"`plusone serve` on its defaults ({children} worker process(es) beside the web)"
    if workers == 0:
        return "web and worker in one process"
    return f"a web process and {workers} worker(s)"


def base_env(port: int, data: Path) -> dict[str, str]:
    return {
        "PLUSONE_APP_SECRET": SECRET,
        "PLUSONE_VERIFY_TOKEN": "v",
        "PLUSONE_ADMIN_TOKEN": "a",
        "PLUSONE_PORT": str(port),
        "PLUSONE_DATA_DIR": str(data),
        "PLUSONE_LOG_LEVEL": "WARNING",
        "PLUSONE_DEMO_EMULATOR_PORT": "0",
    }


def load_shop(tmp: Path, env: dict[str, str], products: int, stock: int) -> None:
    shop = tmp / "shop.yaml"
    shop.write_text(shop_yaml(products, stock))
    load = subprocess.run(
        [sys.executable, "-m", "bot.cli.main", "load", str(shop)],
        env={**env, "PYTHONPATH": str(ROOT)},
        cwd=tmp,
        capture_output=True,
        text=True,
    )
    if load.returncode != 0:
        raise SystemExit(f"plusone load failed: {load.stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shoppers", type=int, default=1000)
    parser.add_argument("--products", type=int, default=20)
    parser.add_argument("--stock", type=int, default=30, help="units of each product (some sell out)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=float, help="offer this many deliveries per second instead of a burst")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="unset: `plusone serve` on its defaults, as `make run` (a worker process beside the web on a "
        "machine with two cores or more); 0: the worker inside `plusone serve`'s process "
        "(PLUSONE_WORKER_PROCESSES=0); N: `serve --no-worker` and N `plusone worker` processes the bench starts",
    )
    parser.add_argument(
        "--separate-emulator",
        action="store_true",
        help="run the Graph emulator (Meta) as a process of its own (`plusone emulator`) instead of inside "
        "`plusone serve`'s demo mode, so that Meta's share of the work is not charged to PlusOne's process",
    )
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--redis", choices=["embedded", "debian"], default="embedded")
    args = parser.parse_args()

    plan = comments(args.shoppers, args.products)
    orders = {cid for cid, _, is_order in plan if is_order}
    everyone = {c for c, _, _ in plan}
    with tempfile.TemporaryDirectory() as tmp, services(Path(tmp) / "data", args.database, args.redis) as backing:
        data = Path(tmp) / "data"
        port = free_port()
        env = {**base_env(port, data), **backing.env}
        load_shop(Path(tmp), env, args.products, args.stock)
        with contextlib.ExitStack() as processes:
            emulator = ""
            if args.separate_emulator:
                # Meta in its own process: PlusOne runs as in production, with a Page token and a Graph URL.
                emulator = f"http://127.0.0.1:{free_port()}"
                env |= {
                    "PLUSONE_GRAPH_URL": emulator,
                    "PLUSONE_PAGE_TOKENS": json.dumps({PAGE_ID: DEMO_PAGE_TOKEN}),
                    "PLUSONE_APP_ID": DEMO_APP_ID,
                }
                command = ["-m", "bot.cli.main", "emulator", "--port", emulator.rsplit(":", 1)[1]]
                command += ["--webhook-url", f"http://127.0.0.1:{port}/webhook"]
                processes.enter_context(child(command, env=env, cwd=Path(tmp)))
                wait_http(f"{emulator}/_emulator/calls")
            if args.workers == 0:
                env["PLUSONE_WORKER_PROCESSES"] = "0"
            serve = ["-m", "bot.cli.main", "serve"] + (["--no-worker"] if args.workers else [])
            processes.enter_context(child(serve, env=env, cwd=Path(tmp)))
            wait_http(f"http://127.0.0.1:{port}/healthz")
            for _ in range(args.workers or 0):  # beside the web process, each with its own core to use
                processes.enter_context(child(["-m", "bot.cli.main", "worker"], env=env, cwd=Path(tmp)))
            wait_for_workers(port, backing.redis_url)
            requests = signed_requests(plan, port)
            # The Graph emulator must know the comments, as Meta does, to take their private replies.
            emulator = emulator or (data / "emulator.url").read_text().strip().rstrip("/")
            asyncio.run(register_comments(emulator, plan))
            acked, send_s = asyncio.run(send_all(port, requests, args.connections, args.rate))
            results = asyncio.run(
                wait_results(
                    backing.database_url,
                    lambda r: orders <= set(r.decided) and len(r.outcomes) >= len(everyone),
                    limit=120,
                )
            )
            finished = time.time()
            server_log = [
                line for log in sorted(Path(tmp).glob("*.log")) for line in log.read_text(errors="replace").splitlines()
            ]

    decided, claims, stock, outcomes = results.decided, results.claims, results.stock, results.outcomes
    delays = sorted((decided[c] - acked[c]) * 1000 for c in orders if c in decided and c in acked)
    first_ack = min(acked.values())
    last_decided = max(decided.values()) if decided else finished
    # Units each order comment asked for, by the same grammar, against the units claimed for it.
    asked = asked_units(plan, args.products)
    lost = sum(1 for c in acked if c not in outcomes) + sum(1 for c, n in asked.items() if claims.get(c, 0) < n)
    duplicated = sum(1 for c, n in asked.items() if claims.get(c, 0) > n)
    oversold = sum(1 for _, st, held, sold in stock if st is not None and held + sold > st)
    pct = lambda p: delays[min(len(delays) - 1, max(0, round(p / 100 * len(delays)) - 1))] if delays else float("nan")  # noqa: E731
    rows = [
        {"what": "webhook (baseline): comments acknowledged/s", "value": round(len(requests) / send_s, 1)},
        {
            "what": "comments/s, acknowledgement to committed stock decision",
            "value": round(len(delays) / max(last_decided - first_ack, 1e-9), 1),
        },
        {"what": "p50 delay (ms)", "value": round(pct(50), 1)},
        {"what": "p99 delay (ms)", "value": round(pct(99), 1)},
        {"what": "order comments decided / sent", "value": f"{len(delays)} / {len(orders)}"},
        {"what": "lost (no outcome, or fewer units claimed than asked)", "value": lost},
        {"what": "duplicated (more units claimed than asked)", "value": duplicated},
        {"what": "oversold products", "value": oversold},
    ]
    print_table(rows, ["what", "value"])
    print(
        f"\n{len(requests)} deliveries ({len(plan) - len(everyone)} re-sent duplicates), "
        f"{args.products} products of {args.stock} units, {args.connections} connections, "
        + layout(args.workers)
        + (", the Graph emulator in its own process" if args.separate_emulator else ", the Graph emulator in serve")
        + f", {'PostgreSQL' if args.database == 'postgresql' else 'SQLite'}, {args.redis} Redis"
        + (f", offered at {args.rate:.0f}/s." if args.rate else ", as fast as the server takes them.")
    )
    print("Goal: 2,000 comments/s, p99 under 250 ms, zero lost, duplicated or oversold.")
    problems = [line for line in server_log if " ERROR " in line or "Traceback" in line]
    if problems or lost:
        print(f"\nThe server logged {len(problems)} errors; its last lines:", *server_log[-15:], sep="\n  ")
    name = {None: "live", 0: "live-one-process"}.get(args.workers, f"live-{args.workers}-workers")
    if args.database != "sqlite" or args.redis != "embedded":
        name += f"-{args.database}-{args.redis}-redis"
    save(name, rows)


if __name__ == "__main__":
    main()
