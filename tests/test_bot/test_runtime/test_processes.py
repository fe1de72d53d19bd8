"""`bot.runtime.processes`: serve's children are started again when they exit, and stopped with SIGTERM
(killed only if they do not stop). Real child processes: small Python programs standing in for a worker."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from bot.runtime.processes import WorkerProcesses
from tests.conftest import wait_until


async def test_a_child_that_exits_is_started_again(tmp_path: Path) -> None:
    children = WorkerProcesses(1, tmp_path, [sys.executable, "-c", "raise SystemExit(3)"])
    children.start()
    try:

        async def restarted() -> bool:
            return children.starts >= 2

        await wait_until(restarted, what="a second start after the first child exited")
    finally:
        await children.stop()
    assert children.processes[0].returncode is not None  # and the last one was stopped with the rest


async def test_stop_sends_sigterm_and_waits_for_each_child(tmp_path: Path) -> None:
    # Each child notes SIGTERM in a file and exits 0, as `plusone worker` does after its batch in hand. It
    # says it is ready once its handler is in place: a SIGTERM before that would end it with -15.
    program = (
        "import os, pathlib, signal, sys, time\n"
        "def bye(*_):\n"
        "    pathlib.Path(f'stopped-{os.getpid()}').write_text('sigterm')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "pathlib.Path(f'ready-{os.getpid()}').write_text('yes')\n"
        "time.sleep(60)\n"
    )
    children = WorkerProcesses(2, tmp_path, [sys.executable, "-c", program])
    children.start()

    async def ready() -> bool:
        return len(await asyncio.to_thread(_contents, tmp_path, "ready-*")) == 2

    await wait_until(ready, what="both children running, their handlers in place")
    started = time.monotonic()
    await children.stop()
    assert time.monotonic() - started < 20  # not the 60 s sleep, nor the 30 s kill deadline
    assert await asyncio.to_thread(_contents, tmp_path, "stopped-*") == ["sigterm", "sigterm"]
    assert [p.returncode for p in children.processes.values()] == [0, 0]
    assert children.starts == 2  # stopping starts nothing new


def _contents(folder: Path, pattern: str) -> list[str]:
    return sorted(path.read_text() for path in folder.glob(pattern))
