"""«Обзвон» in Chromium: start, the card and the script, the call, the form after the
hang-up, the countdown (paused and resumed), the next client called by itself, a busy
client's retry, and the supervisor's board.

The PBX is stood in for here (the sandbox test places the calls for real): the
click-to-call records the number it was asked to ring, and the test writes the call
and publishes its live events as the listener would.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from crm_core.calls.services import record_call
from crm_core.clients.services import create_client
from crm_core.clock import utcnow
from crm_core.db import create_engine, session_factory
from crm_core.people.models import User
from crm_core.sales.deals import StageSpec, create_deal, create_pipeline
from crm_core.tasks.models import Task
from crm_core.tasks.services import create_task
from telecrm.live_events import extension_topic
from telecrm.settings import Settings
from telecrm.web.keys import BUS, CLICK_TO_CALL
from tests.dialer.test_dialer_rules import HOOKS
from tests.support.browser import (
    PASSWORD,
    _call,
    chromium,
    screenshot,
    seed_world,
    serve_app,
)
from tests.support.live import telecrm

pytestmark = [pytest.mark.calendar, pytest.mark.clock("2026-11-20T12:00:00+03:00")]

SCRIPT = Path(__file__).resolve().parents[2] / "telecrm" / "demo_data" / "kkp_script.yaml"
LUCH = "+79057770011"


class StandInPhone:
    """Click-to-call without a PBX: remembers what it was asked to ring."""

    def __init__(self) -> None:
        self.dialled: list[str] = []

    async def place(self, extension: str, number: str, name: str | None) -> tuple[Any, bool]:
        self.dialled.append(number)

        class Attempt:
            action_id, error = f"stand-in-{len(self.dialled)}", None

        return Attempt(), False


async def seed(db: str, tmp_path: Path) -> None:
    world = await seed_world(db, tmp_path / "recordings")
    engine = create_engine(db)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            petrov = await session.get(User, world.users["petrov"])
            pipeline = await create_pipeline(session, "B2B новые", [StageSpec.parse(s) for s in (
                "Квалификация:call:3", "КП:email:2", "Выиграна:won", "Проиграна:lost")],
                by=None)
            await create_deal(session, client_id=world.clients["101"], pipeline_id=pipeline.id,
                              title="Поставка бумаги", amount="1200000", by=petrov)
            luch = await create_client(session, "ЗАО Луч", phones=[LUCH], owner_id=petrov.id,
                                       actor="test")
            luch.abc_group = "A"
            await create_task(session, kind="call", title="Позвонить: ЗАО Луч",
                              client_id=luch.id, assignee_id=petrov.id, team_id=petrov.team_id,
                              due_at=utcnow() + timedelta(hours=2))
            stage_code = (await pipeline.awaitable_attrs.stages)[0].code
    finally:
        await engine.dispose()
    telecrm("kkp", "scripts", "add", str(SCRIPT), "--stage", stage_code, "--db", db)


async def hang_up(app: Any, db: str, linkedid: str, number: str, status: str) -> None:
    """Write the call as the call log does, then tell the browser it ended."""
    engine = create_engine(db)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            call = await record_call(session, _call(linkedid, "outbound", status, number, "101",
                                                    utcnow() - timedelta(seconds=40), 35.0),
                                     hooks=HOOKS)
            ids = (call.id, call.client_id)
    finally:
        await engine.dispose()
    await app[BUS].publish(extension_topic("101"), {
        "kind": "call_ended", "linkedid": linkedid, "extension": "101",
        "direction": "outbound", "status": status, "client_number": number, "did": None,
        "queue": None, "managers": ["101"] if status == "answered" else [], "rang": ["101"],
        "talk_seconds": 35.0 if status == "answered" else 0.0, "call_id": ids[0],
        "client_id": ids[1], "client_name": None})


async def sign_in(page: Any, base: str, username: str) -> None:
    await page.goto(base + "/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")


async def test_a_manager_works_his_list_with_the_dialer(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed(db, tmp_path)
    phone = StandInPhone()
    settings = Settings(data_dir=tmp_path, database_url=db,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (app, base), chromium() as browser, \
            chromium() as other:
        app[CLICK_TO_CALL].place = phone.place  # type: ignore[method-assign]
        page = await browser.new_page()
        await sign_in(page, base, "petrov")
        await page.wait_for_url("**/today")
        await page.goto(base + "/tasks")
        await page.click("#start-dialer")
        await page.wait_for_selector("#dl-start:not([hidden])")
        assert "К звонку сегодня: 2" in await page.inner_text("#dl-start")
        await page.wait_for_function(
            "document.getElementById('live-dot').classList.contains('on')")
        await page.click("#dl-start-button")

        # The overdue callback first; the card, the last contact, the script for the stage.
        await page.wait_for_selector("#dl-work:not([hidden])")
        assert await page.inner_text("#dl-client") == "ООО Ромашка"
        assert await page.is_visible("#dl-overdue")
        assert "Поставка бумаги" in await page.inner_text("#dl-deal")
        assert "«Квалификация»" in await page.inner_text("#dl-deal")
        await page.wait_for_selector("#dl-scenario .sc-steps")
        scenario = await page.inner_text("#dl-scenario")
        assert "Холодный звонок" in scenario and "для этапа «Квалификация»" in scenario
        assert "Приветствие" in scenario and "«добрый день»" in scenario
        assert "Добрый день! Меня зовут …, компания «Телеком-Сервис»." in scenario
        assert "«Дорого»" in scenario
        assert "150" in await page.inner_text("#dl-talk")
        await screenshot(page, "dialer-card")

        await page.click("#dl-call")
        await page.wait_for_function(
            "document.getElementById('dl-call-state').textContent.includes('снимите трубку')")
        assert phone.dialled == ["+79161234567"]
        assert "звонок" in await page.inner_text("#dl-state")

        # He talked; on the hang-up the form opens.
        await hang_up(app, db, "b-1.0", "+79161234567", "answered")
        await page.wait_for_selector("#dl-wrapup:not([hidden])")
        assert "Разговор состоялся." in await page.inner_text("#dl-result")
        await page.check("#dl-outcomes input[type=radio] >> nth=0")
        await page.fill("#dl-note", "Договорились о встрече в понедельник")
        await page.fill("#dl-form input[name=title]", "Встреча у клиента")
        await screenshot(page, "dialer-form")
        await page.click("#dl-form button[type=submit]")

        # The countdown: paused, it waits; resumed, it brings the next client and calls him.
        await page.wait_for_selector("#dl-countdown:not([hidden])")
        assert "Сохранено" in await page.inner_text("#dl-countdown")
        await page.click("#dl-pause")
        await page.wait_for_selector("#dl-resume:not([hidden])")
        held = await page.inner_text("#dl-seconds")
        await page.wait_for_timeout(2500)
        assert await page.inner_text("#dl-seconds") == held
        assert "Пауза" in await page.inner_text("#dl-countdown")
        assert await page.is_hidden("#dl-wrapup"), "the saved form stays closed"
        await screenshot(page, "dialer-countdown-paused")
        await page.click("#dl-resume")
        await page.wait_for_function(
            "document.getElementById('dl-client').textContent === 'ЗАО Луч'", timeout=20_000)
        await page.wait_for_function(
            "document.getElementById('dl-call-state').textContent.includes('снимите трубку')")
        assert phone.dialled == ["+79161234567", LUCH]
        assert await page.inner_text("#dl-calls") == "1"

        # The supervisor sees him on a call.
        boss = await other.new_page()  # a browser of its own: its own sign-in
        await sign_in(boss, base, "sokolova")
        await boss.wait_for_url(lambda url: "/login" not in url)
        await boss.goto(base + "/dialer")
        row = boss.locator("#dl-rows tr", has_text="Иван Петров")
        await row.locator("text=на звонке").wait_for()
        assert "ЗАО Луч" in await row.inner_text()
        await screenshot(boss, "dialer-team")

        # Busy: a retry task, no form, and the list is done for now.
        await hang_up(app, db, "b-2.0", LUCH, "busy")
        await page.wait_for_selector("#dl-countdown:not([hidden])")
        text = await page.inner_text("#dl-countdown")
        assert "Занято." in text and "Повторный звонок в" in text
        assert await page.is_hidden("#dl-wrapup")
        await page.click("#dl-now")
        await page.wait_for_selector("#dl-done:not([hidden])")
        assert re.search(r"ближайший в 12:(29|3\d)", await page.inner_text("#dl-done"))
        assert await page.inner_text("#dl-done-title") == "Пока звонить некому"
        await screenshot(page, "dialer-done")
        await row.locator("text=ждёт звонка").wait_for(timeout=10_000)

        await page.click("#dl-end")
        await page.wait_for_selector("#dl-start:not([hidden])")
    engine = create_engine(db)
    try:
        async with session_factory(engine)() as session:
            titles = dict((await session.execute(select(Task.title, Task.status))).all())
    finally:
        await engine.dispose()
    assert titles["Встреча у клиента"] == "open"
    assert titles["Повторный звонок (попытка 2 из 3): ЗАО Луч"] == "open"
    assert titles["Позвонить: ЗАО Луч"] == "done"
