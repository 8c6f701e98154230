"""The month talk-time table for 50 managers over 1,000,000 calls in PostgreSQL.

Loads a year of synthetic calls (one manager leg and one client leg each; 5 %
internal, 3 % under 10 s, a few crossing midnight) into a private PostgreSQL
server with COPY (through the rollup's triggers), then times, in the same run:

- ``crm_core.talktime.period_report`` for a finished month read from the per-day
  rollup (``talktime_daily``, filled as ``telecrm serve`` does after each day) -- the
  target;
- the current month so far (finished days from the rollup, today counted live);
- the same month counted from the legs (no rollup: one bucketed aggregate plus
  the rare split/live legs);
- the naive way: the first version's per-day query (legs joined to calls by the
  call's start), run once per day of the month;
- filling the rollup: one day (the nightly job) and the whole month.

    .venv/bin/python bench/talktime_month.py [--calls 1000000] [--managers 50] [--runs 7]

Target: < 200 ms for the month table.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
from sqlalchemy import select

from bench._common import amedian_ms as timed
from bench._common import explain
from crm_core.db import create_engine, session_factory, upgrade
from crm_core.people.models import User
from crm_core.talktime.metric import day_bounds, days_between, period_report, refresh_rollup
from tests.support.pg_server import PostgresServer

TZ = ZoneInfo("Europe/Moscow")
YEAR_START = datetime(2026, 1, 1, tzinfo=TZ)
MONTH = (date(2026, 10, 1), date(2026, 10, 31))  # finished: its days are in the rollup
SO_FAR = (date(2026, 11, 1), datetime.now(TZ).date())  # the page's default view


def synthetic(calls: int, managers: list[tuple[int, str]],
              seed: int = 7) -> tuple[list[tuple], list[tuple]]:
    """Rows for ``calls`` and ``call_legs`` (COPY order of columns below)."""
    rnd = random.Random(seed)
    span = 365 * 86400
    now = datetime.now(UTC)
    call_rows, leg_rows = [], []
    # Calls arrive in time order, so rows of one month sit together as in production.
    starts = sorted(rnd.random() * span for _ in range(calls))
    for i in range(1, calls + 1):
        start = YEAR_START + timedelta(seconds=starts[i - 1])
        ring = rnd.uniform(1, 15)
        talk = rnd.uniform(1, 9) if rnd.random() < 0.03 else rnd.expovariate(1 / 150)
        bridged = start + timedelta(seconds=ring)
        end = bridged + timedelta(seconds=talk)
        direction = "internal" if rnd.random() < 0.05 else rnd.choice(("inbound", "outbound"))
        manager, ext = rnd.choice(managers)
        call_rows.append((i, f"{i}.0", direction, "answered", start, bridged, end, ring, talk,
                          f"[\"{ext}\"]", now, now))
        leg_rows.append((2 * i - 1, i, f"{i}.1", f"PJSIP/{ext}-{i:08x}", "manager",
                         ext, manager, start, bridged, end, talk, 0.0, bridged, 16, 0))
        leg_rows.append((2 * i, i, f"{i}.2", f"PJSIP/trunk-{i:08x}", "client", None, None,
                         start, bridged, end, talk, 0.0, bridged, 16, 1))
    return call_rows, leg_rows


async def load(dsn: str, calls: int, count: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        ids = []
        for n in range(count):
            ext = str(100 + n) if n < 900 else str(1000 + n)
            ids.append((await conn.fetchval(
                "INSERT INTO users (username, name, role, extension, active, created_at) "
                "VALUES ($1, $2, 'manager', $3, true, now()) RETURNING id",
                f"m{ext}", f"Менеджер {ext}", ext), ext))
        call_rows, leg_rows = synthetic(calls, ids)
        await conn.copy_records_to_table("calls", records=call_rows, columns=[
            "id", "linkedid", "direction", "status", "started_at", "answered_at", "ended_at",
            "ring_seconds", "talk_seconds", "managers", "created_at", "updated_at"])
        await conn.copy_records_to_table("call_legs", records=leg_rows, columns=[
            "id", "call_id", "uniqueid", "channel", "role", "extension", "user_id",
            "started_at", "answered_at", "ended_at", "talk_seconds", "hold_seconds",
            "bridged_at", "hangup_cause", "seq"])
        # Steady state: autovacuum keeps the visibility map of settled rows, which
        # index-only scans need; freshly COPYed rows have none until vacuumed.
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


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
        await load(server.dsn(db), args.calls, args.managers)
        print(f"loaded {args.calls:,} calls / {2 * args.calls:,} legs for {args.managers} "
              f"managers in {time.perf_counter() - t0:.1f} s")
        engine = create_engine(url)
        sessions = session_factory(engine)
        writer = session_factory(engine, writer=True)
        first, last = MONTH
        async with sessions() as session:
            managers = list(await session.scalars(select(User).order_by(User.extension)))

            async def month() -> dict:
                return await period_report(session, managers, first, last, TZ)

            async def so_far() -> dict:
                return await period_report(session, managers, *SO_FAR, TZ)

            async def naive() -> list:
                rows = []
                for day in days_between(first, last):
                    lo, hi = day_bounds(day, TZ)
                    rows += await naive_day(session, managers, lo, hi)
                return rows

            await month()  # warm caches and the plan
            await naive()
            counted_ms, counted = await timed(month, args.runs)
            naive_ms, _ = await timed(naive, args.runs)

        async def fill(lo: date, hi: date) -> int:
            async with writer() as w, w.begin():
                return await refresh_rollup(w, managers, lo, hi, TZ)

        t0 = time.perf_counter()
        await fill(last, last)
        day_fill_ms = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        stored = await fill(first, last)
        month_fill_ms = (time.perf_counter() - t0) * 1000
        await fill(SO_FAR[0], SO_FAR[1])
        async with sessions() as session:
            await month()
            if args.explain:
                await explain(engine, session, month)
            fast_ms, report = await timed(month, args.runs)
            so_far_ms, _ = await timed(so_far, args.runs)
        await engine.dispose()
        assert report == counted, "the rollup must give the figures a recount gives"
        total = sum(m["talk_seconds"] for m in report["managers"])  # type: ignore[index]
        days = (last - first).days + 1
        print(f"month table ({len(managers)} managers x {days} days, {total / 3600:,.0f} h "
              f"talk), from the rollup: {fast_ms:.1f} ms median of {args.runs}  "
              f"(target < 200 ms; {naive_ms / fast_ms:.0f}x faster than naive)")
        print(f"current month so far ({SO_FAR[0]} - {SO_FAR[1]}, today live): "
              f"{so_far_ms:.1f} ms median of {args.runs}")
        print(f"month table counted from the legs (no rollup): {counted_ms:.1f} ms median "
              f"of {args.runs}")
        print(f"naive per-day query x {days}: {naive_ms:.1f} ms median of {args.runs}")
        print(f"rollup fill: one day {day_fill_ms:.0f} ms, the month ({stored} rows) "
              f"{month_fill_ms:.0f} ms")
    finally:
        server.stop()


async def naive_day(session, managers, lo, hi):  # type: ignore[no-untyped-def]
    """The first version's query for one day (legs joined to calls by the call's start)."""
    from sqlalchemy import distinct, func

    from crm_core.calls.models import Call, CallLeg

    stmt = (
        select(CallLeg.user_id, func.coalesce(func.sum(CallLeg.talk_seconds), 0.0),
               func.count(distinct(CallLeg.call_id)).filter(CallLeg.talk_seconds > 0))
        .join(Call, Call.id == CallLeg.call_id)
        .where(CallLeg.user_id.in_([m.id for m in managers]), CallLeg.role == "manager",
               Call.started_at >= lo, Call.started_at < hi)
        .group_by(CallLeg.user_id)
    )
    return list(await session.execute(stmt))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--managers", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--explain", action="store_true", help="print the query plans")
    asyncio.run(main(parser.parse_args()))
