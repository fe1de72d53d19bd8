"""Routing of inbound events to handlers (aiogram's router is the model).

Two stages per event:
1. Recorders run for every event, the Page's own included: they keep the raw material (conversations,
   messages, the comment log) that the inbox shows.
2. The router tries bot handlers in registration order; the first whose kinds and filters all pass wins.
   A filter returns True/False or a dict that becomes keyword arguments of the handler, so a filter can
   parse once and hand over the result. The Page's own activity (echoes, its own comments) and standby
   events (another app owns the thread) never reach this stage: loops are impossible (invariant 7).

No I/O here; handlers do their I/O through the `HandlerContext` they are given.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from bot.inbound.events import Event, EventKind, MessagingEvent

if TYPE_CHECKING:
    # Names only, for the annotations: those modules import this one (handlers take a `HandlerContext`).
    from bot.inbox.live import InboxPublisher
    from bot.outbound.outbox import OutboxNotifier

UNHANDLED: Final = "unhandled"
OWN_ACTIVITY: Final = "own_activity"

FilterResult = bool | dict[str, Any]
Filter = Callable[[Any, "HandlerContext"], FilterResult | Awaitable[FilterResult]]
Handler = Callable[..., Awaitable[Any]]
Recorder = Callable[[Any, "HandlerContext"], Awaitable[None]]


@dataclass(frozen=True)
class HandlerServices:
    """The worker's long-lived helpers that handlers and recorders use (`bot.background.build_worker`
    fills them). None where a process runs handlers without them (tests, tools): then there is no one to tell."""

    outbox_notifier: OutboxNotifier | None = None  # wakes the outbox senders once rows are queued
    inbox_publisher: InboxPublisher | None = None  # tells open inboxes what changed


@dataclass
class HandlerContext:
    """What a handler may use while handling one event, inside that event's transaction."""

    session: AsyncSession
    stream_id: str | None
    position: int  # index of the event inside its delivery: arrival order is (stream_id, position)
    received_at_ms: int
    services: HandlerServices = field(default_factory=HandlerServices)
    after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def later(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run `callback` only once the transaction has committed (Saleor: background work after commit)."""
        self.after_commit.append(callback)

    def wake_outbox(self) -> None:
        """Wake the outbox senders once the transaction has committed (saves them a poll)."""
        notifier = self.services.outbox_notifier
        if notifier is not None:
            self.later(notifier.wake)


@dataclass(frozen=True)
class Registration:
    name: str
    handler: Handler
    kinds: frozenset[EventKind]
    filters: tuple[Filter, ...]


class Router:
    """Holds bot handlers in order; `dispatch` runs the first one that matches."""

    def __init__(self, name: str = "root") -> None:
        self.name = name
        self._registrations: list[Registration] = []

    @property
    def registrations(self) -> tuple[Registration, ...]:
        return tuple(self._registrations)

    def register(self, handler: Handler, *filters: Filter, kinds: Iterable[EventKind], name: str | None = None) -> None:
        self._registrations.append(
            Registration(name=name or handler.__name__, handler=handler, kinds=frozenset(kinds), filters=filters)
        )

    def on(self, *kinds: EventKind, filters: Iterable[Filter] = ()) -> Callable[[Handler], Handler]:
        """Decorator form of `register`."""

        def decorate(handler: Handler) -> Handler:
            self.register(handler, *filters, kinds=kinds)
            return handler

        return decorate

    def include(self, other: Router) -> None:
        self._registrations.extend(other._registrations)

    async def dispatch(self, event: Event, ctx: HandlerContext) -> str:
        """Run the first matching handler; return its name, or UNHANDLED."""
        for reg in self._registrations:
            if event.kind not in reg.kinds:
                continue
            kwargs: dict[str, Any] = {}
            for flt in reg.filters:
                result = flt(event, ctx)
                if inspect.isawaitable(result):
                    result = await result
                if result is False or result is None:
                    break
                if isinstance(result, dict):
                    kwargs.update(result)
            else:
                await reg.handler(event, ctx, **kwargs)
                return reg.name
        return UNHANDLED


class BatchHandler(Protocol):
    """Handles many events of one sort together, with a few statements for the lot (comment orders in a live).

    It takes the place of the router for the events it `accepts`, and of the recorders it names in
    `covers_recorders` (the comment log, written in bulk); it must leave the database exactly as handling
    them one by one, in order, would. The worker gives it runs of consecutive accepted events whose keys it
    has claimed; if it raises, the run is rolled back and handled one by one instead, which isolates a bad
    event.
    """

    # The recorders whose work `handle_batch` does itself (in bulk); the others still run for each event.
    covers_recorders: tuple[Recorder, ...]
    # A handler may also set `commutes = True` (read with getattr, False when absent): its events change
    # nothing another batch handler's events read, and the reverse, so the worker may apply them after those
    # of a later run (it still keeps them before any event handled one by one). `bot.inbound.recorders.OwnEchoes`.

    def accepts(self, event: Event) -> bool:
        """Pure and cheap: whether this event may go in a batch."""
        ...

    async def handle_batch(self, session: AsyncSession, items: list[tuple[Any, HandlerContext]]) -> None: ...


class Dispatcher:
    """Feeds each event to every recorder, then to the router unless it is the Page's own activity."""

    def __init__(self, router: Router | None = None, batch_handler: BatchHandler | None = None) -> None:
        self.router = router or Router()
        self.recorders: list[Recorder] = []
        self.batch_handlers: list[BatchHandler] = [batch_handler] if batch_handler is not None else []

    @property
    def batch_handler(self) -> BatchHandler | None:
        return self.batch_handlers[0] if self.batch_handlers else None

    def add_batch_handler(self, handler: BatchHandler) -> None:
        self.batch_handlers.append(handler)

    def batch_handler_for(self, event: Event) -> BatchHandler | None:
        """The first batch handler that takes this event (they take disjoint sorts), or None."""
        return next((h for h in self.batch_handlers if h.accepts(event)), None)

    def add_recorder(self, recorder: Recorder) -> None:
        self.recorders.append(recorder)

    async def record(self, event: Event, ctx: HandlerContext, skip: tuple[Recorder, ...] = ()) -> None:
        for recorder in self.recorders:
            if recorder not in skip:
                await recorder(event, ctx)

    async def feed(self, event: Event, ctx: HandlerContext) -> str:
        await self.record(event, ctx)
        if event.from_page or (isinstance(event, MessagingEvent) and event.standby):
            return OWN_ACTIVITY
        return await self.router.dispatch(event, ctx)
