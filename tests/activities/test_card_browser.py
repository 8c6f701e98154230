"""The client card in a real browser (Chromium, desktop and phone), as the manager lives in it.

Petrov completes his deal's task on /tasks with its «Итог», opens the client's card and
sees the open deal of 1 250 000 ₽ and the task's result on the timeline; writes a note,
logs a meeting, plans the next contact (a past time is refused), filters the timeline.
A call of his with the client ends while the card is open: the call is stored and its
«call ended» event goes through the app's own event bus (the listener's sink), and the
outcome form opens by itself. The supervisor edits the outcome list and sees the calls
still without one. Screenshots: tests/artifacts/card-*.png.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from crm_core.activities.models import CallResult, ClientActivity
from crm_core.calls.services import record_call
from crm_core.calls.snapshot import CallData, LegData
from crm_core.db import create_engine, session_factory
from crm_core.people.models import User
from crm_core.sales.deals import StageSpec, create_deal, create_pipeline
from crm_core.tasks.models import Task, TaskKind
from crm_core.tasks.services import complete_task, open_tasks
from pbx_bridge.tracker import Fact, FactKind
from telecrm.live_events import LiveEventSink
from telecrm.settings import Settings
from telecrm.web.keys import BUS, SESSIONS
from tests.support.browser import (
    HOOKS,
    PASSWORD,
    World,
    chromium,
    screenshot,
    seed_world,
    serve_app,
)

pytestmark = pytest.mark.calendar  # the seeded calls are an hour ago: make test-calendar

STAGES = ["Квалификация:call:1", "Коммерческое предложение:email:3", "Выиграна:won",
          "Проиграна:lost"]
NBSP = "\u00a0"


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[web.Application, str, str, World]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    world = await seed_world(url, tmp_path / "recordings")
    engine = create_engine(url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            petrov = await session.get(User, world.users["petrov"])
            pipeline = await create_pipeline(session, "B2B новые",
                                             [StageSpec.parse(s) for s in STAGES], by=None)
            await create_deal(session, client_id=world.clients["101"], pipeline_id=pipeline.id,
                              title="Поставка 2027", amount="1250000", by=petrov)
            # The seeded missed call was already called back: its task, due any time from an
            # hour ago to next Monday depending on the clock, must not be the next contact.
            for task in await open_tasks(session, client_id=world.clients["101"],
                                         kind=TaskKind.CALLBACK.value):
                await complete_task(session, task, note="Перезвонил", user_id=petrov.id)
    finally:
        await engine.dispose()
    settings = Settings(data_dir=tmp_path, database_url=url,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (app, base):
        yield app, base, url, world


async def _read(url: str, stmt: Any) -> list[Any]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            return list((await session.execute(stmt)).all())
    finally:
        await engine.dispose()


async def _add_old_notes(url: str, client_id: int, user_id: int, count: int) -> None:
    """``count`` notes on the client, written weeks before anything else on his card."""
    engine = create_engine(url)
    weeks_ago = datetime.now(UTC) - timedelta(weeks=8)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            session.add_all(ClientActivity(
                client_id=client_id, kind="note", text=f"Старая заметка №{n + 1}",
                user_id=user_id, happened_at=weeks_ago + timedelta(hours=n),
                created_at=weeks_ago) for n in range(count))
    finally:
        await engine.dispose()


async def settled(page: Any) -> None:
    """Wait for the timeline's refresh (a filter, «Показать ещё») to be on the page."""
    await page.locator("#history:not([aria-busy])").wait_for(state="attached")


