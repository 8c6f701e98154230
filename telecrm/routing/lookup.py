"""The owner lookup the dialplan calls while an inbound call waits (``POST /pbx/owner``).

The rules, people and who is away are held in memory
(:class:`~crm_core.routing.services.Snapshot`, re-read every few seconds and at once after
a change made in this process); who is on a call comes from the running listeners'
trackers, which know it before the database does. The caller's owner is one indexed
query, always fresh, on a connection the lookup keeps for itself (outside any
transaction, so it never reads an old snapshot): on PostgreSQL an async one; on SQLite
a plain read-only ``sqlite3`` connection read on the event loop, because the indexed
read takes some 50 µs while aiosqlite's hop to its thread and back costs more than the
query and grows with the machine's load.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from crm_core.clients.phones import normalize_phone
from crm_core.clock import local_today
from crm_core.errors import DomainError
from crm_core.routing.services import (
    OWNER_OF_NUMBER_SQL,
    Snapshot,
    did_number,
    load_snapshot,
    one_owner,
    owner_of_number,
)
from crm_core.stopping import stop_tasks
from pbx_bridge.pipeline import Listener
from telecrm.rounds import run_rounds
from telecrm.web.keys import LISTENERS, SESSIONS, SETTINGS

log = logging.getLogger(__name__)

REFRESH_SECONDS = 3.0


class OwnerLookup:
    """Answers ``<ring seconds>:<dial string>`` for a caller, or nothing (the queue)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], tz: ZoneInfo,
                 listeners: Callable[[], Iterable[Listener]] = tuple, region: str = "RU"
                 ) -> None:
        self.sessions = sessions
        self.tz = tz
        self.listeners = listeners
        self.region = region
        self.snapshot = Snapshot()
        self.loaded_at = 0.0
        self._conn: AsyncConnection | None = None
        self._sqlite: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self.sessions() as session:
            self.snapshot = await load_snapshot(session, local_today(self.tz))
        self.loaded_at = time.monotonic()

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            conn = await self.sessions.kw["bind"].connect()
            self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    async def owner(self, number: str) -> int | None:
        """The caller's owner, on the lookup's own connection (reopened after a failure)."""
        engine = self.sessions.kw["bind"]
        if engine.url.get_backend_name() == "sqlite" and engine.url.database:
            return self._sqlite_owner(engine.url.database, number)
        async with self._lock:
            try:
                return await owner_of_number(await self._connection(), number)
            except Exception:
                await self.close()
                raise

    def _sqlite_connection(self, path: str) -> sqlite3.Connection:
        if self._sqlite is None:
            self._sqlite = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.05,
                                           isolation_level=None, check_same_thread=False)
        return self._sqlite

    def _sqlite_owner(self, path: str, number: str) -> int | None:
        connection = self._sqlite_connection(path)
        try:
            rows = connection.execute(OWNER_OF_NUMBER_SQL, (number,)).fetchall()
        except sqlite3.Error:
            connection.close()
            self._sqlite = None
            raise
        return one_owner(row[0] for row in rows)

    async def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    def busy(self) -> set[str]:
        """Extensions talking on a live call now, per every running PBX's tracker."""
        found: set[str] = set()
        for listener in self.listeners():
            for call in listener.tracker.live_calls():
                found.update(leg.extension for leg in call.legs
                             if leg.extension and leg.ended_at is None
                             and leg.answered_at is not None)
        return found

    async def answer(self, caller: str, did: str) -> tuple[str | None, str]:
        """The dialplan's answer for ``caller`` calling ``did``, and why (for the log)."""
        number = _caller(caller, self.region)
        if number is None:
            return None, "no_number"
        to = _did(did, self.region) if did else None
        return self.snapshot.decide(await self.owner(number), to, self.busy())


def _caller(raw: str, region: str) -> str | None:
    """E.164 of the caller ID; a Russian carrier's plain 11 digits without phonenumbers.

    Parsing with phonenumbers is most of the lookup's CPU; eleven digits starting with
    7 or 8 (what Russian carriers send) give the same result directly.
    """
    if region == "RU" and len(raw) == 11 and raw.isdigit() and raw[0] in "78" \
            and raw[1] in "3489":
        return "+7" + raw[1:]
    return normalize_phone(raw, region)


@functools.lru_cache(maxsize=1024)
def _did(did: str, region: str) -> str | None:
    """A company has a few DIDs: each is parsed once."""
    try:
        return did_number(did, region)
    except DomainError:
        return None


ROUTING = web.AppKey("routing_lookup", OwnerLookup)


async def routing_ctx(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: the lookup and its refresher (after the database's and listeners')."""
    settings = app[SETTINGS]
    lookup = OwnerLookup(app[SESSIONS], ZoneInfo(settings.timezone),
                         lambda: app.get(LISTENERS, {}).values(), settings.phone_region)
    app[ROUTING] = lookup

    async def refresh(_: web.Application) -> None:  # a failed round keeps what we have
        await lookup.refresh()

    # Loaded before the app answers: a call in its first second would find no token
    # and no rules (a refusal, the queue) while the first round was still reading.
    try:
        await lookup.refresh()
    except Exception:
        log.warning("sticky routing: the rules could not be read at start", exc_info=True)

    task = asyncio.create_task(
        run_rounds(app, refresh, REFRESH_SECONDS, "sticky routing: re-reading the rules"),
        name="routing-refresh")
    yield
    await stop_tasks(task)
    await lookup.close()


async def changed(app: web.Application) -> None:
    """Re-read at once after a change here (other processes catch up within seconds)."""
    lookup = app.get(ROUTING)
    if lookup is not None:
        try:
            await lookup.refresh()
        except Exception:
            log.warning("sticky routing: could not re-read the rules", exc_info=True)
