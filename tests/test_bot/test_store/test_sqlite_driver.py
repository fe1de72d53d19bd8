"""`bot.store.sqlite_driver`: SQLAlchemy's aiosqlite driver making one trip to the connection's thread per statement."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import event, exc, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.runtime.clock import utcnow
from bot.store import sqlite_driver
from bot.store.db import create_engine, create_schema, session_factory
from bot.store.tables import ProcessedEvent


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = await asyncio.to_thread(create_engine, f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    await create_schema(engine)
    yield engine
    await engine.dispose()


def row(key: str) -> dict[str, Any]:
    return {"key": key, "kind": "test", "stream_id": None, "processed_at": utcnow()}


async def test_a_statement_with_rows_is_one_trip(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    trips = 0
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal trips
        trips += 1
        return await original(self, fn, *args, **kwargs)

    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))  # the connection's BEGIN and set-up come first
        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
        result = await conn.execute(text("SELECT 1, 'two' UNION ALL SELECT 3, 'four'"))
        assert trips == 1  # aiosqlite's own cursor takes four: open, execute, fetch, close
        assert result.all() == [(1, "two"), (3, "four")]


async def test_writes_report_counts_ids_and_constraint_errors(engine: AsyncEngine) -> None:
    table = ProcessedEvent.__table__
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        await session.execute(insert(table), [row("a"), row("b"), row("c")])  # executemany
        changed = await session.execute(update(table).where(table.c.key.in_(["a", "b"])).values(kind="changed"))
        assert changed.rowcount == 2
        inserted = await session.execute(insert(table).values(row("d")))
        assert inserted.inserted_primary_key == ("d",)
        with pytest.raises(exc.IntegrityError):
            async with session.begin_nested():
                await session.execute(insert(table).values(row("a")))
        assert (await session.execute(select(table.c.key).order_by(table.c.key))).scalars().all() == [
            "a",
            "b",
            "c",
            "d",
        ]
    async with sessions() as session:
        kinds = dict((await session.execute(select(table.c.key, table.c.kind))).all())
    assert kinds == {"a": "changed", "b": "changed", "c": "test", "d": "test"}


async def test_a_database_locked_by_another_writer_is_an_operational_error(engine: AsyncEngine, tmp_path: Path) -> None:
    """The worker holds a batch when the database is locked (bot.inbound.worker.database_unavailable): the error must
    still arrive as SQLAlchemy's OperationalError."""
    async with aiosqlite.connect(tmp_path / "driver.db") as other, engine.connect() as conn:
        await other.execute("BEGIN IMMEDIATE")
        raw = await conn.get_raw_connection()
        await raw.driver_connection.execute("PRAGMA busy_timeout=100")  # not 30 s of waiting
        with pytest.raises(exc.OperationalError, match="locked"):
            await conn.execute(insert(ProcessedEvent.__table__).values(row("x")))
        await other.rollback()


async def test_writers_of_one_process_take_turns_in_the_order_they_asked(engine: AsyncEngine) -> None:
    """With SQLite's busy handler switched off, a second writer would fail at once with "database is locked";
    taking turns in the event loop, it waits for the first to commit, and the third goes after the second."""

    @event.listens_for(engine.sync_engine, "connect")
    def no_busy_handler(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=0")
        cursor.close()

    await engine.dispose()  # new connections, with the listener above
    sessions = session_factory(engine)
    order: list[str] = []

    async def write(key: str, start_after: float, hold: float) -> None:
        await asyncio.sleep(start_after)
        async with sessions() as session, session.begin():
            order.append(f"{key} began")
            await session.execute(insert(ProcessedEvent.__table__).values(row(key)))
            await asyncio.sleep(hold)

    await asyncio.gather(write("a", 0, 0.3), write("b", 0.1, 0), write("c", 0.2, 0))
    assert order == ["a began", "b began", "c began"]
    async with sessions() as session:
        assert (await session.execute(select(ProcessedEvent.key))).scalars().all() == ["a", "b", "c"]


async def test_a_writer_cancelled_mid_statement_gives_its_turn_back(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLAlchemy terminates a connection whose task was cancelled mid-statement (the worker stopping); its
    turn must end with it, or every later writer of the process waits out the limit and fails."""
    monkeypatch.setattr(sqlite_driver, "WRITE_TURN_WAIT_S", 3.0)
    sessions = session_factory(engine)
    slow = text(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000000) SELECT count(*) FROM n"
    )

    async def cancelled_writer() -> None:
        async with sessions() as session, session.begin():
            await session.execute(insert(ProcessedEvent.__table__).values(row("first")))
            await session.execute(slow)

    task = asyncio.create_task(cancelled_writer())
    await asyncio.sleep(0.3)  # inside the slow statement
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with sessions() as session, session.begin():
        await session.execute(insert(ProcessedEvent.__table__).values(row("next")))
    async with sessions() as session:
        assert (await session.execute(select(ProcessedEvent.key))).scalars().all() == ["next"]
