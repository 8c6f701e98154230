"""The presence switch in the header and the supervisor's live view, in Chromium.

Petrov (101) picks «Обед» in the header of his «Сегодня»; his supervisor's «Присутствие»
page, open in another browser, shows it without a reload (a live event), and back «На
месте» likewise. No Asterisk behind the app: the switch says the queue was not reached.
Screenshots go to tests/artifacts/presence-*.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from telecrm.settings import Settings
from tests.support.browser import PASSWORD, chromium, screenshot, seed_world, serve_app

pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")


async def sign_in(browser: Any, base: str, who: str) -> Any:
    page = await browser.new_page()
    await page.goto(base + "/login")
    await page.fill("input[name=username]", who)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(lambda url: "/login" not in url)
    await page.wait_for_function(
        "document.getElementById('live-dot').classList.contains('on')")
    return page


async def petrovs_state(board: Any) -> str:
    return " ".join((await board.inner_text(
        "#presence-table tr[data-ext='101'] .presence-state")).split())


async def test_switch_in_the_header_and_the_supervisors_live_view(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed_world(db, tmp_path / "recordings")
    settings = Settings(data_dir=tmp_path, database_url=db,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (_, base), chromium() as boss_browser, \
            chromium() as petrov_browser:
        board = await sign_in(boss_browser, base, "sokolova")
        await board.goto(base + "/presence")
        await board.wait_for_function(
            "document.getElementById('live-dot').classList.contains('on')")
        assert await petrovs_state(board) == "На месте"

        page = await sign_in(petrov_browser, base, "petrov")
        switch = page.locator("#presence-select")
        await switch.wait_for(state="visible")
        assert await switch.evaluate("s => s.options[s.selectedIndex].text") == "На месте"
        options = await switch.evaluate("s => Array.from(s.options, o => o.text)")
        assert options == ["На месте", "Перерыв", "Обед", "Встреча", "Обучение",
                           "Нет на месте"]
        await switch.select_option(label="Обед")
        await page.wait_for_function(
            "document.getElementById('presence-note').textContent.length > 0")
        assert await page.inner_text("#presence-note") == "АТС недоступна, очередь не изменена"
        assert "away" in (await switch.get_attribute("class") or "")
        await screenshot(page, "presence-switch-lunch")

        # the supervisor's page follows without a reload
        await board.wait_for_function(
            "document.querySelector(\"#presence-table tr[data-ext='101'] .presence-state\")"
            ".innerText.includes('Обед')", timeout=5000)
        assert "Обед" in await board.inner_text("#presence-table thead")
        await screenshot(board, "presence-board-lunch")

        # the switch is on every page of his: another page shows the same state
        await page.goto(base + "/clients")
        await switch.wait_for(state="visible")
        assert await switch.evaluate("s => s.options[s.selectedIndex].text") == "Обед"
        await switch.select_option(label="На месте")
        await board.wait_for_function(
            "document.querySelector(\"#presence-table tr[data-ext='101'] .presence-state\")"
            ".innerText.includes('На месте')", timeout=5000)
        assert "here" in (await switch.get_attribute("class") or "")
        assert await petrovs_state(board) == "На месте"
