"""The «Свой менеджер» form in Chromium: sokolova, head of «Отдел продаж», switches
sticky routing on for her team with 20 seconds, sees the other team read-only, keeps it
off on a support number and on for a number of regular clients whatever the team says,
then gives that one back to the team. Screenshot: tests/artifacts/routing-form-*.png."""

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
        for number, label in (("8 (495) 111-00-05", "Всегда в очередь"),
                              ("+7 495 111-00-07", "Сначала своему менеджеру")):
            await page.fill("#did-add input[name=did]", number)
            await page.select_option("#did-add select[name=mode]", label=label)
            await page.click("#did-add button")
            await page.wait_for_url("**/routing#dids")
        support = page.locator("#dids li", has_text="+7 495 111-00-05")
        regulars = page.locator("#dids li", has_text="+7 495 111-00-07")
        assert "всегда в очередь" in await support.inner_text()
        assert "сначала своему менеджеру" in await regulars.inner_text()
        assert await regulars.locator("select").input_value() == "on"
        await screenshot(page, "routing-form")
        await regulars.locator("select").select_option(label="Как у отдела")
        await regulars.locator("button").click()
        await page.wait_for_url("**/routing#dids")
        assert "как у отдела" in await regulars.inner_text()
        assert "всегда в очередь" in await support.inner_text()
        await screenshot(page, "routing-form-team")
    rows = await Floor(base, db, world).rows(
        select(RoutingRule.team_id, RoutingRule.did, RoutingRule.enabled,
               RoutingRule.ring_seconds, RoutingRule.updated_by).order_by(RoutingRule.id))
    assert [(r[1], r[2], r[3], r[4]) for r in rows] == [
        (None, True, 20, "sokolova"), ("+74951110005", False, 15, "sokolova"),
        ("+74951110007", None, 15, "sokolova")]
