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

For each it prints sends per second, p50/p99 latency, and the event loop's lag while sending: a ticker task
sleeps 1 ms in a loop and the longest extra wait it saw is how long the loop could not run anything else
(the webhook's answers, the inbox's updates). Figures go to bench/results/graph.json; docs/benchmarks.md
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


async def measure(label: str, send: Send, concurrency: int, sends: int) -> dict[str, Any]:
    latencies: list[float] = []
    counter = iter(range(sends))
    lag = 0.0
    running = True

    async def ticker() -> None:
        nonlocal lag
        while running:
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            lag = max(lag, time.perf_counter() - start - 0.001)

    async def sender() -> None:
        for i in counter:
            start = time.perf_counter()
            await send(i)
            latencies.append(time.perf_counter() - start)

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    lag = 0.0
    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    running = False
    await tick
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "label": label,
        "concurrency": concurrency,
        "sends": len(latencies),
        "rps": round(len(latencies) / elapsed),
        "p50_ms": round(cuts[49] * 1000, 2),
        "p99_ms": round(cuts[98] * 1000, 2),
        "loop_lag_max_ms": round(lag * 1000, 2),
    }


async def run_all(base: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for label, make in (
        ("bare aiohttp", BareAiohttp),
        ("aiohttp GraphClient", AiohttpGraphClient),
        ("python-facebook-api in threads", ThreadedPyfacebook),
    ):
        transport = make(base)
        try:
            await measure("warm-up", transport.send, 16, 200)
            for concurrency in args.concurrency:
                rows.append(await measure(label, transport.send, concurrency, args.sends))
        finally:
            await transport.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=2000, help="messages per measurement")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64], help="concurrent senders")
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

    print_table(rows, ["label", "concurrency", "sends", "rps", "p50_ms", "p99_ms", "loop_lag_max_ms"])
    by = {(r["label"], r["concurrency"]): r for r in rows}
    for n in args.concurrency:
        ours, old, floor = (
            by[("aiohttp GraphClient", n)],
            by[("python-facebook-api in threads", n)],
            by[("bare aiohttp", n)],
        )
        print(
            f"{n:>3} concurrent: aiohttp GraphClient {ours['rps']}/s = {ours['rps'] / old['rps']:.1f}x the threaded "
            f"client ({old['rps']}/s) and {ours['rps'] / floor['rps']:.0%} of bare aiohttp; loop lag "
            f"{ours['loop_lag_max_ms']} ms vs {old['loop_lag_max_ms']} ms."
        )
    path = save("graph", {"runs": rows, "python": sys.version.split()[0]})
    print(f"Figures saved to {path}")


if __name__ == "__main__":
    main()
