"""The web app in a real browser (Debian's Chromium) against the sandbox Asterisk.

A manager signs in, sees his day, opens a client, presses *Позвонить*: the sandbox
rings his phone (the phones instance answers as the phone and then as the client)
and the call appears in the card's history by itself. An inbound call pops the
caller's card in his open browser within a second of the phone starting to ring.
Screenshots of every page (1366×768 and a phone) go to tests/artifacts/.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from telecrm.settings import Settings
from telecrm.web.keys import BUS, LISTENER
from tests.support.browser import PASSWORD, chromium, screenshot, seed_world, serve_app

pytestmark = pytest.mark.asterisk

POP_DEADLINE = 1.0  # seconds from the ringing event to the card on screen
RING_SECONDS = 6  # how long the CRM rings a manager's phone before it gives up


async def sign_in(page, base: str, username: str) -> None:  # type: ignore[no-untyped-def]
    await page.goto(base + "/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")


async def test_manager_day_click_to_call_and_screen_pop(sandbox, tmp_path: Path) -> None:
    pbx = sandbox.pbx
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    world = await seed_world(db, sandbox.monitor_dir)
    settings = Settings(data_dir=tmp_path, database_url=db, ami_host=pbx.ami_host,
                        ami_port=pbx.ami_port, ami_user=pbx.ami_user, ami_secret=pbx.ami_secret,
                        recordings_source=sandbox.monitor_dir, ring_seconds=RING_SECONDS)
    async with serve_app(settings, with_listener=True) as (app, base), \
            sandbox.phones() as phones, chromium() as browser:
        await asyncio.wait_for(app[LISTENER].session.connected.wait(), 15)
        page = await browser.new_page()
        await page.goto(base + "/")
        await screenshot(page, "login")

        await sign_in(page, base, "petrov")
        await page.wait_for_url("**/today")
        assert "Перезвонить" in await page.inner_text("main")
        assert "ООО Ромашка" in await page.inner_text("main")
        await screenshot(page, "today")

        # -- click-to-call from the client card; the history updates by itself --------
        client_id = world.clients["101"]
        await page.goto(f"{base}/clients/{client_id}")
        await page.wait_for_function("document.getElementById('live-dot').classList.contains('on')")
        rows = page.locator("#history li[data-kind=call]")
        before = await rows.count()
        await screenshot(page, "client")
        await phones.set_behaviour("101", mode="answer", answer_after=1)
        await phones.set_behaviour("79161234567", mode="answer", answer_after=1, talk=3)
        await page.locator(".phones button[data-call]").first.click()
        await page.wait_for_selector("#toast:not([hidden])")
        assert "Звоним на ваш телефон" in await page.inner_text("#toast")
        await page.wait_for_function(
            f"document.querySelectorAll('#history li[data-kind=call]').length > {before}",
            timeout=30_000)
        newest = rows.first
        await page.wait_for_function(
            "document.querySelector('#history li[data-kind=call] .status').textContent.trim()"
            " === 'Отвечен'",
            timeout=30_000)
        answered_at = time.monotonic()  # his phone had answered the click by then
        assert "Исходящий" in await newest.inner_text()
        await phones.wait_idle(timeout=30)
        await screenshot(page, "client-after-call")

        # -- his phone is busy: he is told so in Russian, not in Asterisk's words -------
        # past the 5 s in which a second click on the same number is taken as the same call
        await asyncio.sleep(max(0.0, 5.5 - (time.monotonic() - answered_at)))
        outcome = page.locator("dialog#call-outcome")  # the ended call asks for its result
        await outcome.wait_for(state="visible", timeout=10_000)
        await outcome.locator("button[data-close-outcome]").click()  # «Позже»
        await outcome.wait_for(state="hidden")
        await phones.set_behaviour("101", mode="busy")
        await page.locator(".phones button[data-call]").first.click()
        await page.wait_for_function(
            "document.getElementById('toast').textContent.includes('не состоялся')",
            timeout=30_000)
        toast = await page.inner_text("#toast")
        assert toast.startswith("Звонок не состоялся: ваш телефон"), toast
        assert not any("a" <= ch.lower() <= "z" for ch in toast), toast
        await screenshot(page, "client-call-refused")

        # -- his phone rings out: the page said «Звоним», and is told once the PBX gives up
        await phones.set_behaviour("101", mode="ring")
        await page.wait_for_selector(".phones button[data-call]:not([disabled])")
        await page.locator(".phones button[data-call]").first.click()
        await page.wait_for_function(
            "document.getElementById('toast').textContent.includes('Звоним')", timeout=10_000)
        clicked = time.monotonic()
        await page.wait_for_function(
            "document.getElementById('toast').textContent.includes('не состоялся')",
            timeout=(RING_SECONDS + 20) * 1000)
        assert time.monotonic() - clicked >= RING_SECONDS - 2, "told before the ring time"
        toast = await page.inner_text("#toast")
        assert toast == "Звонок не состоялся: ваш телефон не ответил.", toast
        await screenshot(page, "client-call-rang-out")
        await phones.set_behaviour("101", mode="answer", answer_after=1)

        # -- an inbound call pops the caller's card -------------------------------------
        for number, title in [("79161234567", "ООО Ромашка"), ("79990001122", "Новый лид")]:
            await page.goto(base + "/today")
            await page.wait_for_function(
                "document.getElementById('live-dot').classList.contains('on')")
            ringing_at: list[float] = []
            subscription = await app[BUS].subscribe("ext:101")

            async def watch(sub=subscription, out=ringing_at) -> None:  # type: ignore[no-untyped-def]
                async for event in sub:
                    if event.get("kind") == "ringing" and event.get("extension") == "101":
                        out.append(time.monotonic())
                        return

            watcher = asyncio.create_task(watch())
            await phones.set_behaviour("101", mode="answer", answer_after=4)
            await phones.client_calls(number, "74951110002", talk=2)
            await page.wait_for_selector("#screenpop:not([hidden])", timeout=15_000)
            shown_at = time.monotonic()
            await asyncio.wait_for(watcher, 5)
            await subscription.close()
            assert shown_at - ringing_at[0] < POP_DEADLINE, shown_at - ringing_at[0]
            assert title in await page.inner_text("#screenpop")
            if number == "79161234567":
                await page.wait_for_timeout(300)  # let the pop's slide-in animation finish
                await screenshot(page, "screenpop")
                assert await page.get_attribute("#screenpop a.open-card", "href") == \
                    f"/clients/{client_id}"
            await phones.wait_idle(timeout=30)
        await phones.reset_behaviours()

        # -- the supervisor's team page and the marketer's calls -------------------------
        response = await page.goto(base + "/team")
        assert response.status == 403, "the team page is for supervisors"
        supervisor = await browser.new_page()
        await supervisor.context.clear_cookies()
        await sign_in(supervisor, base, "sokolova")
        await supervisor.wait_for_url("**/team")
        assert "Иван Петров" in await supervisor.inner_text("main")
        await screenshot(supervisor, "team")
        await supervisor.goto(base + "/calls")
        await screenshot(supervisor, "calls")
