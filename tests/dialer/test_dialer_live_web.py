"""Live prompts where the manager works his list, over HTTP: «Обзвон» and the task list
carry the box the prompts are drawn in (following only his own phone's calls), and his
event stream brings the live prompts of his own calls, never a colleague's.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from telecrm.live_events import CALLS_TOPIC, LIVE_PROMPT, extension_topic
from telecrm.settings import Settings
from telecrm.web.keys import BUS
from tests.dialer.test_dialer_browser import seed
from tests.recordings.test_recordings_e2e import login
from tests.support.browser import serve_app

pytestmark = [pytest.mark.calendar, pytest.mark.clock("2026-11-20T12:00:00+03:00")]


def live_event(linkedid: str, extension: str, client_id: int) -> dict[str, Any]:
    """The shape ``LivePrompts.event`` publishes."""
    return {"kind": LIVE_PROMPT, "linkedid": linkedid, "at": "2026-11-20T09:00:00+00:00",
            "extension": extension, "managers": [extension], "rang": [],
            "direction": "outbound", "queue": None, "call_id": None, "client_id": client_id,
            "client_name": "ООО Ромашка", "ended": False,
            "progress": {"script": "Холодный звонок", "stages": [], "next": None,
                         "objection": None},
            "transcript": {}, "partial": {}}


async def page(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as response:
        assert response.status == 200, url
        return await response.text()


async def test_the_dialer_and_the_task_list_carry_the_live_box(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed(db, tmp_path)
    settings = Settings(data_dir=tmp_path, database_url=db,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (_, base):
        petrov = await login(base, "petrov")
        boss = await login(base, "sokolova")
        try:
            dialer = await page(petrov, f"{base}/dialer")
            assert re.search(r'<div id="scenario" data-live-scope>\s*<div class="sc-live" '
                             r'id="live-prompt" data-live-own hidden', dialer)
            assert "live_prompts.js" not in dialer, "dialer.js imports it: one copy per page"
            for who in (petrov, boss):
                tasks = await page(who, f"{base}/tasks")
                assert "live_prompts.js" in tasks
                panels = re.findall(
                    r'data-scenario-src="/clients/(\d+)/scenario" data-live-scope>\s*'
                    r'<summary>Сценарий</summary>\s*'
                    r'<div class="sc-live" data-client="(\d+)" data-live-own hidden', tasks)
                assert panels and all(src == box for src, box in panels), panels
            card = await page(petrov, f"{base}/clients/{panels[0][0]}")
            assert '<section class="card" id="scenario" data-live-scope>' in card
        finally:
            await petrov.close()
            await boss.close()


async def test_his_stream_brings_his_calls_prompts_only(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed(db, tmp_path)
    settings = Settings(data_dir=tmp_path, database_url=db,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (app, base):
        petrov = await login(base, "petrov")
        try:
            async with petrov.get(f"{base}/api/events") as stream:
                assert stream.status == 200
                await stream.content.readline()  # open
                bus = app[BUS]
                colleague = live_event("w-2.0", "102", 1)  # as published: calls and ext:102
                await bus.publish(CALLS_TOPIC, colleague)
                await bus.publish(extension_topic("102"), colleague)
                own = live_event("w-1.0", "101", 1)
                await bus.publish(CALLS_TOPIC, own)
                await bus.publish(extension_topic("101"), own)
                frames: list[tuple[str, dict[str, Any]]] = []
                kind = ""
                async with asyncio.timeout(10):
                    while not frames:
                        line = (await stream.content.readline()).decode().strip()
                        if line.startswith("event: "):
                            kind = line.removeprefix("event: ")
                        elif line.startswith("data: ") and kind:
                            frames.append((kind, json.loads(line.removeprefix("data: "))))
                assert frames == [("live", own)]
        finally:
            await petrov.close()
