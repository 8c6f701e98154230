"""The supervisor's talk-time board in a real browser while a sandbox call is going on.

Sokolova (supervisor of 101 and 102) watches /talktime; a client calls 101 on the
sandbox Asterisk. The board shows 101 on the call, then his minutes growing while
he talks, then the finished call in his count, without a reload (SSE + polling).
Screenshots go to tests/artifacts/talktime-*.png.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from telecrm.settings import Settings
from telecrm.web.keys import LISTENER
from tests.support.browser import PASSWORD, chromium, screenshot, seed_world, serve_app

pytestmark = pytest.mark.asterisk

ROW = "#tt-rows tr[data-ext='101']"


def _minutes(text: str) -> float:
    """A board figure as the page writes it in Russian («1,1», «1 234,5»)."""
    return float("".join(text.split()).replace(",", "."))


async def test_board_updates_live_during_a_sandbox_call(sandbox, tmp_path: Path) -> None:
    pbx = sandbox.pbx
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed_world(db, sandbox.monitor_dir)
    settings = Settings(data_dir=tmp_path, database_url=db, ami_host=pbx.ami_host,
                        ami_port=pbx.ami_port, ami_user=pbx.ami_user, ami_secret=pbx.ami_secret,
                        recordings_source=sandbox.monitor_dir)
    async with serve_app(settings, with_listener=True) as (app, base), \
            sandbox.phones() as phones, chromium() as browser:
        await asyncio.wait_for(app[LISTENER].session.connected.wait(), 15)
        page = await browser.new_page()
        await page.goto(base + "/login")
        await page.fill("input[name=username]", "sokolova")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/team")
        await page.goto(base + "/talktime")
        calls_before = int(await page.inner_text(f"{ROW} .tt-calls"))
        minutes_before = _minutes(await page.inner_text(f"{ROW} .tt-min"))
        assert await page.inner_text(f"{ROW} .tt-now") == "—"

        await phones.set_behaviour("101", mode="answer", answer_after=1)
        await phones.client_calls("79161234567", "74951110002", talk=14)
        await page.wait_for_function(
            f"document.querySelector(\"{ROW} .tt-now\").textContent.includes('☎')",
            timeout=20_000)
        assert "Ромашка" in await page.inner_text(f"{ROW} .tt-now")
        # talk grows while the call lasts (0.1 min = 6 s of talk)
        await page.wait_for_function(
            f"parseFloat(document.querySelector(\"{ROW} .tt-min\").textContent"
            f".replace(/\\s/g, '').replace(',', '.')) >= "
            f"{minutes_before + 0.1}", timeout=20_000)
        await screenshot(page, "talktime-board-live")

        await phones.wait_idle(timeout=30)
        await page.wait_for_function(
            f"document.querySelector(\"{ROW} .tt-now\").textContent === '—' && "
            f"parseInt(document.querySelector(\"{ROW} .tt-calls\").textContent) === "
            f"{calls_before + 1}", timeout=20_000)
        minutes_after = _minutes(await page.inner_text(f"{ROW} .tt-min"))
        assert minutes_before + 0.15 <= minutes_after <= minutes_before + 0.3
        await screenshot(page, "talktime-board-after")

        # the manager's own bar on Today: his minutes once, in whole minutes
        manager = await browser.new_page()
        await manager.context.clear_cookies()
        await manager.goto(base + "/login")
        await manager.fill("input[name=username]", "petrov")
        await manager.fill("input[name=password]", PASSWORD)
        await manager.click("button[type=submit]")
        await manager.wait_for_url("**/today")
        bar = " ".join((await manager.inner_text("#tt-today .tt-line")).split())
        # on a working day: minutes talked and left (adding up to the target); on a
        # weekend the day is not judged and the bar says so
        assert re.fullmatch(r"\d+ мин из 150 · (осталось \d+ мин|норма выполнена|"
                            r"сегодня норма не учитывается \(выходной\))", bar), bar
        await screenshot(manager, "talktime-today")
