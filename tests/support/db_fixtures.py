"""Database fixtures: every storage test runs on SQLite and on a real PostgreSQL server.

- ``postgres_server`` (session): one throwaway server for the whole run, started on
  first use only. If it cannot start, PostgreSQL tests are skipped with the reason,
  except under ``CI=true`` where they fail: CI must never go green by skipping.
- ``db_url`` (function, parametrized ``sqlite``/``postgresql``): a fresh database
  migrated to head, its own per test. ``upgrade()`` runs once per test process and
  backend; tests get a copy (a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE``
  on PostgreSQL), which is ten times faster than migrating each time.
- ``empty_db_url``: the same, without migrations (for migration tests).
- ``db_session``: an ``AsyncSession`` on ``db_url``.

Import the function-scoped ones explicitly in test modules under their ``*_fixture``
names, so a test's ``db_url`` parameter does not shadow an imported name (ruff F811):
``from tests.support.db_fixtures import db_url_fixture  # noqa: F401`` (pytest registers
it as ``db_url``). ``postgres_server`` comes from ``conftest.py``: a session fixture
imported into a module would be that module's own. The short aliases at the
bottom serve ``conftest.py``: ``from tests.support.db_fixtures import db_url, postgres_server``.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import NoReturn

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from crm_core.db import create_engine, session_factory, upgrade
from tests.support.pg_server import PostgresServer, PostgresUnavailable

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


def _unavailable(reason: str) -> NoReturn:
    message = f"PostgreSQL server unavailable: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: PostgreSQL tests must run)", pytrace=False)
    pytest.skip(message)


_server_lock = threading.Lock()
_shared_server: list[PostgresServer] = []  # the process's session server, once started
_server_users = [0]


def _acquire_server() -> PostgresServer:
    with _server_lock:
        if not _shared_server:
            _shared_server.append(PostgresServer().start())
        _server_users[0] += 1
        return _shared_server[0]


def _release_server() -> None:
    with _server_lock:
        _server_users[0] -= 1
        if _server_users[0] == 0 and _shared_server:
            _shared_server.pop().stop()


@pytest.fixture(scope="session", name="postgres_server")
def postgres_server_fixture() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session (skips, or fails under CI=true, if it can't).

    One per test process. A session fixture imported into a test module is a definition
    of that module's, with an instance of its own: 69 modules imported this one, and a
    run started 67 servers, each with ``initdb`` and its migrated template (about a
    second of a core apiece). Every instance shares the process's server; the last one
    to finish stops it.
    """
    try:
        server = _acquire_server()
    except PostgresUnavailable as exc:
        _unavailable(str(exc))
    try:
        yield server
    finally:
        _release_server()


async def _admin(server: PostgresServer, sql: str) -> None:
    connection = await asyncpg.connect(server.dsn("postgres"))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


_template_lock = threading.Lock()
_template: list[Path] = []


def migrated_sqlite_template() -> Path:
    """A SQLite file migrated to head once per test process, for copies.

    Built on a thread of its own (``upgrade`` is async, and the caller may be inside
    an event loop); removed when the process ends.
    """
    with _template_lock:
        if not _template:
            directory = Path(tempfile.mkdtemp(prefix="telecrm-migrated-"))
            atexit.register(shutil.rmtree, directory, True)
            path = directory / "migrated.sqlite3"
            builder = threading.Thread(
                target=lambda: asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}")))
            builder.start()
            builder.join()
            if not path.exists():
                raise RuntimeError("migrating the template SQLite database failed")
            _template.append(path)
        return _template[0]


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for another database or an in-memory one)."""
    try:
        parsed = make_url(url)
    except Exception:
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


def copy_migrated_sqlite(url: str) -> bool:
    """Give a SQLite URL whose file does not exist yet a copy of the migrated template.

    The same schema as migrating, ten times faster: for tests whose subject is not the
    migrations. False (nothing done) for any other URL or an existing file.
    """
    path = sqlite_file(url)
    if path is None or path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_sqlite_template(), path)
    return True


async def migrated(url: str) -> None:
    """``url`` at head: a copy of the template for a new SQLite file, else ``upgrade``."""
    if not copy_migrated_sqlite(url):
        await upgrade(url)


async def _migrated_template(server: PostgresServer) -> str:
    """A database migrated to head once per server; cloning it beats migrating per test."""
    if server.migrated_template is None:
        name = "telecrm_migrated_template"
        await _admin(server, f'CREATE DATABASE "{name}" TEMPLATE template0')
        await upgrade(server.url(name))
        server.migrated_template = name
    return server.migrated_template


async def _fresh_database(
    request: pytest.FixtureRequest, tmp_path: Path, migrate: bool
) -> AsyncIterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "telecrm-test.sqlite3"
        if migrate:
            shutil.copyfile(await asyncio.to_thread(migrated_sqlite_template), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    template = await _migrated_template(server) if migrate else "template0"
    name = f"test_{uuid.uuid4().hex[:16]}"
    # FILE_COPY copies the template's files; PostgreSQL 15's default (WAL_LOG) writes every
    # page through the WAL: twice the server's processor time per test database.
    await _admin(server, f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
    try:
        yield server.url(name)
    finally:
        await _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS, name="db_url")
async def db_url_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """URL of a fresh database migrated to head (SQLite file, or a PostgreSQL database)."""
    async for url in _fresh_database(request, tmp_path, migrate=True):
        yield url


@pytest.fixture(params=BACKENDS, name="empty_db_url")
async def empty_db_url_fixture(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[str]:
    """URL of a fresh, empty database (no migrations applied)."""
    async for url in _fresh_database(request, tmp_path, migrate=False):
        yield url


@pytest.fixture(name="db_session")
async def db_session_fixture(db_url: str) -> AsyncIterator[AsyncSession]:
    """A session on ``db_url``; the engine is disposed afterwards."""
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            yield session
    finally:
        await engine.dispose()


Engines = Callable[[str], AsyncEngine]


@pytest.fixture(name="engines")
async def engines_fixture() -> AsyncIterator[Engines]:
    """``engines(url)``: an engine for this test, disposed when the test ends.

    An engine left to the garbage collector closes its SQLite connection whenever a
    collection happens, after this test's event loop has closed: aiosqlite's thread then
    fails (``Event loop is closed``) and pytest blames whichever test runs at that moment.
    """
    made: list[AsyncEngine] = []

    def make(url: str) -> AsyncEngine:
        made.append(create_engine(url))
        return made[-1]

    yield make
    for engine in made:
        await engine.dispose()


# Aliases for conftest.py (``from tests.support.db_fixtures import db_url, postgres_server``).
postgres_server = postgres_server_fixture
db_url = db_url_fixture
empty_db_url = empty_db_url_fixture
db_session = db_session_fixture


@pytest.fixture(name="pg_url")
async def pg_url_fixture(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database, for tests that go through the CLI (which migrates)."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    await _admin(postgres_server, f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield postgres_server.url(name)
    finally:
        await _admin(postgres_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(name="private_postgres_server")
def private_postgres_server_fixture() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test's own, free to ``halt()``/``resume()``.

    Outage tests use it so stopping the database never disturbs the session server
    other tests share. Commits are durable, so a halt (a crash) loses no committed
    write, as in production. Skips (fails under CI=true) like ``postgres_server``.
    """
    try:
        server = PostgresServer(durable_commits=True).start()
    except PostgresUnavailable as exc:
        _unavailable(str(exc))
    try:
        yield server
    finally:
        server.stop()


private_postgres_server = private_postgres_server_fixture
