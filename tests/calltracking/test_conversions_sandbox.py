"""Issue 20's own check, end to end on the sandbox with Chromium: a visit from Yandex Direct
(``yclid`` in the landing URL, the Metrica tag's ``_ym_uid`` cookie) on the customer's page
with the call-tracking tag is shown a pool number; the visitor's phone calls that number
through the sandbox Asterisk; the call is logged and attributed to the visit; the marketer
downloads the Metrica calls CSV from ``/calltracking/ads`` in the browser and finds it there;
a conversions round delivers it once to the stand-in of the Metrica API and a second round
sends nothing.
Screenshot: tests/artifacts/conversions-sandbox-ads-{desktop,phone}.png.
"""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path
from typing import Any

import pytest

from crm_core.calltracking.conversions import METRICA_CALL_COLUMNS, AccountForm, save_account
from crm_core.db import create_engine, session_factory
from telecrm.calltracking.conversion_upload import send_all
from telecrm.settings import Settings
from telecrm.web.keys import LISTENER, SETTINGS, WRITER_SESSIONS
from tests.calltracking.test_calltracking_e2e import (
    POOL,
    browser,
    configure,
    customer_site,
    sign_in,
    wait_for_calls,
)
from tests.support.ad_systems_standin import METRICA_TOKEN, ad_systems_standin
from tests.support.browser import screenshot, seed_world, serve_app

pytestmark = pytest.mark.asterisk

YCLID = "5718765432109876543"
YM_UID = "1733000000987654321"
VISITOR = "79161119977"


async def metrica_account(db: str) -> None:
    engine = create_engine(db)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            await save_account(session, "metrica", AccountForm(
                enabled=True, account_id="44556677", call_goal="Звонок с сайта",
                token=METRICA_TOKEN))
    finally:
        await engine.dispose()


async def test_a_direct_visitors_call_reaches_metrica_once(sandbox: Any, tmp_path: Path) -> None:
    pbx = sandbox.pbx
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed_world(db, sandbox.monitor_dir)
    async with ad_systems_standin() as standin:
        settings = Settings(data_dir=tmp_path, database_url=db, ami_host=pbx.ami_host,
                            ami_port=pbx.ami_port, ami_user=pbx.ami_user,
                            ami_secret=pbx.ami_secret, recordings_source=sandbox.monitor_dir,
                            metrica_api_url=standin.base, conversions_retry_ms=10)
        async with serve_app(settings, with_listener=True) as (app, crm), \
                customer_site(crm) as (site, host), sandbox.phones() as phones, \
                browser() as chrome:
            await configure(db, host)
            await metrica_account(db)
            await asyncio.wait_for(app[LISTENER].session.connected.wait(), 15)

            # -- the visit from Direct: yclid in the URL, Metrica's _ym_uid cookie --------
            await chrome.add_cookies([{"name": "_ym_uid", "value": YM_UID, "url": site}])
            page = await chrome.new_page()
            landing = (f"{site}/?utm_source=yandex&utm_medium=cpc&utm_campaign=winter"
                       f"&yclid={YCLID}")
            await page.goto(landing, referer="https://yandex.ru/search/?text=окна")
            await page.mouse.move(200, 200)
            await page.mouse.move(320, 240)
            await page.wait_for_function(
                "document.querySelector('.ct-phone').getAttribute('href') "
                "!== 'tel:+74951110001'", timeout=10_000)
            number = (await page.get_attribute(".ct-phone", "href") or "").removeprefix("tel:")
            assert number in POOL

            # -- the visitor's phone calls the number it was shown -----------------------
            try:
                for extension in ("101", "102"):
                    await phones.set_behaviour(extension, mode="answer", answer_after=1)
                await phones.client_calls(VISITOR, number.lstrip("+"), talk=2)
                await phones.wait_idle(timeout=40)
            finally:
                await phones.reset_behaviours()
            [call] = [c for c in await wait_for_calls(db, 1) if c["did"] == number]
            assert (call["direction"], call["status"], call["client_number"]) == (
                "inbound", "answered", "+" + VISITOR)
            tracking = call["tracking"]
            assert (tracking["kind"], tracking["source"], tracking["campaign"],
                    tracking["landing"]) == ("dynamic", "yandex", "winter", landing)

            # -- the marketer downloads the Metrica calls file ---------------------------
            await chrome.clear_cookies()
            ads = await chrome.new_page()
            await sign_in(ads, crm, "marketer")
            await ads.wait_for_url("**/calltracking")
            await ads.goto(crm + "/calltracking/ads")
            await ads.select_option("#ads-download select[name=file]", "metrica-calls")
            async with ads.expect_download() as info:
                await ads.click("#ads-download button[type=submit]")
            download = await info.value
            text = Path(await download.path()).read_text(encoding="utf-8")
            assert text.splitlines()[0].split(",") == METRICA_CALL_COLUMNS
            [row] = list(csv.DictReader(io.StringIO(text)))
            assert (row["ClientId"], row["Yclid"], row["StaticCall"], row["CallMissed"],
                    row["PhoneNumber"], row["Tag"]) == (
                YM_UID, YCLID, "0", "0", "+" + VISITOR, "winter")
            assert row["URL"] == landing

            # -- conversions rounds: delivered once, the second sends nothing -------------
            first = await send_all(app[WRITER_SESSIONS], app[SETTINGS])
            assert first["metrica"] == {"sent": 1, "failed": 0, "rejected": 0}
            second = await send_all(app[WRITER_SESSIONS], app[SETTINGS])
            assert second["metrica"] == {"sent": 0, "failed": 0, "rejected": 0}
            [delivered] = standin.rows("metrica")
            assert (delivered["ClientId"], delivered["Yclid"], delivered["DateTime"]) == (
                YM_UID, YCLID, row["DateTime"])
            assert standin.requests == 1
            await ads.reload()
            shown = await ads.inner_text("#ads-conversions")
            assert "отправлено" in shown and "принято, загрузка № 1" in shown
            await screenshot(ads, "conversions-sandbox-ads")
