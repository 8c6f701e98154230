"""Issue 17.1: a supervisor may not listen, whisper or barge into another team's call.

The queue call of ``inbound_queue.ami`` rang 101 and 102 and was answered by 102. Here
101 is moved to the team «Второй отдел», whose supervisor (250) tries to barge in: the
leg that only rang gives him no right, and no Originate reaches the PBX. The Sales
supervisor (201), whose manager talks, is connected.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from crm_core.db import create_engine, session_factory
from crm_core.people.models import User
from crm_core.people.users import add_user, ensure_team
from pbx_bridge.feed import TrackerFeed
from pbx_bridge.replay import read_events
from pbx_bridge.tracker import CallTracker
from telecrm.app import create_app
from telecrm.settings import Settings
from telecrm.web.keys import LISTENERS
from tests.app.test_web_api import FakeAmi
from tests.support.browser import PASSWORD, free_port, seed_world, seeded_password_hash
from tests.support.scenarios import party_rules

CAPTURE = Path(__file__).resolve().parents[1] / "captures" / "inbound_queue.ami"


def queue_call_answered_by_102() -> CallTracker:
    """The tracker at the moment 102 talks while 101's ringing leg is still on the call."""
    tracker = CallTracker(party_rules())
    feed = TrackerFeed(tracker)
    for event in read_events(CAPTURE):
        feed.feed(event)
        legs = [leg for call in tracker.live_calls() for leg in call.legs]
        if any(leg.extension == "102" and leg.answered_at for leg in legs):
            assert any(leg.extension == "101" and not leg.answered_at for leg in legs)
            return tracker
    raise AssertionError("102 never answered in the capture")


@pytest.fixture
async def floor(tmp_path: Path) -> AsyncIterator[tuple[str, FakeAmi, str]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed_world(url, tmp_path / "recordings")
    engine = create_engine(url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            other = await ensure_team(session, "Второй отдел")
            petrov = await session.scalar(select(User).where(User.extension == "101"))
            assert petrov is not None
            petrov.team_id = other.id
            await add_user(session, "volkov", name="Пётр Волков", role="supervisor",
                           extension="250", team="Второй отдел",
                           password_hash=seeded_password_hash())
    finally:
        await engine.dispose()
    tracker = queue_call_answered_by_102()
    (call,) = tracker.live_calls()
    fake = FakeAmi(delay=0.0)
    port = free_port()
    settings = Settings(data_dir=tmp_path, database_url=url,
                        recordings_source=tmp_path / "recordings",
                        ).with_overrides(http_host="127.0.0.1", http_port=port)
    app = create_app(settings, with_listener=False)
    app[LISTENERS] = {"main": SimpleNamespace(tracker=tracker, session=fake)}  # type: ignore[dict-item]
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", fake, call.linkedid
    finally:
        await runner.cleanup()


async def barge(base: str, username: str, linkedid: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(f"{base}/api/login",
                             json={"username": username, "password": PASSWORD}) as response:
            assert response.status == 200, await response.text()
            csrf = (await response.json())["csrf_token"]
        async with http.post(f"{base}/api/calls/{linkedid}/listen", json={"mode": "barge"},
                             headers={"X-CSRF-Token": csrf}) as response:
            return response.status, await response.json()


async def test_other_team_supervisor_may_not_barge_into_a_call_his_manager_only_rang(
        floor: tuple[str, FakeAmi, str]) -> None:
    base, fake, linkedid = floor
    status, body = await barge(base, "volkov", linkedid)
    assert status == 403, body
    assert body["error"] == ("По этому звонку говорит менеджер не вашего отдела: "
                             "слушать его нельзя.")
    assert fake.actions == [], "no Originate may reach the PBX"

    # The live board shows him nothing to listen to either.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(f"{base}/api/login",
                             json={"username": "volkov", "password": PASSWORD}) as response:
            assert response.status == 200
        async with http.get(f"{base}/api/calls/live") as response:
            assert (await response.json())["calls"] == []

    status, body = await barge(base, "sokolova", linkedid)
    assert status == 202, body
    (action,) = fake.actions
    assert action["Channel"] == "PJSIP/201" and action["Context"] == "crm-barge"
    assert action["Exten"] == "102"
