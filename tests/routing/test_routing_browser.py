"""The «Свой менеджер» form in Chromium: sokolova, head of «Отдел продаж», switches
sticky routing on for her team with 20 seconds, sees the other team read-only, and keeps
it off on a support number. Screenshot: tests/artifacts/routing-form-*.png."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from crm_core.routing.models import RoutingRule
from telecrm.settings import Settings
from tests.presence.test_presence_browser import sign_in
from tests.support.browser import chromium, screenshot, seed_world, serve_app
from tests.support.floor import Floor

pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")


async def test_the_head_of_sales_switches_it_on_for_her_team(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    world = await seed_world(db, tmp_path / "recordings")
    settings = Settings(data_dir=tmp_path, database_url=db,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (_, base), chromium() as browser:
        page = await sign_in(browser, base, "sokolova")
        await page.click("nav a[href='/routing']")
        await page.wait_for_url("**/routing")
        own = page.locator("#teams tr", has_text="Отдел продаж")
        other = page.locator("#teams tr", has_text="Второй отдел")
        assert " ".join((await other.inner_text()).split()) == "Второй отдел выключено"
        await own.locator("input[name=enabled]").check()
        await own.locator("input[name=ring_seconds]").fill("20")
        await own.locator("button").click()
        await page.wait_for_url("**/routing")
        assert await own.locator("input[name=enabled]").is_checked()
        assert await own.locator("input[name=ring_seconds]").input_value() == "20"
        await page.fill("#did-off input[name=did]", "8 (495) 111-00-05")
        await page.click("#did-off button")
        await page.wait_for_url("**/routing#dids")
        assert "+7 495 111-00-05" in await page.inner_text("#dids li")
        assert "выключено" in await page.inner_text("#dids li")
        await screenshot(page, "routing-form")
    rows = await Floor(base, db, world).rows(
        select(RoutingRule.team_id, RoutingRule.did, RoutingRule.enabled,
               RoutingRule.ring_seconds, RoutingRule.updated_by).order_by(RoutingRule.id))
    assert [(r[1], r[2], r[3], r[4]) for r in rows] == [
        (None, True, 20, "sokolova"), ("+74951110005", False, 15, "sokolova")]
