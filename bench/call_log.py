"""The call log people search, at 1,000,000 calls: p95 of the common filters.

Loads a year of a 50-manager sales floor into a migrated SQLite file (and, with
``--pg``, a private PostgreSQL server): 1,000,000 calls ending at 2026-11-20 12:00
Moscow time, their manager and client legs (a missed inbound call rang two
managers), a recording per answered call, 100,000 clients with a phone each. Then
times one page of the log (50 calls, exactly what ``/calls`` and ``/api/calls`` run:
the visibility clause, the filters, the page with clients, recordings, legs and
their users, and the call JSON) for the common questions:

- a supervisor: one manager's last week (newest first);
- an admin: one team's day, talk of at least 60 s;
- a supervisor: one client's number over the last year, typed as people write it;
- a manager: his own last week; and a supervisor paging five pages into a week.

Each is run ``--runs`` times with different managers, teams, days and numbers; the
p95 and the median are printed beside the same queries on an unindexed copy (calls and
legs without their secondary indexes, as if nobody had thought of them; the legs keep
their index by call), in the same run, with the ratio.

    .venv/bin/python bench/call_log.py [--calls 1000000] [--runs 40] [--pg] [--explain]
                                       [--data DIR]

Target: p95 under 100 ms per page at 1,000,000 calls.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select

from crm_core.calls.log import CallLogFilter, call_log_page
from crm_core.calls.services import call_to_dict
from crm_core.clients.phones import normalize_phone
from crm_core.db import create_engine, session_factory, upgrade
from crm_core.people import access
from crm_core.people.models import User
from telecrm.wiring import call_hooks

TZ = ZoneInfo("Europe/Moscow")
END = datetime(2026, 11, 20, 12, 0, tzinfo=TZ)
DAYS = 365
TARGET_MS = 100.0
MANAGERS, TEAMS, CLIENTS = 50, 5, 100_000
HOOKS = call_hooks()


# -- loading --------------------------------------------------------------------------------------


def _ts(column: str) -> str:
    """SQLite text of a UTC moment as SQLAlchemy stores it (microseconds included)."""
    return f"strftime('%Y-%m-%d %H:%M:%S', {column}) || '.000000'"


def load_sqlite(path: Path, calls: int) -> None:
    """Fill the migrated file at ``path`` with plain SQL (minutes, not hours, of ORM)."""
    end = END.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M:%S")
    step = DAYS * 86400 / calls
    db = sqlite3.connect(path)
    db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; "
                     "PRAGMA cache_size=-400000;")
    triggers = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                          "AND tbl_name IN ('calls', 'call_legs')").fetchall()
    for name, _ in triggers:  # talk-time rollup invalidation: nothing to invalidate here
        db.execute(f"DROP TRIGGER {name}")
    db.execute("BEGIN")
    db.execute("INSERT INTO teams (id, name, queue, created_at) "
               "WITH RECURSIVE t(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM t WHERE i < ?) "
               "SELECT i, 'Отдел ' || i, 'q' || i, '2026-01-01 00:00:00.000000' FROM t",
               (TEAMS,))
    db.execute("INSERT INTO users (id, username, name, role, extension, team_id, active, "
               "created_at) WITH RECURSIVE m(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM m "
               "WHERE i < ?) SELECT i, 'm' || i, 'Менеджер ' || i, 'manager', "
               "CAST(100 + i AS TEXT), 1 + i % ?, 1, '2026-01-01 00:00:00.000000' FROM m",
               (MANAGERS, TEAMS))
    db.execute("INSERT INTO users (id, username, name, role, extension, team_id, active, "
               "created_at) WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s "
               "WHERE i < ?) SELECT 1000 + i, 's' || i, 'Руководитель ' || i, 'supervisor', "
               "CAST(200 + i AS TEXT), 1 + i % ?, 1, '2026-01-01 00:00:00.000000' FROM s",
               (TEAMS, TEAMS))
    db.execute("INSERT INTO users (id, username, name, role, active, created_at) VALUES "
               "(2000, 'admin', 'Администратор', 'admin', 1, '2026-01-01 00:00:00.000000')")
    db.execute("INSERT INTO clients (id, name, status, owner_id, source, created_at, "
               "updated_at) WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c "
               "WHERE i < ?) SELECT i, 'Клиент ' || i, 'potential', 1 + i % ?, 'import', "
               "'2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000' FROM c",
               (CLIENTS, MANAGERS))
    db.execute("INSERT INTO phones (client_id, e164, raw, kind, created_at) "
               "SELECT id, '+7916' || printf('%07d', id), '8916' || printf('%07d', id), "
               "'mobile', created_at FROM clients")
    # Call k: a client, a manager (not always the owner), a direction, a status.
    db.execute(f"""
        INSERT INTO calls (id, linkedid, direction, status, client_number, did, client_id,
            started_at, answered_at, ended_at, ring_seconds, talk_seconds, transferred,
            managers, created_client, created_at, updated_at, queue)
        WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < :calls),
        s AS (SELECT i, 1 + (i * 7919) % {CLIENTS} AS client, 1 + (i * 13) % {MANAGERS} AS m,
                     CASE WHEN i % 3 = 0 THEN 'inbound' ELSE 'outbound' END AS dir,
                     CASE WHEN i % 10 < 7 THEN 'answered'
                          WHEN i % 3 = 0 THEN 'missed' WHEN i % 2 = 0 THEN 'busy'
                          ELSE 'no_answer' END AS st,
                     datetime(:end, '-' || CAST((:calls - i) * :step AS INTEGER) || ' seconds')
                       AS at
              FROM k)
        SELECT i, 'b-' || i, dir, st, '+7916' || printf('%07d', client),
               CASE WHEN dir = 'inbound' THEN '+74951110001' END, client, {_ts('at')},
               CASE WHEN st = 'answered' THEN {_ts("datetime(at, '+4 seconds')")} END,
               {_ts("datetime(at, '+200 seconds')")}, 4.0,
               CASE WHEN st = 'answered' THEN 5 + (i * 37) % 600 ELSE 0 END, 0,
               CASE WHEN st = 'answered' THEN json_array(CAST(100 + m AS TEXT)) ELSE '[]' END,
               0, {_ts('at')}, {_ts('at')},
               CASE WHEN dir = 'inbound' THEN 'q' || (1 + m % {TEAMS}) END
        FROM s""", {"calls": calls, "end": end, "step": step})
    # The manager's phone: seq 0 when he dialled, 1 when it rang; the client's leg; and a
    # second manager's phone that rang on missed inbound calls.
    db.execute(f"""
        INSERT INTO call_legs (call_id, uniqueid, channel, role, extension, user_id,
            started_at, answered_at, ended_at, talk_seconds, seq, hold_seconds)
        SELECT id, linkedid || '-m', 'PJSIP/' || (100 + m) || '-1', 'manager',
               CAST(100 + m AS TEXT), m, started_at, answered_at, ended_at, talk_seconds,
               CASE WHEN direction = 'inbound' THEN 1 ELSE 0 END, 0
        FROM (SELECT c.*, 1 + (c.id * 13) % {MANAGERS} AS m FROM calls c)""")
    db.execute("""
        INSERT INTO call_legs (call_id, uniqueid, channel, role, started_at, answered_at,
            ended_at, talk_seconds, seq, hold_seconds)
        SELECT id, linkedid || '-c', 'PJSIP/carrier-1', 'client', started_at, answered_at,
               ended_at, talk_seconds, CASE WHEN direction = 'inbound' THEN 0 ELSE 1 END, 0
        FROM calls""")
    db.execute(f"""
        INSERT INTO call_legs (call_id, uniqueid, channel, role, extension, user_id,
            started_at, ended_at, talk_seconds, seq, hold_seconds)
        SELECT id, linkedid || '-r', 'PJSIP/' || (100 + m) || '-2', 'manager',
               CAST(100 + m AS TEXT), m, started_at, ended_at, 0, 2, 0
        FROM (SELECT c.*, 1 + (c.id * 17 + 5) % {MANAGERS} AS m FROM calls c
              WHERE status = 'missed')""")
    db.execute("INSERT INTO recordings (call_id, path, position, created_at, side) "
               "SELECT id, 'r/' || linkedid || '-mix.wav', 0, started_at, 'mix' FROM calls "
               "WHERE status = 'answered'")
    db.execute("COMMIT")
    for _, sql in triggers:
        db.execute(sql)
    db.commit()  # no ANALYZE: the product's SQLite files have no planner statistics
    db.close()


# -- the unindexed copy ---------------------------------------------------------------------------

# Secondary indexes the log can use; the baseline goes without them (it keeps the keys and
# the legs' index by call, which every foreign key lookup needs).
CALL_INDEXES = ("ix_calls_started_at", "ix_calls_client_number", "ix_calls_client_id",
                "ix_calls_client_id_started_at", "ix_calls_queue_started_at", "ix_calls_did",
                "ix_call_legs_user_id_started_at", "ix_call_legs_extension_started_at",
                "ix_call_legs_user_id_bridged_at", "ix_call_legs_started_at")


def unindexed_copy(path: Path) -> Path:
    copy = path.with_name(path.stem + "-unindexed.sqlite3")
    shutil.copyfile(path, copy)
    db = sqlite3.connect(copy)
    for name in CALL_INDEXES:
        db.execute(f"DROP INDEX IF EXISTS {name}")
    db.commit()
    db.close()
    return copy


# -- the questions ---------------------------------------------------------------------------------


@dataclass
class Question:
    name: str
    viewer: str  # username
    make: Callable[[int], tuple[CallLogFilter, int]]  # run index -> filter, pages to walk


def _week(run: int) -> tuple[datetime, datetime]:
    end = END - timedelta(days=run % 7)
    return end - timedelta(days=7), end


def questions() -> list[Question]:
    def manager_week(run: int) -> tuple[CallLogFilter, int]:
        since, until = _week(run)
        member = 5 * (run % 10) + 1  # a manager of team 2, the supervisor s1's
        return CallLogFilter(since=since, until=until, manager_ids=(member,)), 1

    def team_day(run: int) -> tuple[CallLogFilter, int]:
        day = (END - timedelta(days=1 + run % 30)).replace(hour=0, minute=0)
        return CallLogFilter(since=day, until=day + timedelta(days=1), team_id=1 + run % TEAMS,
                             min_talk_seconds=60), 1

    def number(run: int) -> tuple[CallLogFilter, int]:
        client = 5 * (1 + (run * 7919) % (CLIENTS // 5 - 1))  # owned by the team of s1
        typed = f"8 916 {client // 10000:03d}-{client // 100 % 100:02d}-{client % 100:02d}"
        e164 = normalize_phone(typed)
        assert e164 == f"+7916{client:07d}", (typed, e164)
        return CallLogFilter(since=END - timedelta(days=365), until=END, number=e164), 1

    def own_week(run: int) -> tuple[CallLogFilter, int]:
        since, until = _week(run)
        return CallLogFilter(since=since, until=until), 1

    def fifth_page(run: int) -> tuple[CallLogFilter, int]:
        since, until = _week(run)
        return CallLogFilter(since=since, until=until), 5

    return [
        Question("a manager's last week (supervisor)", "s1", manager_week),
        Question("a team's day, talk >= 60 s (admin)", "admin", team_day),
        Question("a number, last year (supervisor)", "s1", number),
        Question("his own last week (manager)", "m6", own_week),
        Question("page 5 of the team's week (supervisor)", "s1", fifth_page),
    ]


async def one_page(session: Any, user: User, f: CallLogFilter, pages: int) -> int:
    """What the page and the API do for one page (``pages`` deep): the rows as call JSON."""
    cursor = None
    rows: list[dict[str, Any]] = []
    for _ in range(pages):
        scope = await access.calls_filter(session, user, since=f.since, until=f.until)
        page = await call_log_page(session, scope, f, cursor=cursor, limit=50)
        rows = [access.redact_call(user, call_to_dict(call, HOOKS)) for call in page.calls]
        cursor = page.next
        if cursor is None:
            break
    return len(rows)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


Figures = tuple[float, float, float, int]  # p95 ms, median ms, median CPU ms, rows


async def measure(url: str, runs: int, explain: bool = False) -> dict[str, Figures]:
    """Per question: p95 and median wall time of a page, the median CPU time it took this
    process (both threads: the event loop's and SQLite's), and the rows of the last page.

    CPU time does not grow when other processes share the cores; wall time does.
    """
    engine = create_engine(url)
    results: dict[str, Figures] = {}
    try:
        async with session_factory(engine)() as session:
            users = {u.username: u for u in await session.scalars(select(User))}
            for q in questions():
                user = users[q.viewer]
                await one_page(session, user, *q.make(0))  # warm the cache
                if explain:
                    await _explain(engine, session, user, *q.make(0))
                times, cpu, rows = [], [], 0
                for run in range(runs):
                    f, pages = q.make(run)
                    t0, c0 = time.perf_counter(), time.process_time()
                    rows = await one_page(session, user, f, pages)
                    times.append((time.perf_counter() - t0) * 1000 / pages)
                    cpu.append((time.process_time() - c0) * 1000 / pages)
                    session.expunge_all()
                results[q.name] = (p95(times), statistics.median(times), statistics.median(cpu),
                                   rows)
    finally:
        await engine.dispose()
    return results


async def _explain(engine: Any, session: Any, user: User, f: CallLogFilter, pages: int) -> None:
    from sqlalchemy import event

    seen: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, many):  # type: ignore[no-untyped-def]
        seen.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    await one_page(session, user, f, 1)
    event.remove(engine.sync_engine, "before_cursor_execute", record)
    conn = await session.connection()
    postgres = engine.dialect.name == "postgresql"
    for statement, parameters in seen:
        if "FROM calls" in statement and "ORDER BY" in statement:
            prefix = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
            plan = await conn.exec_driver_sql(prefix + statement, parameters)
            print("\n".join(str(row[-1]) for row in plan))
            print("-" * 60)


# -- PostgreSQL ------------------------------------------------------------------------------------


async def load_postgres(dsn: str, calls: int) -> None:
    import asyncpg

    step = DAYS * 86400 / calls
    conn = await asyncpg.connect(dsn)
    end = END.isoformat()
    try:
        await conn.execute("SET synchronous_commit = off")
        await conn.execute(f"INSERT INTO teams (id, name, queue, created_at) SELECT t, "
                           f"'Отдел ' || t, 'q' || t, now() FROM generate_series(1, {TEAMS}) t")
        await conn.execute(
            f"INSERT INTO users (id, username, name, role, extension, team_id, active, "
            f"created_at) SELECT i, 'm' || i, 'Менеджер ' || i, 'manager', (100 + i)::text, "
            f"1 + i % {TEAMS}, true, now() FROM generate_series(1, {MANAGERS}) i")
        await conn.execute(
            f"INSERT INTO users (id, username, name, role, extension, team_id, active, "
            f"created_at) SELECT 1000 + i, 's' || i, 'Руководитель ' || i, 'supervisor', "
            f"(200 + i)::text, 1 + i % {TEAMS}, true, now() FROM generate_series(1, {TEAMS}) i")
        await conn.execute("INSERT INTO users (id, username, name, role, active, created_at) "
                           "VALUES (2000, 'admin', 'Администратор', 'admin', true, now())")
        await conn.execute(
            f"INSERT INTO clients (id, name, status, owner_id, source, created_at, updated_at) "
            f"SELECT i, 'Клиент ' || i, 'potential', 1 + i % {MANAGERS}, 'import', now(), "
            f"now() FROM generate_series(1, {CLIENTS}) i")
        await conn.execute("INSERT INTO phones (client_id, e164, raw, kind, created_at) "
                           "SELECT id, '+7916' || lpad(id::text, 7, '0'), "
                           "'8916' || lpad(id::text, 7, '0'), 'mobile', now() FROM clients")
        await conn.execute(f"""
            INSERT INTO calls (id, linkedid, direction, status, client_number, did, client_id,
                started_at, answered_at, ended_at, ring_seconds, talk_seconds, transferred,
                managers, created_client, created_at, updated_at, queue)
            SELECT i, 'b-' || i, dir, st, '+7916' || lpad(client::text, 7, '0'),
                   CASE WHEN dir = 'inbound' THEN '+74951110001' END, client, at,
                   CASE WHEN st = 'answered' THEN at + interval '4 seconds' END,
                   at + interval '200 seconds', 4.0,
                   CASE WHEN st = 'answered' THEN 5 + (i * 37) % 600 ELSE 0 END, false,
                   CASE WHEN st = 'answered' THEN jsonb_build_array((100 + m)::text)
                        ELSE '[]'::jsonb END,
                   false, at, at, CASE WHEN dir = 'inbound' THEN 'q' || (1 + m % {TEAMS}) END
            FROM (SELECT i, 1 + (i::bigint * 7919) % {CLIENTS} AS client,
                         1 + (i * 13) % {MANAGERS} AS m,
                         CASE WHEN i % 3 = 0 THEN 'inbound' ELSE 'outbound' END AS dir,
                         CASE WHEN i % 10 < 7 THEN 'answered' WHEN i % 3 = 0 THEN 'missed'
                              WHEN i % 2 = 0 THEN 'busy' ELSE 'no_answer' END AS st,
                         timestamptz '{end}' - ((({calls} - i) * {step})::int
                                                * interval '1 second') AS at
                  FROM generate_series(1, {calls}) i) s""")
        await conn.execute(f"""
            INSERT INTO call_legs (call_id, uniqueid, channel, role, extension, user_id,
                started_at, answered_at, ended_at, talk_seconds, seq, hold_seconds)
            SELECT id, linkedid || '-m', 'PJSIP/x', 'manager', (100 + m)::text, m,
                   started_at, answered_at, ended_at, talk_seconds,
                   CASE WHEN direction = 'inbound' THEN 1 ELSE 0 END, 0
            FROM (SELECT c.*, 1 + (c.id * 13) % {MANAGERS} AS m FROM calls c) s""")
        await conn.execute("""
            INSERT INTO call_legs (call_id, uniqueid, channel, role, started_at, answered_at,
                ended_at, talk_seconds, seq, hold_seconds)
            SELECT id, linkedid || '-c', 'PJSIP/carrier', 'client', started_at, answered_at,
                   ended_at, talk_seconds, CASE WHEN direction = 'inbound' THEN 0 ELSE 1 END, 0
            FROM calls""")
        await conn.execute(f"""
            INSERT INTO call_legs (call_id, uniqueid, channel, role, extension, user_id,
                started_at, ended_at, talk_seconds, seq, hold_seconds)
            SELECT id, linkedid || '-r', 'PJSIP/y', 'manager', (100 + m)::text, m,
                   started_at, ended_at, 0, 2, 0
            FROM (SELECT c.*, 1 + (c.id * 17 + 5) % {MANAGERS} AS m FROM calls c
                  WHERE status = 'missed') s""")
        await conn.execute("INSERT INTO recordings (call_id, path, position, created_at, side) "
                           "SELECT id, 'r/' || linkedid || '-mix.wav', 0, started_at, 'mix' "
                           "FROM calls WHERE status = 'answered'")
        for table in ("teams", "users", "clients", "calls"):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT max(id) FROM {table}))")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def unindexed_postgres(dsn: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        for name in CALL_INDEXES:
            await conn.execute(f"DROP INDEX IF EXISTS {name}")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


# -- the report ----------------------------------------------------------------------------------


def report(backend: str, fast: dict[str, Figures], slow: dict[str, Figures]) -> bool:
    print(f"\n{backend}: one page of 50 calls, ms per page over the runs "
          f"(load average {os.getloadavg()[0]:.1f})")
    print(f"{'question':<42}{'p95':>7}{'median':>8}{'CPU':>6}{'unindexed p95':>15}"
          f"{'ratio':>8}  rows")
    met = True
    for name, (p, m, c, rows) in fast.items():
        sp = slow[name][0]
        ok = p < TARGET_MS
        met &= ok
        print(f"{name:<42}{p:>7.1f}{m:>8.1f}{c:>6.1f}{sp:>15.1f}{sp / p:>7.1f}x  {rows:>4}"
              f"{'' if ok else '  OVER'}")
    return met


async def main(args: argparse.Namespace) -> None:
    directory = args.data or Path(tempfile.mkdtemp(prefix="telecrm-bench-calllog-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        path = directory / f"calls-{args.calls}.sqlite3"
        if not path.exists():
            scratch = path.with_suffix(".loading")
            scratch.unlink(missing_ok=True)
            await upgrade(f"sqlite+aiosqlite:///{scratch}")
            t0 = time.perf_counter()
            await asyncio.to_thread(load_sqlite, scratch, args.calls)
            scratch.rename(path)
            print(f"SQLite: loaded {args.calls:,} calls, {MANAGERS} managers in {TEAMS} teams,"
                  f" {CLIENTS:,} clients in {time.perf_counter() - t0:.0f} s")
        slow_path = await asyncio.to_thread(unindexed_copy, path)
        fast = await measure(f"sqlite+aiosqlite:///{path}", args.runs, args.explain)
        slow = await measure(f"sqlite+aiosqlite:///{slow_path}", max(3, args.runs // 8),
                             args.explain)
        met = report("SQLite", fast, slow)
        if args.pg:
            met &= await postgres(args)
        print(f"\nTarget p95 < {TARGET_MS:.0f} ms per page: {'met' if met else 'NOT MET'}")
    finally:
        if args.data is None:
            shutil.rmtree(directory, ignore_errors=True)


async def postgres(args: argparse.Namespace) -> bool:
    import asyncpg

    from tests.support.pg_server import PostgresServer

    server = PostgresServer().start()
    try:
        admin = await asyncpg.connect(server.dsn())
        fast_db, slow_db = f"bench_{uuid.uuid4().hex[:8]}", f"bench_{uuid.uuid4().hex[:8]}"
        await admin.execute(f'CREATE DATABASE "{fast_db}"')
        await upgrade(server.url(fast_db))
        t0 = time.perf_counter()
        await load_postgres(server.dsn(fast_db), args.calls)
        print(f"\nPostgreSQL: loaded {args.calls:,} calls in {time.perf_counter() - t0:.0f} s")
        await admin.execute(f'CREATE DATABASE "{slow_db}" TEMPLATE "{fast_db}"')
        await admin.close()
        await unindexed_postgres(server.dsn(slow_db))
        fast = await measure(server.url(fast_db), args.runs, args.explain)
        slow = await measure(server.url(slow_db), max(3, args.runs // 8), args.explain)
        return report("PostgreSQL", fast, slow)
    finally:
        server.stop()


def _parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--pg", action="store_true", help="PostgreSQL too (a private server)")
    parser.add_argument("--explain", action="store_true", help="print each query's plan")
    parser.add_argument("--data", type=Path, default=None,
                        help="keep the loaded SQLite file here and reuse it next time")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(_parse()))

