"""The SQL engine (SQLite by default, PostgreSQL by URL) and the exactly-once key claim.

Adapter module: this and the repositories are the only places that talk SQL.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel

import bot.store.tables  # noqa: F401  (registers the spine's tables on SQLModel.metadata)
import carts.coupon_tables  # (coupons, their codes and uses, first-N offers)
import carts.order_tables  # (registers orders, checkout tokens and order events too)
import carts.payment_tables
import carts.tables  # noqa: F401  (and the catalog's, campaigns' and stock claims')
import crm_bridge.journey_outcome_tables  # (survey answers, orders credited to journey messages)
import crm_bridge.journey_tables  # (journeys, their versions, runs, history and queued messages)
import crm_bridge.segment_tables
import crm_bridge.tables  # noqa: F401  (and the CRM's members, points ledger and referrals)
from bot.runtime.clock import utcnow
from bot.store import sqlite_driver
from bot.store.tables import ProcessedEvent
from carts.sql import dialect_insert
from config.settings import private_file


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """The engine of `url` (blocking on SQLite, which makes its file: call in a thread from a loop)."""
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        if path is not None:
            _make_private(path)
        engine = create_async_engine(url, connect_args={"timeout": 30}, module=sqlite_driver.dbapi(), **kwargs)
        _configure_sqlite(engine)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True, **kwargs)


def _sqlite_path(url: str) -> Path | None:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _make_private(path: Path) -> None:
    # SQLite creates its file 0644 and gives the -wal and -shm files the file's mode: so a new database is
    # made here 0600 (already in WAL mode: connections opening an empty file together would race to switch
    # it), and an older one's files are tightened. Shoppers' data is its owner's alone.
    if not path.exists() and path.parent.is_dir():
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass  # another process made it just now
        else:
            with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
                db.execute("PRAGMA journal_mode=WAL")
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists():
            private_file(file)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, emit BEGIN, so SAVEPOINTs work (SQLAlchemy's aiosqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            # A reader begins DEFERRED: in WAL mode it reads its snapshot beside the writer and never
            # queues for the write lock (behind this process's writers, `bot.store.sqlite_driver`'s write turns,
            # or other processes' in SQLite's busy handler).
            conn.exec_driver_sql("BEGIN")
            return
        # IMMEDIATE takes the write lock up front: two deferred writers would otherwise deadlock
        # (SQLITE_BUSY without waiting) when both upgrade from a read to a write.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


async def create_schema(engine: AsyncEngine) -> None:
    """Create missing tables from the models: for tests' scratch databases. The program migrates instead."""
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)


async def migrate_schema(engine: AsyncEngine) -> None:
    """Bring the database to the newest Alembic revision (see bot.store.migrations); every command starts so."""
    from bot.store.migrations import upgrade

    await upgrade(engine)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


READ_ONLY = "plusone_read_only"


def read_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for pages and polls that only read: on SQLite they never wait for a writer. Never write in
    one: a deferred transaction that writes fails with SQLITE_BUSY when another writer got there first.
    PostgreSQL ignores the option: its readers never wait for writers anyway."""
    return async_sessionmaker(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def claim_event_key(session: AsyncSession, key: str, kind: str, stream_id: str | None) -> bool:
    """Record `key` as processed in the current transaction; False if it already was (a replay).

    Because the key commits or rolls back together with the handler's effects, a replayed event
    (Meta retry, reclaimed stream entry, live comment seen by two sources) changes nothing.
    """
    return key in await claim_event_keys(session, [(key, kind, stream_id)])


async def claim_event_keys(session: AsyncSession, keys: list[tuple[str, str, str | None]]) -> set[str]:
    """`claim_event_key` for many (key, kind, stream id) at once; the keys that were new (not replays)."""
    insert = dialect_insert(session)
    now = utcnow()
    fresh: set[str] = set()
    rows = [{"key": key, "kind": kind, "stream_id": stream_id, "processed_at": now} for key, kind, stream_id in keys]
    # Core executemany on the table: one cached statement that SQLAlchemy sends as multi-row VALUES batches
    # ("insertmanyvalues"); a literal multi-row .values() would be compiled again for every batch size.
    table = ProcessedEvent.__table__
    stmt = insert(table).on_conflict_do_nothing(index_elements=["key"]).returning(table.c.key)
    fresh.update((await session.execute(stmt, rows)).scalars())
    return fresh
