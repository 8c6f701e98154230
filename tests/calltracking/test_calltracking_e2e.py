"""Call tracking end to end: a real browser on a customer's site, a real SIP call.

A small aiohttp server on another port plays the customer's website with the one
``<script>`` tag. Headless Chromium opens it with UTM tags, moves the mouse, and
sees the company's number replaced by a pool number (text and ``tel:`` link).
The sandbox's carrier then calls that number on the sandbox Asterisk (an unknown
DID goes to the sales queue); while the phones ring the CRM has put the visit's
source on the caller's channel (``CRM_SOURCE``), and the call in the CRM carries
the visit's source, campaign and landing page. A call to a static number carries
its channel. The marketer's page is screenshotted for a look.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from crm_core.calls.models import Call, CallLeg, LegRole
from crm_core.calltracking.services import SiteOptions, add_pool_numbers, add_static, save_site
from crm_core.db import create_engine, session_factory
from telecrm.settings import Settings
from telecrm.web.keys import LISTENER
from tests.support.browser import (
    PASSWORD,
    chromium,
    screenshot,
    seed_world,
    serve_app,
    serve_page,
)
from tests.support.live import exported_calls

pytestmark = pytest.mark.asterisk

POOL = ["+74951110031", "+74951110032"]
STATIC = "+74951110033"
AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/120.0 Safari/537.36")

SITE_PAGE = """<!doctype html>
<html lang="ru"><head><meta charset="utf-8"><title>Окна «Ромашка»</title>
<script src="{crm}/ct.js?site={host}" async></script>
<style>body{{font:18px system-ui;margin:2rem}} .ct-phone{{font-weight:700;font-size:1.6rem}}</style>
</head><body>
<h1>Пластиковые окна</h1>
<p>Звоните: <a class="ct-phone" href="tel:+74951110001">+7 (495) 111-00-01</a></p>
<p>Отдел продаж: <span id="plain">8 495 111 00 01</span>, ежедневно с 9 до 21.</p>
</body></html>
"""


def customer_site(crm: str) -> contextlib.AbstractAsyncContextManager[tuple[str, str]]:
    """The customer's website on its own loopback port; yields its base URL and host."""
    return serve_page(SITE_PAGE, crm, ("/", "/price"))


def browser() -> contextlib.AbstractAsyncContextManager[Any]:
    """Debian's Chromium with an ordinary desktop user agent (HeadlessChrome counts as a bot),
    under the pages' own policies."""
    return chromium(bypass_csp=False, user_agent=AGENT)


async def configure(db: str, host: str) -> None:
    engine = create_engine(db)
    try:
        # reads then writes while the CRM writes too: the write lock up front
        async with session_factory(engine, writer=True)() as session, session.begin():
            await save_site(session, host, SiteOptions(
                default_numbers=["+74951110001"], origins=[f"http://{host}"]))
            await add_pool_numbers(session, host, POOL)
            await add_static(session, STATIC, "Билборд", campaign="Садовое кольцо",
                             cost_per_month=50000)
    finally:
        await engine.dispose()


async def client_channel(db: str, did: str, timeout: float = 15) -> str:
    """The caller's live channel on the PBX of the call to ``did``, once the CRM has it."""
    engine = create_engine(db)
    try:
        async with asyncio.timeout(timeout):
            while True:
                async with session_factory(engine)() as session:
                    channel = await session.scalar(
                        select(CallLeg.channel).join(Call, Call.id == CallLeg.call_id)
                        .where(Call.did == did, CallLeg.role == LegRole.CLIENT.value,
                               CallLeg.ended_at.is_(None)))
                if channel:
                    return channel
                await asyncio.sleep(0.1)
    finally:
        await engine.dispose()


async def channel_source(app: web.Application, channel: str, want: str,
                         timeout: float = 12) -> str:
    """``CRM_SOURCE`` of a live PBX channel, read over the CRM's own AMI login, once it
    is ``want`` (a call stored before its visit's history first shows the site alone,
    corrected when answered); the last value read if it never becomes ``want``."""
    session = app[LISTENER].session
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    value = ""
    while loop.time() < deadline:
        reply = await session.action({"Action": "Getvar", "Channel": channel,
                                      "Variable": "CRM_SOURCE"}, timeout=5)
        reply = reply[-1] if isinstance(reply, list) else reply
        value = str(reply.get("Value") or "")
        if value == want:
            break
        await asyncio.sleep(0.1)
    return value


async def sign_in(page: Any, base: str, username: str) -> None:
    await page.goto(base + "/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")


