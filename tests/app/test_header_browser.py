"""The header's late parts do not move the page under the pointer (Chromium).

The presence switch appears once its state is fetched, the «Включить уведомления»
prompt once the script knows the browser's answer. When either pushed the page down
after it was drawn, a click aimed at a form (the routing page's «включено» box, as the
head of sales enabled routing for her team) landed beside it on a busy machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from telecrm.settings import Settings
from tests.presence.test_presence_browser import sign_in
from tests.support.browser import chromium, seed_world, serve_app

pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")

# What moved up or down after it was drawn, so far (Chromium's Layout Instability API):
# the vertical moves of content already on screen. A player's controls settling their
# width in a table row move sideways only.
VERTICAL_SHIFTS = """() => new Promise(resolve => {
  const moved = entries => entries.flatMap(e => e.sources)
    .filter(s => s.previousRect.y !== s.currentRect.y)
    .map(s => [s.previousRect.y, s.currentRect.y]);
  new PerformanceObserver(list => resolve(moved(list.getEntries())))
    .observe({type: 'layout-shift', buffered: true});
  setTimeout(() => resolve([]), 500);
})"""


async def test_the_page_stays_put_while_the_header_finishes(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed_world(db, tmp_path / "recordings")
    settings = Settings(data_dir=tmp_path, database_url=db,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (_, base):
        for who, path in (("sokolova", "/routing"), ("petrov", "/today")):
            async with chromium() as browser:
                page = await sign_in(browser, base, who)
                await page.goto(base + path)
                await page.locator("#presence-select option").first.wait_for(state="attached")
                assert await page.evaluate("Notification.permission") == "default"
                assert await page.locator("#notify-on").is_visible()  # the prompt is there
                assert await page.locator("#presence-switch").is_visible()
                assert await page.evaluate(VERTICAL_SHIFTS) == [], (who, path)
