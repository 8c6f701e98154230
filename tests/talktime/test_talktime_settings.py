"""Talk-time settings services on SQLite and PostgreSQL: rules from a date, holidays,
absences, minimum call length, the team's working hours and the per-day rollup."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.audit import AuditLog
from crm_core.calls.models import Call
from crm_core.calls.services import record_call
from crm_core.calls.snapshot import CallData, LegData
from crm_core.db import alembic_config, create_engine, session_factory, upgrade
from crm_core.people.models import Team, User
from crm_core.people.users import add_user
from crm_core.talktime.metric import (
    close_day,
    day_report,
    minute_time,
    period_report,
    projection,
    refresh_rollup,
)
from crm_core.talktime.models import TalkTimeDaily, Violation
from crm_core.talktime.rules import (
    RuleChange,
    SettingsError,
    add_absence,
    add_holiday,
    cancel_absence,
    import_holidays,
    remove_holiday,
    set_rule,
)
from telecrm.messages import http_status
from telecrm.wiring import call_hooks
from tests.support.db_fixtures import (  # noqa: F401
    Engines,
    db_url_fixture,
    empty_db_url_fixture,
    engines_fixture,
)

pytestmark = pytest.mark.calendar  # dates relative to today: make test-calendar

HOOKS = call_hooks()  # what the product does with each written call

TZ = ZoneInfo("Europe/Moscow")
MONDAY = date(2026, 11, 2)  # a Monday, long finished
HIRED = datetime(2026, 1, 1, tzinfo=UTC)  # everyone worked here before it


async def _world(
        engines: Engines, db_url: str) -> tuple[async_sessionmaker[AsyncSession], dict[str, User]]:
    sessions = session_factory(engines(db_url), writer=True)
    people = {}
    async with sessions() as session, session.begin():
        for username, role, ext, team in (("m101", "manager", "101", "Продажи"),
                                          ("m102", "manager", "102", "Продажи"),
                                          ("m103", "manager", "103", "Опт"),
                                          ("boss", "supervisor", "201", "Продажи"),
                                          ("other", "supervisor", "202", "Опт"),
                                          ("root", "admin", None, None)):
            people[username] = await add_user(session, username, role=role, extension=ext,
                                              team=team, created_at=HIRED)
    return sessions, people


def _moment(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=TZ).astimezone(UTC)


async def _talk(sessions: async_sessionmaker[AsyncSession], ext: str, start: datetime,
                seconds: float, linkedid: str, direction: str = "outbound") -> None:
    """A call of ``seconds`` bridged talk between manager ``ext`` and a client."""
    bridged = start + timedelta(seconds=3)
    end = bridged + timedelta(seconds=seconds)

    def leg(uid: str, role: str, extension: str | None) -> LegData:
        return LegData(uniqueid=uid, channel=f"PJSIP/{extension or 'trunk'}-{uid}", role=role,
                       extension=extension, started_at=start, answered_at=bridged,
                       ended_at=end, talk_seconds=seconds, bridged_at=bridged)

    data = CallData(linkedid=linkedid, direction=direction, status="answered",
                    client_number="+79161234567" if direction != "internal" else None,
                    did=None, started_at=start, answered_at=bridged, ended_at=end,
                    ring_seconds=3.0, talk_seconds=seconds, transferred=False,
                    managers=(ext,), recordings=(),
                    legs=(leg(f"{linkedid}.1", "manager", ext),
                          leg(f"{linkedid}.2", "client", None)))
    async with sessions() as session, session.begin():
        await record_call(session, data, hooks=HOOKS)


async def _managers(session: AsyncSession) -> Sequence[User]:
    return list(await session.scalars(
        select(User).where(User.role == "manager").order_by(User.extension)))


async def _rows(session: AsyncSession, day: date) -> dict[str, dict]:
    return {r["extension"]: r for r in await day_report(session, await _managers(session), day,
                                                          TZ)}


async def test_a_rule_from_a_date_never_changes_earlier_days(db_url: str, engines: Engines) -> None:
    sessions, people = await _world(engines, db_url)
    await _talk(sessions, "101", _moment(MONDAY, 11), 100 * 60, "a")
    await _talk(sessions, "101", _moment(MONDAY + timedelta(days=1), 11), 100 * 60, "b")
    team = people["m101"].team_id
    async with sessions() as session, session.begin():
        # the admin set 90 minutes from the Monday (then still to come)
        await set_rule(session, people["root"], team, MONDAY, RuleChange(target_minutes=90),
                       today=MONDAY)
        # on Monday evening the supervisor raises it to 120 from Tuesday
        await set_rule(session, people["boss"], team, MONDAY + timedelta(days=1),
                       RuleChange(target_minutes=120, fine_amount=Decimal("300")),
                       today=MONDAY)
    async with sessions() as session:
        monday = (await _rows(session, MONDAY))["101"]
        tuesday = (await _rows(session, MONDAY + timedelta(days=1)))["101"]
    assert (monday["target_seconds"], monday["met"]) == (90 * 60, True)
    assert (tuesday["target_seconds"], tuesday["met"]) == (120 * 60, False)
    # Later, changing Monday's rule (already in force on a past day) is refused ...
    async with sessions() as session, session.begin():
        with pytest.raises(SettingsError, match="past days cannot be changed"):
            await set_rule(session, people["boss"], team, MONDAY, RuleChange(target_minutes=60),
                           today=MONDAY + timedelta(days=2))
        # ... and a change from today on leaves Monday and Tuesday as they were judged
        await set_rule(session, people["boss"], team, MONDAY + timedelta(days=2),
                       RuleChange(target_minutes=30), today=MONDAY + timedelta(days=2))
    async with sessions() as session:
        report = await period_report(session, await _managers(session), MONDAY,
                                     MONDAY + timedelta(days=2), TZ)
        audit = list(await session.scalars(select(AuditLog).where(
            AuditLog.entity == "talktime_rule").order_by(AuditLog.id)))
    days = {d["date"]: d["target_seconds"] for d in report["managers"][0]["days"]}
    assert days == {"2026-11-02": 5400, "2026-11-03": 7200, "2026-11-04": 1800}
    assert [a.actor for a in audit] == ["root", "boss", "boss"]
    assert audit[1].changes["target_seconds"] == 7200
    assert audit[1].changes["fine_amount"] == "300"


async def test_editing_a_future_rule_updates_it_and_is_audited(
        db_url: str, engines: Engines) -> None:
    sessions, people = await _world(engines, db_url)
    team = people["m101"].team_id
    async with sessions() as session, session.begin():
        first = await set_rule(session, people["boss"], team, MONDAY,
                               RuleChange(target_minutes=100, day_start=time(10)),
                               today=MONDAY - timedelta(days=3))
        again = await set_rule(session, people["boss"], team, MONDAY,
                               RuleChange(min_call_seconds=15), today=MONDAY - timedelta(days=1))
        assert again.id == first.id
        assert (again.target_seconds, again.min_call_seconds, again.day_start_minute) == (
            6000, 15, 600)
        changes = (await session.scalars(select(AuditLog.changes).where(
            AuditLog.entity == "talktime_rule", AuditLog.action == "update"))).one()
    assert changes == {"min_call_seconds": [0, 15]}


async def test_who_may_change_what(db_url: str, engines: Engines) -> None:
    sessions, people = await _world(engines, db_url)
    sales, wholesale = people["m101"].team_id, people["m103"].team_id
    async with sessions() as session, session.begin():
        for actor, team in ((people["m101"], sales), (people["boss"], wholesale),
                            (people["boss"], None)):
            with pytest.raises(SettingsError) as refused:
                await set_rule(session, actor, team, MONDAY, RuleChange(target_minutes=10),
                               today=MONDAY)
            assert http_status(refused.value) == 403
            assert refused.value.code in ("talktime.settings_for_bosses",
                                          "talktime.own_team_only")
        with pytest.raises(SettingsError, match="own team's managers"):
            await add_absence(session, people["boss"], people["m103"].id, MONDAY, MONDAY,
                              "sick")
        # the supervisor's holiday is his team's; the admin's the company's
        mine = await add_holiday(session, people["boss"], MONDAY, "Тимбилдинг")
        company = await add_holiday(session, people["root"], MONDAY + timedelta(days=1), "День")
        assert (mine.team_id, company.team_id) == (sales, None)
        with pytest.raises(SettingsError, match="own team's holidays"):
            await remove_holiday(session, people["other"], mine.id)
        with pytest.raises(SettingsError, match="own team's holidays"):
            await remove_holiday(session, people["boss"], company.id)


async def test_holidays_and_absences_exclude_days(db_url: str, engines: Engines) -> None:
    sessions, people = await _world(engines, db_url)
    days = [MONDAY + timedelta(days=i) for i in range(4)]
    for i, day in enumerate(days):
        await _talk(sessions, "102", _moment(day, 12), 60, f"c{i}")
    async with sessions() as session, session.begin():
        await add_holiday(session, people["root"], days[0], "Праздник")
        await add_holiday(session, people["boss"], days[1], "Выездной день отдела")
        sick = await add_absence(session, people["boss"], people["m101"].id, days[2], days[3],
                                 "sick", "грипп")
        await add_absence(session, people["root"], people["m102"].id, days[2], days[2],
                          "vacation")
    async with sessions() as session, session.begin():
        created = []
        for day in days:
            created += await close_day(session, await _managers(session), day, TZ)
    judged = {(v.user_id, v.day) for v in created}
    m102, m103 = people["m102"].id, people["m103"].id
    # company holiday: nobody; team holiday: only the other team; absences: only the absent
    assert judged == {(m103, days[1]), (m102, days[3]), (m103, days[2]), (m103, days[3])}
    async with sessions() as session:
        report = await period_report(session, await _managers(session), days[0], days[3], TZ)
    rows = {m["extension"]: m for m in report["managers"]}
    assert [d["excluded"] for d in rows["101"]["days"]] == ["holiday", "holiday", "sick", "sick"]
    assert [d["excluded"] for d in rows["102"]["days"]] == ["holiday", "holiday", "vacation",
                                                           None]
    assert rows["101"]["working_days"] == 0 and rows["101"]["excluded_days"] == 4
    assert rows["102"]["days_missed"] == 1 and rows["102"]["talk_seconds"] == pytest.approx(240)
    # sick leave entered after the days were judged excuses their open violations; a
    # violation already confirmed by the supervisor stays confirmed
    by_day = {v.day: v.id for v in created if v.user_id == m103}
    async with sessions() as session, session.begin():
        confirmed = await session.get(Violation, by_day[days[3]])
        assert confirmed is not None
        confirmed.status = "confirmed"
        await add_absence(session, people["other"], m103, days[1], days[3], "sick", "справка")
    async with sessions() as session:
        states = {v.day: (v.status, v.reason) for v in await session.scalars(
            select(Violation).where(Violation.user_id == m103))}
    assert states == {days[1]: ("excused", "Больничный: справка"),
                      days[2]: ("excused", "Больничный: справка"),
                      days[3]: ("confirmed", None)}
    # a cancelled absence makes the days working days again (for days not yet closed)
    async with sessions() as session, session.begin():
        await cancel_absence(session, people["boss"], sick.id)
    async with sessions() as session:
        row = (await _rows(session, days[3]))["101"]
    assert row["working"] is True and row["excluded"] is None


async def test_holiday_csv_import_all_or_nothing(db_url: str, engines: Engines) -> None:
    sessions, people = await _world(engines, db_url)
    async with sessions() as session, session.begin():
        with pytest.raises(SettingsError, match="line 3"):
            await import_holidays(session, people["root"],
                                  "date,name\n2027-01-01,Новый год\n01.01.2027\n")
    async with sessions() as session, session.begin():
        added = await import_holidays(session, people["root"],
                                      "date,name\n2027-01-01,Новый год\n2027-01-07,Рождество\n")
        again = await import_holidays(session, people["root"], "2027-01-07\n2027-01-08\n")
    assert added == (2, 0) and again == (1, 1)


async def test_minimum_call_length_applies_from_its_date(db_url: str, engines: Engines) -> None:
    sessions, people = await _world(engines, db_url)
    tuesday = MONDAY + timedelta(days=1)
    for day in (MONDAY, tuesday):
        await _talk(sessions, "101", _moment(day, 10), 8, f"short-{day}")
        await _talk(sessions, "101", _moment(day, 11), 120, f"long-{day}")
    async with sessions() as session, session.begin():
        await set_rule(session, people["boss"], people["m101"].team_id, tuesday,
                       RuleChange(min_call_seconds=10), today=MONDAY)
    async with sessions() as session:
        monday_row = (await _rows(session, MONDAY))["101"]
        tuesday_row = (await _rows(session, tuesday))["101"]
        other = (await _rows(session, tuesday))["102"]
    assert (monday_row["talk_seconds"], monday_row["calls"]) == (pytest.approx(128), 2)
    assert (tuesday_row["talk_seconds"], tuesday_row["calls"]) == (pytest.approx(120), 1)
    assert other["talk_seconds"] == 0


def test_projection_uses_the_team_hours() -> None:
    # 60 minutes talked by 12:00; the target 150 minutes.
    now = _moment(MONDAY, 12)
    nine_to_six = projection(3600, 9000, now, TZ)  # 3 h gone, 6 h left: 60 + 120 = 180
    ten_to_two = projection(3600, 9000, now, TZ, minute_time(600), minute_time(840))
    assert nine_to_six["projected_minutes"] == 180.0 and nine_to_six["on_track"] is True
    assert ten_to_two["projected_minutes"] == 120.0 and ten_to_two["on_track"] is False
    assert (ten_to_two["day_start"], ten_to_two["day_end"]) == ("10:00", "14:00")


async def test_rollup_matches_a_recount_and_forgets_late_writes(
        db_url: str, engines: Engines) -> None:
    sessions, people = await _world(engines, db_url)
    week = [MONDAY + timedelta(days=i) for i in range(5)]
    for i, day in enumerate(week):
        await _talk(sessions, "101", _moment(day, 10), 300 + i, f"r{i}")
        await _talk(sessions, "102", _moment(day, 23, 58), 600, f"midnight{i}")  # split
    await _talk(sessions, "101", _moment(week[1], 15), 500, "internal", direction="internal")
    async with sessions() as session, session.begin():
        managers = await _managers(session)
        stored = await refresh_rollup(session, managers, week[0], week[-1], TZ)
    assert stored == 3 * 5

    async def both() -> tuple[dict, dict]:
        async with sessions() as session:
            managers = await _managers(session)
            fresh = await period_report(session, managers, week[0], week[-1], TZ)
        async with sessions() as session:
            # the recount, with the rollup emptied in a transaction never committed
            await session.execute(TalkTimeDaily.__table__.delete())
            recount = await period_report(session, managers, week[0], week[-1], TZ)
            await session.rollback()
        return fresh, recount

    fresh, recount = await both()
    assert fresh == recount
    assert fresh["managers"][1]["days"][1]["talk_seconds"] == pytest.approx(600)  # 2 + 598
    async with sessions() as session:  # the table does read the stored figure
        await session.execute(update(TalkTimeDaily).where(
            TalkTimeDaily.user_id == people["m101"].id, TalkTimeDaily.day == week[0]).values(
            talk_seconds=12345.0))
        read = await period_report(session, await _managers(session), week[0], week[0], TZ)
        await session.rollback()
    assert read["managers"][0]["talk_seconds"] == 12345.0
    # A late call of 101 on Wednesday (a replay) drops his stored days around it ...
    await _talk(sessions, "101", _moment(week[2], 16), 700, "late")
    async with sessions() as session:
        left = {(uid, day) for uid, day in await session.execute(
            select(TalkTimeDaily.user_id, TalkTimeDaily.day))}
    assert (people["m101"].id, week[2]) not in left and (people["m102"].id, week[2]) in left
    # ... and a call turned internal drops its manager's rows
    async with sessions() as session, session.begin():
        await session.execute(update(Call).where(Call.linkedid == "r4").values(
            direction="internal"))
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(TalkTimeDaily).where(
            TalkTimeDaily.user_id == people["m101"].id)) == 0
    fresh, recount = await both()
    assert fresh == recount
    assert fresh["managers"][0]["days"][2]["talk_seconds"] == pytest.approx(302 + 700)
    assert fresh["managers"][0]["days"][4]["talk_seconds"] == 0


async def test_close_day_stores_the_day_and_keeps_violations(db_url: str, engines: Engines) -> None:
    sessions, people = await _world(engines, db_url)
    await _talk(sessions, "101", _moment(MONDAY, 10), 600, "x")
    async with sessions() as session, session.begin():
        await close_day(session, await _managers(session), MONDAY, TZ)
    async with sessions() as session:
        rows = {uid: s for uid, s in await session.execute(
            select(TalkTimeDaily.user_id, TalkTimeDaily.talk_seconds).where(
                TalkTimeDaily.day == MONDAY))}
        violations = await session.scalar(select(func.count()).select_from(Violation))
        team = await session.get(Team, people["m101"].team_id)
    assert rows[people["m101"].id] == pytest.approx(600) and len(rows) == 3
    assert violations == 3 and team is not None


async def test_migration_0009_downgrades_and_upgrades_again(empty_db_url: str) -> None:
    from alembic import command

    await upgrade(empty_db_url)
    config = alembic_config(empty_db_url)
    engine = create_engine(empty_db_url)
    try:
        async with engine.connect() as conn:

            def down_and_up(sync_conn: Any) -> tuple[set[str], set[str], set[str]]:
                config.attributes["connection"] = sync_conn
                command.downgrade(config, "0008")
                down = {c["name"] for c in inspect(sync_conn).get_columns("talktime_rules")}
                tables = set(inspect(sync_conn).get_table_names())
                command.upgrade(config, "head")
                up = {c["name"] for c in inspect(sync_conn).get_columns("talktime_rules")}
                return down, tables, up

            down, tables, up = await conn.run_sync(down_and_up)
            await conn.commit()
    finally:
        await engine.dispose()
    assert "day_start_minute" not in down and "talktime_daily" not in tables
    assert {"day_start_minute", "day_end_minute", "created_by"} <= up
    # the triggers came back with the table: a leg write still forgets stored days
    sessions = session_factory(create_engine(empty_db_url), writer=True)
    async with sessions() as session, session.begin():
        user = await add_user(session, "m101", role="manager", extension="101")
        session.add(TalkTimeDaily(user_id=user.id, day=MONDAY, tz="Europe/Moscow",
                                  min_call_seconds=0, talk_seconds=1.0, calls=1))
    await _talk(sessions, "101", _moment(MONDAY, 10), 60, "after-upgrade")
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(TalkTimeDaily)) == 0
