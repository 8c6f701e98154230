"""The clients' pages in a real browser, desktop and phone size.

A manager finds the lead an unknown caller left by its number typed another way, opens it,
names it and adds a contact person; a supervisor merges two cards of one company and gives
clients to another manager by ticking them in the list. Screenshots go to
tests/artifacts/clients-*.png.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from crm_core.calls.services import record_call
from crm_core.clients.cards import create_company
from crm_core.clients.models import Client
from crm_core.db import create_engine, session_factory
from crm_core.tasks.models import Task
from telecrm.settings import Settings
from tests.support.browser import (
    HOOKS,
    PASSWORD,
    PHONE,
    World,
    _call,
    chromium,
    screenshot,
    seed_calls_start,
    seed_world,
    serve_app,
)

pytestmark = pytest.mark.calendar  # the seeded calls are today's


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, str, World]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    world = await seed_world(url, tmp_path / "recordings")
    engine = create_engine(url)
    try:
        sessions = session_factory(engine, writer=True)
        async with sessions() as session, session.begin():
            # an unknown caller, answered by 101: a lead named after the number
            await record_call(session, _call("t-9.0", "inbound", "answered", "+79265550099",
                                             "101", seed_calls_start() + timedelta(minutes=20),
                                             30.0), hooks=HOOKS)
            # the same company typed in twice, by two managers of the team
            await create_company(session, name="Ромашка ООО", phones=["+7 495 111-00-07"],
                                 details={"inn": "7707083893"},
                                 owner_id=world.users["smirnova"], by=None, actor="test")
    finally:
        await engine.dispose()
    settings = Settings(data_dir=tmp_path, database_url=url,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (_, base):
        yield base, url, world


async def _read(url: str, stmt: object) -> list[object]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            return list((await session.execute(stmt)).all())  # type: ignore[call-overload]
    finally:
        await engine.dispose()


async def _sign_in(page: object, base: str, username: str) -> None:
    await page.goto(base + "/login")  # type: ignore[attr-defined]
    await page.fill("input[name=username]", username)  # type: ignore[attr-defined]
    await page.fill("input[name=password]", PASSWORD)  # type: ignore[attr-defined]
    async with page.expect_navigation():  # type: ignore[attr-defined]
        await page.click("button[type=submit]")  # type: ignore[attr-defined]


async def test_a_manager_finds_the_lead_names_it_and_adds_a_person(
        served: tuple[str, str, World]) -> None:
    base, url, _ = served
    async with chromium() as browser:
        page = await browser.new_page()
        await _sign_in(page, base, "petrov")
        await page.click("nav.nav >> text=Клиенты")
        await page.wait_for_url("**/clients")
        assert await page.locator("#clients td.cl-name a").all_inner_texts() == [
            "+7 926 555-00-99", "ООО Ромашка"]
        # the number as the caller said it, not as it is stored
        await page.fill("input[name=q]", "8 (926) 555 00 99")
        async with page.expect_navigation():
            await page.click("#search-form button[type=submit]")
        assert await page.locator("#clients td.cl-name a").all_inner_texts() == [
            "+7 926 555-00-99"]
        assert await page.inner_text("#found-count") == "1"
        await screenshot(page, "clients-search")

        await page.click("#clients td.cl-name a")
        await page.wait_for_url("**/clients/*")
        assert "Заполните карточку" in await page.inner_text("#cl-lead")
        await screenshot(page, "clients-lead-card")
        await page.click("#edit-client")
        await page.wait_for_url("**/edit")
        await page.fill("#company-form input[name=name]", "ООО «Лютик»")
        await page.fill("#company-form input[name=inn]", "7707083894")  # a typo
        async with page.expect_navigation():
            await page.click("#save-company")
        assert "ИНН «7707083894» неверный" in await page.inner_text("#cl-error")
        assert await page.input_value("#company-form input[name=name]") == "ООО «Лютик»"
        await page.fill("#company-form input[name=inn]", "7707083893")
        await page.fill("#company-form input[name=industry]", "Цветы оптом")
        await screenshot(page, "clients-edit")
        async with page.expect_navigation():
            await page.click("#save-company")
        assert "Карточка сохранена." in await page.inner_text("#cl-done")
        assert await page.inner_text("h1") == "ООО «Лютик»"
        facts = await page.inner_text("#company-facts")
        assert "7707083893" in facts and "Цветы оптом" in facts
        assert await page.locator("#cl-lead").count() == 0

        # a contact person, with a second phone field added on the page
        await page.click("#edit-client")
        await page.wait_for_url("**/edit")
        form = page.locator("#new-contact")
        await form.locator("input[name=name]").fill("Пётр Сидоров")
        await form.locator("input[name=position]").fill("Директор")
        await form.locator("input[name=phone]").first.fill("8 916 000-11-22")
        await form.locator("button[data-more=phone]").click()
        await form.locator("input[name=phone]").nth(1).fill("+7 903 777 66 55")
        await form.locator("input[name=email]").first.fill("petr@lutik.ru")
        async with page.expect_navigation():
            await page.click("#add-contact")
        assert "Контактное лицо добавлено." in await page.inner_text("#cl-done")
        await screenshot(page, "clients-contacts")
        await page.click("text=← к карточке")
        person = await page.inner_text("#contacts")
        assert "Пётр Сидоров" in person and "Директор" in person and "petr@lutik.ru" in person
        assert "+7 903 777-66-55" in person
        await page.set_viewport_size(PHONE)
        assert await page.locator("#edit-client").is_visible()
        await page.set_viewport_size({"width": 1366, "height": 768})
        await screenshot(page, "clients-card")

        # found now by the person's name; the task to fill the card in is done
        await page.goto(base + "/clients?q=сидоров")
        assert await page.locator("#clients td.cl-name a").all_inner_texts() == ["ООО «Лютик»"]
    [(status, note)] = await _read(url, select(Task.status, Task.note).where(
        Task.title.like("Заполните карточку%")))
    assert (status, note) == ("done", "Карточка заполнена")


async def test_a_supervisor_merges_two_cards_and_gives_clients_away(
        served: tuple[str, str, World]) -> None:
    base, url, world = served
    romashka = world.clients["101"]
    async with chromium() as browser:
        page = await browser.new_page()
        await _sign_in(page, base, "sokolova")
        await page.goto(f"{base}/clients/{romashka}")
        await page.click("#merge-client")
        await page.wait_for_url("**/merge")
        await page.fill("#merge-search input[name=q]", "ромашка")
        async with page.expect_navigation():
            await page.click("#merge-search button[type=submit]")
        found = page.locator("#merge-found li", has_text="Ромашка ООО")
        assert await found.count() == 1
        assert await page.locator("#merge-found li", has_text="ООО Ромашка").count() == 0
        await found.locator("text=Выбрать").click()
        await page.wait_for_url("**/merge?with=*")
        await screenshot(page, "clients-merge-confirm")
        async with page.expect_navigation():
            await page.click("#merge-submit")
        assert "Клиенты объединены" in await page.inner_text("#cl-done")
        assert await page.inner_text("h1") == "ООО Ромашка"
        phones = await page.locator(".phones").first.inner_text()
        assert "+7 495 111-00-07" in phones and "+7 916 123-45-67" in phones
        assert "7707083893" in await page.inner_text("#company-facts")  # taken from the twin
        await screenshot(page, "clients-merged")

        # the list: tick two clients, give them to Ольга
        await page.click("nav.nav >> text=Клиенты")
        await page.wait_for_url("**/clients")
        names = await page.locator("#clients td.cl-name a").all_inner_texts()
        assert names == ["+7 926 555-00-99", "ИП Сидоров", "ООО Ромашка"]  # not the twin
        for name in ("+7 926 555-00-99", "ООО Ромашка"):
            await page.locator("#clients tbody tr", has_text=name).locator(
                "input[name=client_id]").check()
        assert await page.inner_text("#picked-count") == "Отмечено: 2"
        await page.select_option("#reassign-form select[name=owner_id]",
                                 label="Ольга Смирнова (102)")
        await page.fill("#reassign-form input[name=reason]", "отпуск Ивана")
        await screenshot(page, "clients-reassign")
        async with page.expect_navigation():
            await page.click("#reassign-submit")
        assert "Передано клиентов: 2." in await page.inner_text("#cl-done")
        owners = await page.locator("#clients td[data-label='Ответственный']").all_inner_texts()
        assert owners == ["Ольга Смирнова"] * 3
        await page.check("#pick-all")
        assert await page.inner_text("#picked-count") == "Отмечено: 3"
        await page.set_viewport_size(PHONE)
        assert await page.locator("#reassign-submit").is_visible()
    rows = await _read(url, select(Client.name, Client.archived_at, Client.merged_into_id)
                       .where(Client.name == "Ромашка ООО"))
    [(_, archived_at, merged_into)] = rows
    assert archived_at is not None and merged_into == romashka
