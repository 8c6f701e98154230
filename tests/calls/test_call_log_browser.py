"""The call log in headless Chromium, at desktop and phone size, walked as a supervisor.

Mария Соколова opens «Звонки», picks a manager of her team and a minimum talk time
with the form, opens a call from the list, comes back and downloads the CSV. No
request of any page may fail (no 404 for a transcript that does not exist yet, nor
for the favicon). Screenshots: tests/artifacts/call-log-*.png.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from telecrm.settings import Settings
from tests.calls.call_log_world import NOW, participants, seed_call_log
from tests.support.browser import (
    ARTIFACTS,
    DESKTOP,
    PASSWORD,
    PHONE,
    chromium,
    screenshot,
    serve_app,
)

pytestmark = pytest.mark.clock(NOW)


def watch_failures(page: Any) -> list[str]:
    """Every failed request and console error of ``page``, as text."""
    failures: list[str] = []
    page.on("response", lambda r: failures.append(f"{r.status} {r.url}")
            if r.status >= 400 else None)
    # a request cut off by the page's own navigation (the header's presence fetch when
    # a link is clicked at once) is the browser's doing, not a failure of ours
    page.on("requestfailed", lambda r: failures.append(f"failed {r.url} {r.failure}")
            if not r.url.endswith("/api/events") and r.failure != "net::ERR_ABORTED"
            else None)
    page.on("console", lambda m: failures.append(f"console {m.text}")
            if m.type == "error" else None)
    return failures


async def shot(page: Any, size: str, name: str) -> None:
    """Both sizes from the desktop walk; the phone walk keeps its size (one picture)."""
    if size == "desktop":
        await screenshot(page, name)
    else:
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / f"{name}-walk-phone.png"), full_page=True)


@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_a_supervisor_filters_opens_a_call_and_exports(tmp_path: Path, size: str
                                                              ) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    floor = await seed_call_log(db, tmp_path / "recordings")
    settings = Settings(data_dir=tmp_path, database_url=db,
                        recordings_source=tmp_path / "recordings")
    start = datetime(2026, 11, 10, 21, tzinfo=UTC)  # 11 November in Moscow
    want = {i for i, t in floor.facts.items() if "102" in participants(t)
            and t["talk"] >= 60 and t["started_at"] >= start}
    assert want
    async with serve_app(settings) as (_, base), chromium() as browser:
        page = await browser.new_page()
        await page.set_viewport_size(DESKTOP if size == "desktop" else PHONE)
        failures = watch_failures(page)
        await page.goto(base + "/login")
        await page.fill("input[name=username]", "sokolova")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/team")

        # -- the log with the form: period, a manager of the team, talk of a minute or more
        if size == "desktop":
            await page.click("nav.nav a[href='/calls']")
        else:
            await page.goto(base + "/calls")
        await page.wait_for_selector("#call-filters")
        await page.fill("input[name=since]", "2026-11-11")
        await page.fill("input[name=until]", "2026-11-20")
        await page.select_option("select[name=manager]", label="Ольга Смирнова (102)")
        await page.fill("input[name=min_duration]", "60")
        await page.click("#call-filters button[type=submit]")
        await page.wait_for_url("**/calls?**min_duration=60**")
        rows = page.locator("table.calls tbody tr")
        assert await rows.count() == len(want)
        links = await page.eval_on_selector_all(
            "table.calls tbody td[data-label='Время'] a", "els => els.map(a => a.pathname)")
        assert {int(link.rsplit("/", 1)[1]) for link in links} == want
        for text in await rows.all_inner_texts():
            assert "Ольга Смирнова" in text
        assert await page.input_value("input[name=min_duration]") == "60"
        assert "Звонки с 11.11.2026 по 20.11.2026" in await page.inner_text("h1")
        await shot(page, size, "call-log")

        # -- a call from the list: who dialled, who talked; no transcript yet, no 404
        await rows.first.locator("td[data-label='Время'] a").click()
        await page.wait_for_url("**/calls/*")
        await page.wait_for_load_state("networkidle")
        attempts = await page.inner_text("table.attempts")
        assert "Ольга Смирнова" in attempts and "Набор номера" in attempts
        assert "Расшифровки пока нет." in await page.inner_text("main")
        await shot(page, size, "call-log-call")
        await page.go_back()
        await page.wait_for_selector("#call-filters")

        # -- the CSV of exactly these calls, for Russian Excel
        async with page.expect_download() as info:
            await page.click("a.csv")
        download = await info.value
        assert download.suggested_filename == "calls-2026-11-11-2026-11-20.csv"
        raw = Path(await download.path()).read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")
        table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
        assert table[0][:3] == ["Дата", "Время", "Направление"]
        assert {int(row[-1].rsplit("/", 1)[1]) for row in table[1:]} == want
        await page.goto(base + "/calls/live")  # the live board, empty without a PBX
        await page.wait_for_load_state("networkidle")
        assert failures == [], failures
