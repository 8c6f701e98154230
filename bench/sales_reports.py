"""The head of sales' reports for 50 managers, 100,000 clients and 1,000,000 calls in PostgreSQL.

Fills a private PostgreSQL server with a year of synthetic sales data in SQL
(``generate_series``: clients with statuses, ABC and history; calls with a manager
leg each, with a client created by then; invoices, payments, tasks, deals), then
times each report of ``crm_core.sales.reports`` for October 2026 as the admin sees it
(all 50 managers), beside the naive way of computing the same figures in the same run
(``crm_core.sales.recount``: fetch the period's rows into Python and work every figure
out there, what a first version does); the run asserts both give the same report, and
times both as the median of the same number of runs.

    .venv/bin/python bench/sales_reports.py [--clients 100000] [--calls 1000000] [--runs 5]

Target: < 150 ms per report (the talk-time month from its rollup: ~20 ms). The
contact-frequency and summary reports read their rollups (``crm_core.sales.rollup``,
``crm_core.sales.status_days``), filled first as the nightly run fills them; each is
also timed before, with nothing kept.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
from sqlalchemy import select, text

from bench._common import amedian_ms as median_ms
from bench._common import explain
from crm_core.clock import utcnow
from crm_core.db import create_engine, session_factory, upgrade
from crm_core.sales.recount import RECOUNTS
from crm_core.sales.reports import REPORTS
from crm_core.sales.rollup import refresh_days
from crm_core.sales.status_days import refresh_statuses
from tests.support.pg_server import PostgresServer

TZ = ZoneInfo("Europe/Moscow")
START = datetime(2026, 10, 1, tzinfo=TZ)
END = datetime(2026, 11, 1, tzinfo=TZ)
TARGET_MS = 150.0

LOAD = [
    "INSERT INTO teams (id, name, created_at) SELECT t, 'Отдел ' || t, now() "
    "FROM generate_series(1, 5) t",
    "INSERT INTO users (id, username, name, role, extension, team_id, active, created_at) "
    "SELECT m, 'm' || m, 'Менеджер ' || m, 'manager', (100 + m)::text, 1 + m % 5, true, now() "
    "FROM generate_series(1, {managers}) m",
    "INSERT INTO clients (id, name, status, owner_id, source, annual_potential, abc_group, "
    "qualified_at, status_since, owner_since, created_at, updated_at) "
    "SELECT c, 'Клиент ' || c, (ARRAY['potential','new','regular','lost'])[1 + c % 4], "
    "1 + c % {managers}, 'import', CASE WHEN c % 3 = 0 THEN NULL ELSE (c % 2000) * 1000 END, "
    "CASE WHEN c % 3 = 0 THEN NULL WHEN c % 2000 >= 1000 THEN 'A' WHEN c % 2000 >= 300 "
    "THEN 'B' ELSE 'C' END, CASE WHEN c % 3 = 0 THEN NULL ELSE ts + interval '3 days' END, "
    "ts, ts, ts, ts FROM (SELECT c, timestamptz '2026-01-01' + (c % 330) * interval '1 day' "
    "AS ts FROM generate_series(1, {clients}) c) s",
    "INSERT INTO client_status_changes (client_id, old_status, new_status, at, as_of, actor) "
    "SELECT id, 'potential', status, status_since + interval '20 days', "
    "(status_since + interval '20 days')::date, 'nightly' FROM clients WHERE status <> 'potential'",
    "INSERT INTO calls (id, linkedid, direction, status, client_id, started_at, answered_at, "
    "ended_at, ring_seconds, talk_seconds, transferred, managers, created_client, created_at, "
    "updated_at) SELECT k, 'b-' || k, CASE WHEN k % 3 = 0 THEN 'inbound' ELSE 'outbound' END, "
    "CASE WHEN k % 5 = 0 THEN 'missed' ELSE 'answered' END, "
    "cid, ts, "
    "CASE WHEN k % 5 = 0 THEN NULL ELSE ts END, ts + interval '2 minutes', 3, "
    "CASE WHEN k % 5 = 0 THEN 0 ELSE 30 + k % 400 END, false, '[]', false, ts, ts "
    # a call's client exists already: one created on the call's day or before
    "FROM (SELECT k, ts, CASE WHEN c % 330 <= d THEN c ELSE c - c % 330 + k % (d + 1) "
    "+ CASE WHEN c - c % 330 + k % (d + 1) = 0 THEN 330 ELSE 0 END END AS cid "
    "FROM (SELECT k, 1 + (k::bigint * 7919) % {clients} AS c, k % 304 AS d, "
    "timestamptz '2026-01-01' + (k % 304) * interval '1 day' "
    "+ (k % 600) * interval '1 minute' AS ts FROM generate_series(1, {calls}) k) r) s",
    "UPDATE clients SET last_contact_at = lc.at FROM (SELECT client_id, max(started_at) AS at "
    "FROM calls WHERE answered_at IS NOT NULL GROUP BY client_id) lc WHERE lc.client_id = "
    "clients.id",
    "INSERT INTO call_legs (call_id, uniqueid, channel, role, extension, user_id, started_at, "
    "answered_at, ended_at, talk_seconds, hold_seconds, seq) SELECT c.id, c.linkedid || '-m', "
    "'PJSIP/x', 'manager', NULL, cl.owner_id, c.started_at, c.answered_at, c.ended_at, "
    "c.talk_seconds, 0, 0 FROM calls c JOIN clients cl ON cl.id = c.client_id",
    "INSERT INTO invoices (id, number, client_id, amount, paid_amount, status, issued_on, "
    "created_at) SELECT i, 'B-' || i, 1 + (i::bigint * 31) % {clients}, 100000, "
    "CASE WHEN i % 3 = 0 THEN 100000 WHEN i % 3 = 1 THEN 40000 ELSE 0 END, "
    "(ARRAY['paid','partly_paid','unpaid'])[1 + i % 3], date '2026-01-01' + i % 300, now() "
    "FROM generate_series(1, {clients} / 2) i",
    "INSERT INTO payments (client_id, amount, paid_on, source, created_at) "
    "SELECT 1 + (p::bigint * 13) % {clients}, 1000 + p % 50000, date '2026-01-01' + p % 304, "
    "'import', now() FROM generate_series(1, {clients} * 2) p",
    "INSERT INTO tasks (kind, title, status, client_id, assignee_id, due_at, created_at, "
    "updated_at, done_at, due_moves) SELECT (ARRAY['call','email','meeting','other'])[1 + t % 4], "
    "'t', CASE WHEN t % 4 = 0 THEN 'open' ELSE 'done' END, 1 + t % {clients}, "
    "1 + t % {managers}, ts, ts, ts, CASE WHEN t % 4 = 0 THEN NULL ELSE ts END, 0 "
    "FROM (SELECT t, timestamptz '2026-01-01' + (t % 304) * interval '1 day' AS ts "
    "FROM generate_series(1, {clients} * 2) t) s",
    "INSERT INTO pipelines (id, name, created_at) VALUES (1, 'B2B', now())",
    "INSERT INTO pipeline_stages (id, pipeline_id, position, name, code, outcome, "
    "task_due_days, task_assignee) VALUES (1, 1, 1, 'a', 'a', 'open', 1, 'owner'), "
    "(2, 1, 2, 'b', 'b', 'open', 1, 'owner'), (3, 1, 3, 'won', 'won', 'won', 1, 'owner'), "
    "(4, 1, 4, 'lost', 'lost', 'lost', 1, 'owner')",
    "INSERT INTO lose_reasons (id, name, active) VALUES (1, 'Дорого', true), (2, 'Конкурент', "
    "true)",
    "INSERT INTO deals (id, title, client_id, pipeline_id, stage_id, owner_id, status, amount, "
    "won_amount, lose_reason_id, created_at, stage_entered_at, closed_at) "
    "SELECT d, 'd', 1 + d % {clients}, 1, 1 + d % 4, 1 + d % {managers}, "
    "(ARRAY['open','open','won','lost'])[1 + d % 4], 50000, "
    "CASE WHEN d % 4 = 2 THEN 45000 END, CASE WHEN d % 4 = 3 THEN 1 + d % 2 END, ts, ts, "
    "CASE WHEN d % 4 >= 2 THEN ts END FROM (SELECT d, timestamptz '2026-01-01' "
    "+ (d % 304) * interval '1 day' AS ts FROM generate_series(1, {clients} / 2) d) s",
    "INSERT INTO deal_stage_changes (deal_id, from_stage_id, to_stage_id, at, by_id) "
    "SELECT id, 1, stage_id, stage_entered_at, owner_id FROM deals",
]


async def load(dsn: str, clients: int, calls: int, managers: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for sql in LOAD:
            await conn.execute(sql.format(clients=clients, calls=calls, managers=managers))
        for table in ("teams", "users", "clients", "calls", "invoices", "pipelines", "deals"):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT max(id) FROM {table}))")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


# -- the baseline: the same figures the slow way ---------------------------------------------
# ``crm_core.sales.recount``: the period's rows fetched into Python and every figure worked
# out there by the rules' own functions; the run asserts it gives the very same report.


async def main(args: argparse.Namespace) -> None:
    server = PostgresServer().start()
    try:
        db = f"bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(server.dsn())
        await admin.execute(f'CREATE DATABASE "{db}"')
        await admin.close()
        url = server.url(db)
        await upgrade(url)
        t0 = time.perf_counter()
        await load(server.dsn(db), args.clients, args.calls, args.managers)
        print(f"loaded {args.managers} managers, {args.clients:,} clients, {args.calls:,} calls "
              f"in {time.perf_counter() - t0:.1f} s")
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as session:
                managers = (await session.execute(select(text("count(*)")).select_from(
                    text("users")))).scalar()
                empty_ms, _ = await median_ms(lambda: REPORTS["contact-frequency"](
                    session, START, END, None), args.runs)
                print(f"contact-frequency with the rollup empty (every day counted from the "
                      f"calls): {empty_ms:.1f} ms")
                t0 = time.perf_counter()
                await refresh_days(session, date(2026, 10, 15), date(2026, 10, 15), TZ)
                await session.commit()
                one_day = time.perf_counter() - t0
                t0 = time.perf_counter()
                stored = await refresh_days(session, date(2026, 9, 1), date(2026, 10, 31), TZ)
                await session.commit()
                print(f"filling the rollup: one day {one_day * 1000:.0f} ms; September and "
                      f"October (what the nightly run refills) {time.perf_counter() - t0:.1f} s,"
                      f" {stored:,} owner-days")
                summary_live_ms, _ = await median_ms(lambda: REPORTS["summary"](
                    session, START, END, None), args.runs)
                print(f"summary with no verdict kept (every client judged from his payments "
                      f"and calls): {summary_live_ms:.1f} ms")
                t0 = time.perf_counter()
                kept = await refresh_statuses(session, [date(2026, 9, 30), date(2026, 10, 31)],
                                              TZ)
                await session.commit()
                print(f"keeping the verdicts of 30 September and 31 October (what the nightly "
                      f"run keeps for every month's last day): {kept:,} in "
                      f"{time.perf_counter() - t0:.1f} s")
                print(f"October 2026, viewer admin ({managers} managers); median of "
                      f"{args.runs} runs")
                print(f"{'report':<20}{'ms':>9}{'naive ms':>11}{'ratio':>8}  target")
                worst = 0.0
                for name, report in REPORTS.items():
                    ms, body = await median_ms(
                        lambda r=report: r(session, START, END, None), args.runs)
                    naive_ms, slow = await median_ms(
                        lambda n=name: RECOUNTS[n](session, START, END, None), args.runs)
                    assert body == slow, f"{name}: the report and its recount differ"
                    worst = max(worst, ms)
                    ok = "ok" if ms < TARGET_MS else "OVER"
                    print(f"{name:<20}{ms:>9.1f}{naive_ms:>11.1f}{naive_ms / ms:>7.1f}x  {ok}"
                          f"  ({len(body['rows'])} rows, equal to the recount)")
                now = utcnow().astimezone(TZ)
                tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(),
                                            tzinfo=TZ)
                ms, body = await median_ms(lambda: REPORTS["contact-frequency"](
                    session, START, tomorrow, None), args.runs)
                naive_ms, slow = await median_ms(lambda: RECOUNTS["contact-frequency"](
                    session, START, tomorrow, None), args.runs)
                assert body == slow, "contact-frequency to today: the report and its recount differ"
                worst = max(worst, ms)
                print(f"{'contact-frequency*':<20}{ms:>9.1f}{naive_ms:>11.1f}"
                      f"{naive_ms / ms:>7.1f}x  {'ok' if ms < TARGET_MS else 'OVER'}  "
                      f"(* October to today: the kept last contact instead of the calls)")
                verdict = "MET" if worst < TARGET_MS else "NOT MET"
                print(f"slowest report: {worst:.1f} ms, target < {TARGET_MS:.0f} ms: {verdict} "
                      f"(x{worst / TARGET_MS:.2f} of the target)")
                for name in args.explain:
                    await explain(engine, session, lambda n=name: REPORTS[n](
                        session, START, END, None))
        finally:
            await engine.dispose()
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--managers", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--explain", nargs="*", default=[], metavar="REPORT",
                        help="print PostgreSQL's plans of these reports' queries")
    asyncio.run(main(parser.parse_args()))
