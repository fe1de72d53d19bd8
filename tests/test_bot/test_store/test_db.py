"""The SQL engine's transactions (writers take the lock up front, readers never queue behind them) and the
SQLite file's mode."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

from sqlalchemy import func, select

from bot.runtime.clock import utcnow
from bot.store.db import create_engine, create_schema, read_session_factory, session_factory
from bot.store.tables import ProcessedEvent
from tests.conftest import database_url


async def test_a_reader_reads_its_snapshot_while_a_writer_holds_the_lock(tmp_path: Path) -> None:
    """An inbox page or an SSE sign-in check must not wait for the worker's batch to commit (on SQLite every
    other transaction begins IMMEDIATE and would queue for the write lock, polled by a sleeping busy handler)."""
    engine = await asyncio.to_thread(create_engine, database_url(tmp_path))  # resolves the path: blocking
    sessions, readers = session_factory(engine), read_session_factory(engine)
    try:
        async with sessions() as writer, writer.begin():
            writer.add(ProcessedEvent(key="k1", kind="test", stream_id=None, processed_at=utcnow()))
            await writer.flush()  # the write lock is taken and held until the block ends

            async def count() -> int:
                async with readers() as reader:
                    return (await reader.execute(select(func.count()).select_from(ProcessedEvent))).scalar_one()

            # Bounded so that a reader queued behind the writer fails the test instead of hanging it.
            assert await asyncio.wait_for(count(), timeout=10) == 0  # the uncommitted row is not seen
        async with readers() as reader:
            assert (await reader.execute(select(func.count()).select_from(ProcessedEvent))).scalar_one() == 1
    finally:
        await engine.dispose()


async def test_the_sqlite_file_and_its_journal_are_0600_even_one_left_looser(tmp_path: Path) -> None:
    fresh, old = tmp_path / "plusone.db", tmp_path / "old.db"
    old.write_bytes(b"")
    old.chmod(0o644)  # as an earlier version (or a umask of 022) left it
    for path in (fresh, old):
        engine = await asyncio.to_thread(create_engine, f"sqlite+aiosqlite:///{path}")
        try:
            await create_schema(engine)
            async with session_factory(engine)() as session, session.begin():
                session.add(ProcessedEvent(key="k1", kind="test", stream_id=None, processed_at=utcnow()))
            journal = path.with_name(path.name + "-wal")
            assert journal.exists()
            for file in (path, journal):
                assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
        finally:
            await engine.dispose()
