"""The supervisor's talk-time settings page in a real browser.

Sokolova opens the settings from /talktime, changes her team's rules from today,
is refused a change for a past day, adds a team holiday, marks Petrov sick for
today, and sees him excluded on the board. Screenshots go to
tests/artifacts/talktime-settings-*.png.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from telecrm.settings import Settings
from tests.support.browser import PASSWORD, chromium, screenshot, seed_world, serve_app

TZ = ZoneInfo("Europe/Moscow")


async def test_settings_page(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed_world(db, tmp_path / "recordings")
    settings = Settings(data_dir=tmp_path, database_url=db,
                        recordings_source=tmp_path / "recordings")
    today = datetime.now(TZ).date()
    async with serve_app(settings) as (_, base), chromium() as browser:
        page = await browser.new_page()
        await page.goto(base + "/login")
        await page.fill("input[name=username]", "sokolova")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/team")
        await page.goto(base + "/talktime")
        await page.click("#tt-settings-link")
        await page.wait_for_url("**/talktime/settings")
        assert "150 мин в день" in await page.inner_text(".tt-rule")
        await screenshot(page, "talktime-settings-start")

        # the rules from today: 120 minutes, Monday to Saturday, 10:00-19:00, a fine
        form = page.locator("#rule-form")
        await form.locator("input[name=target_minutes]").fill("120")
        await form.locator("input[name=min_call_seconds]").fill("10")
        await form.locator("input[name=fine_amount]").fill("500")
        await form.locator("input[name=day_start]").fill("10:00")
        await form.locator("input[name=day_end]").fill("19:00")
        await form.locator("input[name=working_weekdays][value='6']").check()
        await form.locator("button[type=submit]").click()
        await page.wait_for_selector("#tt-done")
        assert await page.inner_text("#tt-done") == "Правила сохранены."
        rule = await page.inner_text(".tt-rule")
        assert "120 мин в день" in rule and "10:00–19:00" in rule and "Сб" in rule
        assert "10 с не считаются" in rule and "500" in rule
        await screenshot(page, "talktime-settings-saved")

        # a change for a past day is refused with a sentence (the date field's own
        # minimum is lifted, as a hand-made request would)
        await form.locator("input[name=effective_from]").evaluate("e => e.removeAttribute('min')")
        await form.locator("input[name=effective_from]").fill(
            (today - timedelta(days=1)).isoformat())
        await form.locator("button[type=submit]").click()
        await page.wait_for_selector("#tt-error")
        assert "за прошедшие дни не меняются" in await page.inner_text("#tt-error")
        await screenshot(page, "talktime-settings-refused")

        # a team holiday tomorrow, and Petrov sick today
        await page.goto(base + "/talktime/settings")
        holiday = page.locator("#holiday-form")
        await holiday.locator("input[name=date]").fill((today + timedelta(days=1)).isoformat())
        await holiday.locator("input[name=name]").fill("Выездной день отдела")
        await holiday.locator("button[type=submit]").click()
        await page.wait_for_selector("#holiday-list")
        assert "Выездной день отдела" in await page.inner_text("#holiday-list")
        absence = page.locator("#absence-form")
        await absence.locator("select[name=user_id]").select_option(label="Иван Петров (101)")
        await absence.locator("select[name=kind]").select_option("sick")
        await absence.locator("input[name=from]").fill(today.isoformat())
        await absence.locator("input[name=to]").fill((today + timedelta(days=2)).isoformat())
        await absence.locator("input[name=note]").fill("ОРВИ, справка будет")
        await absence.locator("button[type=submit]").click()
        await page.wait_for_selector("#absence-list")
        listed = await page.inner_text("#absence-list")
        assert "Иван Петров" in listed and "больничный" in listed
        assert f"{today:%d.%m.%Y}" in listed and today.isoformat() not in listed
        await screenshot(page, "talktime-settings-calendar")

        await page.goto(base + "/talktime")
        row = page.locator("#tt-rows tr[data-ext='101']")
        assert "больничный, не учитывается" in await row.inner_text()
        other = await page.inner_text("#tt-rows tr[data-ext='102']")
        assert "120" in other  # the new threshold, shown in minutes
        await screenshot(page, "talktime-settings-board")
