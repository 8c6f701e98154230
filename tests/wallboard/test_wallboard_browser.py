"""The wallboard on a 1920×1080 wall screen in a real browser, changing live.

The app listens to a stand-in PBX (a loopback AMI server) that plays the real capture
of a queue call (tests/captures/inbound_queue.ami) in steps, its times moved to now:
the caller joins queue «sales» and 101 and 102 ring; 102 answers; the caller hangs up.
The board, never reloaded, shows the caller waiting (his wait growing), then 102 in a
conversation, then the call among today's answered ones. Screenshots:
tests/artifacts/wallboard-*.png.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from crm_core.clock import utcnow
from crm_core.db import create_engine, session_factory
from crm_core.people.users import add_user, set_team_queue
from pbx_bridge.replay import read_events
from telecrm.settings import Settings
from telecrm.web.keys import LISTENER
from tests.support.browser import (
    ARTIFACTS,
    PASSWORD,
    chromium,
    seed_world,
    seeded_password_hash,
    serve_app,
)
from tests.support.scenarios import CAPTURES

pytestmark = pytest.mark.calendar

WALL = {"width": 1920, "height": 1080}
STATE_102 = "[data-ext='102'] .wb-state"
WAITED = 25.0  # seconds the caller has waited when the board first sees him
MORE_MANAGERS = [("104", "Павел Орлов"), ("105", "Нина Белова"), ("106", "Олег Зайцев"),
                 ("107", "Дарья Волкова"), ("108", "Юрий Лебедев"), ("109", "Елена Козлова")]


class SteppedAmi:
    """A stand-in PBX: accepts the login, answers every action, sends what it is given."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0
        self.writer: asyncio.StreamWriter | None = None
        self.logged_in = asyncio.Event()

    async def __aenter__(self) -> SteppedAmi:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        with contextlib.suppress(Exception):
            while True:
                frame = await reader.readuntil(b"\r\n\r\n")
                action_id = next((line.split(b": ", 1)[1] for line in frame.split(b"\r\n")
                                  if line.lower().startswith(b"actionid")), b"")
                writer.write(b"Response: Success\r\nActionID: " + action_id + b"\r\n\r\n")
                await writer.drain()
                if frame.lower().startswith(b"action: login"):
                    self.writer = writer
                    self.logged_in.set()

    async def send(self, events: list[Mapping[str, str]]) -> None:
        assert self.writer is not None
        for event in events:
            self.writer.write(b"".join(f"{k}: {v}\r\n".encode() for k, v in event.items())
                              + b"\r\n")
        await self.writer.drain()


def capture_steps() -> list[list[dict[str, str]]]:
    """inbound_queue.ami moved so the call began WAITED seconds ago, cut into three steps:
    ringing (up to 102's DialBegin), answered (up to the BridgeEnter), the rest."""
    events = [dict(e) for e in read_events(CAPTURES / "inbound_queue.ami")]
    first = min(float(e["Timestamp"]) for e in events if "Timestamp" in e)
    shift = utcnow().timestamp() - WAITED - first
    for event in events:
        if "Timestamp" in event:
            event["Timestamp"] = f"{float(event['Timestamp']) + shift:.6f}"
    names = [e.get("Event") for e in events]
    ringing = [i for i, n in enumerate(names) if n == "DialBegin"][1] + 1
    answered = [i for i, n in enumerate(names) if n == "BridgeEnter"][1] + 1  # 102, caller
    return [events[:ringing], events[ringing:answered], events[answered:]]


