"""One `plusone serve` per data directory: an exclusive lock on `data_dir/serve.lock`, held for the process's life.

A second server on the same directory would adopt the first one's embedded Redis, fail to bind, then stop
that Redis and delete the demo emulator's marker on its way out. `fcntl.flock` is released by the kernel
when the process ends however it ends, so a killed server never leaves a stale lock behind. `plusone
worker` joins a running server and takes no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import IO

__all__ = ["LOCK_FILE", "DataDirLock", "DataDirLocked"]

LOCK_FILE = "serve.lock"


class DataDirLocked(Exception):
    """Another process holds the data directory; `str()` is one line for the terminal."""


class DataDirLock:
    """The lock on a data directory; `acquire` raises `DataDirLocked` at once when it is taken."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._file: IO[str] | None = None

    def acquire(self) -> DataDirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Not truncated on open: the holder's pid stays readable for the message below.
        file = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (held until release)
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "unknown"
            file.close()
            raise DataDirLocked(
                f"another `plusone serve` (pid {holder}) is already running on the data directory "
                f"{self.path.parent}; stop it first, or give this one another PLUSONE_DATA_DIR"
            ) from None
        file.seek(0)
        file.truncate()
        file.write(f"{os.getpid()}\n")
        file.flush()
        self._file = file
        return self

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
