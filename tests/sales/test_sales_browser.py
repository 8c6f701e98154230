"""The reports pages in a real browser, and the report API's JSON, CSV and role checks.

The data is the hand-computed November 2026 of tests/sales/test_sales_reports.py. Screenshots
go to tests/artifacts/sales-*.png.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from crm_core.db import create_engine, session_factory
from crm_core.people.models import User
from telecrm.settings import Settings
from tests.sales.test_sales_reports import _seed
from tests.support.browser import (
    PASSWORD,
    chromium,
    screenshot,
    seeded_password_hash,
    serve_app,
    signed_in,
)
from tests.support.db_fixtures import migrated

PERIOD = "from=2026-11-01&to=2026-11-30"


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await migrated(url)
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session, session.begin():
            await _seed(session)
            hashed = seeded_password_hash()
            await session.execute(update(User).values(password_hash=hashed))
    finally:
        await engine.dispose()
    async with serve_app(Settings(data_dir=tmp_path, database_url=url)) as (_, base):
        yield base


async def test_report_api_json_csv_and_roles(served: str) -> None:
    sessions = {name: await signed_in(served, name) for name in ("ivan", "boss", "mkt")}
    try:
        async with sessions["ivan"].get(
                f"{served}/api/reports/contact-frequency?{PERIOD}") as response:
            body: dict[str, Any] = await response.json()
        assert response.status == 200 and [r["name"] for r in body["rows"]] == ["Иван"]
        assert body["rows"][0]["abandoned"] == 1 and body["to"] == "2026-11-30"
        async with sessions["boss"].get(
                f"{served}/api/reports/summary?{PERIOD}&format=csv") as response:
            text = await response.text()
        assert response.status == 200 and response.content_type == "text/csv"
        lines = text.splitlines()
        assert lines[0].startswith("status,clients,clients_prev,clients_trend")
        # the team only (not kuz's c5): c4 is new now and was potential on 11-01
        assert lines[2] == "new,1,0,up,500000.00,0.00,up,30000.00,0.00,up"
        async with sessions["mkt"].get(f"{served}/api/reports/summary") as response:
            assert response.status == 403
        async with sessions["boss"].get(f"{served}/api/reports/nope") as response:
            assert response.status == 404
        async with sessions["boss"].get(
                f"{served}/api/reports/summary?from=2026-11-30&to=2026-11-01") as response:
            body = await response.json()
            assert response.status == 400 and body["code"] == "request.range_reversed"
            assert body["error"] == "Начало периода (from) не может быть позже конца (to)."
    finally:
        for http in sessions.values():
            await http.close()


async def test_summary_and_contact_frequency_pages(served: str) -> None:
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(served + "/login")
        await page.fill("input[name=username]", "boss")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/team")
        await page.click("nav.nav >> text=Отчёты")
        await page.wait_for_url("**/reports/summary")
        await page.goto(f"{served}/reports/summary?{PERIOD}")
        assert await page.inner_text("h1") == "Сводный отчёт (финансовая воронка)"
        # the team's November: potential 150 000 against 600 000 (red); new paid 30 000 (green)
        potential = page.locator("#report-table tbody tr", has_text="Потенциальные")
        money = potential.locator("td[data-key=potential]")
        assert (await money.inner_text()).replace("\u00a0", " ") == "150 000"
        assert "trend-down" in (await money.get_attribute("class") or "")
        new_paid = page.locator("#report-table tbody tr", has_text="Новые").locator(
            "td[data-key=paid]")
        assert "trend-up" in (await new_paid.get_attribute("class") or "")
        colour = await new_paid.evaluate("e => getComputedStyle(e).color")
        assert colour == "rgb(31, 157, 85)"  # --green
        # November is compared with the whole of October, and the page says so
        compared = await page.locator("p", has_text="Сравнение с прошлым периодом").inner_text()
        assert "01.10.2026 — 31.10.2026" in compared
        await screenshot(page, "sales-summary")
        await page.goto(f"{served}/reports/summary?from=2026-11-10&to=2026-11-19")
        compared = await page.locator("p", has_text="Сравнение с прошлым периодом").inner_text()
        assert "31.10.2026 — 09.11.2026" in compared  # ten days: the ten days before
        await page.goto(f"{served}/reports/summary?{PERIOD}")

        await page.click(".report-tabs >> text=Частота контактов с клиентами")
        await page.wait_for_url("**/reports/contact-frequency?*")
        names = await page.locator("#report-table tbody td[data-key=name]").all_inner_texts()
        assert sorted(names) == ["Иван", "Ольга"]
        await page.click("#report-table th[data-key=talk_minutes]")  # most minutes first
        names = await page.locator("#report-table tbody td[data-key=name]").all_inner_texts()
        assert names == ["Ольга", "Иван"]
        await page.click("#report-table th[data-key=talk_minutes]")
        names = await page.locator("#report-table tbody td[data-key=name]").all_inner_texts()
        assert names == ["Иван", "Ольга"]
        assert await page.inner_text("#report-table tfoot td[data-label='Заброшено']") == "2"
        # fractions with a decimal comma, as Russian writes them
        assert await page.inner_text(
            "#report-table tfoot td[data-label='% заброшенных']") == "50,0"
        ivan = page.locator("#report-table tbody tr", has_text="Иван")
        assert await ivan.locator("td[data-key=calls_per_client]").inner_text() == "0,33"
        await screenshot(page, "sales-contact-frequency")

        # the client card's sales block: rule-set status, ABC, money from the API
        await page.goto(f"{served}/clients/1")
        await page.wait_for_function(
            "document.getElementById('sales-money').textContent.includes('Оплачено')")
        block = (await page.inner_text("#sales-client")).replace("\u00a0", " ")
        assert "Постоянный" in block and "Группа ABC\nA" in block.replace("\t", "\n")
        assert "Оплачено всего: 150 000 ₽" in block
        assert "№INV-1 (оплачен частично, 30 000 ₽)" in block
        assert "7 дн." in block
        await screenshot(page, "sales-client-card")


async def test_overdue_clients_are_taken_away_in_bulk(served: str) -> None:
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(served + "/login")
        await page.fill("input[name=username]", "boss")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/team")
        await page.goto(f"{served}/reports/overdue-clients?{PERIOD}")
        row = page.locator("#report-table tbody tr", has_text="Иван").filter(
            has_text="Потенциальные")
        assert await row.locator("td[data-key=over_max]").inner_text() == "1"
        await screenshot(page, "sales-overdue")
        # the figure opens exactly those clients; the supervisor ticks them and gives them away
        await row.locator("td[data-key=over_max] a").click()
        await page.wait_for_url("**/clients?*over_max=1*")
        assert await page.inner_text("#found-count") == "1"
        [listed] = await page.locator("#clients tbody tr td.cl-name a").all_inner_texts()
        assert listed == "Бета"  # c2: 213 days potential with Иван, over 90
        await page.check("#clients tbody tr >> input[name=client_id]")
        await page.select_option("#reassign-form select[name=owner_id]", label="Ольга (102)")
        async with page.expect_navigation():
            await page.click("#reassign-submit")
        assert "Передано клиентов: 1." in await page.inner_text("#cl-done")
        assert await page.inner_text("#found-count") == "0"  # with Ольга since today
        await page.goto(f"{served}/reports/overdue-clients?{PERIOD}")
        row = page.locator("#report-table tbody tr", has_text="Иван").filter(
            has_text="Потенциальные")
        assert await row.locator("td[data-key=over_max]").inner_text() == "0"
        olga = page.locator("#report-table tbody tr", has_text="Ольга").filter(
            has_text="Потенциальные")
        # with Ольга since today: a fresh stay, not over the maximum
        assert await olga.locator("td[data-key=clients]").inner_text() == "1"
        assert await olga.locator("td[data-key=over_max]").inner_text() == "0"
