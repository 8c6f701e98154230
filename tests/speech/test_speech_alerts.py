"""Speech alerts on SQLite and PostgreSQL: a rule («Расторжение», the client, a team) fires
on a Russian transcript in any inflected form, once per call however often it is
transcribed, reaches only the rule's supervisors who may see the call — live on the bus
and by e-mail through a real SMTP server on loopback — and the delay from the transcript
saved to the event sent is measured.

The floor of tests/support/browser.py with the transcripts of tests/speech/search_world.py
(103's client, «Второй отдел», wants to «расторгнуть» the contract), plus a supervisor of
«Второй отдел» and a call of 101 whose client «расторгнет» it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from crm_core.audit import AuditLog
from crm_core.calls.services import record_call
from crm_core.db import create_engine, session_factory
from crm_core.errors import NotAllowedError, NotFoundError
from crm_core.missed.mail import set_address, set_mail_settings
from crm_core.people.models import Team, User
from crm_core.people.users import add_user
from crm_core.speech import alerts, dictionaries
from crm_core.speech.models import SpeechAlert
from crm_core.speech.transcripts import save_transcript
from telecrm.bus import InProcessBus
from telecrm.live_events import CALLS_TOPIC, SPEECH_ALERT
from telecrm.settings import Settings
from telecrm.speech.alerts import deliver
from tests.missed.smtp import Inbox, smtp_server
from tests.speech.search_world import TRANSCRIPTS, seed_transcripts, transcript
from tests.speech.test_speech_web import call, login
from tests.support.browser import (
    CLIENTS,
    HOOKS,
    World,
    _call,
    seed_world,
    seeded_password_hash,
    serve_app,
)
from tests.support.db_fixtures import db_url_fixture  # noqa: F401

pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")
CALLS_AT = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)  # 10:00 in Moscow
TZ = ZoneInfo("Europe/Moscow")
CANCEL = transcript([("добрый день иван компания телекрм", 0.5),
                     ("расторгнуть можно в любой момент", 9.0)],  # the manager: not the client
                    [("здравствуйте", 3.0), ("мы наверное расторгнем договор с вами", 14.0)])


async def _user(session: Any, username: str) -> User:
    user = await session.scalar(select(User).where(User.username == username))
    assert user is not None
    return user


async def setup(db_url: str, tmp_path: Path, port: int) -> World:
    world = await seed_world(db_url, tmp_path / "recordings", calls_at=CALLS_AT)
    await seed_transcripts(db_url, world)
    engine = create_engine(db_url)
    try:
        sessions = session_factory(engine, writer=True)
        async with sessions() as session, session.begin():
            await add_user(session, "orlova", "Вера Орлова", "supervisor", "202",
                           "Второй отдел", seeded_password_hash())
            await set_mail_settings(session, host="127.0.0.1", port=port, security="none",
                                    username=None, password=None, sender="crm@example.ru")
            for name in ("sokolova", "orlova", "admin"):
                await set_address(session, await _user(session, name), f"{name}@example.ru")
            first = CALLS_AT + timedelta(minutes=40)
            data = _call("t-9.0", "inbound", "answered", CLIENTS[0][1], "101", first, 40.0)
            world.calls["cancel_101"] = (await record_call(session, data, hooks=HOOKS)).id
    finally:
        await engine.dispose()
    return world


async def add_rules(db_url: str) -> dict[str, int]:
    """«Расторжение» (client) by the head of «Отдел продаж» for her team, and the admin's
    for «Второй отдел»."""
    engine = create_engine(db_url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            sokolova, admin = await _user(session, "sokolova"), await _user(session, "admin")
            book = await dictionaries.create(session, sokolova, "Расторжение",
                                             ["расторгнуть", "вернуть деньги"])
            mine = await alerts.create_rule(session, sokolova, dictionary_id=book.id,
                                            speaker="client", team_id=None)
            second = await session.scalar(select(Team.id).where(Team.name == "Второй отдел"))
            theirs = await alerts.create_rule(session, admin, dictionary_id=book.id,
                                              speaker="client", team_id=second)
            return {"sales": mine.id, "second": theirs.id, "dictionary": book.id}
    finally:
        await engine.dispose()


async def transcribe(db_url: str, call_id: int, data: dict[str, Any]) -> list[int]:
    """Save a transcript as the worker does (its own transaction); the new alerts' ids."""
    engine = create_engine(db_url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            before = set(await session.scalars(select(SpeechAlert.id)))
            await save_transcript(session, call_id, data)
            return sorted(set(await session.scalars(select(SpeechAlert.id))) - before)
    finally:
        await engine.dispose()


async def _first(subscription: Any) -> tuple[dict[str, Any], float]:
    event = await asyncio.wait_for(anext(subscription), 60)  # the promise: «within a minute»
    return event, time.monotonic()


async def _drain(subscription: Any) -> list[dict[str, Any]]:
    got = []
    while True:
        try:
            got.append(await asyncio.wait_for(anext(subscription), 0.3))
        except TimeoutError:
            return got


async def test_rule_fires_once_for_its_team_by_browser_event_and_mail(
        db_url: str, tmp_path: Path) -> None:
    with smtp_server() as inbox:
        world = await setup(db_url, tmp_path, inbox.port)
        rules = await add_rules(db_url)
        engine = create_engine(db_url)
        bus = InProcessBus()
        subscription = await bus.subscribe(CALLS_TOPIC)
        try:
            sessions = session_factory(engine, writer=True)
            async with sessions() as session:
                ids = {u.username: u.id for u in await session.scalars(select(User))}

            # «расторгнем» is «расторгнуть»: the client of 101 said it (the manager's own
            # «расторгнуть» at 9 s does not count for a rule on the client's speech)
            received = asyncio.create_task(_first(subscription))
            started = time.monotonic()
            new = await transcribe(db_url, world.calls["cancel_101"], CANCEL)
            saved = time.monotonic()  # committed: the worker calls its hook now
            assert len(new) == 1
            told = await deliver(sessions, bus, TZ, call_id=world.calls["cancel_101"])
            mailed = time.monotonic()
            event, at = await received
            print(f"\nspeech alert: transcript saved with its alerts in {saved - started:.3f} s;"
                  f" event on the bus {at - saved:.3f} s after, e-mail sent "
                  f"{mailed - saved:.3f} s after")
            assert told == 1 and at - saved < 60 and mailed - saved < 60  # «within a minute»
            assert await _drain(subscription) == []
            assert event["kind"] == SPEECH_ALERT
            assert event["title"] == "Клиент сказал «расторгнуть»: ООО Ромашка, Иван Петров"
            assert "«мы наверное расторгнем договор с вами»" in event["body"]
            assert "на 0:14" in event["body"] and "20.11.2026 в 10:40" in event["body"]
            assert event["url"] == f"/calls/{world.calls['cancel_101']}#t=14"
            assert event["user_ids"] == [ids["sokolova"]]  # not the other team's head

            await _wait_for(inbox, 1)
            [mail] = inbox.messages
            assert mail["X-Rcpt"] == "sokolova@example.ru"
            assert mail["Subject"] == event["title"]
            assert "Словарь «Расторжение»" in Inbox.text(mail)

            # transcribed again (a redelivered job, a new model): nobody is told twice
            assert await transcribe(db_url, world.calls["cancel_101"], CANCEL) == []
            assert await deliver(sessions, bus, TZ, call_id=world.calls["cancel_101"]) == 0
            assert await deliver(sessions, bus, TZ) == 0  # nor by the sweeper
            assert await _drain(subscription) == []

            # 103's call («Второй отдел») raises the admin's rule, not Sokolova's; the
            # sweeper tells its supervisor and the admin who made the rule
            await transcribe(db_url, world.calls["vector_103b"], TRANSCRIPTS["vector_103b"])
            async with sessions() as session:
                hits = [(a.rule_id, a.call_id) for a in await session.scalars(
                    select(SpeechAlert).order_by(SpeechAlert.id))]
            assert hits == [(rules["sales"], world.calls["cancel_101"]),
                            (rules["second"], world.calls["vector_103b"])]
            assert await deliver(sessions, bus, TZ) == 1
            [event] = await _drain(subscription)
            assert event["title"] == "Клиент сказал «расторгнуть»: АО Вектор, Алексей Кузнецов"
            assert sorted(event["user_ids"]) == sorted([ids["orlova"], ids["admin"]])
            await _wait_for(inbox, 3)
            assert sorted(m["X-Rcpt"] for m in inbox.messages[1:]) == [
                "admin@example.ru", "orlova@example.ru"]
            assert not inbox.to("sokolova@example.ru")[1:]
        finally:
            await subscription.close()
            await engine.dispose()


async def _wait_for(inbox: Inbox, count: int) -> None:
    for _ in range(600):  # 30 s: a loaded machine, not the product, is slow here
        if len(inbox.messages) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(inbox.messages)} e-mails, expected {count}")


