"""SQLite statements in one trip to the connection's thread instead of four.

aiosqlite runs each SQLite connection on a thread of its own, and every call it makes
there is a trip: a queue put, the thread waking, the result handed back to the event
loop through its self-pipe, the loop waking. SQLAlchemy's aiosqlite adapter makes four
trips for one statement (open a cursor, execute, fetch the rows, close the cursor), and
on a virtual machine's system calls a trip costs some 60 µs of processor: a trivial
SELECT took 270 µs through the stock adapter against 21 µs through SQLAlchemy's
synchronous driver. A client card is some twenty statements.
``bench/sqlite_statement.py`` measures a page-like round of reads and a write.

Here a statement is one trip: the cursor is opened, executed, read out (rows,
description, row count, last row id) and closed on the connection's thread, and the
adapter serves SQLAlchemy from that snapshot. Everything else is aiosqlite's and
SQLAlchemy's own: the connection, its thread, transactions, errors, and the
server-side cursors of streamed results.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy import event
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import EMPTY_DICT

try:  # waits for a coroutine from SQLAlchemy's synchronous side (a greenlet)
    from sqlalchemy.util.concurrency import await_
except ImportError:  # SQLAlchemy 2.0 names it await_only
    from sqlalchemy.util.concurrency import await_only as await_


def _run(connection: sqlite3.Connection, operation: str, parameters: Any,
         many: bool) -> tuple[Any, int, int | None, list[Any] | None]:
    """On the connection's thread: the whole statement, and what SQLAlchemy reads of it."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        # read after the rows: with RETURNING, SQLite counts the rows as they are read
        return description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A client-side cursor whose statement runs in one trip (see the module)."""

    __slots__ = ("_arraysize", "_snapshot")

    def __init__(self, adapt_connection: Any) -> None:
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]  # the sqlite3 cursor stays on its thread
        self._soft_closed_memoized = EMPTY_DICT  # never soft-closed: no dict per statement
        self._rows: collections.deque[Any] = collections.deque()
        self._snapshot: tuple[Any, int, int | None] = (None, -1, None)
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._snapshot[0]

    @property
    def rowcount(self) -> int:
        return self._snapshot[1]

    @property
    def lastrowid(self) -> int | None:  # type: ignore[override]
        return self._snapshot[2]

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        """Nothing is left open on the thread: the rows are already here."""

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            return await_(self._one_trip(operation, parameters, False))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        try:
            return await_(self._one_trip(operation, seq_of_parameters, True))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _one_trip(self, operation: Any, parameters: Any, many: bool) -> Any:
        connection = self._connection
        async with self._adapt_connection._execute_mutex:
            description, rowcount, lastrowid, rows = await connection._execute(
                _run, connection._conn, operation, parameters, many)
        self._snapshot = (description, rowcount, lastrowid)
        self._rows = collections.deque(rows) if rows is not None else collections.deque()
        return self


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    """aiosqlite's connection as SQLAlchemy adapts it, with :class:`OneHopCursor`."""

    __slots__ = ()
    _cursor_cls = OneHopCursor


def use_one_hop_statements(engine: AsyncEngine) -> bool:
    """Open this SQLite engine's connections with :class:`OneHopConnection`.

    False (and the engine left as it was) where aiosqlite or SQLAlchemy are not the
    versions this adapter reads the insides of.
    """
    if (not hasattr(aiosqlite.Connection, "_execute")
            or not hasattr(AsyncAdapt_aiosqlite_connection, "_cursor_cls")):
        return False

    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        connection = aiosqlite.connect(*cargs, **cparams)
        # a daemon thread, as SQLAlchemy's own adapter makes it (aiosqlite < 0.22: itself)
        thread: Any = getattr(connection, "_thread", connection)
        thread.daemon = True
        return OneHopConnection(dialect.loaded_dbapi, await_(connection))  # type: ignore[arg-type]

    return True
