"""A lean HTTP/1.1 load generator for the benchmarks: keep-alive connections over raw asyncio streams.

A full HTTP client would cost more CPU per request than a bare aiohttp endpoint does, and on a 2-core
machine the generator would then be what is measured. Requests are prebuilt bytes; responses are read
just far enough to know the status and skip the body. Two modes:

- `closed_loop`: C connections each send the next request as soon as the last answer came (max rate);
- `open_loop`: requests start on a fixed schedule (e.g. 1,000/s) and latency is measured from the
  scheduled time, so a stalled server cannot hide its queueing delay (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    label: str
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    errors: int = 0

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index]

    def summary(self) -> dict[str, object]:
        return {
            "label": self.label,
            "requests": self.sent,
            "rps": round(self.rate, 1),
            "p50_ms": round(self.percentile(50), 2),
            "p99_ms": round(self.percentile(99), 2),
            "max_ms": round(max(self.latencies_ms), 2) if self.latencies_ms else None,
            "statuses": dict(self.statuses),
            "errors": self.errors,
        }


def build_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() != "content-length"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
            break
    if length:
        await reader.readexactly(length)
    return status


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes, since: float, result: LoadResult
) -> None:
    """Send one request, read its answer, and record the status and the latency since `since`."""
    writer.write(request)
    status = await _read_response(reader)
    result.latencies_ms.append((time.perf_counter() - since) * 1000)
    result.statuses[status] += 1
    result.sent += 1


async def closed_loop(
    host: str, port: int, requests: list[bytes], *, connections: int, duration_s: float, label: str
) -> LoadResult:
    result = LoadResult(label)
    deadline = time.perf_counter() + duration_s
    counter = iter(range(10**12))

    async def conn() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < deadline:
                request = requests[next(counter) % len(requests)]
                await _exchange(reader, writer, request, time.perf_counter(), result)
        except (OSError, asyncio.IncompleteReadError):
            result.errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(conn() for _ in range(connections)))
    result.elapsed_s = time.perf_counter() - started
    return result


async def open_loop(
    host: str, port: int, requests: list[bytes], *, rate: float, duration_s: float, connections: int, label: str
) -> LoadResult:
    result = LoadResult(label)
    total = int(rate * duration_s)
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

    async def conn() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while (item := await queue.get()) is not None:
                scheduled, request = item
                await _exchange(reader, writer, request, scheduled, result)
        except (OSError, asyncio.IncompleteReadError):
            result.errors += 1
        finally:
            writer.close()

    workers = [asyncio.create_task(conn()) for _ in range(connections)]
    await asyncio.sleep(0.05)  # let the connections open
    start = time.perf_counter()
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((scheduled, requests[i % len(requests)]))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    result.elapsed_s = time.perf_counter() - start
    return result
