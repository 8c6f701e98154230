"""The marketer's ad systems page in headless Chromium: he uploads Yandex Direct's report
file with the form (system chosen in the list), sees the costs by campaign and day; a
broken file shows one sentence and books nothing; he sends the conversions now (the
stand-in of Metrica takes the tracked call) and downloads the Metrica calls CSV.
Screenshots: tests/artifacts/calltracking-ads-*.png."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from crm_core.calltracking.ad_models import CampaignCost
from crm_core.db import create_engine, session_factory
from tests.app.test_web_browser import sign_in
from tests.calltracking import test_conversions_e2e
from tests.calltracking.test_conversions_e2e import YCLID, YM_UID, Served, tracked_call
from tests.support.browser import chromium, screenshot

served = test_conversions_e2e.served  # the app with the Metrica stand-in, as a fixture here

SAMPLES = Path(__file__).parent / "samples"
NBSP = "\u00a0"


async def _text(page: Any, selector: str) -> str:
    return " ".join((await page.locator(selector).inner_text()).replace(NBSP, " ").split())


async def _costs(url: str) -> int:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            return int(await session.scalar(select(func.count()).select_from(CampaignCost))
                       or 0)
    finally:
        await engine.dispose()


async def test_marketer_uploads_costs_sends_and_downloads(served: Served,
                                                          tmp_path: Path) -> None:
    base, url, app, standin = served
    await tracked_call(base, url, app)
    async with chromium() as browser:
        page = await browser.new_page()
        await sign_in(page, base, "marketer")
        await page.goto(base + "/calltracking")
        await page.click("#ct-ads-link")
        await page.wait_for_url("**/calltracking/ads")

        # Yandex Direct's report, uploaded with the form
        form = page.locator("#ads-costs-form")
        await form.locator("select[name=system]").select_option(label="Яндекс Директ")
        await form.locator("input[name=channel]").fill("Сайт")
        await form.locator("input[name=file]").set_input_files(
            str(SAMPLES / "yandex_direct_report.tsv"))
        await form.locator("button[type=submit]").click()
        await page.wait_for_url("**saved=costs*")
        assert await _text(page, "#ads-notice") == (
            "Яндекс Директ, yandex_direct_report.tsv: 5 строк; новых 5, заменено 0, "
            "без изменений 0.")
        table = await _text(page, "#ads-costs table")
        assert "03.11.2026 Яндекс Директ spring Сайт 5 300 ₽" in table
        assert "01.11.2026 Яндекс Директ spring Сайт 5 120,50 ₽ 310 12 034" in table

        # the costs are in the call-tracking report, each with where it came from
        await page.goto(base + "/calltracking?from=2026-11-01&to=2026-11-30")
        spread = await _text(page, "#ct-spread [data-key='Сайт']")
        assert spread.startswith("Сайт: 17 175,75 ₽")
        assert ("Яндекс Директ, кампания «spring», ноябрь 2026: 3 дня в периоде, "
                "15 290,75 ₽ (из выгрузки)") in spread
        site = page.locator("#ct-report tbody tr", has_text="Сайт").first
        assert (await site.locator("td[data-col=cost]").inner_text()).replace(
            NBSP, " ") == "17 176 ₽"
        await page.goto(base + "/calltracking/ads")

        # a file of another shape: one sentence, nothing booked
        broken = tmp_path / "report.csv"
        broken.write_text("Отчёт\nничего полезного\n", encoding="utf-8")
        await form.locator("select[name=system]").select_option(label="VK Реклама")
        await form.locator("input[name=file]").set_input_files(str(broken))
        await form.locator("button[type=submit]").click()
        await page.wait_for_selector("#ads-error")
        assert await _text(page, "#ads-error") == (
            "В файле report.csv нет строки с колонками даты и расхода — это не выгрузка "
            "VK Реклама.")
        assert await _costs(url) == 5

        # the token is kept, never shown; the conversions go now
        token = page.locator("#ads-account-metrica input[name=token]")
        assert await token.input_value() == ""
        assert "сохранён" in (await token.get_attribute("placeholder") or "")
        await page.click("#ads-send button[type=submit]")
        await page.wait_for_url("**saved=sent*")
        assert "Яндекс Метрика: отправлено 1, не удалось 0, отклонено 0." in await _text(
            page, "#ads-notice")
        assert "принято, загрузка № 1" in await _text(page, "#ads-log")
        assert [r["Yclid"] for r in standin.rows("metrica")] == [YCLID]

        # the Metrica calls file, downloaded from the form
        download_form = page.locator("#ads-download")
        await download_form.locator("select[name=file]").select_option("metrica-calls")
        async with page.expect_download() as info:
            await download_form.locator("button[type=submit]").click()
        download = await info.value
        path = tmp_path / download.suggested_filename
        await download.save_as(str(path))
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
        assert [(r["ClientId"], r["Yclid"]) for r in rows] == [(YM_UID, YCLID)]
        assert download.suggested_filename.startswith("metrica-calls-")

        await page.goto(base + "/calltracking/ads")
        await screenshot(page, "calltracking-ads")
