"""Issue 17.12: a minimal public health answer, no 500 for oversized numbers, and security
headers on every response."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from pbx_bridge.tracker import CallTracker
from telecrm.app import create_app
from telecrm.settings import Settings
from telecrm.web.keys import LISTENERS
from tests.support.browser import PASSWORD, free_port, seed_world

HUGE = "99999999999999999999"
TOO_BIG = "В запросе слишком большое число: такого номера или суммы не бывает."
CYRILLIC = re.compile("[А-Яа-яЁё]")


class Ami:
    def __init__(self, up: bool) -> None:
        self.connected = asyncio.Event()
        if up:
            self.connected.set()
        self.last_error = None if up else "cannot reach 10.0.0.5:5038: connection refused"


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[web.Application, str]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed_world(url, tmp_path / "recordings")
    port = free_port()
    settings = Settings(data_dir=tmp_path, database_url=url,
                        recordings_source=tmp_path / "recordings",
                        ).with_overrides(http_host="127.0.0.1", http_port=port)
    app = create_app(settings, with_listener=False)
    listeners: dict[str, Any] = {"main": SimpleNamespace(session=Ami(True),
                                                        tracker=CallTracker())}
    app[LISTENERS] = listeners  # type: ignore[assignment]
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class Signed:
    def __init__(self, base: str) -> None:
        self.base = base
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def login(self, username: str) -> Signed:
        async with self.http.post(f"{self.base}/api/login",
                                  json={"username": username, "password": PASSWORD}) as r:
            assert r.status == 200
            self.csrf = (await r.json())["csrf_token"]
        return self

    async def request(self, method: str, path: str, **kw: Any) -> tuple[int, str, Any]:
        headers = {"X-CSRF-Token": self.csrf, **kw.pop("headers", {})}
        async with self.http.request(method, self.base + path, headers=headers,
                                     allow_redirects=False, **kw) as r:
            text = (await r.read()).decode("utf-8", "replace")
            if r.content_type == "application/json":
                text = json.dumps(json.loads(text), ensure_ascii=False)
            return r.status, text, r.headers


# -- /healthz -------------------------------------------------------------------------------


async def test_health_is_minimal_for_the_public_and_detailed_for_admins(
        served: tuple[web.Application, str]) -> None:
    app, base = served
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/healthz") as r:
            assert (r.status, await r.json()) == (200, {"status": "ok"})
    listeners = app[LISTENERS]
    listeners["main"].session = Ami(False)  # type: ignore[attr-defined]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/healthz") as r:
            text = (await r.read()).decode("utf-8", "replace")
            assert (r.status, await r.json()) == (503, {"status": "degraded"})
    assert "10.0.0.5" not in text and "5038" not in text
    for who in ("petrov", "sokolova", "marketer"):
        user = await Signed(base).login(who)
        try:
            status, text, _ = await user.request("GET", "/healthz")
            assert status == 503 and text == '{"status": "degraded"}', who
        finally:
            await user.http.close()
    admin = await Signed(base).login("admin")
    try:
        status, text, _ = await admin.request("GET", "/healthz")
    finally:
        await admin.http.close()
    assert status == 503 and "10.0.0.5:5038" in text and '"pbxes"' in text


# -- oversized numbers ------------------------------------------------------------------------


async def test_oversized_numbers_are_a_russian_4xx_never_a_500(
        served: tuple[web.Application, str]) -> None:
    _, base = served
    supervisor = await Signed(base).login("sokolova")
    admin = await Signed(base).login("admin")
    try:
        # the two requests of the issue
        status, text, _ = await supervisor.request("POST", "/api/clients/reassign",
                                                   data='{"client_ids":[1e20]}',
                                                   headers={"Content-Type": "application/json"})
        assert status == 400 and TOO_BIG in text, text
        status, text, _ = await supervisor.request("POST", f"/talktime/violations/{HUGE}",
                                                   data={"action": "confirm",
                                                         "csrf_token": supervisor.csrf})
        assert status == 404 and CYRILLIC.search(text), text
        for body in ('{"client_ids":[100000000000000000000]}', '{"client_ids":[2147483648]}',
                     '{"client_ids":[1], "owner_id": 1e400}', '{"client_ids":[NaN]}',
                     '{"client_ids":[-9223372036854775809]}'):
            status, text, _ = await supervisor.request(
                "POST", "/api/clients/reassign", data=body,
                headers={"Content-Type": "application/json"})
            assert status == 400 and CYRILLIC.search(text), (body, status, text)
        for path in (f"/api/sales/settings?team_id={HUGE}", f"/api/calls?client={HUGE}",
                     f"/api/calls?manager={HUGE}", f"/deals?pipeline={HUGE}"):
            status, text, _ = await admin.request("GET", path)
            assert status in (200, 400) and (status == 200 or CYRILLIC.search(text)), path
        # every route with an id in its path, as an admin (who may reach them all)
        routes = sorted({(r.method, r.resource.canonical) for r in served[0].router.routes()
                         if r.resource is not None and "{" in r.resource.canonical
                         and r.method in ("GET", "POST")})
        assert len(routes) > 20
        for method, canonical in routes:
            path = re.sub(r"\{[^}]+\}", HUGE, canonical)
            kw: dict[str, Any] = ({"json": {"client_ids": [int(HUGE[:18])], "id": int(HUGE[:18])}}
                                  if path.startswith("/api/") and method == "POST"
                                  else {"data": {"csrf_token": admin.csrf}})
            status, text, _ = await admin.request(method, path, **kw)
            assert status < 500, (method, path, status, text[:300])
            if status >= 400:
                assert CYRILLIC.search(text), (method, path, text[:300])
    finally:
        await supervisor.http.close()
        await admin.http.close()


# -- headers ----------------------------------------------------------------------------------


async def test_every_response_carries_the_security_headers(
        served: tuple[web.Application, str]) -> None:
    _, base = served
    manager = await Signed(base).login("petrov")
    try:
        answers = [await manager.request("GET", path) for path in (
            "/today", "/api/me", "/nosuch", "/api/nosuch", "/", "/calls.csv", "/healthz",
            "/static/app.js", "/favicon.ico", "/clients/99999")]
        answers.append(await manager.request("POST", "/api/calls/originate", json={}))
    finally:
        await manager.http.close()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/login") as r:
            answers.append((r.status, await r.text(), r.headers))
        async with http.get(f"{base}/ct.js?site=nosuch.example") as r:
            answers.append((r.status, await r.text(), r.headers))
    statuses = set()
    for status, _, headers in answers:
        statuses.add(status)
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1] \
            .split(";")[0]
        assert "Cross-Origin-Resource-Policy" not in headers  # /ct.js stays embeddable
    assert {200, 303, 404} <= statuses
    # a page's inline import map carries this response's nonce
    status, html, headers = answers[0]
    nonce = re.search(r"'nonce-([^']+)'", headers["Content-Security-Policy"])
    assert status == 200 and nonce is not None
    assert f'<script type="importmap" nonce="{nonce.group(1)}">' in html
    assert not re.search(r"<[^>]+\son[a-z]+=", html), "no inline event handlers"
