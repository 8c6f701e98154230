"""«Сценарий» in Chromium as the manager reads it (desktop and phone).

Petrov opens his client's card: the panel shows the script of the deal's stage
(«Квалификация»: the greeting, the questions, the answer to «Дорого»). The supervisor
moves the deal to «Коммерческое предложение» on the deals board; petrov's card now
shows that stage's script, and his call task on /tasks opens the same panel.
Screenshots: tests/artifacts/scenario-*.png.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from crm_core.db import create_engine, session_factory
from crm_core.people.models import User
from crm_core.sales.deals import StageSpec, create_deal, create_pipeline
from crm_core.speech.scripts import add_version
from crm_core.timestamps import utcnow
from telecrm.settings import Settings
from tests.speech.test_scenario_web import FIRST, OFFER
from tests.support.browser import PASSWORD, World, chromium, screenshot, seed_world, serve_app

pytestmark = pytest.mark.calendar  # the seeded calls are an hour ago: make test-calendar

STAGES = ["Квалификация:call:1", "Коммерческое предложение:call:3", "Выиграна:won",
          "Проиграна:lost"]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, World]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    world = await seed_world(url, tmp_path / "recordings")
    engine = create_engine(url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            petrov = await session.get(User, world.users["petrov"])
            pipeline = await create_pipeline(session, "B2B новые",
                                             [StageSpec.parse(s) for s in STAGES], by=None)
            stages = {s.name: s for s in await pipeline.awaitable_attrs.stages}
            for text, stage in [(FIRST, "Квалификация"), (OFFER, "Коммерческое предложение")]:
                await add_version(session, name=text.split("\n", 1)[0][6:], text=text,
                                  team_id=None, stage=stages[stage].code,
                                  effective_from=utcnow() - timedelta(days=1), fine_amount=0,
                                  actor="test")
            await create_deal(session, client_id=world.clients["101"], pipeline_id=pipeline.id,
                              title="Облачная АТС", amount="480000", by=petrov)
    finally:
        await engine.dispose()
    settings = Settings(data_dir=tmp_path, database_url=url,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (_, base):
        yield base, world


async def sign_in(page: Any, base: str, username: str) -> None:
    await page.context.clear_cookies()
    await page.goto(base + "/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_load_state()


async def test_the_card_shows_the_script_of_the_deal_stage(served: tuple[str, World]) -> None:
    base, world = served
    client = world.clients["101"]
    async with chromium() as browser:
        page = await browser.new_page()
        await sign_in(page, base, "petrov")
        await page.goto(f"{base}/clients/{client}")
        panel = page.locator("#scenario")
        text = await panel.inner_text()
        assert "Первичный звонок" in text and "для этапа «Квалификация»" in text
        assert "Добрый день! Меня зовут Иван, компания «Телеком-Сервис»." in text
        assert "Какие задачи по связи у вас сейчас самые острые?" in text
        assert "«Дорого»" in text and "Давайте посчитаем, сколько стоит потерянный звонок." in text
        await screenshot(page, "scenario-card-qualification")

        # The supervisor moves the deal on the board.
        await sign_in(page, base, "sokolova")
        await page.goto(base + "/deals")
        deal = page.locator(".sp-col", has_text="Квалификация").locator(
            ".sp-deal", has_text="Облачная АТС")
        await deal.locator("summary", has_text="Перенести").click()
        await deal.locator("select[name=stage_id]").select_option(
            label="Коммерческое предложение")
        async with page.expect_navigation():
            await deal.locator("button[type=submit]").click()
        assert await page.locator(".sp-col", has_text="Коммерческое предложение").locator(
            ".sp-deal", has_text="Облачная АТС").count() == 1

        # Petrov's card reads the other stage's script.
        await sign_in(page, base, "petrov")
        await page.goto(f"{base}/clients/{client}")
        text = await page.locator("#scenario").inner_text()
        assert "Отправка КП" in text and "для этапа «Коммерческое предложение»" in text
        assert "Коммерческое предложение отправлю сегодня до 18:00." in text
        assert "Первичный звонок" not in text and "Дорого" not in text
        await screenshot(page, "scenario-card-offer")

        # The stage's call task on /tasks opens the same panel.
        await page.goto(base + "/tasks")
        task = page.locator("li.sp-task", has_text="Коммерческое предложение: Облачная АТС")
        await task.locator("summary", has_text="Сценарий").click()
        await task.locator(".sc-box .sc-say").wait_for()
        assert "Коммерческое предложение отправлю сегодня до 18:00." in \
            await task.locator(".sc-box").inner_text()
        await screenshot(page, "scenario-task")
