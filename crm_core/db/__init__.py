"""Engines, sessions and migrations for the two supported backends.

SQLite (the embedded default) and PostgreSQL (production) are reached through
async drivers only; ``normalize_url`` lets people type the URLs they know.

Submodule ``base`` holds ``Base`` and the shared column conventions; ``sqlite_one_hop``
runs each SQLite statement in one trip to aiosqlite's thread.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.sql.compiler import InsertmanyvaluesSentinelOpts

from crm_core.db.sqlite_one_hop import await_ as _await
from crm_core.db.sqlite_one_hop import use_one_hop_statements

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000
_SQLITE_IMMEDIATE = "telecrm_sqlite_begin_immediate"

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


def normalize_url(url: str) -> str:
    """The async-driver form of a database URL.

    ``postgresql://``, ``postgres://`` and any ``postgresql+driver://`` map to
    asyncpg; ``sqlite:///path`` maps to aiosqlite. Anything else is a ValueError.
    """
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ValueError(f"Not a database URL: {url!r}.") from exc
    backend = parsed.get_backend_name()
    if backend not in _ASYNC_DRIVERS:
        raise ValueError(
            f"Unsupported database {backend!r} in {url!r}; use sqlite:/// or postgresql://."
        )
    return parsed.set(drivername=_ASYNC_DRIVERS[backend]).render_as_string(hide_password=False)


def default_sqlite_url(data_dir: Path) -> str:
    """URL of the embedded database file inside ``data_dir``."""
    return f"sqlite+aiosqlite:///{(Path(data_dir) / 'telecrm.sqlite3').resolve()}"


def is_sqlite(url: str) -> bool:
    """True when ``url`` points at SQLite."""
    return make_url(normalize_url(url)).get_backend_name() == "sqlite"


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, foreign keys, busy timeout, and real transactions (BEGIN/SAVEPOINT) on SQLite.

    The sqlite3 driver's legacy mode never BEGINs before SELECT or SAVEPOINT, which
    breaks savepoints; SQLAlchemy's documented recipe takes BEGIN over.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(_SQLITE_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    # SQLite numbers the rows of one INSERT in their order (each rowid one above the
    # largest), so a many-row INSERT ... RETURNING is matched to its rows by sorting the
    # ids, as SQLAlchemy does for MariaDB: a flush writes a table's new rows in a few
    # statements instead of one each (same rows, same ids).
    engine.sync_engine.dialect.insertmanyvalues_implicit_sentinel = (
        InsertmanyvaluesSentinelOpts.ANY_AUTOINCREMENT)


# A pooled PostgreSQL connection idle this long is pinged before use (seconds).
IDLE_BEFORE_PING = 1.0


def _check_before_use(engine: AsyncEngine) -> None:
    """A pooled PostgreSQL connection is checked before use only where it may have died
    unnoticed: the driver sees by itself a connection the server closed (a restart, a
    terminated backend), and one that sat idle for :data:`IDLE_BEFORE_PING` is pinged
    (one round trip) for what a closed socket does not tell.

    SQLAlchemy's ``pool_pre_ping`` costs three round trips (BEGIN, a ping, ROLLBACK) on
    every checkout: six of a client card's thirty, on the floor's most viewed page,
    while a busy floor's connections are back in use within milliseconds.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        driver = dbapi_connection.driver_connection  # the asyncpg connection
        if driver.is_closed():
            raise DisconnectionError("the server closed this connection")
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_BEFORE_PING:
            return
        try:
            _await(driver.fetchrow(";"))
        except Exception as exc:  # any failure of the ping: a new connection instead
            raise DisconnectionError(f"the ping failed: {exc}") from exc


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url`` (any accepted form); extra kwargs go to SQLAlchemy."""
    url = normalize_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, **kwargs.pop("connect_args", {})}
        engine = _create_async_engine(url, connect_args=connect_args, **kwargs)
        use_one_hop_statements(engine)
        _configure_sqlite(engine)
        return engine
    engine = _create_async_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _check_before_use(engine)
    return engine


def session_factory(
    engine: AsyncEngine, *, writer: bool = False
) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit (no lazy reloads in async code).

    ``writer=True`` is for sessions that read then write (the call store, imports): on
    SQLite their transactions take the write lock up front (``BEGIN IMMEDIATE``) and
    queue behind other writers for the busy timeout, instead of failing with "database
    is locked" when another connection committed in between. Readers stay concurrent.
    No effect on PostgreSQL. Every feature's tables are registered first, so a
    relationship to another feature's class resolves whatever was imported before.
    """
    import crm_core.schema  # noqa: F401  (registers every table; imports no I/O)

    if writer and engine.dialect.name == "sqlite":
        engine = engine.execution_options(**{_SQLITE_IMMEDIATE: True})
    return async_sessionmaker(engine, expire_on_commit=False)


