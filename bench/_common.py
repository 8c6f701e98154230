"""Shared plumbing for the benchmarks: the capture, timing, and real databases.

Other engineers run tests on the same two cores, so every figure is the best
(and the median) of several repeats, and every script measures its own
baseline in the same run: ratios are meaningful even when absolute numbers
drift with the machine's load.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from telecrm.wiring import call_hooks

HOOKS = call_hooks()  # what the product does with each written call

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from crm_core.db import create_engine, session_factory, upgrade  # noqa: E402
from pbx_bridge.frames import FrameParser  # noqa: E402
from pbx_bridge.store import CallStore  # noqa: E402

DEFAULT_CAPTURE = Path(tempfile.gettempdir()) / "telecrm-bench-120k.ami"


def ensure_capture(path: Path, events: int = 120_000) -> Path:
    """The synthetic capture at ``path``, built by make_capture.py when missing."""
    if not path.exists():
        from bench import make_capture

        make_capture.main(["--events", str(events), "--out", str(path)])
    return path


def parse_all(data: bytes, chunk: int = 1 << 16) -> list[dict[str, str]]:
    """Event headers of a capture held in memory."""
    parser = FrameParser()
    out: list[dict[str, str]] = []
    for i in range(0, len(data), chunk):
        out.extend(f.headers for f in parser.feed(data[i:i + chunk]) if f.is_event)
    out.extend(f.headers for f in parser.close() if f.is_event)
    return out


def best_of(repeats: int, fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(best, median) wall seconds of ``fn`` over ``repeats`` runs, and its last result."""
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), result


async def abest_of(repeats: int, fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Async twin of :func:`best_of`; ``fn`` returns a coroutine."""
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = await fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), result


async def amedian_ms(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """Median wall milliseconds of ``fn`` (returns a coroutine) over ``runs``, and its result."""
    _, median, result = await abest_of(runs, fn)
    return median * 1000, result


class Databases:
    """Fresh migrated databases on demand: SQLite files and one real PostgreSQL server."""

    def __init__(self, want_pg: bool = True) -> None:
        self.want_pg = want_pg
        self.dir = Path(tempfile.mkdtemp(prefix="telecrm-bench-"))
        self.pg: Any = None
        self.pg_error = ""
        self._sqlite_template: Path | None = None
        self._pg_template: str | None = None

    def __enter__(self) -> Databases:
        if self.want_pg:
            from tests.support.pg_server import PostgresServer, PostgresUnavailable

            try:
                self.pg = PostgresServer().start()
            except PostgresUnavailable as exc:
                self.pg_error = str(exc)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.pg is not None:
            self.pg.stop()
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)

    async def _admin(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.pg.dsn("postgres"))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def fresh_empty(self) -> str:
        """URL of a new PostgreSQL database with no tables (for timing migrations)."""
        if self.pg is None:
            raise RuntimeError(f"PostgreSQL unavailable: {self.pg_error}")
        name = f"bench_{uuid.uuid4().hex[:12]}"
        await self._admin(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.pg.url(name)

    async def fresh(self, backend: str) -> str:
        """URL of a new, migrated, empty database."""
        import shutil

        if backend == "sqlite":
            if self._sqlite_template is None:
                self._sqlite_template = self.dir / "template.sqlite3"
                await upgrade(f"sqlite+aiosqlite:///{self._sqlite_template}")
            path = self.dir / f"{uuid.uuid4().hex[:8]}.sqlite3"
            shutil.copyfile(self._sqlite_template, path)
            return f"sqlite+aiosqlite:///{path}"
        if self.pg is None:
            raise RuntimeError(f"PostgreSQL unavailable: {self.pg_error}")
        if self._pg_template is None:
            self._pg_template = "bench_template"
            await self._admin(f'CREATE DATABASE "{self._pg_template}" TEMPLATE template0')
            await upgrade(self.pg.url(self._pg_template))
        name = f"bench_{uuid.uuid4().hex[:12]}"
        await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self._pg_template}"')
        return self.pg.url(name)


@contextlib.asynccontextmanager
async def call_store(url: str) -> AsyncIterator[tuple[CallStore, Any]]:
    """A CallStore wired as ``telecrm serve`` wires it, and its engine."""
    engine = create_engine(url)
    try:
        yield CallStore(session_factory(engine, writer=True), HOOKS), engine
    finally:
        await engine.dispose()


def rss_mib() -> float:
    """Resident set size of this process, from /proc (no psutil needed)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """Malformed-event warnings would dominate the timing; benchmarks do not want them."""
    import logging

    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def explain(engine: Any, session: Any, fn: Callable[[], Any]) -> None:
    """Print PostgreSQL's plan of every SELECT ``fn`` runs (to see why a report is slow)."""
    from sqlalchemy import event

    seen: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, many):  # type: ignore[no-untyped-def]
        seen.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    await fn()
    event.remove(engine.sync_engine, "before_cursor_execute", record)
    conn = await session.connection()
    for statement, parameters in seen:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            plan = await conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            print("\n".join(row[0] for row in plan))
            print("-" * 60)
