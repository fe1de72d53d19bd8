"""Live updates for the inbox: the worker publishes after commit, browsers listen over Server-Sent Events.

- `InboxPublisher` is a recorder: for every Messenger event and comment it queues (with
  `HandlerContext.later`) a small JSON note on the Redis channel, so it goes out only once the event's
  transaction committed. Claims decided by the allocator publish a Page-less note ("claims").
  A note says only what changed where ({"page", "psid", "kind"}); browsers fetch the fresh HTML through
  the same access checks as any page, so a note never carries a shopper's text.
- `InboxHub` holds one Redis subscription per web process and fans notes out to the open SSE streams
  of the users allowed to see that Page (one Redis connection, however many browsers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from sqlalchemy import select

from bot.inbound.events import (
    CommentEvent,
    DeliveryEvent,
    Event,
    LiveVideoEvent,
    MessageEvent,
    MessagingEvent,
    ReadEvent,
)
from bot.inbound.router import HandlerContext
from bot.inbox.core import asks_for_person
from bot.inbox.tables import InboxThread
from bot.runtime.clock import utcnow
from bot.runtime.loops import Loop, Running
from bot.runtime.redis_keys import RedisKeys
from bot.store.tables import Conversation

log = logging.getLogger(__name__)


# ARGV: the channel, then the notes. A batch of notes in one round trip, on one Redis or on a Cluster, whose
# pipelines refuse PUBLISH: a script with no keys runs on any node, and a PUBLISH there reaches every node.
_PUBLISH_LUA = """
for i = 2, #ARGV do redis.call('PUBLISH', ARGV[1], ARGV[i]) end
return #ARGV - 1
"""


def channel_name(prefix: str) -> str:
    return RedisKeys(prefix).inbox_channel


class InboxPublisher:
    """Publishes inbox notes on the Redis channel (the SQL rows are the truth; a lost note costs a refresh)."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.channel = channel_name(prefix)
        self._publish = redis.register_script(_PUBLISH_LUA)
        # Notes of one batch go out together, each once: a live stream's batch of a hundred comments is
        # one script call, not a hundred round trips between the worker's commits.
        self._pending: dict[str, None] = {}
        self._flusher: asyncio.Task[None] | None = None

    async def claims_decided(self) -> None:
        """The allocator's `on_decided`: stock decisions committed, so any cart or live board may have changed."""
        await self.publish("claims")

    async def publish(self, kind: str, page_id: str | None = None, psid: str | None = None) -> None:
        self._pending[json.dumps({"kind": kind, "page": page_id, "psid": psid})] = None
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # the rest of the batch's after-commit callbacks add their notes first
        while self._pending:
            notes = list(self._pending)
            self._pending.clear()
            with contextlib.suppress(Exception):
                await self._publish(keys=[], args=[self.channel, *notes])


async def publish_inbox_event(event: Event, ctx: HandlerContext) -> None:
    """Recorder: after the event commits, tell open inboxes; note a shopper asking for a person."""
    if isinstance(event, MessageEvent) and not event.is_echo and asks_for_person(event.text):
        await _mark_asked_person(ctx, event.page_id, event.sender_id)
    publisher = ctx.services.inbox_publisher
    if publisher is None:
        return
    if isinstance(event, MessagingEvent):
        kind = "receipt" if isinstance(event, DeliveryEvent | ReadEvent) else "message"
        ctx.later(_bound(publisher.publish, kind, event.page_id, event.psid))
    elif isinstance(event, CommentEvent):
        ctx.later(_bound(publisher.publish, "comment", event.page_id, event.author_id))
    elif isinstance(event, LiveVideoEvent):
        # A live started or ended: open boards enable or disable their "now selling" buttons without a reload.
        ctx.later(_bound(publisher.publish, "pointer", event.page_id))


def _bound(fn: Callable[..., Awaitable[None]], *args: Any) -> Callable[[], Awaitable[None]]:
    async def call() -> None:
        await fn(*args)

    return call


async def _mark_asked_person(ctx: HandlerContext, page_id: str, psid: str) -> None:
    conversation_id = (
        await ctx.session.execute(
            select(Conversation.id).where(Conversation.page_id == page_id, Conversation.psid == psid)
        )
    ).scalar_one_or_none()
    if conversation_id is None:
        return
    now = utcnow()
    thread = await ctx.session.get(InboxThread, conversation_id)
    if thread is None:
        thread = InboxThread(conversation_id=conversation_id, updated_at=now)
    thread.asked_person_at, thread.updated_at = now, now
    ctx.session.add(thread)
    await ctx.session.flush()


class InboxHub(Loop):
    """One Redis subscription per process, fanned out to the SSE streams of this process."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        super().__init__("plusone-inbox-hub")
        self.redis = redis
        self.channel = channel_name(prefix)
        self._listeners: set[tuple[frozenset[str], asyncio.Queue[dict[str, Any] | None]]] = set()
        self._running: Running | None = None
        self.ready = asyncio.Event()

    def start(self) -> Running:
        self._running = super().start()
        return self._running

    async def close(self) -> None:
        """End each open stream, then the subscription (its read ends as soon as it is asked to stop)."""
        for _, queue in list(self._listeners):
            queue.put_nowait(None)  # ends each open stream
        if self._running is not None:
            await self._running.stop(timeout_s=5)

    def listen(self, pages: frozenset[str]) -> tuple[frozenset[str], asyncio.Queue[dict[str, Any] | None]]:
        entry = (pages, asyncio.Queue[dict[str, Any] | None](maxsize=100))
        self._listeners.add(entry)
        return entry

    def leave(self, entry: tuple[frozenset[str], asyncio.Queue[dict[str, Any] | None]]) -> None:
        self._listeners.discard(entry)

    def dispatch(self, note: dict[str, Any]) -> None:
        page = note.get("page")
        for pages, queue in list(self._listeners):
            if page is None or page in pages:
                with contextlib.suppress(asyncio.QueueFull):  # a stalled browser misses notes, not the others
                    queue.put_nowait(note)

    async def _next_message(self, pubsub: Any) -> dict[str, Any] | None:
        """The next note, None after a second without one, or at once when the hub is asked to stop: a
        shutdown (every test's, every restart's) would otherwise wait out the read's second."""
        read = asyncio.ensure_future(pubsub.get_message(timeout=1.0))
        stop = asyncio.ensure_future(self.stopped())
        try:
            await asyncio.wait({read, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if read.done():
            return read.result()  # type: ignore[no-any-return]
        read.cancel()  # stopping: the subscription is closed right after
        with contextlib.suppress(asyncio.CancelledError):
            await read
        return None

    async def loop(self) -> None:
        while not self.stopping:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                if isinstance(self.redis, RedisCluster):
                    # A cluster client picks the node to subscribe on from the slot map, which it loads on
                    # its first command: without one, SUBSCRIBE fails on an empty map (KeyError).
                    await self.redis.initialize()
                await pubsub.subscribe(self.channel)
                self.ready.set()
                while not self.stopping:
                    message = await self._next_message(pubsub)
                    if message is None:
                        continue
                    with contextlib.suppress(ValueError, TypeError):
                        self.dispatch(json.loads(message["data"]))
            except Exception as exc:
                if self.stopping:
                    return
                log.warning("inbox live updates: %r; subscribing again", exc)
                await self.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
