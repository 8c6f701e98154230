"""The database half of a backup: a consistent copy out, and a load into an empty database.

SQLite is copied with its online backup API: one step under one read transaction, so
a listener writing at the same time (WAL) never gives a torn copy. PostgreSQL is
dumped by ``pg_dump`` in its custom format (what ``pg_restore`` takes) from a
snapshot exported by a repeatable-read transaction that stays open meanwhile, so
the table counts and the recordings list read beside the dump see exactly the rows
the dump holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from crm_core.db import create_engine, normalize_url
from crm_core.errors import ConflictError, DomainError

DUMP_FILES = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}


@dataclass(frozen=True)
class Database:
    """The database a command works on: its backend and where it is."""

    backend: str  # sqlite | postgresql
    url: str  # the async-driver URL

    @classmethod
    def of(cls, url: str) -> Database:
        url = normalize_url(url)
        backend = make_url(url).get_backend_name()
        return cls("sqlite" if backend == "sqlite" else "postgresql", url)

    @property
    def shown(self) -> str:
        """The SQLite file, or the URL without its password: for sentences and the manifest."""
        url = make_url(self.url)
        if self.backend == "sqlite" and url.database:
            return url.database
        return url.render_as_string(hide_password=True)

    @property
    def sqlite_path(self) -> Path:
        database = make_url(self.url).database
        if not database or database == ":memory:":
            raise DomainError("backup.sqlite_in_memory", "an in-memory database has no file")
        return Path(database)


def _unusable(database: Database, exc: BaseException) -> DomainError:
    said = str(getattr(exc, "orig", None) or exc).strip()
    reason = said.splitlines()[0] if said else type(exc).__name__
    return DomainError("cli.database_unusable", f"cannot use the database {database.shown}: "
                       f"{reason}", database=database.shown, reason=reason)


# -- backing up -----------------------------------------------------------------------------

def _sqlite_copy(source: Path, dest: Path) -> None:
    """SQLite's online backup, in one step: a snapshot even while others write."""
    src = sqlite3.connect(source, timeout=10)
    dst = sqlite3.connect(dest)
    try:
        src.execute("PRAGMA busy_timeout=10000")
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        ok = dst.execute("PRAGMA quick_check").fetchone()
        if not ok or ok[0] != "ok":
            raise DomainError("backup.sqlite_check_failed", f"the copy fails quick_check: {ok}",
                              reason=str(ok[0] if ok else "?"))
    finally:
        dst.close()
        src.close()


@contextlib.asynccontextmanager
async def dumped(database: Database, out_dir: Path) -> AsyncIterator[AsyncConnection]:
    """Dump ``database`` into ``out_dir``; yield a connection reading what the dump holds."""
    dump = out_dir / DUMP_FILES[database.backend]
    if database.backend == "sqlite":
        source = database.sqlite_path
        if not source.is_file():
            raise DomainError("backup.no_database", f"there is no database at {source}",
                              database=str(source))
        try:
            await asyncio.to_thread(_sqlite_copy, source, dump)
        except sqlite3.Error as exc:
            raise _unusable(database, exc) from exc
        # The copy itself, read-only: what the counts and the recordings list read.
        engine = create_async_engine(f"sqlite+aiosqlite:///file:{dump}?mode=ro&uri=true")
        try:
            async with engine.connect() as connection:
                yield connection
        finally:
            await engine.dispose()
        return
    engine = create_engine(database.url)
    try:
        try:
            connection = await engine.connect()
        except Exception as exc:
            raise _unusable(database, exc) from exc
        try:
            connection = await connection.execution_options(isolation_level="REPEATABLE READ")
            await connection.begin()
            snapshot = (await connection.execute(text("SELECT pg_export_snapshot()"))).scalar_one()
            await run_pg_tool(database, "pg_dump", "--format=custom", "--no-owner",
                              "--no-privileges", f"--snapshot={snapshot}", f"--file={dump}")
            yield connection
        finally:
            await connection.close()
    finally:
        await engine.dispose()