async def test_switched_off_or_archived_rule_stays_silent(db_url: str, tmp_path: Path) -> None:
    with smtp_server() as inbox:
        world = await setup(db_url, tmp_path, inbox.port)
        rules = await add_rules(db_url)
        engine = create_engine(db_url)
        try:
            async with session_factory(engine, writer=True)() as session, session.begin():
                sokolova = await _user(session, "sokolova")
                await alerts.update_rule(session, sokolova, rules["sales"], active=False)
            assert await transcribe(db_url, world.calls["cancel_101"], CANCEL) == []
            async with session_factory(engine, writer=True)() as session, session.begin():
                sokolova = await _user(session, "sokolova")
                await alerts.update_rule(session, sokolova, rules["sales"], active=True)
                await alerts.update_rule(session, sokolova, rules["sales"], archived=True)
            assert await transcribe(db_url, world.calls["cancel_101"], CANCEL) == []
            async with session_factory(engine, writer=True)() as session, session.begin():
                sokolova = await _user(session, "sokolova")
                await alerts.update_rule(session, sokolova, rules["sales"], archived=False)
            assert len(await transcribe(db_url, world.calls["cancel_101"], CANCEL)) == 1
            async with session_factory(engine)() as session:
                changes = [a.changes for a in await session.scalars(
                    select(AuditLog).where(AuditLog.entity == alerts.ENTITY,
                                           AuditLog.entity_id == rules["sales"])
                    .order_by(AuditLog.id))]
            assert changes[1:] == [{"active": [True, False]}, {"active": [False, True]},
                                   {"archived": [False, True]}, {"archived": [True, False]}]
        finally:
            await engine.dispose()


