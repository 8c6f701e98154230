"""Electing one active listener per PBX: the lock dies with its holder, a standby runs
nothing while another process holds it, and a holder that loses it stops at once.

The other holder is a real process (killed with SIGKILL), the lock a real PostgreSQL
advisory lock or a real ``flock``; ``serve --listener`` apps against stand-in AMI
servers show that a standby never even connects to Asterisk.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from sqlalchemy import func, select

from crm_core.calls.models import Call
from crm_core.db import create_engine, session_factory
from telecrm.election import AdvisoryLock, Election, FileLock, elected, lock_key, role_lock
from telecrm.settings import Settings
from telecrm.web.keys import ELECTIONS, LISTENERS
from tests.pbxes.test_pbx_listeners import FakeAmiServer, inbound
from tests.support.browser import serve_app
from tests.support.pg_server import PostgresServer

FAST = dict(poll=0.2, check=0.2)

# A holder in another process: takes the lock, says so, and sleeps until killed.
PG_HOLDER = textwrap.dedent("""
    import asyncio, sys, asyncpg
    async def main():
        connection = await asyncpg.connect(sys.argv[1])
        assert await connection.fetchval("SELECT pg_try_advisory_lock($1)", int(sys.argv[2]))
        print("held", flush=True)
        await asyncio.sleep(3600)
    asyncio.run(main())
""")
FILE_HOLDER = textwrap.dedent("""
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("held", flush=True)
    time.sleep(3600)
""")


@contextlib.contextmanager
def holder(script: str, *args: str):
    process = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "held"
        yield process
    finally:
        process.kill()
        process.wait()


class RecordingRole:
    """A role that notes when it runs: what a listener would be."""

    def __init__(self) -> None:
        self.started = 0
        self.stopped_lost: list[bool] = []

    @contextlib.asynccontextmanager
    async def __call__(self, election: Election) -> AsyncIterator[None]:
        self.started += 1
        try:
            yield
        finally:
            self.stopped_lost.append(election.lost)


async def until(predicate, timeout: float = 10.0) -> float:
    """Seconds it took for ``predicate`` to hold (fails after ``timeout``)."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


@pytest.mark.postgres
@pytest.mark.parametrize("name", ["listener:main", "jobs"])  # keys > 0 and < 0
async def test_advisory_lock_dies_with_its_holder_and_the_standby_takes_over(
        postgres_server: PostgresServer, name: str) -> None:
    url = postgres_server.url("postgres")
    role = RecordingRole()
    election = Election(AdvisoryLock(url, name), role, **FAST)
    with holder(PG_HOLDER, postgres_server.dsn("postgres"), str(lock_key(name))) as other:
        async with elected(election):
            await asyncio.sleep(1.5)  # several rounds of trying
            assert role.started == 0, "a standby never runs the role while another holds it"
            assert not election.active.is_set()
            other.send_signal(signal.SIGKILL)
            other.wait()
            took = await until(election.active.is_set)
            assert took < 10
            await asyncio.sleep(1.5)  # several checks of the hold
            assert (role.started, role.stopped_lost) == (1, []), "the holder keeps its lock"
        assert role.stopped_lost == [False], "a shutdown is not a lost lock"


@pytest.mark.postgres
async def test_a_holder_whose_session_ends_stops_at_once_and_stands_by_again(
        postgres_server: PostgresServer) -> None:
    url = postgres_server.url("postgres")
    role = RecordingRole()
    lock = AdvisoryLock(url, "listener:spb")
    election = Election(lock, role, **FAST)
    async with elected(election):
        assert election.active.is_set() and role.started == 1
        # What a database restart does to the holder: its session is gone, and the lock.
        admin = await asyncpg.connect(postgres_server.dsn("postgres"))
        try:
            # this election's lock: the process's server is shared with other tests' locks
            pids = await admin.fetch("SELECT pid FROM pg_locks WHERE locktype = 'advisory' "
                                     "AND granted AND objid = ($1::bigint & 4294967295)::oid",
                                     lock_key("listener:spb"))
            assert len(pids) == 1
            # Another process grabs the lock the moment it is free.
            await admin.execute("SELECT pg_terminate_backend($1)", pids[0]["pid"])
            taken = False
            for _ in range(50):
                taken = await admin.fetchval("SELECT pg_try_advisory_lock($1)",
                                             lock_key("listener:spb"))
                if taken:
                    break
                await asyncio.sleep(0.05)
            assert taken
            await until(lambda: role.stopped_lost == [True])
            assert not election.active.is_set()
            await asyncio.sleep(1)
            assert role.started == 1, "it stands by while the other one holds the lock"
        finally:
            await admin.close()  # the other holder goes away: this one comes back
        await until(election.active.is_set)
        assert role.started == 2


