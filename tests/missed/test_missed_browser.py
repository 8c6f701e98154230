"""Missed-call notifications in Chromium: the manager allows them with the page's button
(here granted as the browser would after his «Разрешить»), a real missed call written
through the call writer reaches his background tab over the live stream as a system
Notification; after the team's limit his supervisor gets «Не перезвонили».

``window.Notification`` is wrapped only to observe what the page shows (the real one is
still called). Screenshots: tests/artifacts/missed-notice-*.png.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from telecrm.app import create_app
from telecrm.missed import alerts
from telecrm.settings import Settings
from tests.missed.world import A, missed, write_calls
from tests.support.browser import PASSWORD, chromium, free_port, screenshot, seed_world

pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")

OBSERVE = """
window.__notices = [];
const Real = window.Notification;
if (Real) {
  class Observed extends Real {
    constructor(title, options) {
      super(title, options);
      window.__notices.push({title: title, body: (options || {}).body,
                             visibility: document.visibilityState});
    }
  }
  Object.defineProperty(Observed, "permission", {get: () => Real.permission});
  Observed.requestPermission = (...args) => Real.requestPermission(...args);
  window.Notification = Observed;
}
"""


@contextlib.asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[str]:
    """The real app with the missed-call notices running (no AMI listener needed)."""
    port = free_port()
    app = create_app(settings.with_overrides(http_host="127.0.0.1", http_port=port),
                     with_listener=False, missed_alerts=True)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def sign_in(page: Any, base: str, who: str) -> None:
    await page.goto(base + "/login")
    await page.fill("input[name=username]", who)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(lambda url: "/login" not in url)
    await page.wait_for_function("document.getElementById('live-dot').classList.contains('on')")


async def test_missed_call_notifies_owner_then_supervisor(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _clock_of_the_test: Any) -> None:
    monkeypatch.setattr(alerts, "TICK_SECONDS", 0.3)
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed_world(db, tmp_path / "recordings")
    settings = Settings(data_dir=tmp_path, database_url=db,
                        recordings_source=tmp_path / "recordings")
    async with serve(settings) as base, chromium() as browser:
        await browser.add_init_script(OBSERVE)
        page = await browser.new_page()
        await sign_in(page, base, "petrov")
        button = page.locator("#notify-on")
        assert await page.evaluate("Notification.permission") == "default"
        assert await button.is_visible() and await button.inner_text() == "Включить уведомления"
        await screenshot(page, "missed-notice-ask")

        await browser.grant_permissions(["notifications"], origin=base)
        await page.reload()
        await page.wait_for_function(
            "document.getElementById('live-dot').classList.contains('on')")
        assert await page.evaluate("Notification.permission") == "granted"
        assert not await button.is_visible()

        other = await browser.new_page()  # he works in another tab: ours goes to the back
        await other.goto(base + "/clients")
        await other.bring_to_front()

        await write_calls(db, [missed("live-1", A, datetime.now(UTC) - timedelta(seconds=25))])
        await page.wait_for_function("window.__notices.length > 0", timeout=10_000)
        notices = await page.evaluate("window.__notices")
        assert [n["title"] for n in notices] == ["Пропущенный звонок: ООО Ромашка"]
        assert "+7 916 123-45-67" in notices[0]["body"]
        assert "Перезвоните клиенту" in notices[0]["body"]
        assert await other.evaluate("window.__notices.length") == 1  # every open tab is told
        await page.bring_to_front()
        await screenshot(page, "missed-notice-manager")

        # -- nobody called back within 30 minutes: the head of sales is told ------------
        await other.close()
        await browser.clear_cookies()
        await sign_in(page, base, "sokolova")
        assert await page.evaluate("window.__notices.length") == 0
        _clock_of_the_test.shift(timedelta(minutes=31))
        await page.wait_for_function("window.__notices.length > 0", timeout=10_000)
        await page.wait_for_timeout(1000)
        notices = await page.evaluate("window.__notices")
        # the new call only: the floor's own missed call (45 minutes old when the app
        # started) was escalated at start, before she signed in, and is never told again
        assert [n["title"] for n in notices] == ["Не перезвонили: ООО Ромашка"]
        assert "За 30 мин никто не перезвонил клиенту" in notices[0]["body"]
        assert "Ответственный: Иван Петров" in notices[-1]["body"]
        await screenshot(page, "missed-notice-supervisor")

        # -- her report: both misses of today, never called back -------------------------
        await page.goto(base + "/reports/missed")
        row = page.locator("#missed-managers tbody tr", has_text="Иван Петров")
        assert "Иван Петров (101)" in await row.inner_text()
        assert await row.locator("[data-key=missed]").inner_text() == "2"
        assert await row.locator("[data-key=never_called_back]").inner_text() == "2 (100,0 %)"
        assert await page.locator("#missed-limits input[name=minutes]").input_value() == "30"
        await screenshot(page, "missed-report")
