"""Talk-time pages and API through the real app: role visibility, live board, decisions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import select

from crm_core.db import create_engine, session_factory
from crm_core.people.models import User
from crm_core.talktime.metric import close_day
from telecrm.settings import Settings
from tests.support.browser import World, seed_world, serve_app, signed_in

pytestmark = pytest.mark.calendar  # dates relative to today: make test-calendar

TZ = ZoneInfo("Europe/Moscow")


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Any, str, World, str]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    today = datetime.now(TZ).date()
    calls_at = datetime.combine(today, time(0, 30), tzinfo=TZ).astimezone(UTC)
    world = await seed_world(url, tmp_path / "recordings", calls_at=calls_at)
    settings = Settings(data_dir=tmp_path, database_url=url,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (app, base):
        yield app, base, world, url


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as response:
        return response.status, await response.json()


async def test_report_live_and_roles(served: tuple[Any, str, World, str]) -> None:
    _, base, _, _ = served
    today = datetime.now(TZ).date()
    boss, petrov, marketer = [await signed_in(base, u)
                              for u in ("sokolova", "petrov", "marketer")]
    try:
        status, body = await get(boss, f"{base}/api/talktime/report?date={today}")
        assert status == 200
        rows = {m["extension"]: m for m in body["managers"]}
        assert set(rows) == {"101", "102"}  # his team only
        assert rows["101"]["talk_seconds"] == pytest.approx(65.0)
        assert rows["102"]["calls"] == 1
        status, body = await get(boss, f"{base}/api/talktime/report?from={today.replace(day=1)}"
                                       f"&to={today}")
        assert status == 200 and len(body["managers"][0]["days"]) == today.day
        status, own = await get(petrov, f"{base}/api/talktime/report")
        assert status == 200 and [m["extension"] for m in own["managers"]] == ["101"]
        assert (await get(marketer, f"{base}/api/talktime/live"))[0] == 403
        assert (await get(boss, f"{base}/api/talktime/report?from={today}"
                                f"&to={today - timedelta(days=1)}"))[0] == 400
        status, live = await get(boss, f"{base}/api/talktime/live")
        assert status == 200 and {"talk_minutes", "left_minutes", "projected_minutes",
                                  "on_call"} <= set(live["managers"][0])
        # the fixed route now counts by the same rules
        status, fixed = await get(boss, f"{base}/api/talktime?date={today}")
        assert status == 200 and {r["extension"] for r in fixed} == {"101", "102"}
    finally:
        for http in (boss, petrov, marketer):
            await http.close()


@pytest.mark.clock("2026-11-20T19:00:00+03:00")  # a Friday evening: a working day has ended
async def test_supervisor_excuses_and_confirms_violations(
        served: tuple[Any, str, World, str]) -> None:
    _, base, world, url = served
    today = datetime.now(TZ).date()
    engine = create_engine(url)
    async with session_factory(engine, writer=True)() as session, session.begin():
        managers = list(await session.scalars(select(User).where(User.role == "manager")))
        created = await close_day(session, managers, today, TZ)
    await engine.dispose()
    by_user = {v.user_id: v.id for v in created}
    boss = await signed_in(base, "sokolova")
    try:
        async with boss.get(f"{base}/talktime") as response:
            html = await response.text()
            assert response.status == 200 and "Нарушения нормы" in html
        csrf = html.split('name="csrf-token" content="')[1].split('"')[0]
        target = f"{base}/talktime/violations/{by_user[world.users['petrov']]}"
        async with boss.post(target, data={"csrf_token": csrf, "action": "excuse"},
                             allow_redirects=False) as response:
            assert response.status == 400  # an excuse needs a reason
        async with boss.post(target, data={"csrf_token": csrf, "action": "excuse",
                                           "reason": "Обучение"},
                             allow_redirects=False) as response:
            assert response.status == 303
        other_team = f"{base}/talktime/violations/{by_user[world.users['kuznetsov']]}"
        async with boss.post(other_team, data={"csrf_token": csrf, "action": "confirm"},
                             allow_redirects=False) as response:
            assert response.status == 404  # not his team's
        status, found = await get(boss, f"{base}/api/talktime/violations?date={today}")
        assert status == 200
        assert {v["extension"]: v["status"] for v in found} == {"101": "excused", "102": "open"}
    finally:
        await boss.close()
