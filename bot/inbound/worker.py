"""The worker: a consumer-group reader of the ingest stream that turns deliveries into committed effects.

Loop (FastStream's stream subscriber is the model): take over entries idle too long in a dead consumer
(XAUTOCLAIM), retry our own failed entries whose back-off has passed, read new ones (XREADGROUP with
block), and process a batch in one SQL transaction with one SAVEPOINT per event:

- each event first claims its idempotency key (`bot.store.db.claim_event_key`); a replay is a no-op;
- an event whose handler raises rolls back its savepoint only, and the delivery's other events go on;
  its entry stays pending and is retried with back-off (the events done are keyed, so only the failed
  ones run again); after `worker_max_attempts` deliveries it moves to the dead-letter stream;
- entries are acknowledged (XACK + XDEL) only after the transaction committed, so a crash at any point
  leads to a replay, which the keys make harmless (docs/architecture.md, invariant 2).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.exceptions import RedisError
from sqlalchemy import exc as sql_errors
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.inbound.accounts import resolve_instagram
from bot.inbound.events import Event, EventKind, IgnoredEvent
from bot.inbound.ingest import IngestStream, StreamEntry
from bot.inbound.payloads import parse_delivery
from bot.inbound.router import OWN_ACTIVITY, BatchHandler, Dispatcher, HandlerContext, HandlerServices
from bot.runtime.loops import Backoff, Loop
from bot.runtime.metrics import count_events
from bot.store.db import claim_event_key, claim_event_keys

log = logging.getLogger(__name__)


class DatabaseUnavailable(Exception):
    """A batch's transaction failed because the database could not be used (down, restarting, locked,
    a deadlock or a dropped connection): the batch is retried as it is, and no entry is charged an attempt."""


def database_unavailable(exc: BaseException) -> bool:
    """Whether a failed transaction says the database, not the entries in it, was the problem."""
    if isinstance(exc, OSError | ConnectionError | sql_errors.TimeoutError):  # no connection from the pool
        return True
    if isinstance(exc, sql_errors.DBAPIError):
        # OperationalError: server gone, shutting down, "database is locked", deadlocks and serialisation
        # failures; InterfaceError: a connection closed under us. An entry's own bad data fails inside its
        # savepoint instead, which the commit survives.
        return exc.connection_invalidated or isinstance(exc, sql_errors.OperationalError | sql_errors.InterfaceError)
    return False


@dataclass(frozen=True)
class WorkerSettings:
    max_attempts: int = 5
    claim_idle_ms: int = 30_000
    batch_size: int = 1_000
    block_ms: int = 1_000
    retry_backoff_ms: int = 500


AFTER_BATCH_AT_LEAST_EVERY_S = 1.0  # however busy the stream, the after-batch pass waits no longer

InBatchHook = Callable[[AsyncSession, list[str]], Awaitable[list[Callable[[], Awaitable[None]]]]]


@dataclass
class BatchResult:
    done: list[str]
    failed: dict[str, str]  # entry id -> error
    outcomes: Counter[str]


def new_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Worker(Loop):
    """The stream worker's loop (task `plusone-worker`): batches of entries in, committed effects out."""

    def __init__(
        self,
        stream: IngestStream,
        sessions: async_sessionmaker[AsyncSession],
        dispatcher: Dispatcher,
        settings: WorkerSettings,
        consumer: str | None = None,
        services: HandlerServices | None = None,
        after_batch: Callable[[], Awaitable[object]] | None = None,
        in_batch: InBatchHook | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__("plusone-worker")
        # The clock of its intervals (the after-batch pass, claims, retries): tests pass one they move.
        self.monotonic = monotonic
        self.stream = stream
        self.sessions = sessions
        self.dispatcher = dispatcher
        self.settings = settings
        self.consumer = consumer or new_consumer_name()
        self.services = services or HandlerServices()
        # Work that may only follow acknowledged entries (the stock allocator, which needs the watermark
        # to move past them); also run about once a second when idle, for other workers' entries.
        self.after_batch = after_batch
        # Work done in the batch's own transaction once its entries are applied (the allocator deciding the
        # batch's stock claims, so the shopper's cart line commits with the comment). A failure there is
        # rolled back alone: `after_batch` catches up.
        self.in_batch = in_batch
        self._last_after_batch = 0.0
        self._last_claim = 0.0  # when dead consumers' idle entries were last looked for
        self._retry_at: dict[str, float] = {}  # our failed entry ids -> monotonic time of next try
        self._ready: list[StreamEntry] = []  # read while looking whether the stream was drained
        self.processed_entries = 0

    async def loop(self) -> None:
        """Until asked to stop (SIGTERM / SIGINT), then it finishes the batch in hand and returns."""
        backoff = Backoff(0.1, 5.0)
        while True:
            try:
                await self.stream.ensure_group()
                break
            except (RedisError, OSError) as exc:
                # Redis slow to answer at start (a busy machine, a restart): wait for it rather than die,
                # which would leave the stream unread until the process restarts.
                log.warning("worker %s: redis unavailable at start (%s); retrying", self.consumer, exc)
                if self.stopping:
                    return
                await self.sleep(backoff.next())
        backoff.reset()
        log.info("worker %s reading %s", self.consumer, self.stream.keys.ingest_stream)
        held: list[StreamEntry] = []  # a batch the database could not take: retried as it is
        # Entries already read (see `_after_batch_when_due`) are processed even when asked to stop.
        while not self.stopping or self._ready:
            entries = held
            try:
                if held:
                    await self.stream.keep(self.consumer, [e.id for e in held])
                else:
                    entries = await self._next_entries()
                if entries:
                    await self.process(entries)
                held = []
                await self._after_batch_when_due(worked=bool(entries))
                backoff.reset()
                continue
            except asyncio.CancelledError:
                raise
            except DatabaseUnavailable as exc:
                held = entries
                log.warning(
                    "worker %s: database unavailable (%s); holding %d entries, retrying in %.1fs",
                    self.consumer,
                    exc,
                    len(held),
                    backoff.current,
                )
            except (RedisError, OSError) as exc:
                # Redis restarting or unreachable: nothing was acknowledged, so nothing is lost; wait.
                log.warning("worker %s: redis unavailable (%s); retrying in %.1fs", self.consumer, exc, backoff.current)
            except Exception:
                log.exception("worker %s: batch failed; entries stay pending and will be retried", self.consumer)
            await self.sleep(backoff.next())
        log.info("worker %s stopped", self.consumer)

    async def _after_batch_when_due(self, worked: bool) -> None:
        """Run the after-batch pass when it is due, but never before entries already waiting in the stream.

        Without an in-batch hook the pass decides the batch, so it follows every batch. With one, the batch's
        decisions have committed and the pass does what can wait a little (the shoppers' replies, expiry,
        what waited for another worker): it runs once the stream is drained, and at least once a second
        however busy the stream is. Idle, it runs once a second.
        """
        if self.after_batch is None:
            return
        if self.monotonic() - self._last_after_batch < AFTER_BATCH_AT_LEAST_EVERY_S:
            if not worked:
                return
            if self.in_batch is not None:
                self._ready = await self.stream.read(self.consumer, self.settings.batch_size, None)  # no waiting
                if self._ready:
                    return  # more of a live to decide first
        self._last_after_batch = self.monotonic()
        await self.after_batch()

    async def _next_entries(self) -> list[StreamEntry]:
        """Entries read already, entries of dead consumers idle long enough, our own failed ones whose back-off
        passed, else new ones."""
        if self._ready:
            entries, self._ready = self._ready, []
            return entries
        now = self.monotonic()
        entries: list[StreamEntry] = []
        if now - self._last_claim >= min(self.settings.claim_idle_ms / 1000 / 2, 5.0):
            self._last_claim = now
            entries += await self.stream.claim_idle(
                self.consumer, self.settings.claim_idle_ms, self.settings.batch_size
            )
        due = [eid for eid, at in self._retry_at.items() if at <= now]
        if due:
            for eid in due:
                del self._retry_at[eid]
            entries += await self.stream.claim_own(self.consumer, due)
        if not entries:
            block = self.settings.block_ms
            if self._retry_at:
                wait_ms = int((min(self._retry_at.values()) - now) * 1000)
                block = max(1, min(block, wait_ms))
            entries = await self.stream.read(self.consumer, self.settings.batch_size, block)
        return entries

    async def process(self, entries: list[StreamEntry]) -> BatchResult:
        """Process entries in one transaction, then acknowledge the ones that fully succeeded."""
        try:
            result = await self._apply(entries)
        except Exception as exc:
            if database_unavailable(exc):
                # Nothing committed and nothing is the entries' fault: the caller holds them and tries again.
                raise DatabaseUnavailable(str(exc).splitlines()[0] if str(exc) else repr(exc)) from exc
            # The whole transaction failed for another reason: every entry is retried, with its attempts.
            log.exception("batch of %d entries failed to commit", len(entries))
            error = "".join(traceback.format_exception_only(exc)).strip()
            result = BatchResult(done=[], failed={e.id: error for e in entries}, outcomes=Counter())
        await self.stream.ack(result.done, dict(result.outcomes))
        self.processed_entries += len(result.done)
        by_id = {e.id: e for e in entries}
        for eid, error in result.failed.items():
            entry = by_id[eid]
            if entry.deliveries >= self.settings.max_attempts:
                dead_id = await self.stream.dead_letter(entry, error, entry.deliveries)
                log.error("entry %s failed %d times; dead letter %s", eid, entry.deliveries, dead_id)
            else:
                delay = self.settings.retry_backoff_ms / 1000 * 2 ** (entry.deliveries - 1)
                self._retry_at[eid] = self.monotonic() + delay
                log.warning("entry %s failed (attempt %d), retrying in %.1fs", eid, entry.deliveries, delay)
        return result

    async def _apply(self, entries: list[StreamEntry]) -> BatchResult:
        done: list[str] = []
        failed: dict[str, str] = {}
        outcomes: list[tuple[str, str]] = []
        after_commit: list[Callable[[], Awaitable[None]]] = []
        async with self.sessions() as session, session.begin():
            run: list[tuple[StreamEntry, list[Event]]] = []  # consecutive entries one batch handler takes
            run_handler: list[BatchHandler] = []  # the handler of `run` (a list: assigned from the closure)
            # Runs of handlers whose events commute with every other batch handler's (the echoes of our own
            # messages): gathered across the batch and applied before the next one-by-one entry or at the end,
            # so that echoes interleaved with a live's comments do not cut them into many small runs.
            side_runs: dict[int, tuple[BatchHandler, list[tuple[StreamEntry, list[Event]]]]] = {}

            async def apply_run(items: list[tuple[StreamEntry, list[Event]]], handler: BatchHandler) -> None:
                run_done, run_failed, run_outcomes, callbacks = await self._apply_run(session, items, handler)
                done.extend(run_done)
                failed.update(run_failed)
                outcomes.extend(run_outcomes)
                after_commit.extend(callbacks)

            async def flush_run() -> None:
                if run:
                    await apply_run(run, run_handler[0])
                    run.clear()
                    run_handler.clear()

            async def flush_all() -> None:
                await flush_run()
                for handler, items in side_runs.values():
                    await apply_run(items, handler)
                side_runs.clear()

            for entry in entries:
                if entry.deliveries > self.settings.max_attempts:
                    # Handed out more often than allowed without ever finishing: it likely kills workers.
                    failed[entry.id] = f"not finished after {entry.deliveries - 1} deliveries (worker stopped)"
                    continue
                try:
                    events = list(parse_delivery(entry.body))
                except Exception as exc:  # it promises not to raise; if it ever does, this entry fails alone
                    log.exception("entry %s could not be parsed", entry.id)
                    failed[entry.id] = "parse: " + "".join(traceback.format_exception_only(exc)).strip()
                    continue
                events = await resolve_instagram(session, events)  # an Instagram account's events are its Page's
                handlers = {id(h): h for h in map(self.dispatcher.batch_handler_for, events)}
                handler = next(iter(handlers.values())) if len(handlers) == 1 else None
                if events and handler is not None:
                    if getattr(handler, "commutes", False):
                        side_runs.setdefault(id(handler), (handler, []))[1].append((entry, events))
                        continue
                    if run_handler and run_handler[0] is not handler:
                        await flush_run()  # runs keep to one handler, and to the stream's order
                    run.append((entry, events))
                    run_handler[:] = [handler]
                    continue
                await flush_all()  # keep the order: everything before this entry is applied first
                entry_outcomes, error, callbacks = await self._apply_entry(session, entry, events)
                # The events beside a failing one are committed (and keyed), so their callbacks still run.
                after_commit += callbacks
                outcomes += entry_outcomes
                if error is None:
                    done.append(entry.id)
                else:
                    failed[entry.id] = error
            await flush_all()
            if self.in_batch is not None and done:
                try:
                    async with session.begin_nested():
                        after_commit += await self.in_batch(session, done)
                except Exception:
                    log.exception("in-batch hook failed; rolled back alone, the after-batch pass retries")
        for callback in after_commit:
            try:
                await callback()
            except Exception:
                log.exception("after-commit callback failed")
        return BatchResult(done=done, failed=failed, outcomes=count_events(outcomes))

    async def _apply_run(
        self, session: AsyncSession, run: list[tuple[StreamEntry, list[Event]]], handler: BatchHandler
    ) -> tuple[list[str], dict[str, str], list[tuple[str, str]], list[Callable[[], Awaitable[None]]]]:
        """Apply a run of entries through the batch handler: one savepoint, a few statements for them all.

        If the batch handler raises, the savepoint is rolled back and the entries are applied one by one
        instead, so one bad event fails alone, as it would without batching.
        """
        outcomes: list[tuple[str, str]] = []
        items: list[tuple[Event, HandlerContext]] = []
        try:
            async with session.begin_nested():
                placed = [(entry, position, event) for entry, events in run for position, event in enumerate(events)]
                keys = [(e.key, e.kind.value, entry.id) for entry, _, e in placed if e.key is not None]
                fresh = await claim_event_keys(session, keys) if keys else set()
                for entry, position, event in placed:
                    if event.key is not None:
                        if event.key not in fresh:
                            outcomes.append((event.kind.value, "duplicate"))
                            continue
                        fresh.discard(event.key)  # the same event twice in this run: the second is a replay
                    ctx = HandlerContext(session, entry.id, position, entry.received_at_ms, self.services)
                    await self.dispatcher.record(event, ctx, skip=handler.covers_recorders)
                    items.append((event, ctx))
                    outcomes.append((event.kind.value, "own" if event.from_page else "processed"))
                if items:
                    await handler.handle_batch(session, items)
        except Exception as exc:
            if database_unavailable(exc):
                raise  # not the entries' fault: the whole batch waits for the database
            log.warning("batch of %d entries failed as a whole; applying them one by one", len(run), exc_info=True)
            done: list[str] = []
            failed: dict[str, str] = {}
            outcomes = []
            callbacks: list[Callable[[], Awaitable[None]]] = []
            for entry, events in run:
                entry_outcomes, error, entry_callbacks = await self._apply_entry(session, entry, events)
                outcomes += entry_outcomes
                callbacks += entry_callbacks
                if error is None:
                    done.append(entry.id)
                else:
                    failed[entry.id] = error
            return done, failed, outcomes, callbacks
        return [entry.id for entry, _ in run], {}, outcomes, [cb for _, ctx in items for cb in ctx.after_commit]

    async def _apply_entry(
        self, session: AsyncSession, entry: StreamEntry, events: list[Event]
    ) -> tuple[list[tuple[str, str]], str | None, list[Callable[[], Awaitable[None]]]]:
        """Apply an entry's events one by one, each in its own savepoint.

        A failing event is rolled back alone and recorded with its reason; the events after it in the same
        delivery still go on (one poison event must not take its delivery down). The entry then counts as
        failed, so the failed events are retried and, after `max_attempts`, dead-lettered with their reasons;
        the others are keyed already, so a retry does not apply them again.
        """
        outcomes: list[tuple[str, str]] = []
        callbacks: list[Callable[[], Awaitable[None]]] = []
        errors: list[str] = []
        for position, event in enumerate(events):
            kind = event.kind.value
            ctx = HandlerContext(session, entry.id, position, entry.received_at_ms, self.services)
            if isinstance(event, IgnoredEvent) or event.kind is EventKind.TEST_PING:
                await self.dispatcher.feed(event, ctx)  # logged by the recorders; nothing to keep exactly once
                outcomes.append((kind, "ignored"))
                continue
            try:
                async with session.begin_nested():
                    key = event.key
                    if key is not None and not await claim_event_key(session, key, kind, entry.id):
                        outcomes.append((kind, "duplicate"))
                        continue
                    handled = await self.dispatcher.feed(event, ctx)
            except Exception as exc:
                if database_unavailable(exc):
                    raise  # the connection, not this event: the whole batch waits for the database
                log.warning("handler failed for %s in entry %s: %r", getattr(event, "key", kind), entry.id, exc)
                error = "".join(traceback.format_exception_only(exc)).strip()
                outcomes.append((kind, "failed"))
                errors.append(f"{kind} {event.key}: {error}")
                continue
            outcomes.append((kind, "own" if handled == OWN_ACTIVITY else "processed"))
            callbacks += ctx.after_commit
        return outcomes, "; ".join(errors) or None, callbacks
