"""«Обзвон» over HTTP, role by role, on SQLite and PostgreSQL, with a pinned clock.

The seeded floor (tests/support/browser.py): petrov (101) and smirnova (102) with their
supervisor sokolova in «Отдел продаж», kuznetsov (103) in «Второй отдел», a marketer and
an admin. Petrov's client ООО Ромашка missed a call an hour ago, so a callback task is
on his list. No PBX here: a call placed from the dialer is refused as telephony down,
and the calls the dialer judges are written as the call log writes them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from crm_core.calls.services import record_call
from crm_core.clock import utcnow
from crm_core.db import create_engine, session_factory
from crm_core.presence.models import PresenceChange
from crm_core.sales.deals import StageSpec, create_pipeline
from crm_core.tasks.models import Task
from tests.dialer.test_dialer_rules import HOOKS
from tests.support.browser import _call
from tests.support.db_fixtures import db_url_fixture  # noqa: F401
from tests.support.floor import Floor as BaseFloor
from tests.support.floor import served_floor
from tests.support.live import telecrm

pytestmark = [pytest.mark.calendar, pytest.mark.clock("2026-11-20T12:00:00+03:00")]

STAGES = ["Квалификация:call:1", "КП:email:2", "Выиграна:won", "Проиграна:lost"]
SCRIPT = Path(__file__).resolve().parents[2] / "telecrm" / "demo_data" / "kkp_script.yaml"


class Floor(BaseFloor):
    async def pipeline(self) -> None:
        engine = create_engine(self.db_url)
        try:
            async with session_factory(engine, writer=True)() as session, session.begin():
                await create_pipeline(session, "B2B новые",
                                      [StageSpec.parse(s) for s in STAGES], by=None)
        finally:
            await engine.dispose()

    async def outbound(self, linkedid: str, number: str, ext: str, status: str) -> int:
        engine = create_engine(self.db_url)
        try:
            async with session_factory(engine, writer=True)() as session, session.begin():
                data = _call(linkedid, "outbound", status, number, ext,
                             utcnow() - timedelta(minutes=1), 30.0)
                return (await record_call(session, data, hooks=HOOKS)).id
        finally:
            await engine.dispose()

    async def write(self, row: Any) -> None:
        engine = create_engine(self.db_url)
        try:
            async with session_factory(engine, writer=True)() as session, session.begin():
                session.add(row)
        finally:
            await engine.dispose()


@pytest.fixture
async def floor(db_url: str, tmp_path: Path) -> AsyncIterator[Floor]:
    async with served_floor(Floor, db_url, tmp_path) as crm:
        yield crm


async def test_who_may_use_the_dialer(floor: Floor) -> None:
    assert (await floor.call(None, "GET", "/api/dialer"))[0] == 401
    for who, status in [("petrov", 200), ("sokolova", 403), ("marketer", 403), ("admin", 403)]:
        got, body = await floor.call(who, "GET", "/api/dialer")
        assert got == status, (who, body)
    status, body = await floor.call("sokolova", "POST", "/api/dialer/start", {})
    assert status == 403 and body["error"] == "Обзвон — для менеджеров со своим внутренним номером."
    status, body = await floor.call("petrov", "POST", "/api/dialer/start", {}, csrf=False)
    assert status == 403, "state changes need the CSRF token"
    status, body = await floor.call("petrov", "POST", "/api/dialer/pause", {})
    assert status == 404 and body["error"] == "Обзвон не начат: нажмите «Начать обзвон»."
    for who, status in [("petrov", 403), ("sokolova", 200), ("admin", 200), ("marketer", 403)]:
        assert (await floor.call(who, "GET", "/api/dialer/team"))[0] == status, who
        assert (await floor.call(who, "GET", "/api/dialer/rules"))[0] == status, who


async def test_a_session_shows_the_card_script_and_judges_a_busy_call(floor: Floor) -> None:
    romashka = floor.world.clients["101"]
    # A deal on a stage, and the script for that stage (as the head of sales uploads it).
    await floor.pipeline()
    _, pipelines = await floor.call("petrov", "GET", "/api/pipelines")
    pipeline = pipelines["pipelines"][0]
    status, deal = await floor.call("petrov", "POST", "/api/deals", {
        "client_id": romashka, "pipeline_id": pipeline["id"], "title": "Поставка бумаги",
        "amount": "120000"})
    assert status == 201, deal
    stage = next(s for s in pipeline["stages"] if s["id"] == deal["stage_id"])
    telecrm("kkp", "scripts", "add", str(SCRIPT), "--stage", stage["code"], "--db",
            floor.db_url)
    await floor.call("petrov", "POST", f"/api/clients/{romashka}/notes",
                     {"text": "Просил перезвонить после обеда"})

    status, before = await floor.call("petrov", "GET", "/api/dialer")
    assert before["session"] is None and before["left"] >= 1
    status, state = await floor.call("petrov", "POST", "/api/dialer/start", {})
    assert status == 201, state
    card = state["card"]
    assert card["name"] == "ООО Ромашка" and state["task"]["overdue"] is True
    assert card["phones"][0]["display"] == "+7 916 123-45-67"
    assert card["deal"]["title"] == "Поставка бумаги" and card["deal"]["stage"] == stage["name"]
    assert card["last_contacts"][0]["text"] == "Просил перезвонить после обеда"
    script = card["script"]
    assert script["name"] == "Холодный звонок" and script["stage"] == stage["name"]
    greeting = script["prompts"][0]
    assert greeting["title"] == "Приветствие" and greeting["required"] is True
    assert greeting["text"] == ("Скажите: «добрый день», «меня зовут», «компания» — "
                                "в первые 30 с разговора")
    assert greeting["say"][0] == "Добрый день! Меня зовут …, компания «Телеком-Сервис»."
    assert script["objections"][0]["title"] == "Дорого"
    assert state["talk"]["target_minutes"] == 150
    assert state["rules"] == {"max_attempts": 3, "retry_minutes": 30}

    # No PBX here: the call is refused, the card stays.
    status, body = await floor.call("petrov", "POST", "/api/dialer/call", {})
    assert status == 503 and "Телефония недоступна" in body["error"]
    _, state = await floor.call("petrov", "GET", "/api/dialer")
    assert state["session"]["phase"] == "idle"

    # Another manager's call is not his to report.
    others = await floor.outbound("w-1", "+79031234567", "102", "busy")
    status, _ = await floor.call("petrov", "POST", "/api/dialer/hangup", {"call_id": others})
    assert status == 404
    busy = await floor.outbound("w-2", "+79161234567", "101", "busy")
    status, state = await floor.call("petrov", "POST", "/api/dialer/hangup", {"call_id": busy})
    assert status == 200, state
    hangup = state["hangup"]
    assert hangup["status"] == "busy" and hangup["form"] is False
    assert hangup["retry"]["title"] == "Повторный звонок (попытка 2 из 3): ООО Ромашка"
    assert state["session"]["calls"] == 1 and state["session"]["phase"] == "countdown"
    assert state["waiting_retries"] == 1
    # The supervisor sees him in the session; the next step shows the list is done for now.
    _, team = await floor.call("sokolova", "GET", "/api/dialer/team")
    rows = {r["name"]: r for r in team["managers"]}
    assert rows["Иван Петров"]["in_session"] and rows["Иван Петров"]["calls"] == 1
    assert rows["Ольга Смирнова"]["state"] == "off"
    assert "Алексей Кузнецов" not in rows
    status, state = await floor.call("petrov", "POST", "/api/dialer/next", {})
    assert status == 200 and state["card"] is None and state["next_retry_at"] is not None

    status, state = await floor.call("petrov", "POST", "/api/dialer/pause", {})
    assert state["session"]["state"] == "paused"
    _, team = await floor.call("sokolova", "GET", "/api/dialer/team")
    assert {r["name"]: r["state"] for r in team["managers"]}["Иван Петров"] == "paused"
    status, state = await floor.call("petrov", "POST", "/api/dialer/end", {})
    assert status == 200 and state["session"] is None
    tasks = await floor.rows(select(Task.title, Task.status).where(Task.client_id == romashka)
                             .order_by(Task.id))
    assert ("Повторный звонок (попытка 2 из 3): ООО Ромашка", "open") in tasks


async def test_the_head_of_sales_sets_the_retry_rules(floor: Floor) -> None:
    status, body = await floor.call("sokolova", "PUT", "/api/dialer/rules",
                                    {"max_attempts": 2, "retry_minutes": 15})
    assert status == 200 and body["max_attempts"] == 2
    status, body = await floor.call("petrov", "PUT", "/api/dialer/rules",
                                    {"max_attempts": 9, "retry_minutes": 1})
    assert status == 403
    _, state = await floor.call("petrov", "GET", "/api/dialer")
    assert state["rules"] == {"max_attempts": 2, "retry_minutes": 15}
    _, other = await floor.call("kuznetsov", "GET", "/api/dialer")
    assert other["rules"] == {"max_attempts": 3, "retry_minutes": 30}

    status, page = await floor.form("sokolova", "/dialer/settings",
                                    {"max_attempts": "0", "retry_minutes": "10"})
    assert status == 400
    assert "Поле «сколько попыток»: укажите целое число от 1 до 20." in page
    status, page = await floor.form("sokolova", "/dialer/settings",
                                    {"max_attempts": "4", "retry_minutes": "10"})
    assert status == 200 and "Правила сохранены." in page and 'value="4"' in page
    status, page = await floor.call("sokolova", "GET", "/dialer")
    assert status == 200 and "Обзвон: команда" in page and "Иван Петров" in page
    status, page = await floor.call("petrov", "GET", "/tasks")
    assert "Начать обзвон" in page


async def test_a_lunch_pause_does_not_lower_the_dialers_projection(floor: Floor) -> None:
    """12:00 of a 9-18 day, lunch from 11:00: the pace is his talk over two working hours,
    not three, and the dialer, the talk-time board and the Today bar say the same."""
    await floor.outbound("lunch-1", "+79161234567", "101", "answered")
    _, before = await floor.call("petrov", "GET", "/api/dialer")
    talk = before["talk"]["talk_seconds"]
    assert talk > 0
    lunch = next(int(r["state"]) for r in (await floor.call("petrov", "GET", "/api/presence"))[1]
                 ["reasons"] if r["name"] == "Обед")
    await floor.write(PresenceChange(user_id=floor.world.users["petrov"], reason_id=lunch,
                                     at=utcnow() - timedelta(hours=1), changed_by="petrov"))
    _, after = await floor.call("petrov", "GET", "/api/dialer")
    # 3 h gone, 6 h left: without the pause talk * (1 + 6/3); with it, talk * (1 + 6/2)
    assert before["talk"]["projected_seconds"] == pytest.approx(talk * 3, abs=1)
    assert after["talk"]["projected_seconds"] == pytest.approx(talk * 4, abs=1)
    _, board = await floor.call("sokolova", "GET", "/api/talktime/live")
    row = next(m for m in board["managers"] if m["extension"] == "101")
    assert (row["projected_minutes"], row["on_track"]) == (
        after["talk"]["projected_minutes"], after["talk"]["on_track"])
    status, today = await floor.call("petrov", "GET", "/today")
    assert status == 200
    assert f"наберётся {int(talk * 4 // 60)} мин" in today
