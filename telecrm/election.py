"""Electing one active holder of a role among processes: one AMI listener per PBX.

Two ``telecrm serve --listener`` processes for the same PBX must not both write its
calls, and when the active one dies the other must take over by itself. Each role
(``listener:<pbx>``, ``jobs``) is a lock that lives exactly as long as its holder:

- PostgreSQL: a session-level advisory lock taken on a connection of its own. The
  server drops it the moment that session ends, so a process killed with ``kill -9``
  (its socket closes) frees it at once; the holder checks its connection every few
  seconds and steps down when the check fails (a database restart, a partition), so
  it stops writing before the server could hand the lock to anyone else.
- SQLite (one machine): an ``flock`` on a file in the data directory, which the
  kernel releases when the process dies.

:func:`run_elected` drives a role: wait for the lock, run the role while it is held,
stop the role at once when the hold is lost, and wait again. A standby runs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol

import asyncpg
from sqlalchemy.engine import make_url

from crm_core.stopping import stop_tasks

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # a standby tries the lock this often: takeover well within 10 s
CHECK_SECONDS = 2.0  # the holder checks that it still holds the lock this often
CHECK_TIMEOUT = 3.0  # an unanswered check means the hold is lost (step down)


class Lock(Protocol):
    """A lock held by this process alone, released when the process dies."""

    name: str

    async def try_acquire(self) -> bool:
        """Take the lock if it is free; never waits for the holder."""
        ...

    async def still_held(self) -> bool:
        """False when the hold can no longer be trusted (then the lock is released)."""
        ...

    async def release(self) -> None:
        ...


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a role name (same in every process)."""
    digest = hashlib.sha256(f"telecrm:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def asyncpg_dsn(database_url: str) -> str:
    """The plain DSN asyncpg takes, from the SQLAlchemy URL of the settings."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class AdvisoryLock:
    """``pg_try_advisory_lock`` on a dedicated connection (never the pool's)."""

    def __init__(self, database_url: str, name: str, *,
                 check_timeout: float = CHECK_TIMEOUT) -> None:
        self.name = name
        self.key = lock_key(name)
        self._dsn = asyncpg_dsn(database_url)
        self._check_timeout = check_timeout
        self._connection: asyncpg.Connection | None = None

    async def try_acquire(self) -> bool:
        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(
                self._dsn, timeout=self._check_timeout, server_settings={
                    "application_name": f"telecrm {self.name}",
                    # The server ends a silent holder's session (and frees its lock) about
                    # 11 s into a partition, while the holder stepped down after 5 s.
                    "tcp_keepalives_idle": "5", "tcp_keepalives_interval": "2",
                    "tcp_keepalives_count": "3", "tcp_user_timeout": "10000"})
        held = await self._connection.fetchval("SELECT pg_try_advisory_lock($1)", self.key,
                                               timeout=self._check_timeout)
        return bool(held)

    async def still_held(self) -> bool:
        connection = self._connection
        if connection is None or connection.is_closed():
            return False
        try:
            # Our own session's lock, as the server sees it: a restarted server has none.
            held = await connection.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = pg_backend_pid() AND objsubid = 1 "
                "AND classid = (($1::bigint >> 32) & 4294967295)::oid "
                "AND objid = ($1::bigint & 4294967295)::oid", self.key,
                timeout=self._check_timeout)
        except (OSError, TimeoutError, asyncpg.PostgresError,
                asyncpg.InterfaceError) as exc:
            log.warning("election %s: the lock's connection failed (%s)", self.name, exc)
            await self.release()
            return False
        return bool(held)

    async def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.terminate()  # the session ends, and its lock with it


class FileLock:
    """``flock`` on a file: one machine's processes (the SQLite set-up)."""

    def __init__(self, path: Path, name: str) -> None:
        self.name = name
        self.path = path
        self._fd: int | None = None

    async def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    async def still_held(self) -> bool:
        return self._fd is not None

    async def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class ProcessLock:
    """Always held: a database no other process can open (in-memory SQLite)."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def try_acquire(self) -> bool:
        return True

    async def still_held(self) -> bool:
        return True

    async def release(self) -> None:
        return None


def role_lock(database_url: str, name: str) -> Lock:
    """The lock of role ``name`` for the processes writing one database: an advisory lock
    on PostgreSQL, a file lock beside the SQLite file (the lock belongs to the data, so two
    CRMs with two databases never wait for each other)."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        return AdvisoryLock(database_url, name)
    if not url.database or url.database == ":memory:":
        return ProcessLock(name)
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
    return FileLock(Path(f"{url.database}.{safe}.lock"), name)


Role = Callable[["Election"], AbstractAsyncContextManager[Any]]


class Election:
    """One role's lock and what this process does with it (for ``/healthz`` and tests)."""

    def __init__(self, lock: Lock, role: Role, *, poll: float = POLL_SECONDS,
                 check: float = CHECK_SECONDS) -> None:
        self.lock = lock
        self.role = role
        self.poll = poll
        self.check = check
        self.active = asyncio.Event()
        self.settled = asyncio.Event()  # the first hold began (or failed)
        self.lost = False  # True while the role stops because the hold was lost
        self.takeovers = 0  # how many times this process became the active holder

    @property
    def name(self) -> str:
        return self.lock.name

    async def try_once(self) -> bool:
        """One attempt, logged on failure as a standby; never raises for a database away."""
        try:
            return await self.lock.try_acquire()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("election %s: cannot reach the lock (%s); retrying", self.name, exc)
            await self.lock.release()
            return False

    async def run(self, *, held: bool = False) -> None:
        """Until cancelled: wait for the lock, run the role while held, step down on loss."""
        try:
            while True:
                while not held:
                    held = await self.try_once()
                    if not held:
                        await asyncio.sleep(self.poll)
                try:
                    await self._hold()
                except Exception:  # the role failed: give the lock up, try again later
                    log.exception("election %s: the role failed; standing by", self.name)
                    await self.lock.release()
                    self.settled.set()
                held = False
                await asyncio.sleep(self.poll)
        finally:
            self.active.clear()
            await self.lock.release()

    async def _hold(self) -> None:
        self.takeovers += 1
        log.info("election %s: this process is now the active one", self.name)
        self.lost = False
        async with self.role(self):
            self.active.set()
            self.settled.set()
            try:
                while await self.lock.still_held():  # noqa: ASYNC110 -- a remote state
                    await asyncio.sleep(self.check)
                self.lost = True  # the role stops without writing anything more
            finally:
                self.active.clear()
        log.warning("election %s: the lock was lost; this process stopped and stands by",
                    self.name)
        await self.lock.release()


@contextlib.asynccontextmanager
async def elected(election: Election) -> AsyncIterator[Election]:
    """Run ``election`` in the background for the duration of the block.

    The first attempt is made before the block starts, so a lone process (or the
    first of several) is active as soon as it is up, as before elections existed.
    """
    held = await election.try_once()
    task = asyncio.create_task(election.run(held=held), name=f"election-{election.name}")
    try:
        if held:  # wait for the role to start, so the caller sees it running
            waiter = asyncio.create_task(election.settled.wait())
            await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if task.done():
                task.result()
        yield election
    finally:
        await stop_tasks(task)