async def sign_in(page: Any, base: str, username: str) -> None:
    await page.context.clear_cookies()
    await page.goto(base + "/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_load_state()


def _local(delta: timedelta) -> str:
    """A ``datetime-local`` value in the workday timezone (Moscow, UTC+3)."""
    return (datetime.now(UTC) + timedelta(hours=3) + delta).strftime("%Y-%m-%dT%H:%M")


async def text_of(page: Any, selector: str) -> str:
    return (await page.inner_text(selector)).replace(NBSP, " ")


async def _a_call_of_petrov_ends(app: web.Application, url: str) -> int:
    """A real call between 101 and the client is stored, then its ``call_ended`` fact goes
    through the same sink the AMI listener publishes with (``LiveEventSink``)."""
    start = datetime.now(UTC) - timedelta(minutes=2)
    end = start + timedelta(seconds=95)
    legs = (LegData("live-1-c", "PJSIP/carrier-0002", "client", None, start, start, end, 93.0),
            LegData("live-1-m", "PJSIP/101-0002", "manager", "101", start, start, end, 93.0))
    data = CallData(linkedid="live-1", direction="outbound", status="answered",
                    client_number="+79161234567", did=None, started_at=start,
                    answered_at=start + timedelta(seconds=2), ended_at=end, ring_seconds=2.0,
                    talk_seconds=93.0, transferred=False, managers=("101",), recordings=(),
                    legs=legs, rang=("101",))
    engine = create_engine(url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            call = await record_call(session, data, hooks=HOOKS)
            call_id = call.id
    finally:
        await engine.dispose()
    sink = LiveEventSink(app[BUS], app[SESSIONS])
    await sink([Fact(FactKind.ENDED, end, data, None)])
    assert sink.published == 1
    return call_id


async def test_a_manager_lives_in_the_client_card(
        served: tuple[web.Application, str, str, World]) -> None:
    app, base, url, world = served
    client = world.clients["101"]
    async with chromium() as browser:
        page = await browser.new_page()
        await sign_in(page, base, "petrov")

        # -- the deal's task is done on /tasks with its result -------------------------------
        await page.goto(base + "/tasks")
        task = page.locator("li.sp-task", has_text="Квалификация: Поставка 2027")
        await task.locator("summary", has_text="Выполнить").click()
        form = task.locator("form.complete-form")
        await form.locator("input[name=note]").fill("Клиент готов к демо")
        await form.locator("select[name=kind]").select_option("meeting")
        await form.locator("input[name=due_at]").fill(_local(-timedelta(hours=1)))
        async with page.expect_navigation():
            await form.locator("button[type=submit]").click()
        assert "Это время уже прошло" in await page.inner_text("#sp-error")
        task = page.locator("li.sp-task", has_text="Квалификация: Поставка 2027")
        await task.locator("summary", has_text="Выполнить").click()
        form = task.locator("form.complete-form")
        await form.locator("input[name=note]").fill("Клиент готов к демо")
        await form.locator("select[name=kind]").select_option("meeting")
        await form.locator("input[name=title]").fill("Демо у клиента")
        async with page.expect_navigation():
            await form.locator("button[type=submit]").click()
        assert "следующая запланирована" in await page.inner_text("#sp-done")

        # -- the card: the open deal, the next contact, the task's result on the timeline --
        await page.goto(f"{base}/clients/{client}")
        await page.wait_for_function(
            "document.getElementById('live-dot').classList.contains('on')")
        deals = await text_of(page, "#client-deals")
        assert "Поставка 2027" in deals and "1 250 000 ₽" in deals
        assert "B2B новые · этап «Квалификация» · Иван Петров" in deals
        assert "Демо у клиента" in await page.inner_text("#next-contact")
        done = page.locator("#history li[data-kind=task]", has_text="Квалификация")
        assert "Итог: Клиент готов к демо" in await done.inner_text()
        opened = (await text_of(page, "#history li[data-kind=deal]")).split()
        assert " ".join(opened).startswith("Сделка «Поставка 2027» открыта: B2B новые, этап "
                                           "«Квалификация», 1 250 000 ₽") or \
            "открыта: B2B новые, этап «Квалификация», 1 250 000 ₽" in " ".join(opened)
        assert await page.locator("#history li[data-kind=call]").count() == 2

        # -- a note and a meeting -------------------------------------------------------------
        await page.click("button[data-open-form=note]")
        await page.fill("#note-form textarea[name=text]", "Секретарь — Анна, звонить до 11")
        await page.click("#note-form button[type=submit]")
        first = page.locator("#history li.tl-item").first
        await first.locator("text=Секретарь — Анна").wait_for()
        assert await first.get_attribute("data-kind") == "note"
        assert await page.locator("#note-form").is_hidden()

        await page.click("button[data-open-form=meeting]")
        await page.fill("#meeting-form input[name=people]", "Директор, главбух")
        await page.fill("#meeting-form textarea[name=text]", "Договорились о пилоте на 3 месяца")
        await page.click("#meeting-form button[type=submit]")
        await page.locator("#history li[data-kind=meeting]",
                           has_text="Договорились о пилоте").wait_for()
        meeting = await text_of(page, "#history li[data-kind=meeting]")
        assert "участники: Директор, главбух" in meeting and "Иван Петров" in meeting
        [(people,)] = await _read(url, select(ClientActivity.people)
                                  .where(ClientActivity.kind == "meeting"))
        assert people == "Директор, главбух"

        # -- plan the next contact: not in the past ------------------------------------------
        plan = page.locator("#plan-form")
        if not await plan.is_visible():
            await page.click("#plan-next summary")
        await plan.locator("select[name=kind]").select_option("call")
        await plan.locator("input[name=due_at]").fill(_local(-timedelta(days=1)))
        await plan.locator("input[name=title]").fill("Обсудить договор")
        await plan.locator("button[type=submit]").click()
        error = plan.locator(".form-error")
        await error.wait_for()
        assert await error.inner_text() == "Это время уже прошло: выберите срок в будущем."
        await plan.locator("input[name=due_at]").fill(_local(timedelta(hours=2)))
        await plan.locator("button[type=submit]").click()
        await page.locator("#next-contact .next-title", has_text="Обсудить договор").wait_for()
        [(assignee,)] = await _read(url, select(Task.assignee_id).where(
            Task.title == "Обсудить договор"))
        assert assignee == world.users["petrov"], "a manager plans for himself"

        # -- the filters ------------------------------------------------------------------------
        await page.click(".tl-filters button[data-filter=contacts]")
        await settled(page)
        visible = page.locator("#history li.tl-item:visible")
        assert [await li.get_attribute("data-kind") for li in await visible.all()] == ["meeting"]
        await screenshot(page, "card-filter-contacts")
        await page.click(".tl-filters button[data-filter=notes]")
        await settled(page)
        assert await visible.count() == 1
        await page.click(".tl-filters button[data-filter=all]")
        await settled(page)
        assert await visible.count() == 7  # 2 calls, 2 tasks done, the deal, the note, the meeting
        await screenshot(page, "card-manager")

        # -- a call of his ends while the card is open: the outcome form opens by itself -------
        call_id = await _a_call_of_petrov_ends(app, url)
        dialog = page.locator("dialog#call-outcome")
        await dialog.wait_for(state="visible", timeout=10_000)
        assert "Исходящий · 1:33" in await dialog.locator(".outcome-call").inner_text()
        await dialog.locator("label.choice", has_text="Договорились о встрече").click()
        await dialog.locator("textarea[name=note]").fill("Встреча в среду в 11:00")
        await screenshot(page, "card-outcome-form")
        await dialog.locator("button[type=submit]").click()
        await dialog.wait_for(state="hidden")
        # the call reached the client: the missed call's callback closed, the lists follow
        await page.locator("#sales-client .sales-tasks",
                           has_not_text="Пропущенный звонок").wait_for()
        call = page.locator(f"#history li[data-kind=call][data-id='{call_id}']")
        await call.locator(".tl-outcome-name").wait_for()
        assert "Итог: Договорились о встрече — Встреча в среду в 11:00" in await call.inner_text()
        [(note,)] = await _read(url, select(CallResult.note).where(CallResult.call_id == call_id))
        assert note == "Встреча в среду в 11:00"
        # an older call without an outcome: the button opens the same form
        older = page.locator("#history li[data-kind=call]", has_text="без итога").first
        await older.locator("button", has_text="Указать итог").click()
        await dialog.wait_for(state="visible")
        await dialog.locator("button", has_text="Позже").click()
        await dialog.wait_for(state="hidden")

        # -- a client of long standing: the newest 50 entries, then «Показать ещё» ------------
        await _add_old_notes(url, client, world.users["petrov"], 60)
        everything = (await (await page.request.get(
            f"{base}/api/clients/{client}/timeline")).json())["entries"]
        notes = sum(1 for e in everything if e["kind"] == "note")
        assert len(everything) > 60 and notes == 61
        await page.goto(f"{base}/clients/{client}")
        items = page.locator("#history li.tl-item:visible")
        more = page.locator("#history button.tl-more")
        assert await items.count() == 50 and await more.inner_text() == "Показать ещё"
        assert await page.locator("#history li.tl-item").first.get_attribute(
            "data-id") == str(everything[0]["id"])
        await more.click()
        await settled(page)
        assert await items.count() == len(everything) and await more.count() == 0
        ids = await page.locator("#history li.tl-item").evaluate_all(
            "items => items.map(li => li.dataset.kind + ':' + li.dataset.id)")
        assert ids == [f"{e['kind']}:{e['id']}" for e in everything]  # newest first, each once
        # a filter asks the server for its own newest entries, and pages them the same way
        await page.click(".tl-filters button[data-filter=notes]")
        await settled(page)
        assert await items.count() == 50 and await more.count() == 1
        assert await page.locator("#history li.tl-item:not([data-kind=note])").count() == 0
        await screenshot(page, "card-long-timeline-notes")
        await more.click()
        await settled(page)
        assert await items.count() == 61 and await more.count() == 0
        await page.click(".tl-filters button[data-filter=calls]")
        await settled(page)
        assert await page.locator("#history li.tl-item").count() == sum(
            1 for e in everything if e["kind"] == "call")

        await page.set_viewport_size({"width": 390, "height": 844})
        await page.goto(f"{base}/clients/{client}")
        await page.click("button[data-open-form=email]")
        await screenshot(page, "card-manager-email-form")

        # -- the supervisor: the outcome list and the calls still without one ------------------
        await sign_in(page, base, "sokolova")
        await page.goto(base + "/sales/settings")
        await page.fill("#outcome-add input[name=name]", "Нецелевой звонок")
        async with page.expect_navigation():
            await page.click("#outcome-add button[type=submit]")
        assert "Список итогов звонков сохранён" in await page.inner_text("#sp-done")
        refuse = page.locator("#outcomes li", has=page.locator("input[value='Отказ']"))
        await refuse.locator("input[name=name]").fill("Отказ клиента")
        async with page.expect_navigation():
            await refuse.locator("button", has_text="Переименовать").click()
        missed = page.locator("#outcomes li", has=page.locator("input[value='Не дозвонился']"))
        async with page.expect_navigation():
            await missed.locator("button", has_text="В архив").click()
        names = await page.locator("#outcomes li input[name=name]").evaluate_all(
            "inputs => inputs.map(i => i.value)")
        assert names[-1] == "Не дозвонился" and "Отказ клиента" in names
        assert "Нецелевой звонок" in names
        assert "в архиве" in await page.locator(
            "#outcomes li", has=page.locator("input[value='Не дозвонился']")).inner_text()
        await screenshot(page, "card-supervisor-outcome-list")

        await page.click("nav.nav >> text=Без итога")
        await page.wait_for_url("**/outcomes")
        row = page.locator("#outcome-counts tr[data-manager]", has_text="Ольга Смирнова")
        assert await row.locator("td.missing").inner_text() == "1"
        petrov_row = page.locator("#outcome-counts tr[data-manager]", has_text="Иван Петров")
        assert await petrov_row.locator("td.missing").inner_text() == "1"  # the seeded call
        assert "ИП Сидоров" in await page.inner_text("#missing-calls")
        await screenshot(page, "card-supervisor-outcomes")
