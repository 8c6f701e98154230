"""The page snippet in headless Chromium, without a phone call: what a site owner checks.

- the company's number stays until the visitor does something (no flicker, no lease);
- every written form of the number and the ``tel:`` links get the pool number, also
  in content the page adds later (a pop-up);
- a returning visitor (same browser, the page reloaded) gets his number back;
- a browser that says it is headless (a bot) keeps the company's number.
Screenshot: tests/artifacts/calltracking-snippet-{desktop,phone}.png.
"""

from __future__ import annotations

import re
from pathlib import Path

from crm_core.calltracking.services import SiteOptions, add_pool_numbers, save_site
from crm_core.db import create_engine, session_factory
from telecrm.settings import Settings
from tests.calltracking.test_calltracking_e2e import browser
from tests.support.browser import chromium, screenshot, seed_world, serve_app, serve_page

POOL = ["+74951110061", "+74951110062"]
PAGE = """<!doctype html>
<html lang="ru"><head><meta charset="utf-8"><title>Двери</title>
<script src="{crm}/ct.js?site={host}" async></script>
<style>body{{font:18px system-ui;margin:2rem}}</style></head><body>
<h1>Входные двери</h1>
<p>Телефон: <a href="tel:84951110060" id="link">+7 (495) 111-00-60</a></p>
<p id="plain">Звоните 8 495 111 00 60 или 8(495)111-00-60.</p>
<div id="popup"></div>
<script>
  // a pop-up shown a while after the page opened, with the company's number in it
  setTimeout(function () {{
    document.getElementById("popup").innerHTML =
      '<p id="late">Перезвоним! Или звоните: <a href="tel:+74951110060">+7 495 111-00-60</a></p>';
  }}, 2500);
</script>
</body></html>
"""


def national(text: str) -> str:
    return re.sub(r"\D", "", text)[1:]


async def test_snippet_swaps_every_form_keeps_the_number_and_skips_bots(tmp_path: Path
                                                                          ) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed_world(db, tmp_path / "recordings")
    settings = Settings(data_dir=tmp_path, database_url=db,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (_, crm), serve_page(PAGE, crm) as (base, host):
        engine = create_engine(db)
        try:
            async with session_factory(engine)() as session, session.begin():
                await save_site(session, host, SiteOptions(
                    default_numbers=["+74951110060"], origins=[base]))
                await add_pool_numbers(session, host, POOL)
        finally:
            await engine.dispose()
        async with browser() as chrome:
            page = await chrome.new_page()
            await page.goto(base + "/?utm_source=vk&utm_campaign=doors")
            await page.wait_for_timeout(700)  # the visit is reported; no activity yet
            assert await page.get_attribute("#link", "href") == "tel:84951110060"
            assert national(await page.inner_text("#link")) == "4951110060"
            await page.mouse.move(120, 140)
            await page.mouse.move(220, 240)
            await page.wait_for_function(
                "document.getElementById('link').getAttribute('href') !== 'tel:84951110060'",
                timeout=10_000)
            number = (await page.get_attribute("#link", "href") or "").removeprefix("tel:")
            assert number in POOL
            nd = number[2:]
            assert national(await page.inner_text("#link")) == nd
            plain = await page.inner_text("#plain")
            assert plain.startswith("Звоните 8 495 ") and "8(495)" in plain
            assert "1110060" not in re.sub(r"\D", "", plain)  # both forms swapped
            await page.wait_for_selector("#late", timeout=10_000)
            await page.wait_for_function(
                f"document.querySelector('#late a').getAttribute('href') === 'tel:{number}'",
                timeout=5_000)
            assert national(await page.inner_text("#late a")) == nd
            await screenshot(page, "calltracking-snippet")

            # the same visitor comes back (his browser keeps the visit): same number
            await page.reload()
            await page.mouse.move(50, 60)
            await page.mouse.move(150, 160)
            await page.wait_for_function(
                f"document.getElementById('link').getAttribute('href') === 'tel:{number}'",
                timeout=10_000)

        # a browser that says it is headless is a bot: it moves, and still no pool number
        async with chromium() as headless:
            bot = await headless.new_page()
            await bot.goto(base + "/")
            await bot.mouse.move(100, 100)
            await bot.mouse.move(200, 220)
            await bot.wait_for_timeout(1500)
            assert await bot.get_attribute("#link", "href") == "tel:84951110060"
            assert national(await bot.inner_text("#link")) == "4951110060"
