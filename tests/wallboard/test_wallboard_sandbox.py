"""The wallboard during a real queue call on the sandbox Asterisk, in a real browser.

A client calls the queue's number (queue «sales»: 101 and 102 ring at once); nobody
answers for 8 s, then 102 does. Sokolova's board shows the caller waiting with his wait
growing and both phones ringing, then the caller gone and 102 in a conversation, then
the call among today's answered ones, without a reload. Screenshot:
tests/artifacts/wallboard-sandbox.png.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from telecrm.settings import Settings
from telecrm.web.keys import LISTENER
from tests.support.browser import ARTIFACTS, PASSWORD, chromium, seed_world, serve_app
from tests.support.scenarios import CLIENT, DID_QUEUE

pytestmark = pytest.mark.asterisk

QUEUE = "[data-queue='sales']"
WAITING = f"{QUEUE} .wb-waiting .wb-value"
LONGEST = f"{QUEUE} .wb-longest .wb-value"
STATE_102 = "[data-ext='102'] .wb-state"


def js_text(selector: str) -> str:
    return f"(document.querySelector({selector!r}) || {{}}).textContent"


def seconds(text: str) -> int:
    minutes, secs = text.split(":")
    return int(minutes) * 60 + int(secs)


async def test_a_caller_waits_on_the_board_until_answered(sandbox, tmp_path: Path) -> None:
    pbx = sandbox.pbx
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed_world(db, sandbox.monitor_dir)
    settings = Settings(data_dir=tmp_path, database_url=db, ami_host=pbx.ami_host,
                        ami_port=pbx.ami_port, ami_user=pbx.ami_user, ami_secret=pbx.ami_secret,
                        recordings_source=sandbox.monitor_dir)
    async with serve_app(settings, with_listener=True) as (app, base), \
            sandbox.phones() as phones, chromium() as browser:
        await asyncio.wait_for(app[LISTENER].session.connected.wait(), 15)
        page = await browser.new_page()
        await page.set_viewport_size({"width": 1920, "height": 1080})
        await page.goto(base + "/login")
        await page.fill("input[name=username]", "sokolova")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/team")
        await page.goto(base + "/wallboard")
        await page.wait_for_selector("#wb-live.on")
        assert await page.inner_text(WAITING) == "0"
        answered_before = int(await page.inner_text(f"{QUEUE} .wb-answered .wb-value"))

        await phones.set_behaviour("101", mode="ring")
        await phones.set_behaviour("102", answer_after=8)
        await phones.client_calls(CLIENT, DID_QUEUE, talk=3)

        await page.wait_for_function(f"{js_text(WAITING)} === '1'", timeout=15_000)
        assert await page.inner_text("[data-ext='101'] .wb-state") == "звонит"
        assert await page.inner_text("[data-ext='102'] .wb-state") == "звонит"
        first = seconds(await page.inner_text(LONGEST))
        await page.wait_for_function(
            f"(([m, s]) => 60 * m + +s)({js_text(LONGEST)}.split(':')) >= {first + 2}",
            timeout=6_000)  # his wait grows on the board
        await page.screenshot(path=str(ARTIFACTS / "wallboard-sandbox.png"))

        await page.wait_for_function(
            f"{js_text(WAITING)} === '0' && "
            f"{js_text(STATE_102)}"
            " === 'в разговоре'", timeout=15_000)
        assert await page.locator(f"{QUEUE} .wb-callers li").count() == 0

        await phones.wait_idle(timeout=30)
        await page.wait_for_function(
            f"{js_text(QUEUE + ' .wb-answered .wb-value')} === '{answered_before + 1}'",
            timeout=15_000)
        assert await page.inner_text("[data-ext='102'] .wb-state") == "свободен"
