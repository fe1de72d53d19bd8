"""A throwaway PostgreSQL cluster for the tests: Debian's `postgresql` binaries, a temp dir, 127.0.0.1.

Started once per session when TEST_DATABASE=postgresql. PostgreSQL refuses to run as root, so
as root (CI) the server runs as the `postgres` user the Debian package creates. Durability is off (fsync,
synchronous commit): the cluster is thrown away, and the tests are about SQL, not about the disk.
`durable=True` keeps PostgreSQL's defaults instead, for benchmarks and fault runs: there a restart must not
lose a commit PostgreSQL acknowledged.
Each test gets its own database, copied from a migrated template (CREATE DATABASE ... TEMPLATE).
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import asyncpg

SUPERUSER = "postgres"


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl is None:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql (make test does it)")
    return Path(pg_ctl).resolve().parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    def __init__(self, *, durable: bool = False) -> None:
        self.durable = durable
        self.bin = _bin_dir()
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="plusone-pg-"))
        self.data = self.dir / "data"
        self._as_root = os.geteuid() == 0
        self._counter = 0
        self._lock = threading.Lock()

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def start(self) -> None:
        if self._as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync")
        self.start_server()

    def start_server(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir} "
        options += "-c max_connections=300"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-o", options, "-w", "start")

    def stop_server(self, mode: str = "immediate") -> None:
        """Stop the server but keep its data (`immediate`: as a crash; the next start replays the WAL)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str) -> str:
        # Trust auth ignores the password, and there is no TLS: saying so stops asyncpg from looking for
        # ~/.pgpass and client certificates on the event loop (blocking calls blockbuster would fail).
        return f"postgresql://{SUPERUSER}:unused@127.0.0.1:{self.port}/{database}?ssl=disable"

    def execute(self, *statements: str) -> None:
        """Run statements as the superuser on the `postgres` database (from any thread or loop)."""

        async def run() -> None:
            conn = await asyncpg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, database="postgres")
            try:
                for statement in statements:
                    await conn.execute(statement)
            finally:
                await conn.close()

        # A thread of its own: callers may be inside a running event loop (async tests and fixtures).
        errors: list[BaseException] = []

        def target() -> None:
            try:
                asyncio.run(run())
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
        if errors:
            raise errors[0]

    def new_name(self) -> str:
        with self._lock:
            self._counter += 1
            return f"t{self._counter}"

    def create_database(self, template: str | None = None) -> str:
        """A new empty (or template-copied) database; returns its name."""
        name = self.new_name()
        # FILE_COPY: for small databases, copying the files is much faster than WAL-logging each block.
        suffix = f" TEMPLATE {template} STRATEGY FILE_COPY" if template else ""
        self.execute(f"CREATE DATABASE {name}{suffix}")
        return name

    def drop_database(self, name: str) -> None:
        self.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
