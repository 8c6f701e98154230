"""``/api/wallboard`` and ``/wallboard`` through the real app: who may look, what he sees.

A supervisor sees his team's queue and managers, an admin every team's; a manager or a
marketer gets 403, nobody signed in 401. The day's figures and talk time come from the
stored calls (the seeded floor plus calls through queue «sales»).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from crm_core.calls.services import record_call
from crm_core.db import create_engine, session_factory
from tests.support.db_fixtures import db_url_fixture  # noqa: F401
from tests.support.floor import Floor, served_floor
from tests.wallboard.test_wallboard_figures import queue_call

pytestmark = pytest.mark.calendar

NOON = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # 12:00 in Moscow


class Board(Floor):
    async def get(self, who: str | None, path: str) -> tuple[int, Any]:
        http = await self.login(who) if who else aiohttp.ClientSession()
        async with http.get(self.base + path, allow_redirects=False) as response:
            body = (await response.json() if response.content_type == "application/json"
                    else await response.text())
        if who is None:
            await http.close()
        return response.status, body


async def add_calls(db_url: str, *calls: Any) -> None:
    engine = create_engine(db_url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            for data in calls:
                await record_call(session, data)
    finally:
        await engine.dispose()


@pytest.mark.clock("2026-11-20T12:00:00+03:00")
async def test_who_sees_the_wallboard(db_url: str, tmp_path: Path) -> None:
    async with served_floor(Board, db_url, tmp_path) as crm:
        await add_calls(db_url,
                        queue_call("q-1", NOON - timedelta(hours=2), wait=4, answered=True),
                        queue_call("q-2", NOON - timedelta(hours=1), wait=30, answered=True),
                        queue_call("q-3", NOON - timedelta(minutes=20), wait=9,
                                   answered=False))

        status, body = await crm.get("sokolova", "/api/wallboard")
        assert status == 200
        assert body["date"] == "2026-11-20" and body["service_level_seconds"] == 20
        assert body["telephony"] is False  # no PBX in this app: nothing live to show
        (sales,) = body["queues"]
        assert (sales["queue"], sales["team"]) == ("sales", "Отдел продаж")
        assert (sales["answered"], sales["abandoned"]) == (2, 1)
        assert sales["service_level"] == 33.3  # 1 of 3 within 20 s
        assert sales["average_wait_seconds"] == 14.3  # (4 + 30 + 9) / 3
        assert (sales["waiting"], sales["longest_wait_seconds"], sales["callers"]) == (0, None, [])
        managers = {m["extension"]: m for m in body["managers"]}
        assert set(managers) == {"101", "102"}  # his team's managers, not 103, not himself
        assert managers["101"]["state"] == "idle" and managers["101"]["state_label"] == "свободен"
        # talk time today as the talk-time board counts it (the manager legs' talk): the
        # seeded calls of 101 and 102; the queue calls above carry no manager leg
        assert managers["101"]["talk_seconds"] == 65.0
        assert managers["102"]["talk_seconds"] == 40.0
        assert managers["101"]["target_seconds"] == 150 * 60

        status, body = await crm.get("admin", "/api/wallboard")
        assert status == 200
        assert [q["queue"] for q in body["queues"]] == ["sales"]
        assert {m["extension"] for m in body["managers"]} == {"101", "102", "103"}

        for who in ("petrov", "marketer"):
            status, body = await crm.get(who, "/api/wallboard")
            assert status == 403, who
            assert body["error"] == "Табло — для руководителей и администраторов."
        status, _ = await crm.get(None, "/api/wallboard")
        assert status == 401

        status, page = await crm.get("sokolova", "/wallboard")
        assert status == 200 and "Табло · Отдел продаж" in page and 'id="wb-data"' in page
        status, page = await crm.get("petrov", "/wallboard")
        assert status == 403 and "Табло — для руководителей" in page
        status, _ = await crm.get(None, "/wallboard")
        assert status == 303  # to the sign-in page
        status, spec = await crm.get("admin", "/api/openapi.json")
        assert "/api/wallboard" in spec["paths"]


@pytest.mark.clock("2026-11-20T12:00:00+03:00")
async def test_a_paused_manager_shows_his_pause_and_a_call_outranks_it(
        db_url: str, tmp_path: Path) -> None:
    from sqlalchemy import select

    from crm_core.people.models import User
    from crm_core.presence.models import PresenceReason
    from crm_core.presence.services import set_presence

    async with served_floor(Board, db_url, tmp_path) as crm:
        engine = create_engine(db_url)
        try:
            async with session_factory(engine, writer=True)() as session, session.begin():
                smirnova = await session.scalar(select(User).where(User.username == "smirnova"))
                lunch = await session.scalar(
                    select(PresenceReason).where(PresenceReason.name == "Обед"))
                assert smirnova is not None and lunch is not None
                await set_presence(session, smirnova, smirnova, lunch.id)
        finally:
            await engine.dispose()
        status, body = await crm.get("sokolova", "/api/wallboard")
        assert status == 200
        managers = {m["extension"]: m for m in body["managers"]}
        assert (managers["102"]["state"], managers["102"]["state_label"]) == ("paused", "обед")
        assert managers["102"]["state_seconds"] is not None
        assert managers["101"]["state"] == "idle"


def test_a_call_outranks_a_pause() -> None:
    import dataclasses

    from crm_core.calls.snapshot import LegData
    from crm_core.wallboard.live import ManagerState, manager_state

    paused = manager_state("101", [], pause=("Обед", NOON))
    assert (paused.state, paused.label, paused.since) == (ManagerState.PAUSED, "обед", NOON)
    assert manager_state("101", [], registered=False, pause=("Обед", NOON)).state == \
        ManagerState.OFFLINE
    call = queue_call("r", NOON, wait=0, answered=False, status="in_progress")
    his_leg = LegData(uniqueid="r-m", channel="PJSIP/101-0001", role="manager", extension="101",
                      started_at=NOON, answered_at=NOON, ended_at=None, talk_seconds=0.0,
                      bridged_at=NOON)
    talking = dataclasses.replace(call, legs=(*call.legs, his_leg))
    assert manager_state("101", [talking], pause=("Обед", NOON)).state == ManagerState.TALKING