async def plan_for_these_values(session: AsyncSession) -> None:
    """On PostgreSQL, plan each statement of this transaction for its own values.

    The driver prepares statements, and after five runs PostgreSQL may keep one generic
    plan for all values: for the same SQL a number's ten calls and a team's week want
    different indexes (a number search went from 3 ms to 136 ms on a generic plan at
    1,000,000 calls; the sales summary from 270 to 400 ms). Planning again costs a
    fraction of a millisecond. Nothing to do on SQLite, which plans every statement.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


async def without_transaction(session: AsyncSession) -> None:
    """On PostgreSQL, run this session's statements without BEGIN and ROLLBACK around
    them: for a session that reads one row (the sign-in session of every request), where
    a transaction adds two round trips and no consistency. Call it before the first
    statement. SQLite keeps its transactions (they cost no round trip there)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


@contextlib.contextmanager
def _quiet_alembic(quiet: bool) -> Iterator[None]:
    """Keep Alembic's INFO chatter out of every CLI command that checks the schema."""
    logger = logging.getLogger("alembic")
    previous = logger.level
    if quiet:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(previous)


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations (no alembic.ini needed)."""
    with _quiet_alembic(True):  # importing alembic logs its plugins at INFO
        from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


def _upgrade_on(connection: Connection, config: Config, revision: str) -> None:
    from alembic import command

    config.attributes["connection"] = connection
    command.upgrade(config, revision)


_REVISION_LINE = re.compile(
    r'^(down_)?revision(?:: [^=]+)? = (?:"([^"]+)"|None)', re.MULTILINE)


def head_revision() -> str | None:
    """The newest migration's revision id, read from the files without loading Alembic.

    Every command checks the schema; Alembic's script directory costs about a second
    to load, a glance at the files a millisecond. None when the files do not name one
    head (then Alembic decides).
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        for down, value in _REVISION_LINE.findall(path.read_text(encoding="utf-8")):
            if value:
                (parents if down else revisions).add(value)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


async def _current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database says it is at (None: not migrated, or unreadable)."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT version_num FROM alembic_version"))).all()
    except SQLAlchemyError:
        return None
    return rows[0][0] if len(rows) == 1 else None


async def upgrade(url: str, revision: str = "head", *, quiet: bool = True) -> None:
    """Apply migrations up to ``revision`` (``head`` by default) on ``url``, atomically.

    Safe to call on every start: an up-to-date database is left alone, and checking
    that costs one query. ``quiet=False`` lets Alembic log each migration it runs (for
    ``telecrm db upgrade``).
    """
    engine = create_engine(url)
    try:
        if revision == "head" and (head := head_revision()) is not None:
            if await _current_revision(engine) == head:
                return
        config = alembic_config(url)
        with _quiet_alembic(quiet):
            async with engine.connect() as connection:
                await connection.run_sync(_upgrade_on, config, revision)
                await connection.commit()
    finally:
        await engine.dispose()