async def test_who_keeps_rules(db_url: str, tmp_path: Path) -> None:
    """A supervisor keeps his own team's rules only; a manager none; an admin any."""
    with smtp_server() as inbox:
        world = await setup(db_url, tmp_path, inbox.port)
        rules = await add_rules(db_url)
    await transcribe(db_url, world.calls["vector_103b"], TRANSCRIPTS["vector_103b"])
    engine = create_engine(db_url)
    try:
        async with session_factory(engine, writer=True)() as session:
            sokolova, orlova = await _user(session, "sokolova"), await _user(session, "orlova")
            petrov = await _user(session, "petrov")
            second = await session.scalar(select(Team.id).where(Team.name == "Второй отдел"))
            with pytest.raises(NotAllowedError):
                await alerts.create_rule(session, sokolova, dictionary_id=rules["dictionary"],
                                         speaker="client", team_id=second)
            with pytest.raises(NotAllowedError):
                await alerts.create_rule(session, petrov, dictionary_id=rules["dictionary"],
                                         speaker="client", team_id=None)
            with pytest.raises(NotFoundError):  # another team's rule does not exist for her
                await alerts.update_rule(session, orlova, rules["sales"], active=False)
            assert [r.id for r in await alerts.rules(session, orlova)] == [rules["second"]]
            assert await session.scalar(select(func.count()).select_from(SpeechAlert)) == 1
            assert await alerts.listing(session, sokolova) == []  # 103's call is not hers
            [row] = await alerts.listing(session, orlova)
            assert row.said == "расторгнуть" and row.client_name == "АО Вектор"
    finally:
        await engine.dispose()


