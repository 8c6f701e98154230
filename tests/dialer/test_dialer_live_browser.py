"""Live prompts on «Обзвон» in Chromium: while the manager talks to the client on the card,
the «Сценарий» panel ticks the stages he has done and shows the next stage's prompt and the
answer to the client's objection, as the client card does; another client's call, another
manager's call, and a call of the same client on a colleague's phone change nothing; when
the call ends the marks stay and the panel says so; the next client's call starts clean.

No PBX: the click-to-call is stood in for, and the live prompts are published on the app's
bus by the live-prompt service's own publishing (``LivePrompts``) from a script fed words,
as recognition would feed it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from crm_core.clients.models import Client
from crm_core.clock import utcnow
from crm_core.db import create_engine, session_factory
from crm_core.people.models import User
from crm_core.sales.deals import create_deal
from crm_core.sales.models import Pipeline
from speech.live import LiveScript
from speech.script import parse_script_text
from telecrm.live_events import extension_topic
from telecrm.live_prompts import LivePrompts, _LiveCall
from telecrm.settings import Settings
from telecrm.web.keys import BUS, CLICK_TO_CALL
from tests.dialer.test_dialer_browser import LUCH, SCRIPT, StandInPhone, hang_up, seed, sign_in
from tests.support.browser import chromium, screenshot, serve_app

pytestmark = [pytest.mark.calendar, pytest.mark.clock("2026-11-20T12:00:00+03:00")]

ROMASHKA = "+79161234567"
STEP = "#scenario li.sc-step[data-stage='{}']"


def words(text: str, start: float = 0.0) -> list[dict[str, Any]]:
    return [{"word": w, "start": start + i * 0.3, "end": start + i * 0.3 + 0.25, "conf": 0.9}
            for i, w in enumerate(text.split())]


class Prompts:
    """Live calls as the service holds them, published on the app's bus as it does."""

    def __init__(self, app: Any, tmp_path: Path) -> None:
        self.service = LivePrompts(Settings(data_dir=tmp_path, live_listen="127.0.0.1:0"),
                                   app[BUS], None)  # type: ignore[arg-type]
        self.calls: dict[str, _LiveCall] = {}

    def call(self, linkedid: str, extension: str, client_id: int,
             client_name: str) -> _LiveCall:
        call = self.calls[linkedid] = _LiveCall(
            key=linkedid, pbx="main", extension=extension, managers=[extension],
            direction="outbound", queue=None, call_id=None, client_id=client_id,
            client_name=client_name, script=LiveScript(parse_script_text(SCRIPT.read_text())),
            started={"manager": utcnow()})  # the manager's audio began now
        return call

    async def say(self, linkedid: str, manager: str = "", client: str = "") -> None:
        call = self.calls[linkedid]
        assert call.script is not None
        call.script.update(words(manager), words(client))
        await self.service._publish(call, force=True)

    async def end(self, linkedid: str) -> None:
        call = self.calls[linkedid]
        call.ended = True
        await self.service._publish(call, force=True)


async def give_luch_a_deal(db: str) -> None:
    """The second client is at the same stage: the same script, to see it start clean."""
    engine = create_engine(db)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            petrov = await session.scalar(select(User).where(User.username == "petrov"))
            luch = await session.scalar(select(Client).where(Client.name == "ЗАО Луч"))
            pipeline = await session.scalar(select(Pipeline).where(Pipeline.name == "B2B новые"))
            assert petrov and luch and pipeline
            await create_deal(session, client_id=luch.id, pipeline_id=pipeline.id,
                              title="Связь для офиса", by=petrov)
    finally:
        await engine.dispose()


async def client_of(page: Any) -> int:
    href = await page.get_attribute("#dl-client", "href")
    return int(href.rsplit("/", 1)[1])


async def classes(page: Any) -> dict[str, str]:
    return await page.eval_on_selector_all(
        "#scenario li.sc-step", "items => Object.fromEntries(items.map(i => "
        "[i.dataset.stage, i.className]))")


