"""The marketer's call-tracking page in headless Chromium, at 1366×768 and on a phone.

A few attributed calls over several days give the charts something to draw. The
marketer looks at ten days of November, types November's cost into the page's form
and reads how much of it the ten days carry; then he adds numbers to his site's pool
with the number fields (no shell). The whole report (revenue, cost, ROI) fits the
screen at 1366 px and on a phone. Screenshots: tests/artifacts/calltracking-*.png.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from crm_core.calls.services import record_call
from crm_core.calls.snapshot import CallData, LegData
from crm_core.db import create_engine, session_factory
from crm_core.timestamps import utcnow
from telecrm.wiring import call_hooks
from tests.app.test_web_browser import sign_in
from tests.calltracking import test_ct_web
from tests.calltracking.test_ct_web import HOST, Served
from tests.support.browser import DESKTOP, PHONE, chromium, screenshot

HOOKS = call_hooks()  # what the product does with each written call

ct_app = test_ct_web.served  # the served app of test_ct_web, as a fixture here

NBSP = "\u00a0"


async def _seed_calls(url: str) -> None:
    now = utcnow().replace(microsecond=0)
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session, session.begin():
            for i in range(6):
                at = now - timedelta(days=i % 3, minutes=10 * i)
                talk = 30.0 + 20 * i
                linkedid = f"page-{i}"
                await record_call(session, CallData(
                    linkedid=linkedid, direction="inbound", status="answered",
                    client_number=f"+7916555000{i}", did="+74951110005", started_at=at,
                    answered_at=at, ended_at=at + timedelta(seconds=talk), ring_seconds=2.0,
                    talk_seconds=talk, transferred=False, managers=(), recordings=(),
                    legs=(LegData(f"{linkedid}-c", "PJSIP/carrier-1", "client", None, at, at,
                                  at + timedelta(seconds=talk), talk),)), hooks=HOOKS)
    finally:
        await engine.dispose()


async def _text(page: Any, selector: str) -> str:
    return " ".join((await page.locator(selector).inner_text()).replace(NBSP, " ").split())


async def _fits(page: Any, width: int) -> None:
    """Nothing of the report is off-screen: no sideways scrolling, ROI inside the window."""
    overflow = await page.evaluate("""() => {
        const card = document.getElementById("ct-money");
        const table = document.getElementById("ct-report");
        return {page: document.documentElement.scrollWidth, card: card.clientWidth,
                table: table.scrollWidth};
    }""")
    assert overflow["page"] <= width, overflow
    assert overflow["table"] <= overflow["card"], overflow
    for column in ("revenue", "cost", "roi"):
        cell = page.locator(f"#ct-report tr.total td[data-col={column}]")
        box = await cell.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (
            column, box)
        assert await cell.is_visible()


@pytest.mark.clock("2026-11-20T12:00:00+03:00")
async def test_marketer_enters_a_cost_reads_its_spread_and_adds_pool_numbers(
        ct_app: Served) -> None:
    base, url, _ = ct_app
    await _seed_calls(url)
    async with chromium() as browser:
        page = await browser.new_page()
        await sign_in(page, base, "marketer")
        await page.goto(base + "/calltracking?from=2026-11-11&to=2026-11-20")
        assert await page.locator("svg[aria-label='Звонки по дням'] rect").count() >= 3

        # November's cost, typed into the form; the page stays on the ten days shown.
        await page.fill("#ct-cost-form input[name=month]", "2026-11")
        await page.fill("#ct-cost-form input[name=channel]", "Радио")
        await page.fill("#ct-cost-form input[name=amount]", "90 000")
        await page.click("#ct-cost-form button[type=submit]")
        await page.wait_for_url("**/calltracking?from=2026-11-11&to=2026-11-20*saved=cost*")
        assert "ноябрь 2026 Радио 90 000 ₽" in await _text(page, "#ct-costs")
        spread = await _text(page, "#ct-spread [data-key='Радио']")
        assert "Расход за ноябрь 2026 90 000 ₽, в периоде 10 из 30 дней: 30 000 ₽" in spread
        # The radio's static number costs 10 000 a month: 10 days of it are in the row too.
        assert ("Номер +7 495 111-00-05: 10 000 ₽ в месяц, ноябрь 2026, "
                "в периоде 10 из 30 дней: 3 333,33 ₽") in spread
        assert spread.startswith("Радио: 33 333,33 ₽")
        radio = page.locator("#ct-report tbody tr", has_text="Радио").first
        assert await _text(page, "#ct-report tbody tr:first-child td[data-col=calls]") == (
            "6 6 уник., 6 перв.")
        assert (await radio.locator("td[data-col=cost]").inner_text()).replace(
            NBSP, " ") == "33 333 ₽"
        # ROI = (0 − 33 333,33) / 33 333,33: −100,0 %, written the Russian way.
        assert (await radio.locator("td[data-col=roi]").inner_text()).replace(
            NBSP, " ") == "-100,0 %"
        await _fits(page, DESKTOP["width"])

        # Two more numbers for the site's pool: the second field comes from "+ Ещё номер".
        row = page.locator(f"#ct-sites tr[data-site='{HOST}']")
        await row.locator(".ct-add-numbers input[name=number]").first.fill("+7 495 111-00-13")
        await row.locator("button.ct-more").click()
        await row.locator(".ct-add-numbers input[name=number]").nth(1).fill("8 (495) 111-00-14")
        await row.locator("button[type=submit]", has_text="Добавить в пул").click()
        await page.wait_for_url("**saved=pool*")
        chips = await _text(page, f"#ct-sites tr[data-site='{HOST}'] .ct-chips")
        assert chips == ("+7 495 111-00-11 × +7 495 111-00-12 × +7 495 111-00-13 × "
                         "+7 495 111-00-14 ×")
        assert "telecrm " not in await page.inner_text("main")  # no shell commands to read

        # A phone: the report becomes cards, still nothing off-screen.
        await page.set_viewport_size(PHONE)
        await _fits(page, PHONE["width"])
        await page.set_viewport_size(DESKTOP)
        await page.evaluate("window.scrollTo(0, 0)")
        await screenshot(page, "calltracking-page")
        await page.locator("#ct-settings").scroll_into_view_if_needed()
        await page.screenshot(path=str(screenshot_path("calltracking-settings-desktop")))


def screenshot_path(name: str) -> Any:
    from tests.support.browser import ARTIFACTS

    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / f"{name}.png"
