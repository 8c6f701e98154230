"""The marketer's call-tracking page in headless Chromium: enter a cost, read the charts.

A few attributed calls over several days give the charts something to draw; the
marketer types a month's cost into the page's form and sees the money in the report.
Screenshots: tests/artifacts/calltracking-page-{desktop,phone}.png.
"""

from __future__ import annotations

from datetime import timedelta

from crm_core.calls.services import record_call
from crm_core.calls.snapshot import CallData, LegData
from crm_core.calltracking.services import set_cost
from crm_core.db import create_engine, session_factory
from crm_core.timestamps import utcnow
from telecrm.wiring import call_hooks
from tests.app.test_web_browser import sign_in
from tests.calltracking import test_ct_web
from tests.calltracking.test_ct_web import Served
from tests.support.browser import chromium, screenshot

HOOKS = call_hooks()  # what the product does with each written call

ct_app = test_ct_web.served  # the served app of test_ct_web, as a fixture here


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
            await set_cost(session, now.strftime("%Y-%m"), "Радио", "0")
    finally:
        await engine.dispose()


async def test_marketer_enters_a_cost_on_the_page(ct_app: Served) -> None:
    base, url, _ = ct_app
    await _seed_calls(url)
    month = utcnow().strftime("%Y-%m")
    async with chromium() as browser:
        page = await browser.new_page()
        await sign_in(page, base, "marketer")
        await page.goto(base + "/calltracking")
        assert await page.locator("svg[aria-label='Звонки по дням'] rect").count() >= 3
        await page.fill("#ct-cost-form input[name=month]", month)
        await page.fill("#ct-cost-form input[name=channel]", "Радио")
        await page.fill("#ct-cost-form input[name=amount]", "12 000")
        await page.click("#ct-cost-form button[type=submit]")
        await page.wait_for_url("**/calltracking?saved=cost*")
        costs = (await page.locator("#ct-costs").inner_text()).replace("\u00a0", " ")
        assert "12 000 ₽" in costs
        radio = page.locator("#ct-report tbody tr", has_text="Радио").first
        cells = [c.replace("\u00a0", " ") for c in await radio.locator("td").all_inner_texts()]
        assert cells[1:3] == ["0", "6"]  # no visits, six calls
        # The radio's own 10 000 a month plus the 12 000 entered, for the month so far.
        assert cells[13] != "0 ₽" and "₽" in cells[14]  # cost and cost per call are shown
        assert await page.locator(".ct-hbar").count() >= 1  # cost per target call chart
        await page.evaluate("window.scrollTo(0, 0)")
        await screenshot(page, "calltracking-page")