async def wait_for_calls(db: str, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        calls = [c for c in exported_calls(db) if c["did"] in (*POOL, STATIC)]
        if len(calls) >= count or loop.time() > deadline:
            return calls
        await asyncio.sleep(0.5)


async def test_visit_then_call_carries_the_source(sandbox, tmp_path: Path) -> None:
    pbx = sandbox.pbx
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed_world(db, sandbox.monitor_dir)
    settings = Settings(data_dir=tmp_path, database_url=db, ami_host=pbx.ami_host,
                        ami_port=pbx.ami_port, ami_user=pbx.ami_user, ami_secret=pbx.ami_secret,
                        recordings_source=sandbox.monitor_dir)
    async with serve_app(settings, with_listener=True) as (app, crm), \
            customer_site(crm) as (site, host), sandbox.phones() as phones, \
            browser() as chrome:
        await configure(db, host)
        await asyncio.wait_for(app[LISTENER].session.connected.wait(), 15)

        # the manager on the phone has his day open: his screen pops when it rings
        manager = await chrome.new_page()
        await sign_in(manager, crm, "petrov")
        await manager.wait_for_url("**/today")
        # a selector, not a JavaScript string: the page's CSP forbids eval, and right after
        # a navigation Playwright may evaluate a string predicate in the page itself
        await manager.wait_for_selector("#live-dot.on")

        # -- the visit: the number is swapped after the first mouse move ----------------
        page = await chrome.new_page()
        landing = f"{site}/?utm_source=yandex&utm_medium=cpc&utm_campaign=spring&yclid=42"
        await page.goto(landing, referer="https://yandex.ru/search/?text=окна")
        await page.wait_for_timeout(500)
        assert "+7 (495) 111-00-01" in await page.inner_text(".ct-phone")  # no number yet
        await page.mouse.move(200, 200)
        await page.mouse.move(300, 260)
        await page.wait_for_function(
            "document.querySelector('.ct-phone').getAttribute('href') !== 'tel:+74951110001'",
            timeout=10_000)
        href = await page.get_attribute(".ct-phone", "href")
        assert href is not None
        number = href.removeprefix("tel:")
        assert number in POOL
        shown = await page.inner_text(".ct-phone")
        plain = await page.inner_text("#plain")
        digits = number[2:]  # national digits: 495 111 00 3x
        assert re.sub(r"\D", "", shown) == "7" + digits and shown.startswith("+7 (495) ")
        assert re.sub(r"\D", "", plain) == "8" + digits and plain.startswith("8 495 ")
        await page.wait_for_timeout(200)
        await screenshot(page, "calltracking-site")

        # -- the visitor calls the number he sees ------------------------------------------
        for ext in ("101", "102"):
            await phones.set_behaviour(ext, mode="answer", answer_after=4)
        await phones.client_calls("79161119900", number.lstrip("+"), talk=3)
        channel = await client_channel(db, number)
        want = "Sait: yandex / cpc spring"  # no commas
        assert await channel_source(app, channel, want) == want  # no commas
        await manager.wait_for_selector("#screenpop .ct-source:not([hidden])", timeout=10_000)
        assert "Источник: Сайт: yandex / cpc, spring" in await manager.inner_text("#screenpop")
        await screenshot(manager, "calltracking-screenpop")
        await phones.wait_idle(timeout=40)

        # -- a billboard reader calls the static number -----------------------------------
        await phones.client_calls("79161119911", STATIC.lstrip("+"), talk=2)
        await phones.wait_idle(timeout=40)
        await phones.reset_behaviours()

        calls = {c["did"]: c for c in await wait_for_calls(db, 2)}
        dynamic = calls[number]["tracking"]
        assert dynamic["kind"] == "dynamic"
        assert (dynamic["source"], dynamic["medium"], dynamic["campaign"]) == \
            ("yandex", "cpc", "spring")
        assert dynamic["landing"] == landing
        static = calls[STATIC]["tracking"]
        assert (static["kind"], static["channel"], static["campaign"]) == \
            ("static", "Билборд", "Садовое кольцо")
        assert calls[number]["status"] == calls[STATIC]["status"] == "answered"

        # -- the marketer's page ------------------------------------------------------------
        await manager.close()
        await chrome.clear_cookies()
        crm_page = await chrome.new_page()
        await sign_in(crm_page, crm, "marketer")
        await crm_page.wait_for_url("**/calltracking")  # the marketer's home: no call log
        report = await crm_page.inner_text("#ct-report")
        assert "Сайт" in report and "Билборд" in report
        log = await crm_page.inner_text("#ct-log")
        assert "Сайт: yandex / cpc, spring" in log and landing in log
        await screenshot(crm_page, "calltracking-marketer")
