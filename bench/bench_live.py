"""Live-stream benchmark (issue 5): comments from 1,000 shoppers on 20 products, as fast as the server takes them.

Run: `.venv/bin/python -m bench.bench_live`. `plusone serve` runs as a child on embedded Redis and SQLite,
in demo mode (the Graph emulator takes the private replies), with a 20-product shop loaded by
`plusone load`. The comments (orders, chatter, emoji, Chinese, and re-sent duplicates) go to
`POST /webhook` signed like Meta's. For every order comment it measures the time from the webhook's 200
to its stock decision committed in SQL, then prints comments/s, p50 and p99 of that delay, and checks:
lost (an acknowledged comment with no recorded outcome), duplicated (a comment claimed twice) and oversold
(held + sold above stock). Goal: 2,000 comments/s, p99 under 250 ms, zero lost, duplicated or oversold.
The baseline, measured in the same run, is how fast the same webhook alone acknowledges the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import redis

from bench.common import ROOT, child, free_port, print_table, save, wait_http
from bench.loadgen import _read_response, build_request
from bot import webhook_factory as wf
from bot.embedded_redis import EmbeddedRedis
from bot.redis_keys import RedisKeys
from parsers.order_comment import OrderParser

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


def wait_for_workers(port: int, data: Path, limit: float = 60.0) -> None:
    """Wait until a worker has processed a warm-up delivery (a worker takes seconds to import and connect)."""
    payload = wf.comment_delivery(page_id=PAGE_ID, post_id="warmup", message="hello", user_id="1", comment_id="w_1")
    body, headers = wf.signed(payload, SECRET)
    request = urllib.request.Request(f"http://127.0.0.1:{port}/webhook", data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    client = redis.Redis.from_url(EmbeddedRedis(data).url)
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


def read_results(db: Path) -> tuple[dict[str, float], dict[str, int], list[tuple[str, int, int, int]], dict[str, str]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        decided = {
            cid: datetime.fromisoformat(at).replace(tzinfo=UTC).timestamp()
            for cid, at in con.execute(
                "SELECT comment_id, MAX(decided_at) FROM stock_claim WHERE decided_at IS NOT NULL GROUP BY comment_id"
            )
        }
        claims = dict(con.execute("SELECT comment_id, SUM(qty) FROM stock_claim GROUP BY comment_id"))
        stock = list(con.execute("SELECT code, stock, held, sold FROM product"))
        outcomes = dict(con.execute("SELECT comment_id, outcome FROM comment_log WHERE verb = 'add'"))
    finally:
        con.close()
    return decided, claims, stock, outcomes


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
        default=0,
        help="0: the worker runs inside `plusone serve` (one process, as `make run`); N: `serve --no-worker` "
        "and N `plusone worker` processes",
    )
    args = parser.parse_args()

    plan = comments(args.shoppers, args.products)
    orders = {cid for cid, _, is_order in plan if is_order}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        port = free_port()
        env = {
            "PLUSONE_APP_SECRET": SECRET,
            "PLUSONE_VERIFY_TOKEN": "v",
            "PLUSONE_ADMIN_TOKEN": "a",
            "PLUSONE_PORT": str(port),
            "PLUSONE_DATA_DIR": str(data),
            "PLUSONE_LOG_LEVEL": "WARNING",
            "PLUSONE_DEMO_EMULATOR_PORT": "0",
        }
        shop = Path(tmp) / "shop.yaml"
        shop.write_text(shop_yaml(args.products, args.stock))
        load = subprocess.run(
            [sys.executable, "-m", "bot.cli", "load", str(shop)],
            env={**env, "PYTHONPATH": str(ROOT)},
            cwd=tmp,
            capture_output=True,
            text=True,
        )
        if load.returncode != 0:
            raise SystemExit(f"plusone load failed: {load.stderr}")
        with contextlib.ExitStack() as processes:
            serve = ["-m", "bot.cli", "serve"] + (["--no-worker"] if args.workers else [])
            processes.enter_context(child(serve, env=env, cwd=Path(tmp)))
            wait_http(f"http://127.0.0.1:{port}/healthz")
            for _ in range(args.workers):  # beside the web process, each with its own core to use
                processes.enter_context(child(["-m", "bot.cli", "worker"], env=env, cwd=Path(tmp)))
            wait_for_workers(port, data)
            requests = []
            for comment_id, text, _ in plan:
                payload = wf.comment_delivery(
                    page_id=PAGE_ID,
                    post_id=POST,
                    message=text,
                    user_id=author_of(comment_id),
                    comment_id=comment_id,
                )
                body, headers = wf.signed(payload, SECRET)
                requests.append((comment_id, build_request("127.0.0.1", port, "/webhook", body, headers)))
            # The demo's Graph emulator must know the comments, as Meta does, to take their private replies.
            emulator = (data / "emulator.url").read_text().strip().rstrip("/")
            asyncio.run(register_comments(emulator, plan))
            acked, send_s = asyncio.run(send_all(port, requests, args.connections, args.rate))
            deadline = time.time() + 120
            decided: dict[str, float] = {}
            while time.time() < deadline:
                decided, claims, stock, outcomes = read_results(data / "plusone.db")
                if orders <= set(decided) and len(outcomes) >= len({c for c, _, _ in plan}):
                    break
                time.sleep(0.25)
            finished = time.time()
            server_log = [
                line for log in sorted(Path(tmp).glob("*.log")) for line in log.read_text(errors="replace").splitlines()
            ]

    delays = sorted((decided[c] - acked[c]) * 1000 for c in orders if c in decided and c in acked)
    first_ack = min(acked.values())
    last_decided = max(decided.values()) if decided else finished
    # Units each order comment asked for, by the same grammar, against the units claimed for it.
    grammar = OrderParser.from_codes([f"P{i:02d}" for i in range(1, args.products + 1)])
    asked = {cid: sum(item.qty for item in grammar.parse(text).items) for cid, text, is_order in plan if is_order}
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
        f"\n{len(requests)} deliveries ({len(plan) - len({c for c, _, _ in plan})} re-sent duplicates), "
        f"{args.products} products of {args.stock} units, {args.connections} connections, "
        + ("web and worker in one process" if not args.workers else f"a web process and {args.workers} worker(s)")
        + (f", offered at {args.rate:.0f}/s." if args.rate else ", as fast as the server takes them.")
    )
    print("Goal: 2,000 comments/s, p99 under 250 ms, zero lost, duplicated or oversold.")
    problems = [line for line in server_log if " ERROR " in line or "Traceback" in line]
    if problems or lost:
        print(f"\nThe server logged {len(problems)} errors; its last lines:", *server_log[-15:], sep="\n  ")
    save("live" if not args.workers else f"live-{args.workers}-workers", rows)


if __name__ == "__main__":
    main()
