"""The ingest stream in Redis: append (web), read / claim / acknowledge (worker), dead letters (both).

Adapter module: the only code that knows the stream's commands. Entries hold the raw webhook body, the
time it was received (ms) and its source (`webhook`, later `live_stream`, `live_poll`, `retry`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from bot.runtime.metrics import (
    DEAD_LETTER_RETRIED_FIELD,
    DEAD_LETTERED_FIELD,
    StreamGauges,
    accepted_field,
    stream_id_age_seconds,
)
from bot.runtime.redis_keys import CONSUMER_GROUP, RedisKeys
from parsers.normalize import storable_text


@dataclass(frozen=True)
class StreamEntry:
    id: str
    body: bytes
    received_at_ms: int
    source: str
    deliveries: int = 1  # how many times this entry has been handed to a worker


@dataclass(frozen=True)
class DeadLetter:
    id: str
    original_id: str
    body: bytes
    received_at_ms: int
    source: str
    error: str
    attempts: int
    failed_at_ms: int


def is_stream_id(text: str) -> bool:
    """A Redis stream id, `ms-seq`: Redis refuses anything else (and parts over 64 bits) with an error."""
    parts = text.split("-")
    # isascii: "³".isdigit() is true, and no stream id is written so.
    return len(parts) == 2 and all(p.isascii() and p.isdigit() and int(p) < 2**64 for p in parts)


def _s(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def _entry(entry_id: bytes | str, fields: dict[bytes, bytes], deliveries: int = 1) -> StreamEntry:
    return StreamEntry(
        id=_s(entry_id),
        body=fields.get(b"body", b""),
        received_at_ms=int(fields.get(b"received_at", b"0") or 0),
        source=_s(fields.get(b"source", b"webhook")),
        deliveries=deliveries,
    )


_Pending = tuple[bytes, int, str, "asyncio.Future[str]"]

# The oldest entry not yet acknowledged: the smallest pending id and the first entry not yet delivered,
# read in one atomic step (two separate reads could miss an entry delivered between them).
_WATERMARK_LUA = """
local result = {}
local pending = redis.pcall('XPENDING', KEYS[1], ARGV[1])
local last = '0-0'
if type(pending) == 'table' and pending.err == nil then
  if #ARGV > 1 then
    -- The oldest pending entry that is not one of ARGV[2..] (the caller's own batch, about to commit).
    local mine = {}
    for i = 2, #ARGV do mine[ARGV[i]] = true end
    local oldest = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', #ARGV)
    for _, entry in ipairs(oldest) do
      if not mine[entry[1]] then result[#result + 1] = entry[1]; break end
    end
  elseif tonumber(pending[1]) > 0 then
    result[#result + 1] = pending[2]
  end
  local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
  for _, group in ipairs(groups) do
    local name, delivered
    for i = 1, #group, 2 do
      if group[i] == 'name' then name = group[i + 1] end
      if group[i] == 'last-delivered-id' then delivered = group[i + 1] end
    end
    if name == ARGV[1] then last = delivered end
  end
  local nxt = redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', 1)
  if #nxt > 0 then result[#result + 1] = nxt[1][1] end
else
  local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
  if #first > 0 then result[#result + 1] = first[1][1] end
end
return result
"""


def _id_order(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


# One command appends a whole batch: far cheaper than one XADD each through the client (measured in
# bench/bench_webhook.py), and atomic. KEYS share the {ingest} hash tag, so it runs on a Redis Cluster.
_APPEND_BATCH_LUA = """
local ids = {}
for i = 1, #ARGV - 1, 3 do
  ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', 'body', ARGV[i], 'received_at', ARGV[i + 1], 'source', ARGV[i + 2])
end
redis.call('HINCRBY', KEYS[2], ARGV[#ARGV], #ids)
return ids
"""


# Moving an entry to the dead letters (and back) is one script, so it is atomic on one Redis and on a
# Cluster alike (all KEYS share {ingest}). Not MULTI/EXEC: redis-py's asyncio cluster pipeline runs each
# queued command of a transaction on a thread of its own and joins it, blocking the event loop.
# KEYS: dead letters, stream, counters. ARGV: group, entry id, counter field, then the dead letter's fields.
_DEAD_LETTER_LUA = """
local dead_id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 4))
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[2])
redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
return dead_id
"""

# KEYS: stream, dead letters, counters. ARGV: dead letter id, counter field. Returns the new entry's id, or
# nil when there is no such dead letter: two retries of one dead letter put it back once.
_RETRY_DEAD_LETTER_LUA = """
local items = redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[1])
if #items == 0 then return false end
local fields = {}
for i = 1, #items[1][2], 2 do fields[items[1][2][i]] = items[1][2][i + 1] end
redis.call('XDEL', KEYS[2], ARGV[1])
local id = redis.call('XADD', KEYS[1], '*', 'body', fields['body'] or '', 'received_at', fields['received_at'] or '0',
  'source', fields['source'] or 'webhook', 'retried_from', ARGV[1])
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
return id
"""


class IngestStream:
    MAX_APPEND_BATCH = 256

    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self.redis = redis
        self.keys = keys
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._append_batch = redis.register_script(_APPEND_BATCH_LUA)
        self._watermark = redis.register_script(_WATERMARK_LUA)
        self._dead_letter = redis.register_script(_DEAD_LETTER_LUA)
        self._retry_dead_letter = redis.register_script(_RETRY_DEAD_LETTER_LUA)

    async def append(self, body: bytes, *, source: str = "webhook", received_at_ms: int | None = None) -> str:
        """Append one raw delivery and count it; returns the entry id once Redis has it.

        Group commit: deliveries arriving while a write is in flight go together in the next pipeline, so
        under load one round trip (and one fsync) serves many requests; alone, a delivery is written at
        once. Raises RedisError (or OSError) if Redis did not take it: the caller must not acknowledge.
        """
        received = received_at_ms if received_at_ms is not None else int(time.time() * 1000)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending.append((body, received, source, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[: self.MAX_APPEND_BATCH]
            del self._pending[: self.MAX_APPEND_BATCH]
            args: list[bytes | int | str] = []
            for body, received, source, _ in batch:
                args += (body, received, source)
            args.append(accepted_field())
            try:
                replies = await self._append_batch(keys=[self.keys.ingest_stream, self.keys.counters], args=args)
            except BaseException as exc:  # incl. cancellation at shutdown: nobody may wait forever
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else RedisError("append cancelled"))
                if not isinstance(exc, Exception):
                    raise
                continue
            for (*_, future), reply in zip(batch, replies, strict=True):
                if not future.done():
                    future.set_result(_s(reply))

    async def ensure_group(self) -> None:
        try:
            # id "0": a group created after entries were appended still sees them all.
            await self.redis.xgroup_create(self.keys.ingest_stream, CONSUMER_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, consumer: str, count: int, block_ms: int | None) -> list[StreamEntry]:
        """New entries for `consumer`, waiting up to `block_ms` for the first (None: answer at once)."""
        reply = await self.redis.xreadgroup(
            CONSUMER_GROUP, consumer, {self.keys.ingest_stream: ">"}, count=count, block=block_ms
        )
        entries: list[StreamEntry] = []
        for _stream, items in reply or []:
            entries.extend(_entry(eid, fields) for eid, fields in items if fields)
        return entries

    async def claim_idle(self, consumer: str, min_idle_ms: int, count: int) -> list[StreamEntry]:
        """Take over entries another (crashed or stopped) consumer read but never acknowledged."""
        reply = await self.redis.xautoclaim(
            self.keys.ingest_stream,
            CONSUMER_GROUP,
            consumer,
            min_idle_time=min_idle_ms,
            start_id="0-0",
            count=count,
        )
        claimed = [(eid, fields) for eid, fields in reply[1] if fields]
        # Entries deleted while pending come back empty; they need no work, only an acknowledgement.
        deleted = [eid for eid, fields in reply[1] if not fields] + list(reply[2] if len(reply) > 2 else [])
        if deleted:
            await self.redis.xack(self.keys.ingest_stream, CONSUMER_GROUP, *deleted)
        return await self._with_delivery_counts(claimed)

    async def claim_own(self, consumer: str, ids: list[str]) -> list[StreamEntry]:
        """Re-take our own failed entries for a retry (XCLAIM counts it as another delivery)."""
        if not ids:
            return []
        reply = await self.redis.xclaim(self.keys.ingest_stream, CONSUMER_GROUP, consumer, 0, ids)
        return await self._with_delivery_counts([(eid, fields) for eid, fields in reply if fields])

    async def keep(self, consumer: str, ids: list[str]) -> None:
        """Keep entries we hold (waiting for the database) from looking idle to other workers' XAUTOCLAIM.

        XCLAIM with JUSTID resets the idle time without counting another delivery, so a database outage
        never uses up an entry's attempts."""
        if ids:
            await self.redis.xclaim(self.keys.ingest_stream, CONSUMER_GROUP, consumer, 0, ids, justid=True)

    async def _with_delivery_counts(self, items: list[tuple[bytes, dict[bytes, bytes]]]) -> list[StreamEntry]:
        if not items:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for eid, _ in items:
                pipe.xpending_range(self.keys.ingest_stream, CONSUMER_GROUP, min=eid, max=eid, count=1)
            pendings = await pipe.execute()
        out = []
        for (eid, fields), pending in zip(items, pendings, strict=True):
            deliveries = int(pending[0]["times_delivered"]) if pending else 1
            out.append(_entry(eid, fields, deliveries))
        return out

    async def ack(self, ids: list[str], counters: dict[str, int] | None = None) -> None:
        """Acknowledge and delete processed entries (their effects are committed in SQL)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            if ids:
                pipe.xack(self.keys.ingest_stream, CONSUMER_GROUP, *ids)
                pipe.xdel(self.keys.ingest_stream, *ids)
            for name, value in (counters or {}).items():
                pipe.hincrby(self.keys.counters, name, value)
            await pipe.execute()

    async def dead_letter(self, entry: StreamEntry, error: str, attempts: int) -> str:
        """Move an entry that keeps failing to the dead-letter stream, atomically."""
        fields: dict[str, bytes | str | int] = {
            "body": entry.body,
            "received_at": entry.received_at_ms,
            "source": entry.source,
            "original_id": entry.id,
            "error": storable_text(error[:4000]),  # Redis takes UTF-8: an error may quote a lone surrogate
            "attempts": attempts,
            "failed_at": int(time.time() * 1000),
        }
        dead_id = await self._dead_letter(
            keys=[self.keys.dead_letters, self.keys.ingest_stream, self.keys.counters],
            args=[CONSUMER_GROUP, entry.id, DEAD_LETTERED_FIELD, *(x for pair in fields.items() for x in pair)],
        )
        return _s(dead_id)

    async def list_dead_letters(self, start: str = "-", count: int = 100) -> list[DeadLetter]:
        items = await self.redis.xrange(self.keys.dead_letters, min=start, max="+", count=count)
        return [
            DeadLetter(
                id=_s(eid),
                original_id=_s(f.get(b"original_id")),
                body=f.get(b"body", b""),
                received_at_ms=int(f.get(b"received_at", b"0") or 0),
                source=_s(f.get(b"source")),
                error=_s(f.get(b"error")),
                attempts=int(f.get(b"attempts", b"0") or 0),
                failed_at_ms=int(f.get(b"failed_at", b"0") or 0),
            )
            for eid, f in items
        ]

    async def retry_dead_letter(self, dead_id: str) -> str | None:
        """Put a dead letter back on the ingest stream; None if there is no such dead letter."""
        new_id = await self._retry_dead_letter(
            keys=[self.keys.ingest_stream, self.keys.dead_letters, self.keys.counters],
            args=[dead_id, DEAD_LETTER_RETRIED_FIELD],
        )
        return None if new_id is None else _s(new_id)

    async def gauges(self) -> StreamGauges:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xlen(self.keys.ingest_stream)
            pipe.xrange(self.keys.ingest_stream, count=1)
            pipe.xlen(self.keys.dead_letters)
            backlog, first, dead = await pipe.execute()
        pending = 0
        try:
            summary = await self.redis.xpending(self.keys.ingest_stream, CONSUMER_GROUP)
            pending = int(summary["pending"])
        except ResponseError:
            pass  # no group yet: nothing is pending
        oldest = stream_id_age_seconds(first[0][0]) if first else 0.0
        return StreamGauges(backlog=backlog, pending=pending, oldest_age_seconds=oldest, dead_letters=dead)

    async def watermark(self, excluding: list[str] | None = None) -> str | None:
        """The id of the oldest entry not yet acknowledged (pending or undelivered), or None if none is.

        `excluding`: entries the caller holds and is about to commit, treated as done. Every pending entry
        sorts before every undelivered one, so looking at the first len(excluding) + 1 pending is enough.
        """
        args = [CONSUMER_GROUP, *(excluding or [])]
        ids = [_s(i) for i in await self._watermark(keys=[self.keys.ingest_stream], args=args)]
        return min(ids, key=_id_order) if ids else None

    async def counters(self) -> dict[bytes, bytes]:
        return await self.redis.hgetall(self.keys.counters)
