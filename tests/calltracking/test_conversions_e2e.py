"""End to end on the real app: a visit that came from Yandex Direct (``yclid`` in the URL,
``_ym_uid`` from the Metrica tag) leases a pool number, a call to that number is written
by the call writer like any call from Asterisk, and the call appears in the Metrica calls
CSV the marketer downloads and is delivered once to the stand-in of the Metrica API (a
second round sends nothing). The pages are for marketers and admins only."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.services import record_call
from crm_core.calls.snapshot import CallData, LegData
from crm_core.calltracking.conversions import METRICA_CALL_COLUMNS, AccountForm, save_account
from crm_core.db import create_engine, session_factory
from crm_core.timestamps import utcnow
from telecrm.calltracking.conversion_upload import send_all
from telecrm.calltracking.public import CT
from telecrm.settings import Settings
from telecrm.web.keys import SETTINGS, WRITER_SESSIONS
from telecrm.wiring import call_hooks
from tests.calltracking.sites import BROWSER, HOST, ORIGIN, seeded_site
from tests.support.ad_systems_standin import METRICA_TOKEN, StandIn, ad_systems_standin
from tests.support.browser import serve_app, signed_in

HOOKS = call_hooks()
POOL = ["+74951110041", "+74951110042"]
YCLID = "4218765432109876543"
YM_UID = "1701234567890123456"

Served = tuple[str, str, web.Application, StandIn]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async def metrica(session: AsyncSession) -> None:
        await save_account(session, "metrica", AccountForm(
            enabled=True, account_id="44556677", call_goal="Звонок", token=METRICA_TOKEN))
    url = await seeded_site(tmp_path, POOL, more=metrica)
    async with ad_systems_standin() as standin:
        settings = Settings(data_dir=tmp_path, database_url=url,
                            recordings_source=tmp_path / "recordings",
                            trusted_proxies="127.0.0.1", metrica_api_url=standin.base,
                            google_ads_api_url=standin.base, conversions_retry_ms=10)
        async with serve_app(settings) as (app, base):
            yield base, url, app, standin


async def tracked_call(base: str, url: str, app: web.Application) -> int:
    """The visit from Direct, then the call on the number it was shown."""
    page = f"https://{HOST}/uslugi?utm_source=yandex&utm_medium=cpc&utm_campaign=spring" \
           f"&yclid={YCLID}"
    async with aiohttp.ClientSession() as http, http.post(
            f"{base}/api/ct/session",
            data=json.dumps({"site": HOST, "url": page, "referrer": "https://yandex.ru/",
                             "client_ids": {"ym_uid": YM_UID}}),
            headers={"Origin": ORIGIN, "User-Agent": BROWSER, "Content-Type": "text/plain",
                     "X-Forwarded-For": "198.51.100.77"}) as response:
        assert response.status == 200, await response.text()
        leased = await response.json()
    assert leased["tracked"] is True and leased["number"] in POOL
    await app[CT].history.drain()
    engine = create_engine(url)
    start = utcnow()  # the visit was shown the number a moment ago
    end = start + timedelta(seconds=70)
    try:
        async with session_factory(engine)() as session, session.begin():
            call = await record_call(session, CallData(
                linkedid="1795406555.77", direction="inbound", status="answered",
                client_number="+79165550077", did=leased["number"], started_at=start,
                answered_at=start + timedelta(seconds=4), ended_at=end, ring_seconds=4.0,
                talk_seconds=66.0, transferred=False, managers=("101",), recordings=(),
                legs=(LegData("1795406555.77", "PJSIP/carrier-1", "client", None, start,
                              start + timedelta(seconds=4), end, 66.0),)), hooks=HOOKS)
            return call.id
    finally:
        await engine.dispose()


async def test_tracked_call_reaches_the_csv_and_the_standin_once(served: Served) -> None:
    base, url, app, standin = served
    call_id = await tracked_call(base, url, app)
    marketer = await signed_in(base, "marketer")
    try:
        async with marketer.get(f"{base}/calltracking/ads/conversions.csv?file=metrica-calls"
                                ) as response:
            assert response.status == 200 and response.content_type == "text/csv"
            assert "attachment" in response.headers["Content-Disposition"]
            text = await response.text()
        assert text.splitlines()[0].split(",") == METRICA_CALL_COLUMNS
        [row] = list(csv.DictReader(io.StringIO(text)))
        assert (row["ClientId"], row["Yclid"], row["StaticCall"], row["TalkDuration"],
                row["CallMissed"], row["PhoneNumber"]) == (
            YM_UID, YCLID, "0", "66", "0", "+79165550077")
        assert row["URL"].startswith(f"https://{HOST}/uslugi?") and row["Tag"] == "spring"
        async with marketer.get(f"{base}/calltracking/ads") as response:
            assert response.status == 200
            page = await response.text()
        assert "Офлайн-конверсии" in page and METRICA_TOKEN not in page
        assert "сохранён — оставьте пустым" in page
    finally:
        await marketer.close()

    standin.fail_next(1, 503)
    first = await send_all(app[WRITER_SESSIONS], app[SETTINGS])
    assert first["metrica"] == {"sent": 1, "failed": 0, "rejected": 0}
    [delivered] = standin.rows("metrica")
    assert (delivered["ClientId"], delivered["Yclid"]) == (YM_UID, YCLID)
    second = await send_all(app[WRITER_SESSIONS], app[SETTINGS])
    assert second["metrica"] == {"sent": 0, "failed": 0, "rejected": 0}
    assert len(standin.rows("metrica")) == 1 and standin.requests == 2
    assert call_id


async def test_only_marketers_and_admins(served: Served) -> None:
    base, _, _, _ = served
    for who, status in (("petrov", 403), ("sokolova", 403), ("admin", 200)):
        http = await signed_in(base, who)
        try:
            for path in ("/calltracking/ads", "/calltracking/ads/conversions.csv"):
                async with http.get(base + path) as response:
                    assert response.status == status, (who, path)
        finally:
            await http.close()
    async with aiohttp.ClientSession() as anonymous, anonymous.get(
            f"{base}/calltracking/ads/conversions.csv", allow_redirects=False) as response:
        assert response.status in (302, 303, 401)


async def test_serve_sends_on_its_schedule(served: Served) -> None:
    """The round runs inside the app ``serve`` builds (the jobs of ``telecrm/rounds.py``):
    no one presses anything, the stand-in gets the call once."""
    import asyncio

    from telecrm.app import create_app

    base, url, app, standin = served
    await tracked_call(base, url, app)
    settings = app[SETTINGS].with_overrides(conversions_every=1)
    jobs = create_app(settings, with_listener=False, with_web=False, missed_alerts=True)
    runner = web.AppRunner(jobs)
    await runner.setup()
    try:
        for _ in range(100):
            if standin.rows("metrica"):
                break
            await asyncio.sleep(0.1)
        assert any(t.get_name() == "ad-conversions" for t in asyncio.all_tasks())
        await asyncio.sleep(2.5)  # two more rounds: nothing more is sent
    finally:
        await runner.cleanup()
    assert [r["Yclid"] for r in standin.rows("metrica")] == [YCLID]
    assert standin.requests == 1
