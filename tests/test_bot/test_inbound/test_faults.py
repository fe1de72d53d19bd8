"""Faults on a small scale (issue 9): bench.bench_faults' tally while workers and Redis are killed mid-stream.

Real processes as in production: `plusone serve --no-worker` in demo mode (its Graph emulator takes the
private replies, failing a share of them) and two `plusone worker` processes, on this run's database
(SQLite, or PostgreSQL in make test's second pass) and a Redis server of the test's own that it can kill.
During a short stream of signed comment webhooks a worker is killed with SIGKILL twice (each time replaced),
and Redis is killed and started again on its append-only file. Deliveries refused while Redis is down are
sent again, as Meta does. Then every acknowledged comment must have exactly one outcome and its units, no
product may be oversold, and every message must be sent once or recorded as failed with its reason.
The full-size run, with a PostgreSQL crash too, is `python -m bench.bench_faults`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from pathlib import Path

from bench.bench_faults import Faults, Outbox, Stream, Workers, emulator_json, settle, stream_with_retries, tally
from bench.bench_live import (
    Results,
    Services,
    asked_units,
    base_env,
    comments,
    load_shop,
    register_comments,
    signed_requests,
    wait_for_workers,
)
from bench.common import child, free_port, wait_http
from bot.runtime.embedded_redis import EmbeddedRedis
from tests.conftest import database_url

PRODUCTS, STOCK = 3, 6  # few units: some products sell out, so overselling would show


def test_nothing_is_lost_doubled_or_oversold_when_workers_and_redis_are_killed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    redis_server = EmbeddedRedis(tmp_path / "redis", appendfsync="always")
    redis_server.start()
    try:
        db_url = database_url(tmp_path)
        port = free_port()
        env = {
            **base_env(port, data),
            "PLUSONE_DATABASE_URL": db_url,
            "PLUSONE_REDIS_URL": redis_server.url,
            "PLUSONE_WORKER_CLAIM_IDLE_MS": "1000",  # a killed worker's entries are claimed by another soon
        }
        backing = Services(env, redis_server.url, db_url, redis=redis_server)
        load_shop(tmp_path, env, PRODUCTS, STOCK)
        plan = comments(40, PRODUCTS, seed=3)
        orders = {cid for cid, _, is_order in plan if is_order}
        faults = Faults()
        with contextlib.ExitStack() as processes:
            processes.enter_context(child(["-m", "bot.cli.main", "serve", "--no-worker"], env=env, cwd=tmp_path))
            wait_http(f"http://127.0.0.1:{port}/healthz")
            workers = Workers(env, tmp_path, processes)
            workers.start()
            workers.start()
            wait_for_workers(port, redis_server.url)
            emulator = (data / "emulator.url").read_text().strip().rstrip("/")
            asyncio.run(register_comments(emulator, plan))
            # Graph answers a fifth of the calls with a 5xx: fast failures, retried with backoff.
            for seed, status in ((1, 500), (2, 503)):
                fault = {"kind": "server_error", "status": status, "share": 0.1, "seed": seed}
                emulator_json(emulator, "POST", "faults", fault)

            async def run() -> tuple[Stream, Results, Outbox, float, int]:
                supervisor = asyncio.create_task(workers.supervise(faults))
                stream_task = asyncio.create_task(stream_with_retries(port, signed_requests(plan, port), 4, rate=20))
                rng = random.Random(5)
                await asyncio.sleep(0.5)
                await asyncio.to_thread(workers.kill_one, rng)
                await asyncio.sleep(0.5)
                await asyncio.to_thread(redis_server.kill)
                await asyncio.sleep(1)
                await asyncio.to_thread(redis_server.start)
                await asyncio.to_thread(workers.kill_one, rng)
                stream = await stream_task
                results, outbox, settle_s, dead = await settle(backing, set(stream.acked), orders, limit=120)
                supervisor.cancel()
                return stream, results, outbox, settle_s, dead

            stream, results, outbox, settle_s, dead = asyncio.run(run())
            calls = emulator_json(emulator, "GET", "calls")
            crashed = workers.crashed()
    finally:
        redis_server.stop()

    asked = asked_units(plan, PRODUCTS)
    rows, problems = tally(plan, asked, stream, results, outbox, calls, [], crashed, settle_s, dead)
    assert problems == {}, rows
    assert stream.refused[503] > 0  # Redis was really down while deliveries came
    assert len(stream.acked) == len({cid for cid, _, _ in plan})
    assert outbox.sent_ids  # private replies went out
    assert any(call["status"] >= 500 for call in calls)  # and Graph really failed some
    assert sum(sold + held for _, _, held, sold in results.stock) == PRODUCTS * STOCK  # sold out, not beyond
