"""Issue 17.12 in Chromium: every page works under the Content-Security-Policy.

Each role signs in and opens every page it has; the browser reports no refused script,
style or connection and no script error; the page's modules run (the live dot turns on,
a list with ``data-autosubmit`` sends its form) and no page can be framed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from telecrm.settings import Settings
from tests.support.browser import PASSWORD, World, chromium, screenshot, seed_world, serve_app

PAGES = {
    "petrov": ["/today", "/clients", "/clients/{client}", "/clients/{client}/edit",
               "/clients/new", "/calls", "/calls/{call}", "/tasks", "/deals", "/plan",
               "/talktime", "/qc", "/password", "/dialer"],
    "sokolova": ["/today", "/team", "/calls/live", "/tasks", "/reports", "/reports/summary",
                 "/reports/missed", "/talktime", "/talktime/settings", "/sales/settings",
                 "/qc/scripts", "/outcomes", "/wallboard", "/clients/{client}/merge", "/dialer",
                 "/dialer/settings", "/presence", "/routing"],
    "marketer": ["/calltracking"],
    "admin": ["/admin/users", "/admin/users/{user}", "/admin/mail", "/calls", "/admin/tokens",
              "/admin/webhooks", "/admin/webhooks/deliveries"],
}


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, World]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    world = await seed_world(url, tmp_path / "recordings")
    settings = Settings(data_dir=tmp_path, database_url=url,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (_, base):
        yield base, world


def watch(page: Any, problems: list[str]) -> None:
    def console(message: Any) -> None:
        text = message.text
        # A 404 of a resource is the seeded data (a recording without its time line), not
        # the policy; anything refused or thrown is.
        if (message.type == "error" and not text.startswith("Failed to load resource")) \
                or "Content Security Policy" in text or "Refused to" in text:
            problems.append(f"{page.url}: {text}")

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))


async def test_every_page_works_under_the_policy(served: tuple[str, World]) -> None:
    base, world = served
    ids = {"client": world.clients["101"], "call": world.calls["romashka_101"],
           "user": world.users["petrov"]}
    problems: list[str] = []
    async with chromium(bypass_csp=False) as browser:
        for username, paths in PAGES.items():
            await browser.clear_cookies()  # one profile: the previous role signs out
            page = await browser.new_page()
            watch(page, problems)
            await page.goto(base + "/login")
            await page.fill("input[name=username]", username)
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_load_state("load")
            for path in paths:
                response = await page.goto(base + path.format(**ids))
                assert response is not None and response.status == 200, (username, path)
                assert "script-src 'self' 'nonce-" in response.headers[
                    "content-security-policy"]
                await page.wait_for_load_state("networkidle")
                if path == "/today":  # the modules ran: the live event stream is connected
                    await page.wait_for_function(  # a function: no eval under the policy
                        "() => document.getElementById('live-dot').classList.contains('on')",
                        timeout=10_000)
                    await screenshot(page, f"csp-today-{username}")
                if path == "/tasks" and username == "sokolova":
                    await page.select_option("select[data-autosubmit]", index=1)
                    await page.wait_for_url("**/tasks?manager=*")
            await page.close()

        # No page of the CRM shows inside another site's frame.
        page = await browser.new_page()
        framed: list[str] = []
        page.on("console", lambda m: framed.append(m.text))
        await page.set_content(f'<iframe id="f" src="{base}/login"></iframe>')
        await page.wait_for_timeout(1000)
        frame = page.frame_locator("#f")
        assert await frame.locator("input[name=username]").count() == 0
    assert problems == []
