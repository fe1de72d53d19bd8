"""Graph client benchmark (issue 18): `send_message` through python-facebook-api in threads vs aiohttp.

Run: `.venv/bin/python -m bench.bench_graph`. The Graph emulator runs in a process of its own (this module
with `--serve PORT`: one Page, its Send API rate limit lifted so the transport is what is measured, no
echoes). Both processes run on uvloop, as `plusone serve` does. In this process, for each concurrency N,
`--sends` messages go out through N concurrent senders by:

- **bare aiohttp**: one `ClientSession` posting the Send API's JSON, nothing else: the floor;
- **aiohttp GraphClient**: `bot.outbound.graph.GraphClient.send_message` as PlusOne calls it now;
- **python-facebook-api in threads**: the adapter as it was before issue 18 (kept here as the baseline,
  verbatim in what matters): a `GraphAPI` per thread of a 16-thread pool, `post_object` with the nested
  values as JSON strings in a form, awaited with `run_in_executor`.

For each it prints sends per second and p50/p99 latency, as fast as N concurrent senders go and at a fixed
`--rate` (270/s: PlusOne's limiter, 90% of Meta's 300 messages/s per Page), and the event loop's lag while
sending: a ticker task sleeps 1 ms in a loop, and its extra waits (p99, max) are moments the loop could run
nothing else (the webhook's answers, the inbox's updates). At full speed the loop is busy by design; the
fixed rate shows what sending costs the rest of the process. Figures go to bench/results/graph.json; docs/benchmarks.md
keeps a run's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import uvloop

from bench.common import child, free_port, print_table, save, wait_http

PAGE_ID = "1000000000001"
TOKEN = "bench-page-token"
SECRET = "bench-app-secret"
VERSION = "v26.0"
PSIDS = [str(3_000_000_000 + i) for i in range(50)]

Send = Callable[[int], Awaitable[None]]


# --- the emulator, in its own process ------------------------------------------------------------------


def serve(port: int) -> None:
    from aiohttp import web

    from bot.emulator.app import create_emulator_app
    from bot.emulator.config import EmulatedPage, EmulatorConfig

    config = EmulatorConfig(
        pages={PAGE_ID: EmulatedPage(TOKEN, "Bench Shop", "benchshop")},
        app_secret=SECRET,
        send_echoes=False,
        messages_per_second=10**9,  # the transport is measured here, not Meta's limit
        max_records=1000,
    )
    web.run_app(
        create_emulator_app(config),
        host="127.0.0.1",
        port=port,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


def open_windows(base: str) -> None:
    for psid in PSIDS:
        body = json.dumps({"page_id": PAGE_ID, "psid": psid}).encode()
        request = urllib.request.Request(
            f"{base}_emulator/activity", data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        urllib.request.urlopen(request, timeout=5).close()


# --- the three ways to send ------------------------------------------------------------------------------


def message(i: int) -> tuple[dict[str, str], dict[str, Any]]:
    return {"id": PSIDS[i % len(PSIDS)]}, {"text": f"已加入購物車 A x1 (#{i})"}


class ThreadedPyfacebook:
    """The pre-issue-18 transport: python-facebook-api, blocking, one GraphAPI per thread, 16 threads."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="graph")
        self.local = threading.local()

    def _api(self) -> Any:
        api = getattr(self.local, "api", None)
        if api is None:
            from pyfacebook import GraphAPI

            api = GraphAPI(
                app_secret=SECRET,
                access_token=TOKEN,
                version=VERSION,
                base_url=self.base,
                timeout=20,
                sleep_on_rate_limit=False,
                ignore_version_check=True,
            )
            self.local.api = api
        return api

    async def send(self, i: int) -> None:
        recipient, body = message(i)
        data = {
            "recipient": json.dumps(recipient, ensure_ascii=False),
            "message": json.dumps(body, ensure_ascii=False),
            "messaging_type": "RESPONSE",
        }

        def run() -> None:
            reply = self._api().post_object(object_id=PAGE_ID, connection="messages", data=data)
            assert reply.get("message_id"), reply

        await asyncio.get_running_loop().run_in_executor(self.executor, run)

    async def close(self) -> None:
        self.executor.shutdown(wait=True)


class BareAiohttp:
    def __init__(self, base: str) -> None:
        import aiohttp

        from bot.outbound.graph import appsecret_proof

        self.session = aiohttp.ClientSession()
        self.url = f"{base}{VERSION}/{PAGE_ID}/messages"
        self.params = {"access_token": TOKEN, "appsecret_proof": appsecret_proof(SECRET, TOKEN)}

    async def send(self, i: int) -> None:
        recipient, body = message(i)
        payload = {"recipient": recipient, "message": body, "messaging_type": "RESPONSE"}
        async with self.session.post(self.url, params=self.params, json=payload) as resp:
            reply = await resp.json()
        assert reply.get("message_id"), reply

    async def close(self) -> None:
        await self.session.close()


