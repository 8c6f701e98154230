"""Talk-time counting rules, by replay of the real sandbox captures (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.audit import AuditLog
from crm_core.calls.models import CallLeg
from crm_core.db import session_factory
from crm_core.people.models import User
from crm_core.people.users import add_user
from crm_core.talktime.metric import close_day, day_report, decide_violation, period_report
from crm_core.talktime.models import Absence, Holiday, TalkTimeRule, Violation
from pbx_bridge.replay import read_events, replay
from pbx_bridge.store import CallStore
from pbx_bridge.tracker import CallTracker, FactKind
from telecrm.wiring import call_hooks
from tests.support.db_fixtures import (  # noqa: F401
    Engines,
    db_url_fixture,
    engines_fixture,
)
from tests.support.live import telecrm
from tests.support.scenarios import CAPTURES, party_rules

HOOKS = call_hooks()  # what the product does with each written call

TZ = ZoneInfo("Europe/Moscow")
# The managers worked here long before the captures: talk time judges no day before that.
HIRED = datetime(2020, 1, 1, tzinfo=UTC)


async def _setup(
        engines: Engines, db_url: str, *captures: Path) -> async_sessionmaker[AsyncSession]:
    sessions = session_factory(engines(db_url), writer=True)
    async with sessions() as session, session.begin():
        for ext in ("101", "102", "103"):
            await add_user(session, f"m{ext}", name=f"Менеджер {ext}", role="manager",
                           extension=ext, team="Продажи", created_at=HIRED)
        # 201 listens in as a supervisor on the PBX; made a "manager" here so that a
        # counted spy leg would show up in his row.
        await add_user(session, "m201", name="Слушатель", role="manager", extension="201",
                       team="Продажи", created_at=HIRED)
    await replay(list(captures), CallStore(sessions, HOOKS), CallTracker(party_rules()))
    return sessions


async def _managers(session: AsyncSession) -> list[User]:
    return list(await session.scalars(select(User).order_by(User.extension)))


async def _legs(session: AsyncSession, ext: str) -> list[CallLeg]:
    return list(await session.scalars(select(CallLeg).where(
        CallLeg.extension == ext, CallLeg.role == "manager", CallLeg.bridged_at.is_not(None))))


async def _row(session: AsyncSession, ext: str, day: date, **kw: object) -> dict:
    rows = await day_report(session, await _managers(session), day, TZ, **kw)  # type: ignore[arg-type]
    return next(r for r in rows if r["extension"] == ext)


async def _day_of(session: AsyncSession, ext: str) -> date:
    legs = await _legs(session, ext)
    return legs[0].bridged_at.astimezone(TZ).date()  # type: ignore[union-attr]


async def test_plain_call_counts_its_bridged_talk(db_url: str, engines: Engines) -> None:
    sessions = await _setup(engines, db_url, CAPTURES / "inbound_answered.ami")
    async with sessions() as session:
        (leg,) = await _legs(session, "101")
        row = await _row(session, "101", await _day_of(session, "101"))
    assert row["talk_seconds"] == pytest.approx(leg.talk_seconds, abs=0.01)
    assert 0 < row["talk_seconds"] and row["calls"] == 1
    assert row["target_seconds"] == 150 * 60 and row["met"] is False


async def test_internal_call_does_not_count(db_url: str, engines: Engines) -> None:
    sessions = await _setup(engines, db_url, CAPTURES / "internal.ami")
    async with sessions() as session:
        day = (await session.scalar(select(func.min(CallLeg.started_at)))).astimezone(TZ).date()
        rows = await day_report(session, await _managers(session), day, TZ)
    assert all(r["talk_seconds"] == 0 and r["calls"] == 0 for r in rows)


@pytest.mark.parametrize("capture", ["blind_transfer.ami", "attended_transfer.ami"])
async def test_transfer_counts_each_manager_his_own_part(
        db_url: str, engines: Engines, capture: str) -> None:
    sessions = await _setup(engines, db_url, CAPTURES / capture)
    async with sessions() as session:
        day = await _day_of(session, "101")
        first, second = await _legs(session, "101"), await _legs(session, "102")
        r101, r102 = await _row(session, "101", day), await _row(session, "102", day)
    assert r101["talk_seconds"] == pytest.approx(sum(x.talk_seconds for x in first), abs=0.01)
    assert r102["talk_seconds"] == pytest.approx(sum(x.talk_seconds for x in second), abs=0.01)
    assert r101["talk_seconds"] > 1 and r102["talk_seconds"] > 1
    assert r101["calls"] == r102["calls"] == 1


async def test_spy_leg_does_not_count(db_url: str, engines: Engines) -> None:
    sessions = await _setup(engines, db_url, CAPTURES / "spy.ami")
    async with sessions() as session:
        day = await _day_of(session, "101")
        spy_legs = list(await session.scalars(select(CallLeg).where(CallLeg.extension == "201")))
        r101, r201 = await _row(session, "101", day), await _row(session, "201", day)
    assert spy_legs and spy_legs[0].role == "supervisor"  # he did listen ...
    assert r201["talk_seconds"] == 0 and r201["calls"] == 0  # ... and that is not talk
    assert r101["talk_seconds"] > 3


async def test_hold_is_excluded(db_url: str, engines: Engines) -> None:
    sessions = await _setup(engines, db_url, CAPTURES / "hold.ami")
    async with sessions() as session:
        (leg,) = await _legs(session, "101")
        row = await _row(session, "101", await _day_of(session, "101"))
    wall = (leg.ended_at - leg.bridged_at).total_seconds()  # type: ignore[operator]
    assert leg.hold_seconds > 2
    assert row["talk_seconds"] == pytest.approx(leg.talk_seconds, abs=0.01)
    assert row["talk_seconds"] < wall - 2


def _shifted_capture(source: Path, target: Path, ext: str) -> None:
    """The capture moved in time so that ``ext``'s talk is centred on Moscow midnight."""
    tracker = CallTracker(party_rules())
    legs = []
    for event in read_events(source):
        for fact in tracker.feed(event):
            if fact.kind == FactKind.ENDED:
                legs += [x for x in fact.call.legs if x.extension == ext and x.bridged_at]
    (leg,) = legs
    middle = leg.bridged_at + (leg.ended_at - leg.bridged_at) / 2  # type: ignore[operator]
    midnight = datetime.combine(middle.astimezone(TZ).date() + timedelta(days=1),
                                datetime.min.time(), tzinfo=TZ)
    _shift(source, target, (midnight - middle).total_seconds())