@contextlib.asynccontextmanager
async def petrov_signed_in(tmp_path: Path, *, luch_deal: bool = False
                           ) -> AsyncIterator[tuple[Any, Any, str, Prompts, str]]:
    """The seeded floor served, petrov signed in; yields app, page, database, prompts, base."""
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed(db, tmp_path)
    if luch_deal:
        await give_luch_a_deal(db)
    settings = Settings(data_dir=tmp_path, database_url=db,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (app, base), chromium() as browser:
        prompts = Prompts(app, tmp_path)
        try:
            page = await browser.new_page()
            await sign_in(page, base, "petrov")
            await page.wait_for_url("**/today")
            yield app, page, db, prompts, base
        finally:
            await prompts.service.close()


async def open_live(page: Any, url: str) -> None:
    """Open a page and wait until its live-event stream is connected."""
    await page.goto(url)
    await page.wait_for_function(
        "document.getElementById('live-dot').classList.contains('on')")


@pytest.fixture
async def dialer(tmp_path: Path) -> AsyncIterator[tuple[Any, Any, str, Prompts]]:
    async with petrov_signed_in(tmp_path, luch_deal=True) as (app, page, db, prompts, base):
        app[CLICK_TO_CALL].place = StandInPhone().place  # type: ignore[method-assign]
        await open_live(page, base + "/dialer")
        await page.click("#dl-start-button")
        await page.wait_for_selector("#dl-work:not([hidden])")
        yield app, page, db, prompts


async def test_the_dialer_follows_the_managers_call_and_nothing_else(
        dialer: tuple[Any, Any, str, Prompts]) -> None:
    app, page, db, prompts = dialer
    assert await page.inner_text("#dl-client") == "ООО Ромашка"
    romashka = await client_of(page)
    await page.wait_for_selector("#dl-scenario .sc-steps")
    assert await page.is_hidden("#live-prompt")
    await page.click("#dl-call")
    await page.wait_for_function(
        "document.getElementById('dl-call-state').textContent.includes('снимите трубку')")

    # He greets the client: the stage turns done, the next stage's prompt shows.
    prompts.call("d-1.0", "101", romashka, "ООО Ромашка")
    await prompts.say("d-1.0", manager="алло добрый день меня зовут иван компания телеком")
    await page.locator(STEP.format("greeting") + ".sc-done").wait_for(timeout=5000)
    await page.locator("#live-prompt .lp-next[data-stage='needs']").wait_for()
    box = await page.inner_text("#live-prompt")
    assert "Идёт разговор: пройдено этапов 1 из 4" in box
    assert "Дальше: Выявление потребностей" in box
    assert "Какие задачи по связи у вас сейчас самые острые?" in box
    greeting = page.locator(STEP.format("greeting"))
    assert await greeting.get_attribute("data-said-at")
    assert await greeting.get_attribute("data-recognised-at")
    assert "sc-next" in (await classes(page))["needs"]

    # The client objects: the answer shows.
    await prompts.say("d-1.0", manager="какие задачи у вас сейчас",
                      client="ну это всё дорого для нас")
    await page.locator(STEP.format("needs") + ".sc-done").wait_for(timeout=5000)
    await page.locator("#live-prompt .lp-objection").wait_for()
    objection = await page.inner_text("#live-prompt .lp-objection")
    assert "Возражение «Дорого»" in objection
    assert "сколько стоит вам один потерянный звонок" in objection
    await screenshot(page, "dialer-live-prompts")

    # Nothing of anybody else's: another client on his phone, a colleague's call with this
    # very client.
    before = await page.inner_html("#scenario")
    await page.evaluate("""() => { window.__seen = [];
        document.addEventListener('telecrm:live',
                                  (e) => window.__seen.push(e.detail.linkedid)); }""")
    luch = await select_client(db, "ЗАО Луч")
    prompts.call("d-9.0", "101", luch, "ЗАО Луч")
    prompts.call("d-7.0", "102", romashka, "ООО Ромашка")
    await prompts.say("d-7.0", manager="добрый день меня зовут анна компания телеком "
                      "мы предлагаем давайте договоримся", client="у нас уже есть поставщик")
    await prompts.say("d-9.0", manager="добрый день меня зовут иван компания телеком "
                      "мы предлагаем давайте договоримся")
    # A call that rang both phones and the colleague took: it reaches his stream, not his page.
    stray = dict(prompts.service.event(prompts.calls["d-7.0"]), linkedid="d-8.0",
                 rang=["101", "102"])
    await app[BUS].publish(extension_topic("101"), stray)
    await page.wait_for_function("window.__seen.includes('d-9.0') && "
                                 "window.__seen.includes('d-8.0')")
    await page.wait_for_timeout(300)
    assert "d-7.0" not in await page.evaluate("window.__seen"), "a colleague's call leaked"
    assert await page.inner_html("#scenario") == before

    # The call ends: the marks stay, the panel says so.
    await prompts.end("d-1.0")
    await page.locator("#live-prompt .lp-ended").wait_for()
    assert await page.inner_text("#live-prompt") == "Разговор закончился."
    marks = await classes(page)
    assert "sc-done" in marks["greeting"] and "sc-done" in marks["needs"]
    assert "sc-done" not in marks["presentation"]
    await hang_up(app, db, "d-1.0", ROMASHKA, "answered")
    await page.wait_for_selector("#dl-wrapup:not([hidden])")
    await prompts.say("d-1.0", manager="мы предлагаем")  # late: the call is over
    await page.wait_for_timeout(300)
    assert await classes(page) == marks
    assert await page.inner_text("#live-prompt") == "Разговор закончился."
    await page.evaluate("window.scrollTo(0, 0)")  # the form scrolled into view: the header on top
    await screenshot(page, "dialer-live-ended")

    # The next client: his call starts with a clean script, then follows his own prompts.
    await page.check("#dl-outcomes input[type=radio] >> nth=0")
    await page.click("#dl-form button[type=submit]")
    await page.wait_for_selector("#dl-countdown:not([hidden])")
    await page.click("#dl-now")
    await page.wait_for_function(
        "document.getElementById('dl-client').textContent === 'ЗАО Луч'", timeout=20_000)
    await page.wait_for_function(
        "document.getElementById('dl-call-state').textContent.includes('снимите трубку')")
    await page.wait_for_selector("#dl-scenario .sc-steps")
    assert await page.is_hidden("#live-prompt")
    assert not any("sc-done" in c or "sc-next" in c for c in (await classes(page)).values())
    # The call's own events name it: from then on only that call's prompts count (another
    # call of the same client on his phone, say her call-back on the other line, does not).
    await app[BUS].publish(extension_topic("101"), {
        "kind": "answered", "linkedid": "d-2.0", "extension": "101", "direction": "outbound",
        "status": "in_progress", "client_number": LUCH, "did": None, "queue": None,
        "managers": ["101"], "rang": ["101"], "call_id": None, "client_id": luch,
        "client_name": "ЗАО Луч"})
    await page.wait_for_function(
        "document.getElementById('live-prompt').dataset.call === 'd-2.0'")
    prompts.call("d-3.0", "101", luch, "ЗАО Луч")
    await prompts.say("d-3.0", manager="добрый день меня зовут иван компания телеком")
    prompts.call("d-2.0", "101", luch, "ЗАО Луч")
    await prompts.say("d-2.0", manager="какие задачи у вас сейчас")
    await page.locator(STEP.format("needs") + ".sc-done").wait_for(timeout=5000)
    assert "sc-done" not in (await classes(page))["greeting"], "the other call leaked"
    assert "пройдено этапов 1 из 4" in await page.inner_text("#live-prompt")


async def select_client(db: str, name: str) -> int:
    engine = create_engine(db)
    try:
        async with session_factory(engine)() as session:
            found = await session.scalar(select(Client.id).where(Client.name == name))
            assert found is not None
            return found
    finally:
        await engine.dispose()


async def test_the_task_list_opens_the_called_clients_script_with_the_live_marks(
        tmp_path: Path) -> None:
    async with petrov_signed_in(tmp_path) as (_, page, db, prompts, base):
        await open_live(page, base + "/tasks")
        romashka, luch = (await select_client(db, "ООО Ромашка"),
                          await select_client(db, "ЗАО Луч"))
        panel = page.locator(f"details.sp-scenario:has(.sc-live[data-client='{romashka}'])")
        other = page.locator(f"details.sp-scenario:has(.sc-live[data-client='{luch}'])")
        assert await panel.count() >= 1 and await other.count() == 1
        assert not await panel.first.evaluate("d => d.open")

        # He calls Ромашка (from his phone): her task's script opens, marked as he talks.
        prompts.call("t-1.0", "101", romashka, "ООО Ромашка")
        await prompts.say("t-1.0", manager="добрый день меня зовут иван компания телеком")
        step = panel.first.locator("li.sc-step[data-stage='greeting'].sc-done")
        await step.wait_for(timeout=10_000)
        assert "пройдено этапов 1 из 4" in await panel.first.locator(".sc-live").inner_text()
        assert not await other.evaluate("d => d.open"), "another client's task stays shut"
        if await panel.count() > 1:  # her other task shows the marks too, but stays shut
            assert not await panel.nth(1).evaluate("d => d.open")
        assert await other.locator(".sc-live").is_hidden()
        await prompts.end("t-1.0")
        await panel.first.locator(".lp-ended").wait_for()
        assert await step.count() == 1, "the marks stay"
        await page.evaluate("window.scrollTo(0, 0)")
        await screenshot(page, "tasks-live-prompts")


async def test_the_client_card_still_follows_its_clients_call(tmp_path: Path) -> None:
    """The card (issue 19.1) with the shared module: marks, prompt, the end, another client."""
    async with petrov_signed_in(tmp_path) as (_, page, db, prompts, base):
        romashka, luch = (await select_client(db, "ООО Ромашка"),
                          await select_client(db, "ЗАО Луч"))
        await open_live(page, f"{base}/clients/{romashka}")
        prompts.call("c-9.0", "101", luch, "ЗАО Луч")
        await prompts.say("c-9.0", manager="добрый день меня зовут иван компания телеком")
        prompts.call("c-1.0", "101", romashka, "ООО Ромашка")
        await prompts.say("c-1.0", manager="какие задачи у вас сейчас")
        await page.locator(STEP.format("needs") + ".sc-done").wait_for(timeout=5000)
        assert "sc-done" not in (await classes(page))["greeting"], "Луч's call leaked"
        await page.locator("#live-prompt .lp-next[data-stage='greeting']").wait_for()
        await prompts.end("c-1.0")
        await page.locator("#live-prompt .lp-ended").wait_for()
        assert "sc-done" in (await classes(page))["needs"]
