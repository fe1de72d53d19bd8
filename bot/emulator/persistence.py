"""The emulator's memory kept in a file across restarts (the demo inside `plusone serve`).

Read at start; written when it changed (checked every `EmulatorConfig.state_save_s`) and at stop, to a
temporary file renamed over the old one, so a crash mid-write leaves the previous state. An unreadable
file is set aside (`.unreadable`) with a warning, and the emulator starts with a fresh memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from bot.emulator.state import EmulatorState

__all__ = ["StateFile"]

log = logging.getLogger("plusone.emulator")


class StateFile:
    """One emulator state and the file that keeps it."""

    def __init__(self, state: EmulatorState, path: Path, every_s: float) -> None:
        self.state = state
        self.path = path
        self.every_s = every_s
        self._written: str | None = None

    def load(self) -> None:
        """Restore the state from the file, if there is one (blocking: run in a thread before serving)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        try:
            self.state.restore(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            aside = self.path.with_name(self.path.name + ".unreadable")
            os.replace(self.path, aside)
            log.warning("emulator state %s could not be read (%s); set aside as %s", self.path, exc, aside)
            return
        self._written = text

    async def save_if_changed(self) -> bool:
        # The snapshot is taken on the loop (no handler changes it meanwhile); only the disk work is threaded.
        text = json.dumps(self.state.snapshot(), ensure_ascii=False, default=str)
        if text == self._written:
            return False
        await asyncio.to_thread(self._write, text)
        self._written = text
        return True

    def _write(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.path)

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await self.save_if_changed()
            except OSError as exc:  # a full disk must not stop the emulator; the next round tries again
                log.warning("emulator state not written to %s: %s", self.path, exc)

    async def ctx(self, _app: web.Application) -> AsyncIterator[None]:
        """The application's cleanup context: load, keep writing changes, write once more at stop."""
        await asyncio.to_thread(self.load)
        task = asyncio.create_task(self._keep())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self.save_if_changed()
