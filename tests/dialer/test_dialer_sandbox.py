"""«Обзвон» for real: Chromium, the CRM with its AMI listener, and the sandbox Asterisk.

Petrov works three overdue call tasks. The dialer orders them by ABC group (A, B, C),
rings his phone and then each client through the PBX (the phones instance answers as
his phone and as the clients); the hang-up reaches the page by the live events of the
real listener. The first client talks and the outcome form leads to the next; the
second is busy and gets a retry task by the rules; the third talks too, and then the
list waits for the retry.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from crm_core.calls.models import Call
from crm_core.clients.services import create_client
from crm_core.clock import utcnow
from crm_core.db import create_engine, session_factory
from crm_core.people.models import User
from crm_core.sales.clients import set_potential
from crm_core.tasks.models import Task, TaskStatus
from crm_core.tasks.services import cancel_task, create_task
from telecrm.settings import Settings
from telecrm.web.keys import LISTENER
from tests.support.browser import PASSWORD, chromium, screenshot, seed_world, serve_app
from tests.support.clock import zone_at_midday

pytestmark = pytest.mark.asterisk

# name, phone, ABC group, due (minutes before now): all overdue, so ordered by group
CLIENTS = [("ЗАО Луч", "+79057770011", "C", 60), ("ООО Берёза", "+79161112233", "A", 10),
           ("ООО Ромашка", "+79161234567", "B", 5)]
POTENTIAL = {"A": "5000000", "B": "500000", "C": "50000"}


async def seed(db: str, tmp_path: Path) -> None:
    # The floor's past calls well before this test's own (right after midnight the
    # default start would put the last of them minutes ahead, among the dialer's calls).
    world = await seed_world(db, tmp_path / "recordings",
                             calls_at=(utcnow() - timedelta(hours=2)).replace(second=0,
                                                                               microsecond=0))
    engine = create_engine(db)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            petrov = await session.get(User, world.users["petrov"])
            assert petrov is not None
            for task in await session.scalars(select(Task).where(Task.status == "open")):
                await cancel_task(session, task, note="не для этого теста")
            for name, phone, group, minutes in CLIENTS:
                if name == "ООО Ромашка":
                    client_id = world.clients["101"]
                else:
                    client = await create_client(session, name, phones=[phone],
                                                 owner_id=petrov.id, actor="test")
                    client_id = client.id
                # The group follows the annual potential (and is judged again by the app).
                await set_potential(session, client_id, POTENTIAL[group], by=None)
                await create_task(session, kind="call", title=f"Позвонить: {name}",
                                  client_id=client_id, assignee_id=petrov.id,
                                  team_id=petrov.team_id,
                                  due_at=utcnow() - timedelta(minutes=minutes))
    finally:
        await engine.dispose()


async def sign_in(page: Any, base: str) -> None:
    await page.goto(base + "/login")
    await page.fill("input[name=username]", "petrov")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/today")


async def save_form(page: Any, note: str) -> None:
    await page.wait_for_selector("#dl-wrapup:not([hidden])", timeout=60_000)
    assert "Разговор состоялся." in await page.inner_text("#dl-result")
    await page.check("#dl-outcomes input[type=radio] >> nth=0")
    await page.fill("#dl-note", note)
    await page.click("#dl-form button[type=submit]")
    await page.wait_for_function(
        "!document.getElementById('dl-countdown').hidden"
        " || !document.getElementById('dl-error').hidden")
    assert await page.is_hidden("#dl-error"), await page.inner_text("#dl-error")


async def test_a_dialer_session_calls_each_client_in_order(sandbox: Any, tmp_path: Path) -> None:
    pbx = sandbox.pbx
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed(db, tmp_path)
    settings = Settings(data_dir=tmp_path, database_url=db, ami_host=pbx.ami_host,
                        ami_port=pbx.ami_port, ami_user=pbx.ami_user, ami_secret=pbx.ami_secret,
                        recordings_source=sandbox.monitor_dir,
                        # the busy client's retry stays "later today" at any hour of the run
                        timezone=zone_at_midday(utcnow()))
    started = utcnow()
    async with serve_app(settings, with_listener=True) as (app, base), \
            sandbox.phones() as phones, chromium() as browser:
        await asyncio.wait_for(app[LISTENER].session.connected.wait(), 15)
        await phones.set_behaviour("101", mode="answer", answer_after=1)
        await phones.set_behaviour("79161112233", mode="answer", answer_after=1, talk=3)
        await phones.set_behaviour("79161234567", mode="busy")
        await phones.set_behaviour("79057770011", mode="answer", answer_after=1, talk=3)
        try:
            page = await browser.new_page()
            await sign_in(page, base)
            await page.goto(base + "/dialer")
            await page.wait_for_function(
                "document.getElementById('live-dot').classList.contains('on')")
            await page.click("#dl-start-button")
            await page.wait_for_selector("#dl-work:not([hidden])")

            # 1. Group A first: he talks, the outcome form leads to the next client.
            assert await page.inner_text("#dl-client") == "ООО Берёза"
            await page.click("#dl-call")
            await save_form(page, "Ждут КП к пятнице")
            await screenshot(page, "dialer-sandbox-saved")
            await page.click("#dl-now")

            # 2. Group B, called by itself: busy, so a retry task and no form.
            await page.wait_for_function(
                "document.getElementById('dl-client').textContent === 'ООО Ромашка'")
            await page.wait_for_selector("#dl-countdown:not([hidden])", timeout=60_000)
            text = await page.inner_text("#dl-countdown")
            assert "Занято." in text and "Повторный звонок в" in text, text
            assert await page.is_hidden("#dl-wrapup")
            await screenshot(page, "dialer-sandbox-busy")
            await phones.wait_idle(timeout=30)
            await page.click("#dl-now")

            # 3. Group C: talks; then only the retry is left, later.
            await page.wait_for_function(
                "document.getElementById('dl-client').textContent === 'ЗАО Луч'")
            await save_form(page, "Перезвонить в декабре")
            await page.click("#dl-now")
            await page.wait_for_selector("#dl-done:not([hidden])")
            assert await page.inner_text("#dl-done-title") == "Пока звонить некому"
            assert await page.inner_text("#dl-calls") == "3"
            await screenshot(page, "dialer-sandbox-done")
            await phones.wait_idle(timeout=30)
        finally:
            await phones.reset_behaviours()

    engine = create_engine(db)
    try:
        async with session_factory(engine)() as session:
            calls = (await session.execute(
                select(Call.client_number, Call.status, Call.direction)
                .where(Call.started_at >= started).order_by(Call.started_at))).all()
            tasks = dict((await session.execute(
                select(Task.title, Task.status).where(Task.created_at >= started))).all())
            done = dict((await session.execute(
                select(Task.title, Task.note).where(Task.status == TaskStatus.DONE.value))).all())
    finally:
        await engine.dispose()
    assert [(n, s, d) for n, s, d in calls] == [
        ("+79161112233", "answered", "outbound"), ("+79161234567", "busy", "outbound"),
        ("+79057770011", "answered", "outbound")]
    assert tasks["Повторный звонок (попытка 2 из 3): ООО Ромашка"] == "open"
    assert done["Позвонить: ООО Ромашка"].startswith("Не дозвонились (занято), попытка 1 из 3")
    assert done["Позвонить: ООО Берёза"] == "Ждут КП к пятнице"
