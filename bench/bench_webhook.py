"""Webhook edge benchmark: signed deliveries to `POST /webhook` vs a bare aiohttp endpoint, same load.

Run: `.venv/bin/python -m bench.bench_webhook` (or `make bench`). Each server runs in its own process
(PlusOne with its embedded Redis, `appendfsync always`); the load generator runs in this one. For each
target it measures the maximum rate (closed loop) and the latency at a fixed 1,000 deliveries/s (open
loop), then prints both and PlusOne's share of the bare endpoint's throughput. Goal (issue 2): at least
60% of the bare rate, p99 under 20 ms at 1,000/s; and every acknowledged delivery is in the stream.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import urllib.request
from pathlib import Path

from bench.common import child, free_port, print_table, save, wait_http
from bench.loadgen import LoadResult, build_request, closed_loop, open_loop
from bot.inbound import webhook_factory as wf

SECRET = "bench-app-secret"
PAGE_ID = "1000000000001"
COMMENTS = ["A+1", "b+2 thanks", "我要A+1, C+2", "好靚！", "Ａ＋１", "❤️B+1", "how much?", "L size please", "+1"]


def deliveries(count: int) -> list[tuple[bytes, dict[str, str]]]:
    rng = random.Random(7)
    out = []
    for i in range(count):
        if i % 4 == 3:
            payload = wf.message_delivery(page_id=PAGE_ID, psid=str(3_000_000 + i), text=rng.choice(COMMENTS))
        else:
            payload = wf.comment_delivery(
                page_id=PAGE_ID,
                post_id="2000000000001",
                message=rng.choice(COMMENTS),
                user_id=str(3_000_000 + i),
                user_name=f"Shopper {i} 陳",
            )
        out.append(wf.signed(payload, SECRET))
    return out


async def measure(port: int, requests: list[bytes], label: str, args: argparse.Namespace) -> list[LoadResult]:
    """Warm-up, then the maximum rate at each concurrency, then latency at a fixed rate."""
    runs = [await closed_loop("127.0.0.1", port, requests, connections=32, duration_s=1.0, label="warm-up")]
    for connections in args.connections:
        runs.append(
            await closed_loop(
                "127.0.0.1",
                port,
                requests,
                connections=connections,
                duration_s=args.duration,
                label=f"{label} max, {connections} conns",
            )
        )
    runs.append(
        await open_loop(
            "127.0.0.1",
            port,
            requests,
            rate=args.rate,
            duration_s=args.duration,
            connections=32,
            label=f"{label} @{args.rate:g}/s",
        )
    )
    return runs


def stream_backlog(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
        return int(json.loads(resp.read())["checks"]["stream"]["backlog"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument(
        "--connections", type=int, nargs="+", default=[32, 128], help="concurrent connections for the maximum-rate runs"
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="fixed rate for the latency run")
    parser.add_argument("--fsync", default="always", choices=["always", "everysec"], help="embedded Redis appendfsync")
    args = parser.parse_args()

    signed = deliveries(4000)
    results: list[LoadResult] = []
    accepted_in_stream = None
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        with child(["-m", "bench.bare_server", str(port)]):
            wait_http(f"http://127.0.0.1:{port}/nothing")
            reqs = [build_request("127.0.0.1", port, "/webhook", body, hdrs) for body, hdrs in signed]
            results += asyncio.run(measure(port, reqs, "bare aiohttp", args))

        port = free_port()
        env = {
            "PLUSONE_APP_SECRET": SECRET,
            "PLUSONE_VERIFY_TOKEN": "v",
            "PLUSONE_ADMIN_TOKEN": "a",
            "PLUSONE_REDIS_APPENDFSYNC": args.fsync,
            "PLUSONE_PORT": str(port),
            "PLUSONE_DATA_DIR": str(Path(tmp) / "data"),
            "PLUSONE_LOG_LEVEL": "WARNING",
        }
        with child(["-m", "bot.cli.main", "serve", "--no-worker"], env=env, cwd=Path(tmp)):
            wait_http(f"http://127.0.0.1:{port}/healthz")
            reqs = [build_request("127.0.0.1", port, "/webhook", body, hdrs) for body, hdrs in signed]
            plusone = asyncio.run(measure(port, reqs, "PlusOne /webhook", args))
            results += plusone
            acknowledged = sum(r.statuses.get(200, 0) for r in plusone)
            accepted_in_stream = stream_backlog(port)

    rows = [r.summary() for r in results if r.label != "warm-up"]
    print_table(rows, ["label", "requests", "rps", "p50_ms", "p99_ms", "max_ms", "statuses", "errors"])
    half = len(results) // 2
    bare, ours = results[1:half], results[half + 1 :]
    ratios = {}
    for connections, bare_run, our_run in zip(args.connections, bare, ours, strict=False):
        ratios[connections] = our_run.rate / bare_run.rate if bare_run.rate else 0.0
        print(
            f"\nWith {connections} connections PlusOne reaches {ratios[connections]:.0%} of the bare endpoint's "
            "throughput (goal: at least 60%).",
            end="",
        )
    print(f"\np99 at {args.rate:g}/s: {ours[-1].percentile(99):.2f} ms (goal: under 20 ms).")
    verdict = "none lost" if acknowledged == accepted_in_stream else "MISMATCH"
    print(f"Deliveries acknowledged with 200: {acknowledged}; entries in the stream: {accepted_in_stream} ({verdict}).")
    path = save(
        "webhook", {"runs": rows, "ratios": ratios, "acknowledged": acknowledged, "stream_entries": accepted_in_stream}
    )
    print(f"Figures saved to {path}")


if __name__ == "__main__":
    main()