async def more_managers(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            await set_team_queue(session, "Второй отдел", "support")
            for ext, name in MORE_MANAGERS:
                await add_user(session, f"m{ext}", name=name, role="manager", extension=ext,
                               team="Отдел продаж", password_hash=seeded_password_hash())
    finally:
        await engine.dispose()


async def wall_shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def text_of(selector: str) -> str:
    return f"(document.querySelector({selector!r}) || {{}}).textContent"


@pytest.mark.clock("2026-11-20T11:00:00+03:00")
async def test_the_wall_shows_a_queue_call_live(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed_world(db, tmp_path / "recordings")
    await more_managers(db)
    async with SteppedAmi() as pbx:
        settings = Settings(data_dir=tmp_path, database_url=db, ami_host="127.0.0.1",
                            ami_port=pbx.port, ami_user="telecrm", ami_secret="x",
                            recordings_source=tmp_path / "recordings")
        async with serve_app(settings, with_listener=True) as (app, base), \
                chromium() as browser:
            await asyncio.wait_for(app[LISTENER].session.connected.wait(), 15)
            await asyncio.wait_for(pbx.logged_in.wait(), 15)
            page = await browser.new_page()
            await page.set_viewport_size(WALL)
            await page.goto(base + "/login")
            await page.fill("input[name=username]", "sokolova")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url("**/team")
            await page.click("nav a[href='/wallboard']")
            await page.wait_for_url("**/wallboard")
            await page.wait_for_selector("#wb-live.on")  # the event stream is open

            queue = "[data-queue='sales']"
            assert await page.inner_text(f"{queue} h2") == "Отдел продаж · очередь sales"
            assert await page.inner_text(f"{queue} .wb-waiting .wb-value") == "0"
            assert await page.inner_text(f"{queue} .wb-answered .wb-value") == "0"
            names = await page.locator(".wb-manager .wb-name").all_inner_texts()
            assert names[:2] == ["Иван Петров", "Ольга Смирнова"] and len(names) == 8
            assert await page.inner_text("[data-ext='101'] .wb-calls") == "1 разговор"
            assert await page.inner_text("[data-ext='102'] .wb-state") == "свободен"
            assert await page.inner_text("[data-ext='101'] .wb-talk") == "1 мин"  # 65 s
            assert await page.inner_text("#wb-clock") == "11:00"
            await wall_shot(page, "wallboard-quiet")

            steps = capture_steps()
            await pbx.send(steps[0])  # the caller waits, 101 and 102 ring
            await page.wait_for_function(
                f"{text_of(queue + ' .wb-waiting .wb-value')} === '1'", timeout=15_000)
            assert await page.inner_text("[data-ext='101'] .wb-state") == "звонит"
            assert await page.inner_text("[data-ext='102'] .wb-state") == "звонит"
            caller = page.locator(f"{queue} .wb-callers .wb-number")
            assert await caller.inner_text() == "ООО Ромашка"  # the client of that number
            assert await caller.get_attribute("title") == "+7 916 123-45-67"
            first = await page.inner_text(f"{queue} .wb-longest .wb-value")
            assert first in ("0:25", "0:26", "0:27"), first
            # the wait counts up on the screen between events
            await page.wait_for_function(
                f"{text_of(queue + ' .wb-longest .wb-value')} >= '0:28'", timeout=5_000)
            assert await page.evaluate(
                "document.documentElement.scrollHeight <= innerHeight"
                " && document.documentElement.scrollWidth <= innerWidth")
            await wall_shot(page, "wallboard-waiting")

            await pbx.send(steps[1])  # 102 answers
            await page.wait_for_function(
                f"{text_of(queue + ' .wb-waiting .wb-value')} === '0'"
                f" && {text_of(STATE_102)} === 'в разговоре'",
                timeout=15_000)
            assert await page.inner_text("[data-ext='101'] .wb-state") == "свободен"
            assert await page.locator(f"{queue} .wb-callers li").count() == 0
            await wall_shot(page, "wallboard-talking")

            await pbx.send(steps[2])  # the call ends: one answered today, within 20 s
            await page.wait_for_function(
                f"{text_of(queue + ' .wb-answered .wb-value')} === '1'"
                f" && {text_of(STATE_102)} === 'свободен'",
                timeout=15_000)
            assert await page.inner_text(f"{queue} .wb-sl .wb-value") == "100\u00a0%"
            assert await page.inner_text(f"{queue} .wb-abandoned .wb-value") == "0"
            await wall_shot(page, "wallboard-after")

            # an admin's wall: every team's queue side by side, still on one screen
            await page.context.clear_cookies()
            await page.goto(base + "/login")
            await page.fill("input[name=username]", "admin")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_load_state()
            await page.goto(base + "/wallboard")
            titles = await page.locator(".wb-queue h2").all_inner_texts()
            assert titles == ["Второй отдел · очередь support", "Отдел продаж · очередь sales"]
            assert await page.locator(".wb-manager").count() == 9
            assert await page.evaluate(
                "document.documentElement.scrollHeight <= innerHeight"
                " && document.documentElement.scrollWidth <= innerWidth")
            await wall_shot(page, "wallboard-admin")
