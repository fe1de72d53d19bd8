"""Background loops: how every long-running task of the bot starts, stops, waits, retries and fails.

The outbox sender, the stream worker, the CRM's order-event consumer, the subscription keeper, the live
comment readers, the worker-process supervisor, the embedded-Redis watchdog and the inbox hub are each a
`Loop`:

- `Loop.start()` runs it as a task named after the loop (`plusone-outbox`, ...); the `Running` it returns
  stops it: set the loop's stop event, wait for it to return (30 s by default), then cancel it.
- `Loop.sleep()` waits between rounds and returns at once when the loop is asked to stop, so a stop never
  waits out a poll interval.
- A loop that crashes is logged with its name and ends; its error comes back out of `Running.stop()`, and
  `stop_all` (`Background` in `bot.background`) raises the first one after stopping the rest,
  so a failed service still fails the process that runs it.
- `Backoff` is the exponential back-off (doubling, capped, optionally jittered) of the loops that retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 30.0  # how long a loop may take to finish what it has in hand once asked to stop


class Loop:
    """A background loop: a name, a stop event, a `sleep` that the stop cuts short, and `finished`.

    Subclasses write `loop()`, which returns once `stopping` is true; `run()` wraps it."""

    def __init__(self, name: str) -> None:
        self.name = name  # its task's name, and the first word of its failures in the log
        self._stopping = asyncio.Event()
        self.finished = asyncio.Event()  # set once `run()` has returned, whether it stopped or failed

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """Ask the loop to finish what it has in hand and return (it does not wait for it)."""
        self._stopping.set()

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds`, or less if the loop is asked to stop meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def stopped(self) -> None:
        """Return once the loop is asked to stop."""
        await self._stopping.wait()

    async def loop(self) -> None:
        raise NotImplementedError

    async def run(self) -> None:
        try:
            await self.loop()
        except Exception:
            log.exception("%s stopped on an error", self.name)
            raise
        finally:
            self.finished.set()

    def start(self) -> Running:
        """Run the loop as a task named after it."""
        return Running(self.name, asyncio.create_task(self.run(), name=self.name), self.stop)


@dataclass
class Running:
    """A started loop: its task, and how to ask it to stop."""

    name: str
    task: asyncio.Task[None]
    ask_to_stop: Callable[[], None]

    async def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Ask the loop to stop and wait for it; cancel it if it is still running after `timeout_s`.
        An error the loop ended with is raised here."""
        self.ask_to_stop()
        try:
            await asyncio.wait_for(self.task, timeout=timeout_s)
        except TimeoutError:
            log.warning("%s did not stop within %.0f s; cancelled", self.name, timeout_s)
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


async def stop_all(running: Iterable[Running]) -> None:
    """Stop each loop in turn, in the order given; then raise the first error any of them ended with."""
    failures: list[BaseException] = []
    for loop in running:
        try:
            await loop.stop()
        except Exception as exc:
            failures.append(exc)
    if failures:
        raise failures[0]


def jittered(delay: float, rng: random.Random) -> float:
    """Half of `delay` fixed, half random: loops that failed together do not retry in lockstep."""
    return delay * (0.5 + rng.random() / 2)


class Backoff:
    """Exponential back-off: `first_s`, doubling after each failure up to `max_s`; `reset()` after a success."""

    def __init__(self, first_s: float, max_s: float, *, jitter: bool = False, rng: random.Random | None = None) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self.jitter = jitter
        self.current = first_s  # the next delay, before jitter
        self._rng = rng or random.Random()

    def next(self) -> float:
        """The delay to wait after this failure; the following one will be twice as long (up to `max_s`)."""
        delay = jittered(self.current, self._rng) if self.jitter else self.current
        self.current = min(self.current * 2, self.max_s)
        return delay

    def reset(self) -> None:
        self.current = self.first_s
