"""`plusone serve`'s worker processes: it starts `plusone worker` children and keeps them running.

On one machine the web and the worker need not share a core. With `PLUSONE_WORKER_PROCESSES` above 0
(`auto`: one on a machine with two cores or more), `serve` runs the web alone in its process, with the
outbox sender, and starts that many `plusone worker --no-sender` processes beside it. They find the embedded
Redis, the SQLite file and the demo emulator through the data directory, as a hand-started worker does. A
child that exits is started again after a back-off (1 s, doubling up to 30 s, reset once a child has run a
minute); on shutdown each gets SIGTERM, finishes the batch in hand, and is killed only if it has not stopped
within 30 s. Entries a killed child had read are reclaimed by the next one (the stream's consumer group),
so nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from bot.runtime.loops import Backoff, Loop, Running, stop_all

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 30.0
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
HEALTHY_AFTER_S = 60.0  # a child that ran this long resets the back-off


class WorkerProcesses:
    """Runs `count` copies of a command (by default `plusone worker --no-sender`); restarts the ones that exit."""

    def __init__(self, count: int, cwd: Path, command: list[str] | None = None) -> None:
        self.count = count
        self.cwd = cwd
        # The web's process sends the outbox (`bot.app.sender_ctx`): the workers keep their GIL for deciding.
        self.command = command or [sys.executable, "-m", "bot.cli.main", "worker", "--no-sender"]
        self.processes: dict[int, asyncio.subprocess.Process] = {}
        self.starts = 0  # how many children were started, restarts included
        self._keepers: list[Running] = []

    def start(self) -> None:
        self._keepers = [ChildKeeper(self, n).start() for n in range(self.count)]

    async def stop(self) -> None:
        """SIGTERM every child, wait for them to finish their batch, kill the ones that do not."""
        for keeper in self._keepers:
            keeper.ask_to_stop()  # all at once: none starts a child while another is being waited for
        await stop_all(self._keepers)
        running = [p for p in self.processes.values() if p.returncode is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in running:
            try:
                await asyncio.wait_for(proc.wait(), timeout=STOP_TIMEOUT_S)
            except TimeoutError:
                log.warning("worker process (pid %d) did not stop within %.0f s; killing it", proc.pid, STOP_TIMEOUT_S)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()


class ChildKeeper(Loop):
    """Keeps child `n` of a `WorkerProcesses` running: starts it, and again after a back-off when it exits."""

    def __init__(self, children: WorkerProcesses, n: int) -> None:
        super().__init__(f"plusone-worker-process-{n}")
        self.children = children
        self.n = n

    async def loop(self) -> None:
        children, n = self.children, self.n
        backoff = Backoff(FIRST_BACKOFF_S, MAX_BACKOFF_S)
        while not self.stopping:
            started = time.monotonic()
            proc = await asyncio.create_subprocess_exec(*children.command, cwd=children.cwd, env=dict(os.environ))
            children.processes[n] = proc
            children.starts += 1
            log.info("worker process %d started (pid %d)", n, proc.pid)
            stop = asyncio.ensure_future(self.stopped())
            exited = asyncio.ensure_future(proc.wait())
            await asyncio.wait([stop, exited], return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if not exited.done():
                exited.cancel()
                return  # shutting down: `WorkerProcesses.stop` ends it
            if self.stopping:
                return
            if time.monotonic() - started >= HEALTHY_AFTER_S:
                backoff.reset()
            delay = backoff.next()
            log.warning(
                "worker process %d (pid %d) exited with %s; starting another in %.0f s",
                n,
                proc.pid,
                proc.returncode,
                delay,
            )
            await self.sleep(delay)


def worker_processes_ctx(
    count: int, cwd: Path, keep: Callable[[WorkerProcesses], None] | None = None
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that runs the worker processes while the app runs (add it after the others: the
    children need the embedded Redis, the migrated database and the demo emulator already there)."""

    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        children = WorkerProcesses(count, cwd)
        if keep is not None:
            keep(children)
        children.start()
        yield
        await children.stop()

    return ctx