def _shift(source: Path, target: Path, seconds: float) -> None:
    """A copy of a capture with every event ``seconds`` later."""
    out = []
    for line in source.read_bytes().decode().splitlines(keepends=True):
        if line.startswith("Timestamp: "):
            line = f"Timestamp: {float(line.split(': ')[1].strip()) + seconds:.6f}\r\n"
        out.append(line)
    target.write_bytes("".join(out).encode())


async def test_call_across_midnight_is_split_between_days(
        db_url: str, engines: Engines, tmp_path: Path) -> None:
    shifted = tmp_path / "midnight.ami"
    _shifted_capture(CAPTURES / "inbound_answered.ami", shifted, "101")
    sessions = await _setup(engines, db_url, shifted)
    async with sessions() as session:
        (leg,) = await _legs(session, "101")
        day = leg.bridged_at.astimezone(TZ).date()  # type: ignore[union-attr]
        before, after = await _row(session, "101", day), await _row(
            session, "101", day + timedelta(days=1))
        month = await period_report(session, await _managers(session), day,
                                    day + timedelta(days=1), TZ)
    assert before["talk_seconds"] == pytest.approx(leg.talk_seconds / 2, abs=0.05)
    assert after["talk_seconds"] == pytest.approx(leg.talk_seconds / 2, abs=0.05)
    assert before["calls"] == 1 and after["calls"] == 0  # the call counts where talk began
    row = next(m for m in month["managers"] if m["extension"] == "101")
    assert row["talk_seconds"] == pytest.approx(leg.talk_seconds, abs=0.01)
    assert [d["talk_seconds"] for d in row["days"]] == [
        pytest.approx(before["talk_seconds"], abs=0.01),
        pytest.approx(after["talk_seconds"], abs=0.01)]
    assert [d["calls"] for d in row["days"]] == [1, 0]


async def test_minimum_call_length_from_the_rule_in_force(db_url: str, engines: Engines) -> None:
    sessions = await _setup(engines, db_url, CAPTURES / "inbound_answered.ami")
    async with sessions() as session, session.begin():
        day = await _day_of(session, "101")
        (leg,) = await _legs(session, "101")
        session.add(TalkTimeRule(team_id=None, effective_from=day, target_seconds=60,
                                 min_call_seconds=int(leg.talk_seconds) + 1))
        await session.flush()
        today = await _row(session, "101", day)
        yesterday_rule = await _row(session, "101", day - timedelta(days=1))
    assert today["talk_seconds"] == 0 and today["calls"] == 0 and today["target_seconds"] == 60
    assert yesterday_rule["target_seconds"] == 150 * 60  # history keeps the old rule


def _cut_before_hangup(source: Path, target: Path) -> None:
    """The capture up to its first hangup: the call is still going when it ends."""
    frames = source.read_bytes().split(b"\r\n\r\n")
    kept = []
    for frame in frames:
        if b"Event: Hangup\r\n" in frame or b"Event: SoftHangupRequest" in frame:
            break
        kept.append(frame)
    target.write_bytes(b"\r\n\r\n".join(kept) + b"\r\n\r\n")


async def test_live_value_grows_during_an_in_progress_call(
        db_url: str, engines: Engines, tmp_path: Path) -> None:
    live = tmp_path / "live.ami"
    _cut_before_hangup(CAPTURES / "in_progress.ami", live)
    sessions = await _setup(engines, db_url, live)
    async with sessions() as session:
        (leg,) = await _legs(session, "101")
        assert leg.ended_at is None
        day = leg.bridged_at.astimezone(TZ).date()  # type: ignore[union-attr]
        at_60 = await _row(session, "101", day, now=leg.bridged_at + timedelta(seconds=60))
        at_90 = await _row(session, "101", day, now=leg.bridged_at + timedelta(seconds=90))
        without_clock = await _row(session, "101", day)
    assert at_60["talk_seconds"] == pytest.approx(60 - leg.hold_seconds, abs=0.01)
    assert at_90["talk_seconds"] == pytest.approx(90 - leg.hold_seconds, abs=0.01)
    assert at_60["calls"] == 1 and without_clock["talk_seconds"] == 0


