"""«Заявки» and «Маркетинговые отчёты» in Chromium, on the day the reports test seeds.

The marketer reads every lead of the day with its source, keyword, landing page, client
and how soon it was called back (dates and numbers in Russian), archives none, and
opens the reports by keyword, landing page, lost leads and first/last touch from the
call-tracking page. A manager sees only his own leads and no archive button.
Screenshots: tests/artifacts/leads-page-*.png, ct-marketing-*.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crm_core.db import create_engine, session_factory
from telecrm.settings import Settings
from tests.calltracking.test_leads_reports import seed
from tests.support.browser import PASSWORD, chromium, screenshot, seed_world, serve_app

pytestmark = pytest.mark.clock("2026-11-18T16:00:00+03:00")

DAY = "from=2026-11-18&to=2026-11-18"


async def sign_in(page: Any, base: str, username: str) -> None:
    await page.context.clear_cookies()
    await page.goto(base + "/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_load_state()


async def cells(page: Any, selector: str) -> list[str]:
    return [" ".join(text.split()) for text in await page.locator(selector).all_inner_texts()]


async def test_leads_page_and_marketing_reports(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed_world(db, tmp_path / "recordings")
    engine = create_engine(db)
    try:
        async with session_factory(engine, writer=True)() as session:
            await seed(session, people=False)
    finally:
        await engine.dispose()
    settings = Settings(data_dir=tmp_path, database_url=db,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (_, base), chromium() as browser:
        page = await browser.new_page()
        await sign_in(page, base, "marketer")
        await page.goto(f"{base}/leads?{DAY}")
        assert await page.inner_text("h1") == "Заявки, 18.11.2026 — 18.11.2026"
        rows = page.locator("#leads tbody tr")
        assert await rows.count() == 3
        first = await cells(page, "#leads tbody tr:first-child td")
        assert first[:2] == ["18.11.2026 13:00", "Обратный звонок"]
        assert "Сайт: yandex / cpc" in first[4] and "окна" in first[5]
        assert first[8] == "не перезвонили"
        form = await cells(page, "#leads tbody tr[data-kind=form] td")
        assert "Сайт: google / cpc" in " ".join(form) and "20 мин" in form
        assert "перезвонили" in form and "ждёт звонка" in first  # called back: not waiting
        assert await page.locator("#leads button", has_text="В архив").count() == 3
        await screenshot(page, "leads-page")

        await page.goto(f"{base}/calltracking?{DAY}")
        await page.click("#ct-marketing-link")
        await page.wait_for_selector("#ct-keywords")
        assert await cells(page, "#ct-keywords tr[data-key='двери'] td") == [
            "двери", "2", "1", "1", "0", "2", "100,0 %"]
        assert await cells(page, "#ct-landings tr[data-key='https://shop.example/windows'] td") \
            == ["https://shop.example/windows", "1", "1", "0", "1", "2", "200,0 %"]
        lost = await cells(page, "#ct-lost tr.total td")
        # the day's three lost leads plus the seeded floor's missed call of 15:15
        assert (lost[0], lost[4], lost[5]) == ("Итого", "4 66,7 %", "14 мин")
        assert await cells(page, "#ct-touch-sources tr[data-key='Билборд'] td") == [
            "Билборд", "0", "2"]
        assert await page.locator("#ct-touches tbody tr").count() == 2
        await screenshot(page, "ct-marketing")

        await sign_in(page, base, "smirnova")
        await page.goto(f"{base}/leads?{DAY}")
        assert await page.locator("#leads button", has_text="В архив").count() == 0
        assert await page.locator("#leads tbody tr[data-lead]").count() < 3
        response = await page.goto(f"{base}/calltracking/marketing?{DAY}")
        assert response is not None and response.status == 403
