"""Presence services on SQLite and PostgreSQL with a pinned clock: changing a manager's
state (who may, what is audited), time in each state within his working hours, and the
150-minute projection that counts only his working time."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.audit import AuditLog
from crm_core.db import session_factory, upgrade
from crm_core.errors import ConflictError, NotAllowedError, NotFoundError
from crm_core.people.models import User
from crm_core.people.users import add_user
from crm_core.presence import services
from crm_core.presence.models import PresenceChange
from crm_core.talktime.metric import projection
from pbx_bridge.actions import queue_pause_action
from tests.support.db_fixtures import (  # noqa: F401
    Engines,
    db_url_fixture,
    engines_fixture,
)

TZ = ZoneInfo("Europe/Moscow")
NOON = "2026-11-20T12:00:00+03:00"  # a Friday
HIRED = datetime(2026, 1, 1, tzinfo=UTC)


def _at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 20, hour, minute, tzinfo=TZ)


async def _floor(
        engines: Engines, db_url: str) -> tuple[async_sessionmaker[AsyncSession], dict[str, User]]:
    await upgrade(db_url)
    sessions = session_factory(engines(db_url), writer=True)
    people = {}
    async with sessions() as session, session.begin():
        for username, role, ext, team in (("m101", "manager", "101", "Продажи"),
                                          ("m103", "manager", "103", "Опт"),
                                          ("boss", "supervisor", "201", "Продажи"),
                                          ("root", "admin", None, None),
                                          ("ads", "marketer", None, None)):
            people[username] = await add_user(session, username, role=role, extension=ext,
                                              team=team, created_at=HIRED)
    return sessions, people


async def _set(sessions: async_sessionmaker[AsyncSession], actor: User, manager: User,
               reason: str | None, at: datetime) -> bool:
    with time_machine.travel(at, tick=False):
        async with sessions() as session, session.begin():
            reasons = {r.name: r.id for r in await services.list_reasons(session)}
            _, changed = await services.set_presence(
                session, actor, manager, None if reason is None else reasons[reason])
    return changed


@pytest.mark.clock(NOON)
async def test_everyone_starts_present_and_the_default_reasons_are_there(
        db_url: str, engines: Engines) -> None:
    sessions, people = await _floor(engines, db_url)
    async with sessions() as session:
        names = [r.name for r in await services.list_reasons(session)]
        states = await services.current_states(session, [people["m101"].id])
    assert names == ["Перерыв", "Обед", "Встреча", "Обучение", "Нет на месте"]
    state = states[people["m101"].id]
    assert state.present and state.name == "На месте" and state.since is None


@pytest.mark.clock(NOON)
async def test_a_change_is_kept_with_who_made_it_and_audited(db_url: str, engines: Engines) -> None:
    sessions, people = await _floor(engines, db_url)
    m101, boss = people["m101"], people["boss"]
    assert await _set(sessions, m101, m101, "Обед", _at(13))
    # the same state again (a double click) writes nothing
    assert not await _set(sessions, m101, m101, "Обед", _at(13, 1))
    assert await _set(sessions, boss, m101, None, _at(14))  # his supervisor brings him back
    async with sessions() as session:
        rows = list(await session.scalars(select(PresenceChange).order_by(PresenceChange.id)))
        audit = list(await session.scalars(select(AuditLog).where(
            AuditLog.entity == "presence").order_by(AuditLog.id)))
        state = (await services.current_states(session, [m101.id]))[m101.id]
    assert [(r.changed_by, r.at.astimezone(TZ).time()) for r in rows] == [
        ("m101", time(13)), ("boss", time(14))]
    assert [a.changes["state"] for a in audit] == [["На месте", "Обед"], ["Обед", "На месте"]]
    assert state.present and state.since == _at(14)


@pytest.mark.clock(NOON)
async def test_only_he_his_supervisor_or_an_admin_may_change_it(
        db_url: str, engines: Engines) -> None:
    sessions, people = await _floor(engines, db_url)
    m101, m103 = people["m101"], people["m103"]
    with pytest.raises(NotAllowedError):  # another manager
        await _set(sessions, m103, m101, "Обед", _at(13))
    with pytest.raises(NotAllowedError):  # the supervisor of another team
        await _set(sessions, people["boss"], m103, "Обед", _at(13))
    with pytest.raises(NotAllowedError):
        await _set(sessions, people["ads"], m101, "Обед", _at(13))
    assert await _set(sessions, people["root"], m103, "Встреча", _at(13))
    with pytest.raises(NotFoundError):
        async with sessions() as session, session.begin():
            await services.set_presence(session, m101, m101, 999)


@pytest.mark.clock(NOON)
async def test_time_in_each_state_within_the_span(db_url: str, engines: Engines) -> None:
    sessions, people = await _floor(engines, db_url)
    m101, m103 = people["m101"], people["m103"]
    await _set(sessions, m101, m101, "Нет на месте", _at(8))  # before the working hours
    await _set(sessions, m101, m101, None, _at(9, 30))
    await _set(sessions, m101, m101, "Перерыв", _at(10, 45))
    await _set(sessions, m101, m101, None, _at(11))
    await _set(sessions, m101, m101, "Обед", _at(11, 50))
    async with sessions() as session:
        ids = {r.name: str(r.id) for r in await services.list_reasons(session)}
        got = await services.seconds_by_state(session, {
            m101.id: (_at(9), _at(12)), m103.id: (_at(9), _at(12))})
    assert got[m101.id] == {ids["Нет на месте"]: 30 * 60.0, "present": 125 * 60.0,
                            ids["Перерыв"]: 15 * 60.0, ids["Обед"]: 10 * 60.0}
    assert got[m103.id] == {"present": 3 * 3600.0}  # never touched the switch
    assert services.paused_seconds(got[m101.id]) == 55 * 60


def test_projection_counts_only_working_time() -> None:
    now = _at(13)
    # 60 minutes talked by 13:00 of a 9-18 day; an hour of lunch was not working time
    plain = projection(3600, 150 * 60, now, TZ, time(9), time(18))
    rested = projection(3600, 150 * 60, now, TZ, time(9), time(18), paused_seconds=3600)
    assert plain["projected_minutes"] == 135.0 and not plain["on_track"]  # 60 + 15/h * 5h
    assert rested["projected_minutes"] == 160.0 and rested["on_track"]  # 60 + 20/h * 5h


@pytest.mark.clock(NOON)
async def test_reasons_are_kept_by_bosses_and_archived_not_deleted(
        db_url: str, engines: Engines) -> None:
    sessions, people = await _floor(engines, db_url)
    with pytest.raises(NotAllowedError):
        async with sessions() as session, session.begin():
            await services.add_reason(session, people["m101"], "Курение")
    async with sessions() as session, session.begin():
        added = await services.add_reason(session, people["boss"], "  Совещание  ",
                                          pauses_queue=False)
    assert added.name == "Совещание" and not added.pauses_queue
    for name in ("обед", "На месте"):
        with pytest.raises(ConflictError):
            async with sessions() as session, session.begin():
                await services.add_reason(session, people["boss"], name)
    async with sessions() as session, session.begin():
        await services.update_reason(session, people["root"], added.id, archived=True)
    async with sessions() as session:
        active = [r.name for r in await services.list_reasons(session)]
        every = [r.name for r in await services.list_reasons(session, archived=True)]
    assert "Совещание" not in active and "Совещание" in every
    with pytest.raises(NotFoundError):  # an archived reason is no longer offered
        async with sessions() as session, session.begin():
            await services.set_presence(session, people["m101"], people["m101"], added.id)


def test_queue_pause_action_is_safe_ami() -> None:
    action = queue_pause_action("PJSIP/101", True, reason="Обед\r\nAction: Originate")
    assert action["Action"] == "QueuePause" and action["Interface"] == "PJSIP/101"
    assert action["Paused"] == "true" and action["Reason"] == "Obed Action: Originate"
    assert queue_pause_action("PJSIP/101", False)["Paused"] == "false"
    with pytest.raises(ValueError):
        queue_pause_action("PJSIP/101\r\nAction: Originate", True)


