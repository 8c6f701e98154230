"""Who talk time judges, and on which days (SQLite and PostgreSQL).

Only managers have the 150-minute target: supervisors and admins get neither a bar nor
violations. Nor is a manager judged for a day he could not work in full: before his
account existed, the day it was created once the working hours had begun, or a day his
account was switched off during the working hours (even after it is switched on again).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.calls.services import record_call
from crm_core.calls.snapshot import CallData, LegData
from crm_core.db import create_engine, session_factory
from crm_core.people.management import deactivate_user, find_user, reactivate_user
from crm_core.people.models import User
from crm_core.people.users import add_user
from crm_core.talktime.metric import close_day, day_report, period_report
from crm_core.talktime.models import Violation
from telecrm.talktime.board import close_finished_days, today_bar
from telecrm.wiring import call_hooks
from tests.support.clock import pinned_clock
from tests.support.db_fixtures import db_url_fixture  # noqa: F401

TZ = ZoneInfo("Europe/Moscow")
MONDAY = date(2026, 11, 2)
WEEK = [MONDAY + timedelta(days=i) for i in range(5)]  # Monday to Friday
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=TZ)


async def talk(sessions: async_sessionmaker[AsyncSession], ext: str, start: datetime,
               seconds: float, linkedid: str) -> None:
    bridged, end = start + timedelta(seconds=3), start + timedelta(seconds=3 + seconds)

    def leg(uid: str, role: str, extension: str | None) -> LegData:
        return LegData(uniqueid=uid, channel=f"PJSIP/{extension or 'trunk'}-{uid}", role=role,
                       extension=extension, started_at=start, answered_at=bridged,
                       ended_at=end, talk_seconds=seconds, bridged_at=bridged)

    data = CallData(linkedid=linkedid, direction="outbound", status="answered",
                    client_number="+79161234567", did=None, started_at=start,
                    answered_at=bridged, ended_at=end, ring_seconds=3.0, talk_seconds=seconds,
                    transferred=False, managers=(ext,), recordings=(),
                    legs=(leg(f"{linkedid}.1", "manager", ext), leg(f"{linkedid}.2", "client",
                                                                     None)))
    async with sessions() as session, session.begin():
        await record_call(session, data, hooks=call_hooks())


@pytest.fixture
async def floor(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """An old hand (101), a supervisor and an admin who talk too, and a newcomer (104)
    whose account was created on Wednesday at 14:00, after the working day began."""
    engine = create_engine(db_url)
    sessions = session_factory(engine, writer=True)
    async with sessions() as session, session.begin():
        await add_user(session, "old", role="manager", extension="101", team="Продажи",
                       created_at=LONG_AGO)
        await add_user(session, "boss", role="supervisor", extension="201", team="Продажи",
                       created_at=LONG_AGO)
        await add_user(session, "root", role="admin", extension="301", created_at=LONG_AGO)
        await add_user(session, "new", role="manager", extension="104", team="Продажи",
                       created_at=at(WEEK[2], 14))
    for i, day in enumerate(WEEK):
        for ext in ("101", "201", "301", "104"):
            await talk(sessions, ext, at(day, 11), 600, f"{ext}-{i}")
    try:
        yield sessions
    finally:
        await engine.dispose()


async def everyone(session: AsyncSession) -> list[User]:
    return list(await session.scalars(select(User).order_by(User.extension)))


async def judged(sessions: async_sessionmaker[AsyncSession], days: list[date]
                 ) -> set[tuple[str, date]]:
    """Close ``days`` for everyone passed in (not only managers); the violations written."""
    async with sessions() as session, session.begin():
        users = {u.id: u.username for u in await everyone(session)}
        for day in days:
            await close_day(session, await everyone(session), day, TZ)
        rows = await session.execute(select(Violation.user_id, Violation.day))
        return {(users[uid], day) for uid, day in rows}


async def test_supervisors_admins_and_new_accounts_get_no_violations(
        floor: async_sessionmaker[AsyncSession]) -> None:
    found = await judged(floor, WEEK)
    assert found == {("old", d) for d in WEEK} | {("new", WEEK[3]), ("new", WEEK[4])}
    async with floor() as session:
        rows = {(r["extension"], r["date"]): r
                for day in WEEK for r in await day_report(session, await everyone(session),
                                                          day, TZ)}
        month = await period_report(session, await everyone(session), WEEK[0], WEEK[-1], TZ)
    assert rows[("201", "2026-11-02")]["excluded"] == "not_manager"
    assert rows[("301", "2026-11-02")]["excluded"] == "not_manager"
    assert [rows[("104", d.isoformat())]["excluded"] for d in WEEK] == [
        "not_hired", "not_hired", "first_day", None, None]
    assert rows[("104", "2026-11-02")]["talk_seconds"] == 600, "his talk is still counted"
    newcomer = next(m for m in month["managers"] if m["extension"] == "104")
    assert (newcomer["working_days"], newcomer["excluded_days"], newcomer["days_missed"]) == (
        2, 3, 2)
    assert newcomer["target_seconds"] == 2 * 150 * 60


async def test_an_account_created_before_the_working_day_counts_that_day(
        floor: async_sessionmaker[AsyncSession]) -> None:
    async with floor() as session, session.begin():
        await add_user(session, "early", role="manager", extension="105",
                       created_at=at(WEEK[0], 8, 50))
    assert {d for who, d in await judged(floor, WEEK[:1]) if who == "early"} == {WEEK[0]}


async def test_days_switched_off_are_never_judged(
        floor: async_sessionmaker[AsyncSession]) -> None:
    # switched off on Tuesday at 12:00, on again on Thursday at 10:00
    with pinned_clock(at(WEEK[1], 12), tick=False):
        async with floor() as session, session.begin():
            await deactivate_user(session, None, await find_user(session, "old"))
    with pinned_clock(at(WEEK[3], 10), tick=False):
        async with floor() as session, session.begin():
            await reactivate_user(session, None, await find_user(session, "old"))
    found = {d for who, d in await judged(floor, WEEK) if who == "old"}
    assert found == {WEEK[0], WEEK[4]}, "Tuesday to Thursday touched the time he was off"
    async with floor() as session:
        old = await find_user(session, "old")
        (row,) = await day_report(session, [old], WEEK[2], TZ)
    assert row["excluded"] == "deactivated" and row["working"] is False


async def test_the_serve_job_skips_the_time_off_after_a_comeback(
        floor: async_sessionmaker[AsyncSession]) -> None:
    with pinned_clock(at(WEEK[0], 19), tick=False):  # after Monday's working hours
        async with floor() as session, session.begin():
            await deactivate_user(session, None, await find_user(session, "old"))
    with pinned_clock(at(WEEK[4], 8), tick=False):  # Friday morning, before work
        async with floor() as session, session.begin():
            await reactivate_user(session, None, await find_user(session, "old"))
    await close_finished_days(floor, TZ, WEEK[4] + timedelta(days=3))  # the next Monday
    async with floor() as session:
        old = await find_user(session, "old")
        days = set(await session.scalars(select(Violation.day).where(
            Violation.user_id == old.id)))
    assert days == {WEEK[0], WEEK[4]}


def test_the_today_bar_says_talk_time_once_in_whole_minutes() -> None:
    row = {"date": "2026-11-20", "talk_seconds": 84.0, "target_seconds": 9000, "calls": 2,
           "working": True, "excluded": None, "day_start_minute": 540, "day_end_minute": 1080,
           "paused_seconds": 0.0}
    bar = today_bar(row, at(date(2026, 11, 20), 12), TZ)
    assert (bar.talk_minutes, bar.target_minutes, bar.left_minutes) == (1, 150, 149)
    assert bar.talk_minutes + bar.left_minutes == bar.target_minutes
    assert bar.progress == 0 and not bar.met and bar.day_end == "18:00"
    # 84 s in the 3 hours since 09:00: 84 s more in each of the 6 hours left
    assert (bar.projected_minutes, bar.on_track) == (4, False)
    for seconds in (0.0, 59.9, 60.0, 8940.5, 8999.9):
        shown = today_bar({**row, "talk_seconds": seconds}, at(date(2026, 11, 20), 12), TZ)
        assert shown.talk_minutes + shown.left_minutes == 150, seconds
    done = today_bar({**row, "talk_seconds": 9001.0}, at(date(2026, 11, 20), 17), TZ)
    assert done.met and done.left_minutes == 0 and done.progress == 100
    assert done.projected_minutes is None, "no pace once the target is met"
    evening = today_bar(row, at(date(2026, 11, 20), 19), TZ)
    assert evening.projected_minutes is None, "no pace outside the working hours"
    weekend = today_bar({**row, "working": False, "excluded": "weekend"},
                        at(date(2026, 11, 21), 12), TZ)
    assert weekend.excluded == "выходной" and weekend.projected_minutes is None