async def test_alerts_page_and_api(db_url: str, tmp_path: Path) -> None:
    with smtp_server() as inbox:
        world = await setup(db_url, tmp_path, inbox.port)
    await add_rules(db_url)
    await transcribe(db_url, world.calls["cancel_101"], CANCEL)
    await transcribe(db_url, world.calls["vector_103b"], TRANSCRIPTS["vector_103b"])
    settings = Settings(data_dir=tmp_path, database_url=db_url,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (_, base):
        sokolova, orlova, petrov = [await login(base, n)
                                    for n in ("sokolova", "orlova", "petrov")]
        try:
            status, rows = await call(sokolova, "GET", f"{base}/api/alerts")
            assert status == 200
            assert [(r["said"], r["client"], r["url"], r["seen"]) for r in rows] == [
                ("расторгнуть", "ООО Ромашка", f"/calls/{world.calls['cancel_101']}#t=14",
                 False)]
            status, others = await call(orlova, "GET", f"{base}/api/alerts")
            assert status == 200 and [r["client"] for r in others] == ["АО Вектор"]
            status, _ = await call(orlova, "POST", f"{base}/api/alerts/{rows[0]['id']}/seen")
            assert status == 404  # not hers to mark
            status, _ = await call(sokolova, "POST", f"{base}/api/alerts/{rows[0]['id']}/seen")
            assert status == 200
            _, rows = await call(sokolova, "GET", f"{base}/api/alerts")
            assert rows[0]["seen"] is True
            status, _ = await call(sokolova, "GET", f"{base}/api/alerts?from=2026-11-21")
            _, later = await call(sokolova, "GET", f"{base}/api/alerts?from=2026-11-21")
            assert status == 200 and later == []
            status, body = await call(petrov, "GET", f"{base}/api/alerts")
            assert status == 403 and body["error"]
            async with sokolova.get(f"{base}/alerts") as response:
                page = await response.text()
            assert response.status == 200
            assert "Клиент сказал «расторгнуть»" in page and "Послушать с 0:14" in page
            assert "Просмотрено" in page
            async with sokolova.get(f"{base}/alerts/rules") as response:
                page = await response.text()
            assert response.status == 200 and "Расторжение" in page and "Отдел продаж" in page
            assert "Вся компания" not in page  # the company's rules are the admin's
            async with petrov.get(f"{base}/alerts") as response:
                assert response.status == 403
        finally:
            for http in (sokolova, orlova, petrov):
                await http.close()


async def test_phrase_of_two_words_in_any_form_by_either_speaker(
        db_url: str, tmp_path: Path) -> None:
    """«вернуть деньги» is found in «верните нам наши деньги» (both words, other forms,
    words between); a rule on either speaker takes the manager's words too, a rule on the
    client's does not."""
    with smtp_server() as inbox:
        world = await setup(db_url, tmp_path, inbox.port)
    engine = create_engine(db_url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            sokolova = await _user(session, "sokolova")
            book = await dictionaries.create(session, sokolova, "Возврат", ["вернуть деньги"])
            either = await alerts.create_rule(session, sokolova, dictionary_id=book.id,
                                              speaker="any", team_id=None)
            client = await alerts.create_rule(session, sokolova, dictionary_id=book.id,
                                              speaker="client", team_id=None)
        said = transcript([("мы вернём вам деньги за месяц", 6.5)],
                          [("денег нет", 2.0), ("верните", 11.0)])  # not in one phrase
        assert len(await transcribe(db_url, world.calls["cancel_101"], said)) == 1
        async with session_factory(engine)() as session:
            [alert] = await session.scalars(select(SpeechAlert))
        assert (alert.rule_id, alert.speaker, alert.said, alert.start) == (
            either.id, "manager", "вернуть деньги", 6.5)
        said = transcript([("добрый день", 0.5)], [("верните нам наши деньги", 4.0)])
        new = await transcribe(db_url, world.calls["cancel_101"], said)
        async with session_factory(engine)() as session:
            rows = [(a.rule_id, a.text) for a in await session.scalars(
                select(SpeechAlert).where(SpeechAlert.id.in_(new)))]
        assert rows == [(client.id, "верните нам наши деньги")]  # «either» told already
    finally:
        await engine.dispose()