async def test_close_day_violations_exclusions_and_decisions(db_url: str, engines: Engines) -> None:
    sessions = await _setup(engines, db_url, CAPTURES / "inbound_answered.ami")
    async with sessions() as session, session.begin():
        day = await _day_of(session, "101")
        managers = await _managers(session)
        by_ext = {m.extension: m for m in managers}
        session.add(TalkTimeRule(team_id=by_ext["101"].team_id, effective_from=day,
                                 target_seconds=600, fine_amount=Decimal("500"),
                                 working_weekdays="1234567"))
        session.add(Absence(user_id=by_ext["102"].id, first_day=day, last_day=day, kind="sick"))
        session.add(Holiday(day=day + timedelta(days=1), name="Праздник"))
        await session.flush()
        created = await close_day(session, managers, day, TZ)
        again = await close_day(session, managers, day, TZ)
        holiday = await close_day(session, managers, day + timedelta(days=1), TZ)
    assert sorted(v.user_id for v in created) == sorted(
        by_ext[x].id for x in ("101", "103", "201"))
    assert again == [] and holiday == []
    v101 = next(v for v in created if v.user_id == by_ext["101"].id)
    assert v101.target_seconds == 600 and 0 < v101.shortfall_seconds < 600
    async with sessions() as session, session.begin():
        boss = await add_user(session, "boss", name="Руководитель", role="supervisor",
                              team="Продажи")
        v = await session.get(Violation, v101.id)
        await decide_violation(session, v, boss, confirm=True)  # type: ignore[arg-type]
        other = (await session.scalars(select(Violation).where(Violation.id != v101.id))).first()
        with pytest.raises(ValueError):
            await decide_violation(session, other, boss, confirm=False)  # type: ignore[arg-type]
        await decide_violation(session, other, boss, confirm=False,  # type: ignore[arg-type]
                               reason="Обучение новичков")
    async with sessions() as session:
        confirmed = await session.get(Violation, v101.id)
        audits = await session.scalar(select(func.count()).select_from(AuditLog).where(
            AuditLog.entity == "talktime_violation"))
    assert confirmed.status == "confirmed" and confirmed.fine_amount == Decimal("500")  # type: ignore[union-attr]
    assert audits == 3 + 2


def test_cli_talktime_json(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return telecrm(*args, "--db", db, check=False)

    assert run("users", "add", "m101", "--role", "manager", "--extension", "101",
               "--since", "2020-01-01").returncode == 0
    week_ago = tmp_path / "week_ago.ami"  # close-day judges finished days only
    _shift(CAPTURES / "inbound_answered.ami", week_ago, -7 * 86400)
    assert run("ami-replay", str(week_ago)).returncode == 0
    day = datetime.fromtimestamp(float(next(
        line.split(": ")[1] for line in week_ago.read_text().splitlines()
        if line.startswith("Timestamp: "))), TZ).date()
    result = run("talktime", "--date", day.isoformat(), "--format", "json")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert {"extension", "name", "talk_seconds", "calls", "target_seconds", "met"} <= set(row)
    assert row["extension"] == "101" and row["talk_seconds"] > 0 and row["calls"] == 1
    bad = run("talktime", "--date", "23.11.2026")
    assert bad.returncode == 2
    assert bad.stderr == "telecrm: «23.11.2026» — не дата (нужно ГГГГ-ММ-ДД).\n"
    closed = run("talktime", "close-day", "--date", day.isoformat())
    assert closed.returncode == 0, closed.stderr
    assert closed.stdout == f"{day:%d.%m.%Y}: 1 новое нарушение нормы разговоров.\n"
    again = run("talktime", "close-day", "--date", day.isoformat()).stdout
    assert again == f"{day:%d.%m.%Y}: 0 новых нарушений нормы разговоров.\n"


async def test_serve_job_closes_finished_days_once(db_url: str, engines: Engines) -> None:
    from telecrm.talktime.board import CATCH_UP_DAYS, close_finished_days

    sessions = await _setup(engines, db_url, CAPTURES / "inbound_answered.ami")
    async with sessions() as session:
        day = await _day_of(session, "101")
    today = day + timedelta(days=1)
    first = await close_finished_days(sessions, TZ, today)
    again = await close_finished_days(sessions, TZ, today)
    async with sessions() as session:
        days = set(await session.scalars(select(Violation.day)))
    working = [today - timedelta(days=b) for b in range(1, CATCH_UP_DAYS + 1)
               if (today - timedelta(days=b)).isoweekday() <= 5]
    assert first == 4 * len(working) and again == 0
    assert days == set(working) and today not in days