async def test_file_lock_dies_with_its_holder(tmp_path: Path) -> None:
    path = tmp_path / "crm.db.listener_main.lock"
    role = RecordingRole()
    election = Election(FileLock(path, "listener:main"), role, **FAST)
    with holder(FILE_HOLDER, str(path)) as other:
        async with elected(election):
            await asyncio.sleep(0.8)
            assert role.started == 0
            other.send_signal(signal.SIGKILL)
            other.wait()
            assert await until(election.active.is_set) < 10
            assert role.started == 1


def test_the_lock_belongs_to_the_database() -> None:
    assert isinstance(role_lock("postgresql+asyncpg://u@h/crm", "jobs"), AdvisoryLock)
    lock = role_lock("sqlite+aiosqlite:////srv/crm/telecrm.db", "listener:spb")
    assert isinstance(lock, FileLock)
    assert lock.path == Path("/srv/crm/telecrm.db.listener_spb.lock")
    assert lock_key("listener:main") == lock_key("listener:main") != lock_key("listener:spb")


async def calls_stored(db: str) -> int:
    engine = create_engine(db)
    try:
        async with session_factory(engine)() as session:
            return int(await session.scalar(select(func.count()).select_from(Call)) or 0)
    finally:
        await engine.dispose()


async def test_a_standby_listener_never_connects_to_asterisk_nor_writes(
        db_url: str, tmp_path: Path) -> None:
    db = db_url  # SQLite (a file lock) and PostgreSQL (an advisory lock)
    async with (FakeAmiServer(inbound("101", "1733380000.13", hang_up=False)) as first_pbx,
                FakeAmiServer(inbound("101", "1733380000.13", hang_up=True)) as second_pbx):
        # Two listener processes for the same PBX; each reaches it through its own port
        # here, so the test can tell which one connected.
        first = Settings(data_dir=tmp_path / "a", database_url=db, ami_port=first_pbx.port,
                         ami_secret="x")
        second = first.with_overrides(data_dir=tmp_path / "b", ami_port=second_pbx.port)
        async with serve_app(first, with_listener=True, with_web=False) as (app_a, base_a):
            assert set(app_a[LISTENERS]) == {"main"}
            async with aiohttp.ClientSession() as http:  # a listener serves no pages
                async with http.get(f"{base_a}/healthz") as response:
                    assert (response.status, await response.json()) == (200, {"status": "ok"})
                for path in ("/login", "/calls", "/api/calls", "/ct.js?site=a.ru"):
                    async with http.get(f"{base_a}{path}") as response:
                        assert response.status == 404, path
            async with serve_app(second, with_listener=True, with_web=False) as (app_b, _):
                await asyncio.sleep(1.5)
                assert app_b[LISTENERS] == {}
                assert second_pbx.clients == 0, "the standby does not log in to AMI"
                assert {name: e.active.is_set() for name, e in app_b[ELECTIONS].items()} == {
                    "listener:main": False, "jobs": False}
                assert await calls_stored(db) == 1  # the active one's (still in progress)
                assert not (tmp_path / "b" / "ami").exists(), "nor captures anything"
            assert first_pbx.clients == 1


async def test_a_role_that_fails_to_start_gives_the_lock_up_and_tries_again(
        tmp_path: Path) -> None:
    attempts = []

    @contextlib.asynccontextmanager
    async def flaky(election: Election) -> AsyncIterator[None]:
        attempts.append(election.takeovers)
        if len(attempts) == 1:
            raise OSError("the first start fails")
        yield

    election = Election(FileLock(tmp_path / "x.lock", "jobs"), flaky, **FAST)
    async with elected(election):
        assert not election.active.is_set()
        other = FileLock(tmp_path / "x.lock", "other")
        assert await other.try_acquire(), "the lock was given up"
        await other.release()
        await until(election.active.is_set)
        assert attempts == [1, 2]