class AiohttpGraphClient:
    def __init__(self, base: str) -> None:
        from bot.outbound.graph import GraphClient

        self.graph = GraphClient(base_url=base, version=VERSION, app_secret=SECRET, page_tokens={PAGE_ID: TOKEN})

    async def send(self, i: int) -> None:
        recipient, body = message(i)
        await self.graph.send_message(PAGE_ID, recipient, body)

    async def close(self) -> None:
        await self.graph.aclose()


# --- measuring -------------------------------------------------------------------------------------------


class Ticker:
    """Sleeps 1 ms in a loop; each extra wait is a moment the loop could run nothing else."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            self.lags.append(max(0.0, time.perf_counter() - start - 0.001))

    def __enter__(self) -> Ticker:
        self._task = asyncio.create_task(self._tick())
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._task is not None:
            self._task.cancel()

    def figures(self) -> dict[str, float]:
        cuts = statistics.quantiles(self.lags, n=100, method="inclusive") if len(self.lags) > 1 else [0.0] * 99
        return {"lag_p99_ms": round(cuts[98] * 1000, 2), "lag_max_ms": round(max(self.lags, default=0) * 1000, 2)}


def summary(label: str, load: str, latencies: list[float], elapsed: float, ticker: Ticker) -> dict[str, Any]:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "label": label,
        "load": load,
        "sends": len(latencies),
        "rps": round(len(latencies) / elapsed),
        "p50_ms": round(cuts[49] * 1000, 2),
        "p99_ms": round(cuts[98] * 1000, 2),
        **ticker.figures(),
    }


async def timed(send: Send, i: int, latencies: list[float]) -> None:
    start = time.perf_counter()
    await send(i)
    latencies.append(time.perf_counter() - start)


async def closed_loop(label: str, send: Send, concurrency: int, sends: int) -> dict[str, Any]:
    """As fast as it goes with `concurrency` senders, each sending its next message when one is answered."""
    latencies: list[float] = []
    counter = iter(range(sends))

    async def sender() -> None:
        for i in counter:
            await timed(send, i, latencies)

    with Ticker() as ticker:
        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return summary(label, f"max, {concurrency} concurrent", latencies, elapsed, ticker)


async def fixed_rate(label: str, send: Send, rate: float, sends: int) -> dict[str, Any]:
    """`rate` sends a second, each started on time whatever the others do (an open loop, as the sender's
    limiter paces a live's replies): the loop's lag here is what sending costs everything else."""
    latencies: list[float] = []
    tasks: list[asyncio.Task[None]] = []
    with Ticker() as ticker:
        started = time.perf_counter()
        for i in range(sends):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(timed(send, i, latencies)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    return summary(label, f"{rate:g}/s", latencies, elapsed, ticker)


async def run_all(base: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each load on each transport in turn, so a busy moment of the shared machine hits all three alike."""
    transports = {
        "bare aiohttp": BareAiohttp(base),
        "aiohttp GraphClient": AiohttpGraphClient(base),
        "python-facebook-api in threads": ThreadedPyfacebook(base),
    }
    rows: list[dict[str, Any]] = []
    try:
        for transport in transports.values():
            await closed_loop("warm-up", transport.send, 16, 200)
        for concurrency in args.concurrency:
            for label, transport in transports.items():
                rows.append(await closed_loop(label, transport.send, concurrency, args.sends))
        for label, transport in transports.items():
            rows.append(await fixed_rate(label, transport.send, args.rate, args.sends))
    finally:
        for transport in transports.values():
            await transport.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=2000, help="messages per measurement")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64], help="concurrent senders")
    parser.add_argument(
        "--rate", type=float, default=270.0, help="the fixed-rate run (PlusOne's limiter: 90%% of 300/s)"
    )
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the emulator's process
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return

    port = free_port()
    with child(["-m", "bench.bench_graph", "--serve", str(port)]):
        base = f"http://127.0.0.1:{port}/"
        wait_http(f"{base}_emulator/calls")
        open_windows(base)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:  # PlusOne's default loop
            rows = runner.run(run_all(base, args))

    print_table(rows, ["label", "load", "sends", "rps", "p50_ms", "p99_ms", "lag_p99_ms", "lag_max_ms"])
    by = {(r["label"], r["load"]): r for r in rows}
    for load in [f"max, {n} concurrent" for n in args.concurrency] + [f"{args.rate:g}/s"]:
        ours, old = by[("aiohttp GraphClient", load)], by[("python-facebook-api in threads", load)]
        floor = by[("bare aiohttp", load)]
        print(
            f"{load}: aiohttp GraphClient {ours['rps']}/s (p99 {ours['p99_ms']} ms, loop lag p99 "
            f"{ours['lag_p99_ms']} ms), threaded client {old['rps']}/s (p99 {old['p99_ms']} ms, loop lag p99 "
            f"{old['lag_p99_ms']} ms), bare aiohttp {floor['rps']}/s."
        )
    path = save("graph", {"runs": rows, "python": sys.version.split()[0]})
    print(f"Figures saved to {path}")


if __name__ == "__main__":
    main()
