"""SQLAlchemy's aiosqlite driver with one trip to the connection's thread per statement instead of four.

aiosqlite runs each SQLite connection in a thread of its own, and SQLAlchemy's adapter makes four trips
there for a statement: open a cursor, execute, fetch the rows, close the cursor. Each trip is a handoff
between threads (a queue, then a wake-up of the event loop), about 0.2 ms on a small machine: far more
than the statement itself. The worker's batches run a few dozen statements each, so the trips were a
third of a batch's time. Here the cursor does all four steps in one trip; everything else (connections,
transactions, errors, server-side cursors) is SQLAlchemy's and aiosqlite's own.

Used by `bot.db.create_engine` for every SQLite URL (`sqlite+aiosqlite://`).
"""

from __future__ import annotations

import collections
import sqlite3
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
        async with self._adapt_connection._execute_mutex:
            connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
            done: _Done = await connection._execute(_run, connection._conn, operation, parameters, many)
        self._cursor = done  # type: ignore[assignment]
        if done.rows is not None:
            self._rows = collections.deque(done.rows)
        return done


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module for `create_async_engine(..., module=...)`: aiosqlite's, with the cursor above."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        return OneTripConnection(self, super().connect(*arg, **kw)._connection)


def dbapi() -> OneTripDBAPI:
    return OneTripDBAPI(aiosqlite, sqlite3)
