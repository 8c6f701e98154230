"""Telling people of missed calls: the owner at once (live event and e-mail through a real
SMTP server), the team when the client has no owner, the supervisor when nobody called
back within the team's limit — once, even after a restart — with a pinned clock moved on."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from crm_core.clients.services import create_client
from crm_core.db import create_engine, session_factory
from crm_core.missed.mail import set_address, set_mail_settings
from crm_core.missed.models import MissedCallAlert
from crm_core.missed.services import set_escalate_minutes
from crm_core.people.models import Team, User
from telecrm.bus import InProcessBus
from telecrm.missed.alerts import tick
from tests.missed.smtp import Inbox, smtp_server
from tests.missed.world import T0, A, B, back, call, missed, write_calls
from tests.support.browser import seed_world
from tests.support.db_fixtures import db_url_fixture  # noqa: F401

TZ = ZoneInfo("Europe/Moscow")
NOBODY = "+79995550000"  # ООО Ничейный: a client without an owner


async def _setup(db_url: str, tmp_path: Path, port: int) -> None:
    await seed_world(db_url, tmp_path / "recordings", calls_at=T0 - timedelta(days=1))
    engine = create_engine(db_url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            await set_mail_settings(session, host="127.0.0.1", port=port, security="none",
                                    username=None, password=None, sender="crm@example.ru")
            users = {u.username: u for u in await session.scalars(select(User))}
            for name in ("petrov", "smirnova", "sokolova"):
                await set_address(session, users[name], f"{name}@example.ru")
            await create_client(session, "ООО Ничейный", phones=[NOBODY], actor="test")
    finally:
        await engine.dispose()


async def _tick(db_url: str, bus: InProcessBus) -> int:
    engine = create_engine(db_url)  # a new engine each time: like a restarted serve
    try:
        return await tick(session_factory(engine, writer=True), bus, TZ)
    finally:
        await engine.dispose()


async def _user_id(db_url: str, username: str) -> int:
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            found = await session.scalar(select(User.id).where(User.username == username))
            assert found is not None
            return found
    finally:
        await engine.dispose()


async def _drain(subscription: Any) -> list[dict[str, Any]]:
    got = []
    while True:
        try:
            got.append(await asyncio.wait_for(anext(subscription), 0.2))
        except TimeoutError:
            return got


@pytest.mark.clock("2026-11-20T12:01:00+03:00")
async def test_owner_told_at_once_then_supervisor_after_the_limit(
        db_url: str, tmp_path: Path, _clock_of_the_test: Any) -> None:
    clock = _clock_of_the_test
    bus = InProcessBus()
    with smtp_server() as inbox:
        await _setup(db_url, tmp_path, inbox.port)
        await write_calls(db_url, [
            missed("m1", A, T0),  # Ромашка (petrov's): never called back
            missed("m3", B, T0),  # Сидоров (smirnova's): called back in 5 minutes
            missed("m9", NOBODY, T0),  # no owner: the sales team's managers
            call("r1", "inbound", "answered", A, T0 - timedelta(minutes=5),
                 rang=("101", "102"), talked="102"),  # answered by a colleague: missed nothing
        ])
        petrov_topic = await bus.subscribe("ext:101")
        calls_topic = await bus.subscribe("calls")
        assert await _tick(db_url, bus) == 3

        events = await _drain(petrov_topic)
        assert [(e["kind"], e["title"]) for e in events] == [
            ("missed_call", "Пропущенный звонок: ООО Ромашка"),
            ("missed_call", "Пропущенный звонок: ООО Ничейный")]
        assert "+7 916 123-45-67" in events[0]["body"]
        assert "20.11.2026 в 12:00" in events[0]["body"]
        assert len(await _drain(calls_topic)) == 3

        await asyncio.sleep(0.5)  # the thread's SMTP session may still be closing
        romashka = inbox.to("petrov@example.ru")
        assert [m["Subject"] for m in romashka] == ["Пропущенный звонок: ООО Ромашка",
                                                    "Пропущенный звонок: ООО Ничейный"]
        assert romashka[0]["From"] == "Telecrm <crm@example.ru>"
        text = Inbox.text(romashka[0])
        assert "Пропущенный звонок: ООО Ромашка, +7 916 123-45-67, 20.11.2026 в 12:00" in text
        assert "Перезвоните клиенту" in text
        assert [m["Subject"] for m in inbox.to("smirnova@example.ru")] == [
            "Пропущенный звонок: ИП Сидоров", "Пропущенный звонок: ООО Ничейный"]
        assert inbox.to("sokolova@example.ru") == []  # the supervisor: not yet

        assert await _tick(db_url, bus) == 0  # told once
        await write_calls(db_url, [back("cb3", T0, 300, B, "outbound", "answered", "102")])

        clock.shift(timedelta(minutes=28))  # 12:29: the limit (30 min) not reached
        assert await _tick(db_url, bus) == 0
        clock.shift(timedelta(minutes=2))  # 12:31
        assert await _tick(db_url, bus) == 2  # Ромашка and Ничейный; Сидоров was called back
        await asyncio.sleep(0.5)
        boss = inbox.to("sokolova@example.ru")
        assert sorted(m["Subject"] for m in boss) == ["Не перезвонили: ООО Ничейный",
                                                      "Не перезвонили: ООО Ромашка"]
        text = Inbox.text(next(m for m in boss if "Ромашка" in m["Subject"]))
        assert "За 30 мин никто не перезвонил клиенту" in text
        assert "Ответственный: Иван Петров" in text
        boss_events = await _drain(calls_topic)
        assert {e["notice"] for e in boss_events} == {"escalation"}
        assert {tuple(e["user_ids"]) for e in boss_events} == {(await _user_id(db_url,
                                                                              "sokolova"),)}
        assert await _drain(petrov_topic) == []  # the manager is not told of his escalation

        clock.shift(timedelta(hours=1))
        assert await _tick(db_url, bus) == 0  # escalated once, across "restarts"
        assert len(inbox.to("sokolova@example.ru")) == 2
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            alerts = list(await session.scalars(select(MissedCallAlert)))
    finally:
        await engine.dispose()
    assert len(alerts) == 4  # with the floor's missed call of the day before: stale, silent
    assert sum(1 for a in alerts if a.escalated_at) == 2
    assert sum(1 for a in alerts if a.settled_at) == 2
    await bus.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.clock("2026-11-20T12:01:00+03:00")
async def test_the_team_limit_and_a_mail_server_that_is_down(
        db_url: str, tmp_path: Path, _clock_of_the_test: Any) -> None:
    bus = InProcessBus()
    with smtp_server() as inbox:
        port = inbox.port
    await _setup(db_url, tmp_path, port)  # nobody listens there any more
    engine = create_engine(db_url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            team = await session.scalar(select(Team).where(Team.name == "Отдел продаж"))
            boss = await session.scalar(select(User).where(User.username == "sokolova"))
            assert team is not None and boss is not None
            await set_escalate_minutes(session, boss, team.id, 10)
    finally:
        await engine.dispose()
    await write_calls(db_url, [missed("m1", A, T0)])
    assert await _tick(db_url, bus) == 1  # told in the browser; the e-mail failed quietly
    _clock_of_the_test.shift(timedelta(minutes=10))
    assert await _tick(db_url, bus) == 1  # 10 minutes: the team's own limit
    await bus.close()
