"""Fault script (issue 9): a replayed live stream while workers, Redis, PostgreSQL and Graph fail; nothing lost.

Run: `.venv/bin/python -m bench.bench_faults`. The live benchmark's stream (bench.bench_live: 1,000 shoppers on
20 products, orders, chatter and re-sent duplicates) is offered at `--rate` deliveries/s to a web process
(`plusone serve --no-worker`, in demo mode: its Graph emulator takes the private replies) and `--workers`
`plusone worker` processes, on a throwaway PostgreSQL cluster (durable defaults) and Debian's redis-server
(append-only file, fsync on every write). While the stream runs the script

- kills a random worker with SIGKILL five times, starting a replacement each time (as systemd's
  Restart=always would);
- kills Redis with SIGKILL once and starts it again on the same append-only file;
- stops PostgreSQL as a crash would (`pg_ctl -m immediate`) once and starts it again;
- makes the Graph emulator fail a `--graph-faults` share of all calls (5xx and timeouts). Not rate limits:
  a throttle now pauses the whole Page until access returns (a minute at least without Meta's estimate),
  so a random share of them would stretch the run past any settle time; the live replay test
  (tests/test_bot/test_outbound/test_send_pressure.py) plays a throttle as Meta does.

A delivery the webhook refuses (503 while Redis is down) or does not answer is sent again a second later, as
Meta retries. After the stream it waits until every acknowledged comment has its outcome and the outbox is
settled, then prints the tally: deliveries acknowledged, comments with exactly one outcome, lost
(acknowledged but no outcome, or fewer units claimed than asked), doubled (two outcomes, or more units than
asked), oversold products, and the outbox: messages sent once, recorded as failed with a reason, still
pending, and sent twice (two successful Send API calls for one outbox row or one comment, read from the
emulator's record). It exits 1 if anything is lost, doubled, oversold, sent twice, left pending, or a
process did not recover.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import func, select

from bench.bench_live import (
    Results,
    Services,
    asked_units,
    base_env,
    comments,
    load_shop,
    read_engine,
    read_results,
    register_comments,
    services,
    signed_requests,
    wait_for_workers,
)
from bench.common import RESULTS, child, free_port, print_table, save, wait_http
from bench.loadgen import _read_response
from bot.runtime.redis_keys import RedisKeys
from bot.store.tables import CommentLog, OutboxMessage

WORKER = ["-m", "bot.cli.main", "worker"]
LOGS = RESULTS / "faults-logs"
# Each kind of Graph fault takes this share of the calls the ones before it let through, so that together
# they fail `share` of all calls: 1 - (1 - each)^n = share.
GRAPH_FAULTS = ("server_error", "timeout")


@dataclass
class Stream:
    """What the shopper side saw: first acknowledgement per comment, and the refusals it retried."""

    acked: dict[str, float] = field(default_factory=dict)
    acknowledged: int = 0  # deliveries answered 200
    refused: Counter[int] = field(default_factory=Counter)  # status -> deliveries refused (then retried)
    no_answer: int = 0  # connection dropped or no answer in time (then retried)
    given_up: int = 0  # still refused when the stream's deadline passed


@dataclass
class Faults:
    log: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def note(self, what: str) -> None:
        line = f"{time.perf_counter() - self.started:6.1f} s  {what}"
        self.log.append(line)
        print(line, flush=True)


async def stream_with_retries(
    port: int, requests: list[tuple[str, bytes]], connections: int, rate: float, retry_s: float = 1.0
) -> Stream:
    """Offer delivery i at i / rate seconds; resend a refused or unanswered delivery after `retry_s`."""
    result = Stream()
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(None)  # opened on first use, and again after a failure
    started = time.perf_counter()
    deadline = started + len(requests) / rate + 300  # Meta gives up after hours; a bench after minutes

    async def deliver(index: int, comment_id: str, request: bytes) -> None:
        await asyncio.sleep(max(0.0, started + index / rate - time.perf_counter()))
        while True:
            conn = await pool.get()
            status = 0
            try:
                if conn is None:
                    conn = await asyncio.open_connection("127.0.0.1", port)
                conn[1].write(request)
                status = await asyncio.wait_for(_read_response(conn[0]), 10)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
                if conn is not None:
                    conn[1].close()
                conn = None
            finally:
                pool.put_nowait(conn)
            if status == 200:
                result.acknowledged += 1
                result.acked.setdefault(comment_id, time.time())
                return
            if status:
                result.refused[status] += 1
            else:
                result.no_answer += 1
            if time.perf_counter() > deadline:
                result.given_up += 1
                return
            await asyncio.sleep(retry_s)

    await asyncio.gather(*(deliver(i, cid, req) for i, (cid, req) in enumerate(requests)))
    while not pool.empty():
        conn = pool.get_nowait()
        if conn is not None:
            conn[1].close()
    return result


class Workers:
    """The `plusone worker` processes, killed and replaced as a supervisor would."""

    def __init__(self, env: dict[str, str], cwd: Path, stack: contextlib.ExitStack) -> None:
        self.env, self.cwd, self.stack = env, cwd, stack
        self.running: list[subprocess.Popen[str]] = []
        self.exits: list[str] = []  # workers that ended on their own (and were started again)

    def start(self) -> None:
        self.running.append(self.stack.enter_context(child(WORKER, env=self.env, cwd=self.cwd)))

    def kill_one(self, rng: random.Random) -> int:
        victim = rng.choice(self.running)
        victim.kill()  # SIGKILL: no shutdown, its pending entries and leased outbox rows stay claimed
        victim.wait()
        self.running.remove(victim)
        self.start()
        return victim.pid

    def crashed(self) -> list[str]:
        return [f"worker {p.pid} exited {p.returncode}" for p in self.running if p.poll() is not None]

    async def supervise(self, faults: Faults, restart_s: float = 2.0) -> None:
        """Start a worker that exits again after `restart_s`, as docs/systemd's Restart=always, RestartSec=2.

        (A worker started while PostgreSQL is down exits at its migration check: the supervisor's job.)
        """
        while True:
            await asyncio.sleep(0.5)
            for proc in [p for p in self.running if p.poll() is not None]:
                self.running.remove(proc)
                self.exits.append(f"worker {proc.pid} exited {proc.returncode}")
                faults.note(f"worker {proc.pid} exited {proc.returncode}; started again in {restart_s:.0f} s")
                await asyncio.sleep(restart_s)
                await asyncio.to_thread(self.start)


async def inject_faults(
    args: argparse.Namespace, backing: Services, workers: Workers, duration: float, faults: Faults
) -> None:
    """Five worker kills, one Redis restart and one PostgreSQL restart at random moments of the stream."""
    rng = random.Random(args.seed)
    events = ["worker"] * args.kills + ["redis", "postgresql"]
    rng.shuffle(events)
    # Spread over the middle of the stream, at least a little apart, so that each fault meets traffic.
    slots = sorted(rng.uniform(0.1, 0.85) * duration for _ in events)
    began = time.perf_counter()
    for at, event in zip(slots, events, strict=True):
        await asyncio.sleep(max(0.0, began + at - time.perf_counter()))
        if event == "worker":
            pid = await asyncio.to_thread(workers.kill_one, rng)
            faults.note(f"kill -9 worker {pid}; a replacement starts")
        elif event == "redis":
            assert backing.redis is not None
            await asyncio.to_thread(backing.redis.kill)
            faults.note("kill -9 Redis")
            await asyncio.sleep(args.down_s)
            await asyncio.to_thread(backing.redis.start)
            faults.note("Redis started again on its append-only file")
        else:
            assert backing.postgres is not None
            await asyncio.to_thread(backing.postgres.stop_server, "immediate")
            faults.note("PostgreSQL stopped (immediate: as a crash)")
            await asyncio.sleep(args.down_s)
            await asyncio.to_thread(backing.postgres.start_server)
            faults.note("PostgreSQL started again (WAL recovery)")


def emulator_json(emulator: str, method: str, path: str, body: object | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{emulator}/_emulator/{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def set_graph_faults(emulator: str, share: float, seed: int) -> None:
    each = 1 - (1 - share) ** (1 / len(GRAPH_FAULTS))
    for n, kind in enumerate(GRAPH_FAULTS):
        body: dict[str, object] = {"kind": kind, "share": round(each, 4), "seed": seed + n}
        if kind == "server_error":
            body["status"] = 503
        if kind == "timeout":
            body["delay_s"] = 30  # longer than the senders' Graph timeout: they give up and retry
        emulator_json(emulator, "POST", "faults", body)


@dataclass
class Outbox:
    statuses: Counter[str]
    failed_without_reason: int
    sent_ids: set[int]
    failed_ids: set[int]
    comment_counts: Counter[str]  # comment id -> comment_log rows of verb "add"


async def read_outbox(database_url: str) -> Outbox:
    engine = await read_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(select(OutboxMessage.id, OutboxMessage.status, OutboxMessage.error_message))
            ).all()
            counts = (
                await conn.execute(
                    select(CommentLog.comment_id, func.count())
                    .where(CommentLog.verb == "add")
                    .group_by(CommentLog.comment_id)
                )
            ).all()
    finally:
        await engine.dispose()
    return Outbox(
        statuses=Counter(status for _, status, _ in rows),
        failed_without_reason=sum(1 for _, status, error in rows if status in ("failed", "refused") and not error),
        sent_ids={oid for oid, status, _ in rows if status == "sent"},
        failed_ids={oid for oid, status, _ in rows if status in ("failed", "refused")},
        comment_counts=Counter({cid: int(n) for cid, n in counts}),
    )


def delivered_sends(calls: list[dict[str, Any]]) -> tuple[Counter[int], Counter[str]]:
    """Successful Send API calls per outbox row (its metadata) and per comment (private replies)."""
    per_row: Counter[int] = Counter()
    per_comment: Counter[str] = Counter()
    for call in calls:
        if call["method"] != "POST" or call["status"] != 200 or not call["path"].endswith("/messages"):
            continue
        body = call.get("body") or {}
        message = body.get("message") if isinstance(body, dict) else None
        metadata = message.get("metadata") if isinstance(message, dict) else None
        if isinstance(metadata, str) and metadata.startswith("plusone:outbox:"):
            per_row[int(metadata.rsplit(":", 1)[1])] += 1
        recipient = body.get("recipient") if isinstance(body, dict) else None
        if isinstance(recipient, dict) and recipient.get("comment_id"):
            per_comment[str(recipient["comment_id"])] += 1
    return per_row, per_comment


async def settle(
    backing: Services, everyone_acked: set[str], orders: set[str], limit: float
) -> tuple[Results, Outbox, float, int]:
    """Wait until every acknowledged comment has its outcome, the stream is drained and the outbox settled.

    Also returns the number of dead letters: deliveries the workers gave up on, which never get an outcome
    (once the stream is drained and nothing changes for a few seconds, waiting longer will not help).
    """
    keys = RedisKeys("plusone")
    client = aioredis.Redis.from_url(backing.redis_url)
    engine = await read_engine(backing.database_url)
    started = time.perf_counter()
    results, outbox, dead, quiet = Results(), Outbox(Counter(), 0, set(), set(), Counter()), 0, 0
    try:
        while time.perf_counter() - started < limit:
            with contextlib.suppress(Exception):  # the database may still be recovering
                results = await read_results(engine)
                outbox = await read_outbox(backing.database_url)
                backlog = int(await client.xlen(keys.ingest_stream))
                dead = int(await client.xlen(keys.dead_letters))
                drained = backlog == 0 and not (outbox.statuses["pending"] or outbox.statuses["sending"])
                quiet = quiet + 1 if drained else 0
                complete = everyone_acked <= set(results.outcomes) and (orders & everyone_acked) <= set(results.decided)
                if drained and (complete or (dead and quiet >= 10)):
                    break
            await asyncio.sleep(1)
    finally:
        await client.aclose()
        await engine.dispose()
    return results, outbox, time.perf_counter() - started, dead


def tally(
    plan: list[tuple[str, str, bool]],
    asked: dict[str, int],
    stream: Stream,
    results: Results,
    outbox: Outbox,
    calls: list[dict[str, Any]],
    exits: list[str],
    crashed: list[str],
    settle_s: float,
    dead: int = 0,
) -> tuple[list[dict[str, object]], dict[str, list[Any]]]:
    """The printed rows, and each kind of problem found with the comments, rows or processes it concerns."""
    acked = set(stream.acked)
    counts = outbox.comment_counts
    lost_outcome = sorted(c for c in acked if counts[c] == 0)
    lost_units = sorted(c for c in acked if c in asked and results.claims.get(c, 0) < asked[c])
    doubled_outcome = sorted(c for c in acked if counts[c] > 1)
    doubled_units = sorted(c for c in asked if results.claims.get(c, 0) > asked[c])
    oversold = [code for code, units, held, sold in results.stock if units is not None and held + sold > units]
    per_row, per_comment = delivered_sends(calls)
    sent_twice = sorted({f"outbox {oid}" for oid, n in per_row.items() if n > 1})
    sent_twice += sorted(f"comment {cid}" for cid, n in per_comment.items() if n > 1)
    sent_unseen = sorted(oid for oid in outbox.sent_ids if per_row[oid] == 0)  # "sent" with no accepted call
    failed_but_sent = sorted(oid for oid in outbox.failed_ids if per_row[oid] > 0)
    pending = outbox.statuses["pending"] + outbox.statuses["sending"]
    graph_failed = sum(1 for c in calls if c["status"] is not None and c["status"] >= 400)
    rows = [
        {"what": "deliveries sent / acknowledged", "value": f"{len(plan)} / {stream.acknowledged}"},
        {
            "what": "deliveries refused or unanswered, then re-sent",
            "value": f"{sum(stream.refused.values())} ({dict(stream.refused)}), {stream.no_answer} unanswered",
        },
        {"what": "comments acknowledged", "value": len(acked)},
        {"what": "deliveries dead-lettered by the workers", "value": dead},
        {"what": "comments with exactly one outcome", "value": sum(1 for c in acked if counts[c] == 1)},
        {"what": "lost (no outcome)", "value": len(lost_outcome)},
        {"what": "lost (fewer units claimed than asked)", "value": len(lost_units)},
        {
            "what": "doubled (two outcomes, or more units than asked)",
            "value": len(doubled_outcome) + len(doubled_units),
        },
        {"what": "oversold products", "value": len(oversold)},
        {"what": "messages sent once", "value": sum(1 for oid in outbox.sent_ids if per_row[oid] == 1)},
        {
            "what": "messages recorded as failed, with a reason",
            "value": len(outbox.failed_ids) - outbox.failed_without_reason,
        },
        {"what": "messages failed without a reason", "value": outbox.failed_without_reason},
        {"what": "messages still pending", "value": pending},
        {"what": "messages sent twice", "value": len(sent_twice)},
        {"what": "messages recorded sent, never accepted by Graph", "value": len(sent_unseen)},
        {"what": "messages recorded failed, though accepted by Graph", "value": len(failed_but_sent)},
        {"what": "Graph calls failed by the emulator / all", "value": f"{graph_failed} / {len(calls)}"},
        {"what": "workers that exited on their own (started again)", "value": len(exits)},
        {"what": "processes that did not recover", "value": len(crashed)},
        {"what": "seconds from the stream's end until all settled", "value": round(settle_s)},
    ]
    bad = {
        "lost (no outcome)": lost_outcome,
        "lost (units)": lost_units,
        "doubled (outcomes)": doubled_outcome,
        "doubled (units)": doubled_units,
        "oversold": oversold,
        "sent twice": sent_twice,
        "recorded sent, never accepted": sent_unseen,
        "recorded failed, though accepted": failed_but_sent,
        "never acknowledged": sorted({c for c, _, _ in plan} - acked),
        "processes that did not recover": crashed,
        "dead letters": [dead] if dead else [],
    }
    problems = {k: v for k, v in bad.items() if v} | ({"pending": [pending]} if pending else {})
    problems |= {"failed without a reason": [outbox.failed_without_reason]} if outbox.failed_without_reason else {}
    return rows, problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shoppers", type=int, default=1000)
    parser.add_argument("--products", type=int, default=20)
    parser.add_argument("--stock", type=int, default=30)
    parser.add_argument("--rate", type=float, default=40.0, help="deliveries offered per second (a live's pace)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kills", type=int, default=5, help="workers killed with SIGKILL during the stream")
    parser.add_argument("--down-s", type=float, default=3.0, help="how long Redis and PostgreSQL stay down")
    parser.add_argument("--graph-faults", type=float, default=0.2, help="share of Graph calls that fail")
    parser.add_argument("--settle", type=float, default=300.0, help="seconds to wait for everything to settle")
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args()

    plan = comments(args.shoppers, args.products)
    orders = {cid for cid, _, is_order in plan if is_order}
    asked = asked_units(plan, args.products)
    faults = Faults()
    with tempfile.TemporaryDirectory() as tmp, services(Path(tmp) / "data", "postgresql", "debian") as backing:
        data = Path(tmp) / "data"
        port = free_port()
        # A killed worker's unacknowledged entries are claimed by another after this idle time (default 30 s).
        env = {**base_env(port, data), **backing.env, "PLUSONE_WORKER_CLAIM_IDLE_MS": "5000"}
        env["PLUSONE_GRAPH_TIMEOUT_S"] = "5"  # senders give up on a held ("timeout") call after 5 s
        load_shop(Path(tmp), env, args.products, args.stock)
        with contextlib.ExitStack() as processes:
            web = processes.enter_context(child(["-m", "bot.cli.main", "serve", "--no-worker"], env=env, cwd=Path(tmp)))
            wait_http(f"http://127.0.0.1:{port}/healthz")
            workers = Workers(env, Path(tmp), processes)
            for _ in range(args.workers):
                workers.start()
            wait_for_workers(port, backing.redis_url)
            requests = signed_requests(plan, port)
            emulator = (data / "emulator.url").read_text().strip().rstrip("/")
            asyncio.run(register_comments(emulator, plan))
            set_graph_faults(emulator, args.graph_faults, args.seed)
            duration = len(requests) / args.rate
            faults.note(f"stream of {len(requests)} deliveries at {args.rate:.0f}/s (~{duration:.0f} s) starts")

            async def run() -> tuple[Stream, Results, Outbox, float, int]:
                supervisor = asyncio.create_task(workers.supervise(faults))
                injector = asyncio.create_task(inject_faults(args, backing, workers, duration, faults))
                stream = await stream_with_retries(port, requests, args.connections, args.rate)
                await injector
                faults.note(f"stream over; settling (up to {args.settle:.0f} s)")
                results, outbox, settle_s, dead = await settle(backing, set(stream.acked), orders, args.settle)
                faults.note(f"settled after {settle_s:.0f} s")
                supervisor.cancel()
                return stream, results, outbox, settle_s, dead

            stream, results, outbox, settle_s, dead = asyncio.run(run())
            calls = emulator_json(emulator, "GET", "calls")
            crashed = workers.crashed() + ([f"web {web.pid} exited {web.returncode}"] if web.poll() is not None else [])
            server_log = [
                line for log in sorted(Path(tmp).glob("*.log")) for line in log.read_text(errors="replace").splitlines()
            ]
            # The processes' logs outlive the run, for looking into a problem.
            shutil.rmtree(LOGS, ignore_errors=True)
            shutil.copytree(Path(tmp), LOGS, ignore=lambda _dir, names: [n for n in names if not n.endswith(".log")])

    rows, problems = tally(plan, asked, stream, results, outbox, calls, workers.exits, crashed, settle_s, dead)
    print()
    print_table(rows, ["what", "value"])
    print(
        f"\n{len(plan)} deliveries ({len(plan) - len(set(c for c, _, _ in plan))} re-sent duplicates) at "
        f"{args.rate:.0f}/s, {args.products} products of {args.stock} units; a web process and {args.workers} "
        f"workers on PostgreSQL and Debian's redis-server; {args.kills} worker kills, one Redis kill and one "
        f"PostgreSQL crash-stop ({args.down_s:.0f} s down each), {args.graph_faults:.0%} of Graph calls failing."
    )
    if len(calls) >= 10_000:
        print("Note: the emulator keeps its last 10,000 calls; older sends were not checked for doubles.")
    save("faults", {"rows": rows, "faults": faults.log, "problems": {k: v[:50] for k, v in problems.items()}})
    if problems:
        for what, items in problems.items():
            print(f"PROBLEM {what}: {items[:20]}")
        errors = [line for line in server_log if " ERROR " in line or "Traceback" in line]
        print(f"\nThe processes logged {len(errors)} errors (logs in {LOGS})")
        raise SystemExit(1)
    print("Nothing lost, doubled, oversold or sent twice.")


if __name__ == "__main__":
    main()
