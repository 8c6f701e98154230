"""The manager's «Сегодня» in Chromium, kept up to date by live events, never contradicting
itself: a call that ends stops being «Идёт» without a reload, who waits for a call back
is said in one place, and talk time is said once, in whole minutes.

The calls are written to the database as the call writer would, and their events pushed
through the app's event bus as the AMI listener would (no Asterisk needed). Screenshots
go to tests/artifacts/today-live-*.png.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crm_core.calls.services import record_call
from crm_core.calls.snapshot import CallData, LegData
from crm_core.db import create_engine, session_factory
from telecrm.live_events import CALLS_TOPIC, extension_topic
from telecrm.settings import Settings
from telecrm.web.keys import BUS
from tests.support.browser import (
    HOOKS,
    PASSWORD,
    World,
    chromium,
    screenshot,
    seed_world,
    serve_app,
)

# A Friday noon: a working day under way; the seeded calls are an hour old.
pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")

TALK_LINE = re.compile(r"^(\d+) мин из 150 · осталось (\d+) мин$")


def sidorov_call(started: datetime, *, ended: datetime | None) -> CallData:
    """Petrov (101) talks with ИП Сидоров: in progress while ``ended`` is None."""
    bridged = started + timedelta(seconds=3)
    talk = (ended - bridged).total_seconds() if ended else 0.0

    def leg(uid: str, role: str, extension: str | None) -> LegData:
        return LegData(uniqueid=uid, channel=f"PJSIP/{extension or 'trunk'}-{uid}", role=role,
                       extension=extension, started_at=started, answered_at=bridged,
                       ended_at=ended, talk_seconds=talk, bridged_at=bridged)

    return CallData(linkedid="t-live.1", direction="outbound",
                    status="answered" if ended else "in_progress",
                    client_number="+79031234567", did=None, started_at=started,
                    answered_at=bridged, ended_at=ended, ring_seconds=3.0, talk_seconds=talk,
                    transferred=False, managers=("101",), recordings=(),
                    legs=(leg("t-live.1-m", "manager", "101"), leg("t-live.1-c", "client", None)))


def romashka_callback_call(started: datetime) -> CallData:
    """Petrov calls ООО Ромашка back (she called while he missed it): 30 s of talk."""
    bridged, ended = started + timedelta(seconds=2), started + timedelta(seconds=32)

    def leg(uid: str, role: str, extension: str | None) -> LegData:
        return LegData(uniqueid=uid, channel=f"PJSIP/{extension or 'trunk'}-{uid}", role=role,
                       extension=extension, started_at=started, answered_at=bridged,
                       ended_at=ended, talk_seconds=30.0, bridged_at=bridged)

    return CallData(linkedid="t-back.1", direction="outbound", status="answered",
                    client_number="+79161234567", did=None, started_at=started,
                    answered_at=bridged, ended_at=ended, ring_seconds=2.0, talk_seconds=30.0,
                    transferred=False, managers=("101",), recordings=(),
                    legs=(leg("t-back.1-m", "manager", "101"), leg("t-back.1-c", "client", None)))


async def write(db: str, data: CallData) -> int:
    engine = create_engine(db)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            return (await record_call(session, data, hooks=HOOKS)).id
    finally:
        await engine.dispose()


async def publish(app: Any, kind: str, data: CallData, call_id: int, client_id: int) -> None:
    """The event the listener publishes after the call writer stored ``data``."""
    event = {"kind": kind, "linkedid": data.linkedid, "extension": "101",
             "direction": data.direction, "status": data.status,
             "client_number": data.client_number, "did": None, "queue": None,
             "managers": list(data.managers), "rang": ["101"], "call_id": call_id,
             "client_id": client_id, "client_name": None}
    for topic in (CALLS_TOPIC, extension_topic("101")):
        await app[BUS].publish(topic, event)


async def talk_line(page: Any) -> tuple[str, int, int]:
    text = " ".join((await page.inner_text("#today-talk .tt-line")).split())
    found = TALK_LINE.match(text)
    assert found, text
    return text, int(found.group(1)), int(found.group(2))


async def test_today_follows_live_calls_and_says_each_thing_once(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    world: World = await seed_world(db, tmp_path / "recordings")
    now = datetime.now(UTC)
    live = sidorov_call(now - timedelta(seconds=20), ended=None)
    call_id = await write(db, live)
    settings = Settings(data_dir=tmp_path, database_url=db,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (app, base), chromium() as browser:
        page = await browser.new_page()
        await page.goto(base + "/login")
        await page.fill("input[name=username]", "petrov")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/today")
        await page.wait_for_function(
            "document.getElementById('live-dot').classList.contains('on')")

        row = page.locator("#today-calls tr", has_text="ИП Сидоров")
        assert "Идёт" in await row.inner_text()
        text, talked, left = await talk_line(page)
        assert talked >= 1 and talked + left == 150, text  # 65 s + the live call so far
        # who waits for a call back: the missed call of ООО Ромашка, said in one place
        assert await page.inner_text("#callbacks h2 .count") == "1"
        assert "ООО Ромашка" in await page.inner_text("#callbacks")
        await screenshot(page, "today-live-during-call")

        # -- the call ends: the row stops being «Идёт», talk time follows ---------------
        ended = sidorov_call(live.started_at, ended=datetime.now(UTC))
        await write(db, ended)
        total = 65 + ended.talk_seconds
        await publish(app, "call_ended", ended, call_id, world.clients["102"])
        await page.wait_for_function(
            "!document.querySelector('#today-calls').innerText.includes('Идёт')",
            timeout=5000)
        assert "Отвечен" in await row.inner_text()
        text, talked, left = await talk_line(page)
        assert (talked, left) == (int(total // 60), 150 - int(total // 60)), text

        # -- he calls ООО Ромашка back: nobody waits any more, nowhere on the page -------
        back = romashka_callback_call(datetime.now(UTC))
        back_id = await write(db, back)
        await publish(app, "call_ended", back, back_id, world.clients["101"])
        await page.wait_for_function(
            "document.querySelector('#callbacks h2 .count').textContent === '0'",
            timeout=5000)
        main = await page.inner_text("main")
        assert "Никто не ждёт, что вы перезвоните." in main
        assert "Пропущен" in await page.inner_text("#today-calls"), \
            "the missed call stays in today's calls; it is simply no longer waiting"
        assert "пропущ." not in main
        await page.wait_for_function(  # the talk bar follows the same event
            f"document.querySelector('#today-talk .tt-line').textContent.trim()"
            f".startsWith('{int((total + 30) // 60)} мин')", timeout=5000)
        text, talked, left = await talk_line(page)
        assert talked + left == 150, text
        # talk time is said once, in one format: no second figure, no decimals
        assert main.count("из 150") == 1 and "Осталось" not in main and "Сейчас" not in main
        assert not re.search(r"\d+[.,]\d+ мин", main), main
        await screenshot(page, "today-live-after-calls")
