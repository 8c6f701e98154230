"""The callback widget for real: a site page in Chromium, the CRM, the sandbox Asterisk.

A visitor comes to the shop's page from a Yandex ad and leaves his number in the
callback form (``data-telecrm-callback``, sent by ``ct.js``). The CRM picks a free
manager, rings his phone first (the phones instance answers as it), then the visitor's
number (answered as the "client"); the call the listener logs is outbound from that
manager to the visitor, belongs to the lead, and carries the visit's source, so the
call-tracking report counts it under «yandex».
Screenshot: tests/artifacts/leads-callback-widget-{desktop,phone}.png.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from crm_core.calls.models import Call, CallLeg
from crm_core.calltracking.models import CtAttribution, CtLead
from crm_core.calltracking.report import Period, channel_report
from crm_core.calltracking.services import SiteOptions, save_site
from crm_core.clock import utcnow
from crm_core.db import create_engine, session_factory
from crm_core.people.models import User
from telecrm.settings import Settings
from telecrm.web.keys import LISTENER
from tests.calltracking.test_ct_api import Client as ApiClient
from tests.support.browser import chromium, screenshot, seed_world, serve_app, serve_page

pytestmark = pytest.mark.asterisk

VISITOR = "79169990011"
PAGE = """<!doctype html>
<html lang="ru"><head><meta charset="utf-8"><title>Двери</title>
<script src="{crm}/ct.js?site={host}" async></script>
<style>body{{font:18px system-ui;margin:2rem}} input,button{{font:inherit;padding:.4rem}}</style>
</head><body>
<h1>Входные двери</h1>
<form id="callback" data-telecrm-callback>
  <p>Перезвоним за 30 секунд</p>
  <input name="name" placeholder="Имя" value="Пётр">
  <input name="phone" type="tel" placeholder="+7 (___) ___-__-__">
  <button type="submit">Перезвоните мне</button>
  <p id="answer" data-telecrm-result></p>
</form>
</body></html>
"""


async def connected_lead(db: str, timeout: float = 60.0) -> CtLead:
    engine = create_engine(db)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            async with session_factory(engine)() as session:
                lead = await session.scalar(select(CtLead))
                call = await session.get(Call, lead.call_id) if lead and lead.call_id else None
                if call is not None and call.status != "in_progress":
                    return lead
            assert loop.time() < deadline, f"no finished callback call: {lead and lead.status}"
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()


async def test_a_callback_rings_a_manager_then_the_visitor_with_the_visit_source(
        sandbox: Any, tmp_path: Path) -> None:
    pbx = sandbox.pbx
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed_world(db, sandbox.monitor_dir)
    settings = Settings(data_dir=tmp_path, database_url=db, ami_host=pbx.ami_host,
                        ami_port=pbx.ami_port, ami_user=pbx.ami_user, ami_secret=pbx.ami_secret,
                        recordings_source=sandbox.monitor_dir,
                        # the real clock: any day, any hour is a working one for this test
                        ct_callback_hours="00:00-24:00", ct_callback_days="1-7")
    started = utcnow()
    async with serve_app(settings, with_listener=True) as (app, crm), \
            serve_page(PAGE, crm) as (base, host), sandbox.phones() as phones, \
            chromium() as browser:
        engine = create_engine(db)
        try:
            async with session_factory(engine, writer=True)() as session, session.begin():
                await save_site(session, host, SiteOptions(default_numbers=["+74951110090"],
                                                           origins=[base]))
        finally:
            await engine.dispose()
        await asyncio.wait_for(app[LISTENER].session.connected.wait(), 15)
        for extension in ("101", "102", "103"):  # whoever is chosen answers in a second
            await phones.set_behaviour(extension, mode="answer", answer_after=1)
        await phones.set_behaviour(VISITOR, mode="answer", answer_after=1, talk=3)
        try:
            page = await browser.new_page()
            await page.goto(base + "/?utm_source=yandex&utm_medium=cpc&utm_campaign=autumn"
                            "&utm_term=%D0%B4%D0%B2%D0%B5%D1%80%D0%B8&yclid=4242")
            await page.wait_for_function("window.telecrm && window.telecrm.session()")
            await page.fill("input[name=phone]", "8 (916) 999-00-11")
            await page.click("button[type=submit]")
            await page.wait_for_function(
                "document.getElementById('answer').textContent.length > 0")
            assert await page.inner_text("#answer") == "Соединяем: сейчас вам позвонит менеджер."
            await screenshot(page, "leads-callback-widget")
            lead = await connected_lead(db)
            await phones.wait_idle(timeout=30)
            api = await ApiClient(crm).login("admin")  # the call as the API shows it
            try:
                status, shown = await api.call("GET", f"/api/calls/{lead.call_id}")
            finally:
                await api.http.close()
        finally:
            await phones.reset_behaviours()

    engine = create_engine(db)
    try:
        async with session_factory(engine)() as session:
            call = await session.get(Call, lead.call_id)
            manager = await session.get(User, lead.assignee_id)
            assert call is not None and manager is not None
            attribution = await session.scalar(
                select(CtAttribution).where(CtAttribution.call_id == call.id))
            legs = list(await session.scalars(
                select(CallLeg).where(CallLeg.call_id == call.id).order_by(CallLeg.started_at)))
            report = await channel_report(session, Period(started, utcnow()), by="source")
    finally:
        await engine.dispose()
    assert (lead.kind, lead.status, lead.source, lead.utm_term, lead.yclid) == (
        "callback", "connected", "yandex", "двери", "4242")
    assert (call.direction, call.status, call.client_number) == (
        "outbound", "answered", "+" + VISITOR)
    assert call.client_id == lead.client_id
    assert call.managers == [manager.extension]
    # the manager's phone rang first, the visitor's after he answered
    assert [leg.role for leg in legs][:2] == ["manager", "client"], legs
    assert attribution is not None
    assert (attribution.kind, attribution.source, attribution.medium, attribution.campaign,
            attribution.visit_id) == ("dynamic", "yandex", "cpc", "autumn", lead.visit_id)
    assert status == 200 and shown["tracking"]["source"] == "yandex", shown
    assert (shown["direction"], shown["tracking"]["campaign"]) == ("outbound", "autumn")
    yandex = next(row for row in report["rows"] if row["key"] == "yandex")
    assert (yandex["calls"], yandex["callbacks"]) == (1, 1)