def pg_tool(name: str) -> str:
    """``pg_dump``/``pg_restore``: the newest Debian install (it reads older servers), else PATH."""
    if env := os.environ.get("TELECRM_PG_BIN"):
        candidate = Path(env) / name
        if candidate.is_file():
            return str(candidate)

    def version(path: str) -> float:
        try:
            return float(Path(path).parent.parent.name)
        except ValueError:
            return 0.0

    installed = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=version)
    if installed:
        return installed[-1]
    found = shutil.which(name)
    if found is None:
        raise DomainError("backup.pg_tool_missing", f"{name} is not installed", tool=name)
    return found


def _libpq_env(database: Database) -> dict[str, str]:
    """The connection as libpq variables: no password on a command line ``ps`` shows."""
    url = make_url(database.url)
    env = dict(os.environ)
    host = url.query.get("host") or url.host
    for key, value in (("PGHOST", host), ("PGPORT", url.port), ("PGUSER", url.username),
                       ("PGPASSWORD", url.password), ("PGDATABASE", url.database),
                       ("PGSSLMODE", url.query.get("sslmode") or url.query.get("ssl"))):
        if value:
            env[key] = str(value if isinstance(value, str | int) else value[0])
    return env


async def run_pg_tool(database: Database, tool: str, *args: str) -> None:
    """Run ``pg_dump``/``pg_restore`` on ``database``; its last error line if it fails."""
    process = await asyncio.create_subprocess_exec(
        pg_tool(tool), *args, env=_libpq_env(database),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await process.communicate()
    if process.returncode != 0:
        lines = [line for line in err.decode(errors="replace").splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {process.returncode}"
        raise DomainError("backup.pg_tool_failed", f"{tool} failed: {reason}", tool=tool,
                          reason=reason)


# -- restoring ------------------------------------------------------------------------------

def _sqlite_tables(path: Path) -> int:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return int(connection.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0])
    finally:
        connection.close()


async def ensure_empty(database: Database) -> None:
    """Refuse (ConflictError) a database that holds any table: a restore never merges."""
    if database.backend == "sqlite":
        path = database.sqlite_path
        if not path.exists() or path.stat().st_size == 0:
            return
        try:
            tables = await asyncio.to_thread(_sqlite_tables, path)
        except sqlite3.Error as exc:
            raise _unusable(database, exc) from exc
    else:
        engine = create_engine(database.url)
        try:
            async with engine.connect() as connection:
                tables = (await connection.execute(text(
                    "SELECT count(*) FROM information_schema.tables WHERE table_schema "
                    "NOT IN ('pg_catalog', 'information_schema')"))).scalar_one()
        except Exception as exc:
            raise _unusable(database, exc) from exc
        finally:
            await engine.dispose()
    if tables:
        raise ConflictError("backup.database_not_empty",
                            f"the database {database.shown} is not empty", database=database.shown)


def _sqlite_load(dump: Path, target: Path) -> None:
    """The copy in place under a temporary name, then renamed: never half a database."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.restoring")
    with dump.open("rb") as src, partial.open("wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
        dst.flush()
        os.fsync(dst.fileno())
    for stale in (target.with_name(target.name + "-wal"), target.with_name(target.name + "-shm")):
        stale.unlink(missing_ok=True)  # an empty database's journal must not meet the copy
    os.replace(partial, target)


async def load(database: Database, dump: Path) -> None:
    """Load a dump into an empty ``database`` (SQLite: file copy; PostgreSQL: pg_restore)."""
    if database.backend == "sqlite":
        await asyncio.to_thread(_sqlite_load, dump, database.sqlite_path)
        return
    await run_pg_tool(database, "pg_restore", "--no-owner", "--no-privileges",
                      "--exit-on-error", "--single-transaction",
                      f"--dbname={make_url(database.url).database}", str(dump))
