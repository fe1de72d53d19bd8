"""SQLAlchemy's aiosqlite driver with one trip to the connection's thread per statement instead of four, and
writers of one process taking turns in the event loop instead of in SQLite's busy handler.

aiosqlite runs each SQLite connection in a thread of its own, and SQLAlchemy's adapter makes four trips
there for a statement: open a cursor, execute, fetch the rows, close the cursor. Each trip is a handoff
between threads (a queue, then a wake-up of the event loop), about 0.2 ms on a small machine: far more
than the statement itself. The worker's batches run a few dozen statements each, so the trips were a
third of a batch's time. Here the cursor does all four steps in one trip; everything else (connections,
transactions, errors, server-side cursors) is SQLAlchemy's and aiosqlite's own.

Writers: `bot.store.db` begins every writing transaction with BEGIN IMMEDIATE. When another connection holds
the write lock, SQLite's busy handler polls with sleeps of up to 100 ms, so the lock sits idle after it is
freed and a newcomer can overtake a writer that waited for seconds (the worker waited behind the outbox
sender so). Writers of one process now queue for their turn in the event loop, first come first served,
and take the lock the moment it is free; SQLite's busy handler remains only between processes.

Used by `bot.store.db.create_engine` for every SQLite URL (`sqlite+aiosqlite://`). It calls aiosqlite's
`Connection._execute` and `_conn`, which are not public: `requirements.lock` pins aiosqlite (0.22.1) and
SQLAlchemy (2.1.9), and `tests/test_bot/test_store/test_sqlite_driver.py` fails if either changes them.
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
import threading
import weakref
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT


class _Done:
    """What a finished statement left on its cursor, read back in the event loop's thread."""

    __slots__ = ("arraysize", "description", "lastrowid", "rowcount", "rows")

    def __init__(self, description: Any, rowcount: int, lastrowid: int | None, rows: list[Any] | None) -> None:
        self.description = description
        self.rowcount = rowcount
        self.lastrowid = lastrowid
        self.rows = rows
        self.arraysize = 1

    def close(self) -> None:
        """The SQLite cursor was closed already, in its thread."""


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Done:
    """In the connection's thread: execute, read every row, close the cursor."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else None
        return _Done(cursor.description, cursor.rowcount, cursor.lastrowid, rows)
    finally:
        cursor.close()


WRITE_TURN_WAIT_S = 30.0  # as long as SQLite's own busy timeout (bot.store.db): then "database is locked", as before


class WriteTurns:
    """The turns of one database file's writers in this process, in the order they asked."""

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()
        self._guard = threading.Lock()

    async def take(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Lock]:
        loop = asyncio.get_running_loop()
        with self._guard:  # one lock per event loop (tests run several loops, one after another)
            lock = self._locks.setdefault(loop, asyncio.Lock())
        try:
            await asyncio.wait_for(lock.acquire(), WRITE_TURN_WAIT_S)
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked (this process's other writers held it)") from None
        return loop, lock


_TURNS: dict[str, WriteTurns] = {}  # database file -> its writers' turns, shared by every engine on it
_TURNS_GUARD = threading.Lock()


def _turns_of(database: str) -> WriteTurns:
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        return WriteTurns()  # a private database: nothing to share
    with _TURNS_GUARD:
        return _TURNS.setdefault(database, WriteTurns())


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()
    _awaitable_cursor_close = False  # nothing left to close in the connection's thread

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No aiosqlite cursor (opening one is a trip of its own): each statement makes its SQLite cursor.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = _Done(None, -1, None, None)  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        return await self._trip(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        return await self._trip(operation, seq_of_parameters, many=True)

    async def _trip(self, operation: Any, parameters: Any, many: bool) -> _Done:
        adapted: OneTripConnection = self._adapt_connection  # type: ignore[assignment]
        begins_write = operation == "BEGIN IMMEDIATE"
        if begins_write:
            await adapted.take_write_turn()
        try:
            async with adapted._execute_mutex:
                connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
                done: _Done = await connection._execute(_run, connection._conn, operation, parameters, many)
        except BaseException:
            if begins_write:
                adapted.end_write_turn()  # no transaction began: the next writer goes
            raise
        self._cursor = done  # type: ignore[assignment]
        if done.rows is not None:
            self._rows = collections.deque(done.rows)
        return done


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("_turn", "_turns")
    _cursor_cls = OneTripCursor

    def __init__(self, dbapi: Any, connection: aiosqlite.Connection, turns: WriteTurns) -> None:
        super().__init__(dbapi, connection)
        self._turns = turns
        self._turn: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    async def take_write_turn(self) -> None:
        if self._turn is None:
            self._turn = await self._turns.take()

    def end_write_turn(self) -> None:
        """The transaction ended (commit, rollback, close): the next writer of this process goes."""
        turn, self._turn = self._turn, None
        if turn is None:
            return
        loop, lock = turn
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            lock.release()
        elif not loop.is_closed():  # a connection collected outside its loop's thread
            loop.call_soon_threadsafe(lock.release)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.end_write_turn()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.end_write_turn()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.end_write_turn()

    def terminate(self) -> None:
        # SQLAlchemy terminates a connection it cannot trust any more, e.g. when a task is cancelled in the
        # middle of a statement, or one garbage-collected while checked out: its transaction ends with it.
        # (Both of terminate's ways, the graceful close and the forced one, pass through here.)
        try:
            super().terminate()
        finally:
            self.end_write_turn()


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module for `create_async_engine(..., module=...)`: aiosqlite's, with the cursor above."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        database = str(arg[0] if arg else kw.get("database", ""))
        return OneTripConnection(self, super().connect(*arg, **kw)._connection, _turns_of(database))


def dbapi() -> OneTripDBAPI:
    return OneTripDBAPI(aiosqlite, sqlite3)
