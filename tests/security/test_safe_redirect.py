"""Issue 17.3: no open redirect after sign-in (or anywhere a target comes from a request)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from telecrm.settings import Settings
from telecrm.web.redirects import local_path, local_referer
from tests.support.browser import PASSWORD, chromium, screenshot, seed_world, serve_app

ATTACK = "/%09/evil.example/phish.html"

BYPASSES = [
    "/\t/evil.example/phish.html",  # what aiohttp hands over for ATTACK
    ATTACK, "//evil.example", "///evil.example", "/\\evil.example", "\\\\evil.example",
    "/\\/evil.example", "https://evil.example", "http:/evil.example", "javascript:alert(1)",
    " /evil", "/\r\n/evil.example", "/%0d%0a/evil.example", "/%2F/evil.example",
    "/%2f%2fevil.example", "/%252F%252Fevil.example", "/%5Cevil.example",
    "/%5c%5cevil.example", "/\x00/evil.example", "/%00/evil.example", "/\u3000/evil.example",
    "/%E3%80%80/evil.example", "/\u200b/evil.example", "", "evil.example", "/" + "a" * 3000,
]


@pytest.mark.parametrize("target", BYPASSES)
def test_a_redirect_target_off_this_site_is_refused(target: str) -> None:
    assert local_path(target) == "/"
    assert local_path(target, default="/clients") == "/clients"


@pytest.mark.parametrize(("target", "kept"), [
    ("/calls/5", "/calls/5"),
    ("/reports/summary?from=2026-11-01&to=2026-11-30",
     "/reports/summary?from=2026-11-01&to=2026-11-30"),
    ("/clients?q=%D0%9E%D0%9E%D0%9E%20%D0%A0", "/clients?q=%D0%9E%D0%9E%D0%9E%20%D0%A0"),
    ("/clients?q=ООО", "/clients?q=%D0%9E%D0%9E%D0%9E"),
])
def test_a_path_on_this_site_is_kept(target: str, kept: str) -> None:
    assert local_path(target) == kept


def test_a_referer_counts_only_from_this_site() -> None:
    host = "crm.example:8080"
    assert local_referer("http://crm.example:8080/talktime?day=2026-11-20", host,
                         "/talktime") == "/talktime?day=2026-11-20"
    for referer in ("https://evil.example/talktime", "http://crm.example:8080.evil/x",
                    "javascript:alert(1)", "http://crm.example:8080//evil.example", None):
        assert local_referer(referer, host, "/talktime") == "/talktime"


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed_world(url, tmp_path / "recordings")
    settings = Settings(data_dir=tmp_path, database_url=url,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (_, base):
        yield base


async def test_sign_in_with_a_hostile_next_stays_on_our_site(served: str) -> None:
    base = served
    for target in (ATTACK, "/\t/evil.example/phish.html", "//evil.example", "/\\evil.example"):
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(f"{base}/login", params={"next": target}) as page:
                html = await page.text()
            assert "evil.example" not in html
            async with http.post(f"{base}/login", allow_redirects=False, data={
                    "username": "petrov", "password": PASSWORD, "next": target,
                    "csrf_token": _prelogin_token(html)}) as response:
                assert response.status == 303, await response.text()
                assert response.headers["Location"] == "/today"


def _prelogin_token(html: str) -> str:
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]


async def test_chromium_signed_in_through_a_hostile_next_lands_on_our_page(served: str) -> None:
    base = served
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{base}/login?next={ATTACK}")
        await page.fill("input[name=username]", "petrov")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_load_state("load")
        landed = urlsplit(page.url)
        assert f"{landed.scheme}://{landed.netloc}" == base, page.url
        assert landed.path == "/today"
        await screenshot(page, "security-hostile-next")
