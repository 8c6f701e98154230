"""Who sees what, endpoint by endpoint, for every role (and anonymous), on both backends.

A manager asking for another manager's call, client or recording gets 404, exactly
as for something that does not exist; role-wide refusals are 403.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from telecrm.settings import Settings
from telecrm.web.keys import BUS
from tests.support.browser import PASSWORD, World, fake_wav, seed_world, serve_app

# The lists, cards and talk time show today's seeded calls: those tests run at the
# calendar's tricky moments too (make test-calendar); sign-in, refusals and recordings by
# id hold no date.
calendar = pytest.mark.calendar

ROLES = ["petrov", "smirnova", "kuznetsov", "sokolova", "marketer", "admin"]
# Which seeded calls each user may see (see tests/support/browser.py: seed_world).
VISIBLE_CALLS = {
    "petrov": {"romashka_101", "missed_101"},
    "smirnova": {"sidorov_102"},
    "kuznetsov": {"vector_103"},
    "sokolova": {"romashka_101", "missed_101", "sidorov_102"},
    "marketer": {"romashka_101", "missed_101", "sidorov_102", "vector_103"},
    "admin": {"romashka_101", "missed_101", "sidorov_102", "vector_103"},
}
VISIBLE_CLIENTS = {  # by owner extension; None: 403 for the role
    "petrov": {"101"}, "smirnova": {"102"}, "kuznetsov": {"103"},
    "sokolova": {"101", "102"}, "marketer": None, "admin": {"101", "102", "103"},
}


@dataclass
class Crm:
    base: str
    world: World
    app: object
    http: dict[str, aiohttp.ClientSession]
    csrf: dict[str, str]
    anonymous: aiohttp.ClientSession


def jar() -> aiohttp.CookieJar:
    return aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1


async def login(http: aiohttp.ClientSession, base: str, username: str) -> str:
    async with http.post(f"{base}/api/login",
                         json={"username": username, "password": PASSWORD}) as response:
        assert response.status == 200, await response.text()
        return (await response.json())["csrf_token"]


@pytest.fixture
async def crm(db_url: str, tmp_path: Path) -> AsyncIterator[Crm]:
    world = await seed_world(db_url, tmp_path / "recordings")
    settings = Settings(data_dir=tmp_path, database_url=db_url,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (app, base):
        sessions = {name: aiohttp.ClientSession(cookie_jar=jar()) for name in ROLES}
        anonymous = aiohttp.ClientSession(cookie_jar=jar())
        try:
            csrf = {name: await login(sessions[name], base, name) for name in ROLES}
            yield Crm(base, world, app, sessions, csrf, anonymous)
        finally:
            for http in [*sessions.values(), anonymous]:
                await http.close()


async def status_of(http: aiohttp.ClientSession, url: str, **kwargs: object) -> int:
    async with http.get(url, allow_redirects=False, **kwargs) as response:
        await response.read()
        return response.status


# -- anonymous ----------------------------------------------------------------------------


async def test_anonymous_gets_401_from_the_api_and_the_sign_in_page_elsewhere(crm: Crm) -> None:
    w = crm.world
    call, client = w.calls["romashka_101"], w.clients["101"]
    for path in ["/api/calls", f"/api/calls/{call}", f"/api/calls/{call}/recording",
                 "/api/talktime", "/api/events", f"/api/clients/{client}", "/api/tasks",
                 "/api/me"]:
        async with crm.anonymous.get(crm.base + path) as response:
            assert response.status == 401, path
            assert (await response.json())["error"]
    for path in ["/api/calls/originate", "/api/logout"]:
        async with crm.anonymous.post(crm.base + path, json={"number": "89161234567"}) as r:
            assert r.status == 401, path
    for path in ["/today", "/calls", "/team", f"/clients/{client}", "/"]:
        async with crm.anonymous.get(crm.base + path, allow_redirects=False) as response:
            assert response.status == 303, path
            assert response.headers["Location"].startswith("/login")
    assert await status_of(crm.anonymous, crm.base + "/api/openapi.json") == 200
    assert await status_of(crm.anonymous, crm.base + "/login") == 200


# -- calls ----------------------------------------------------------------------------------


@calendar
async def test_call_list_and_details_per_role(crm: Crm) -> None:
    ids = {v: k for k, v in crm.world.calls.items()}
    for name in ROLES:
        async with crm.http[name].get(crm.base + "/api/calls") as response:
            assert response.status == 200
            body = await response.json()
        calls = body["calls"]
        assert body["next"] is None, "four calls fit one page"
        assert {ids[c["id"]] for c in calls} == VISIBLE_CALLS[name], name
        for call in calls:
            if name == "marketer":
                assert call["recordings"] == [], "marketers never get recordings"
        for call_name, call_id in crm.world.calls.items():
            status = await status_of(crm.http[name], f"{crm.base}/api/calls/{call_id}")
            assert status == (200 if call_name in VISIBLE_CALLS[name] else 404), (name,
                                                                                  call_name)
        for bad in ["999999", "0", "-1", "abc", "1.5", "99999999999999999999"]:
            assert await status_of(crm.http[name], f"{crm.base}/api/calls/{bad}") == 404


@calendar
async def test_call_period_parameters(crm: Crm) -> None:
    http = crm.http["admin"]
    base = crm.base + "/api/calls"
    assert await status_of(http, base + "?since=2000-01-01&until=2000-01-02") == 200
    async with http.get(base + "?since=2000-01-01&until=2000-01-02") as response:
        assert await response.json() == {"calls": [], "next": None}
    for query in ["?since=yesterday", "?until=2026-13-01", "?since=2026-02-30",
                  "?since=2026-01-02&until=2025-12-31", "?since=1899-12-31",
                  "?since=2000-01-01&until=2030-01-01", "?since=%00"]:
        async with http.get(base + query) as response:
            assert response.status == 400, query
            assert "error" in await response.json()


async def test_recordings_per_role_with_ranges(crm: Crm) -> None:
    recorded = crm.world.calls["romashka_101"]
    url = f"{crm.base}/api/calls/{recorded}/recording"
    expected = {"petrov": 200, "smirnova": 404, "kuznetsov": 404, "sokolova": 200,
                "marketer": 403, "admin": 200}
    for name, status in expected.items():
        assert await status_of(crm.http[name], url) == status, name
    http = crm.http["petrov"]
    async with http.get(url) as response:
        assert response.headers["Content-Type"] == "audio/wav"
        whole = await response.read()
    assert whole == fake_wav(seconds=1)
    async with http.get(url, headers={"Range": "bytes=10-19"}) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == f"bytes 10-19/{len(whole)}"
        assert await response.read() == whole[10:20]
    assert await status_of(http, url, headers={"Range": "bytes=999999-"}) == 416
    assert await status_of(http, url + "?index=5") == 400
    assert await status_of(http, url + "?index=x") == 400
    missed = crm.world.calls["missed_101"]
    assert await status_of(http, f"{crm.base}/api/calls/{missed}/recording") == 404


def test_recording_paths_never_leave_the_root(tmp_path: Path) -> None:
    from telecrm.web.api import recording_file

    root = tmp_path / "rec"
    root.mkdir()
    assert recording_file(root, "2026/11/23/a-mix.wav") == root.resolve() / "2026/11/23/a-mix.wav"
    for bad in ["../etc/passwd", "/etc/passwd", "2026/../../x.wav", "", "a\x00b", "\\x"]:
        assert recording_file(root, bad) is None, bad
    (tmp_path / "secret.wav").write_bytes(b"x")
    (root / "link.wav").symlink_to(tmp_path / "secret.wav")
    assert recording_file(root, "link.wav") is None, "a symlink out of the root is refused"


# -- clients, tasks, talk time ----------------------------------------------------------------


@calendar
async def test_client_cards_per_role(crm: Crm) -> None:
    for name in ROLES:
        for owner, client_id in crm.world.clients.items():
            url = f"{crm.base}/api/clients/{client_id}"
            status = await status_of(crm.http[name], url)
            visible = VISIBLE_CLIENTS[name]
            assert status == (403 if visible is None else 200 if owner in visible else 404), (
                name, owner)
            page = await status_of(crm.http[name], f"{crm.base}/clients/{client_id}")
            assert page == status, (name, owner, "the page agrees with the API")
    async with crm.http["petrov"].get(f"{crm.base}/api/clients/{crm.world.clients['101']}") as r:
        card = await r.json()
    assert card["name"] == "ООО Ромашка" and card["owner"]["extension"] == "101"
    assert [p["e164"] for p in card["phones"]] == ["+79161234567"]
    assert {c["id"] for c in card["calls"]} == {crm.world.calls["romashka_101"],
                                                crm.world.calls["missed_101"]}
    assert card["next_contact"]["kind"] == "callback", "the missed call asks for a callback"


@calendar
async def test_tasks_per_role(crm: Crm) -> None:
    expected = {"petrov": 1, "smirnova": 0, "kuznetsov": 0, "sokolova": 1, "admin": 1}
    for name, count in expected.items():
        async with crm.http[name].get(crm.base + "/api/tasks") as response:
            assert response.status == 200
            tasks = await response.json()
        assert len(tasks) == count, name
        for task in tasks:
            assert task["kind"] == "callback" and task["client_name"] == "ООО Ромашка"
    assert await status_of(crm.http["marketer"], crm.base + "/api/tasks") == 403
    assert await status_of(crm.http["petrov"], crm.base + "/api/tasks?date=nope") == 400


@calendar
async def test_talk_time_per_role(crm: Crm) -> None:
    expected = {"petrov": ["101"], "smirnova": ["102"], "kuznetsov": ["103"],
                "sokolova": ["101", "102"], "admin": ["101", "102", "103"]}
    for name, extensions in expected.items():
        async with crm.http[name].get(crm.base + "/api/talktime") as response:
            assert response.status == 200
            rows = await response.json()
        assert [r["extension"] for r in rows] == extensions, name
        for row in rows:
            assert row["target_seconds"] == 9000 and row["met"] is False
    async with crm.http["admin"].get(crm.base + "/api/talktime") as response:
        by_ext = {r["extension"]: r for r in await response.json()}
    assert by_ext["101"]["talk_seconds"] == 65.0 and by_ext["101"]["calls"] == 1
    assert by_ext["103"]["talk_seconds"] == 0 and by_ext["103"]["calls"] == 0
    assert await status_of(crm.http["marketer"], crm.base + "/api/talktime") == 403
    assert await status_of(crm.http["admin"], crm.base + "/api/talktime?date=2026-02-30") == 400
    async with crm.http["admin"].get(crm.base + "/api/talktime?date=2001-01-01") as response:
        assert all(r["talk_seconds"] == 0 for r in await response.json())


@calendar
async def test_pages_per_role(crm: Crm) -> None:
    expected = {  # path: status per role
        "/today": {"petrov": 200, "sokolova": 200, "admin": 200, "marketer": 303},
        "/team": {"petrov": 403, "sokolova": 200, "admin": 200, "marketer": 403},
        # a marketer has call tracking instead of the call log
        "/calls": {"petrov": 200, "sokolova": 200, "admin": 200, "marketer": 303},
        "/calls.csv": {"petrov": 200, "sokolova": 200, "admin": 200, "marketer": 403},
        "/calls?date=bad": {"petrov": 400},
    }
    for path, statuses in expected.items():
        for name, status in statuses.items():
            assert await status_of(crm.http[name], crm.base + path) == status, (path, name)
    async with crm.http["marketer"].get(crm.base + "/calls", allow_redirects=False) as r:
        assert r.headers["Location"] == "/calltracking"
    async with crm.http["marketer"].get(crm.base + "/calltracking") as response:
        html = await response.text()
    assert 'href="/calls"' not in html, "no call log in the marketer's navigation"
    async with crm.http["petrov"].get(crm.base + "/today") as response:
        html = await response.text()
    assert "Перезвонить" in html and "ИП Сидоров" not in html


# -- click-to-call ---------------------------------------------------------------------------


async def test_originate_refusals(crm: Crm) -> None:
    url = crm.base + "/api/calls/originate"

    async def post(name: str, **kwargs: object) -> tuple[int, dict]:
        headers = {"X-CSRF-Token": crm.csrf[name], **kwargs.pop("headers", {})}  # type: ignore[dict-item]
        async with crm.http[name].post(url, headers=headers, **kwargs) as response:
            return response.status, await response.json()

    assert (await post("marketer", json={"number": "89161234567"}))[0] == 403
    assert (await post("admin", json={"number": "89161234567"}))[0] == 403, "no extension"
    status, body = await post("petrov", json={"number": "89161234567"})
    assert status == 503 and body["code"] == "telephony.unavailable", "no AMI here: a clear 503"
    assert body["error"] == "Телефония недоступна: нет связи с АТС. Попробуйте через минуту."
    assert (await post("petrov", json={"number": "not a number"}))[0] == 400
    assert (await post("petrov", json={"number": 79161234567}))[0] == 400
    assert (await post("petrov", json={}))[0] == 400
    assert (await post("petrov", json=["x"]))[0] == 400
    assert (await post("petrov", data=b"{bad json",
                       headers={"Content-Type": "application/json"}))[0] == 400
    assert (await post("petrov", data=b"number=1", headers={
        "Content-Type": "application/x-www-form-urlencoded"}))[0] == 415
    big = b'{"number": "' + b"1" * 200_000 + b'"}'
    assert (await post("petrov", data=big, headers={"Content-Type": "application/json"}))[0] == 413
    async with crm.http["petrov"].post(url, json={"number": "89161234567"}) as response:
        assert response.status == 403, "no CSRF token"
    async with crm.http["petrov"].post(url, json={"number": "89161234567"},
                                       headers={"X-CSRF-Token": crm.csrf["smirnova"]}) as r:
        assert r.status == 403, "someone else's CSRF token"


# -- live events ------------------------------------------------------------------------------


async def read_events(http: aiohttp.ClientSession, url: str, into: list[tuple[str, dict]],
                      ready: asyncio.Event) -> None:
    import json

    async with http.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        kind = ""
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line == ": connected":
                ready.set()
            elif line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                into.append((kind, json.loads(line[6:])))


async def test_live_events_reach_only_those_who_may_see_them(crm: Crm) -> None:
    received: dict[str, list[tuple[str, dict]]] = {name: [] for name in ROLES}
    readies = {name: asyncio.Event() for name in ROLES}
    tasks = [asyncio.create_task(read_events(crm.http[name], crm.base + "/api/events",
                                             received[name], readies[name])) for name in ROLES]
    try:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in readies.values())), 10)
        event = {"kind": "ringing", "linkedid": "x-1", "extension": "101",
                 "direction": "inbound", "client_number": "+79161234567", "managers": [],
                 "rang": ["101"], "queue": None, "call_id": crm.world.calls["romashka_101"],
                 "client_id": crm.world.clients["101"], "client_name": "ООО Ромашка"}
        bus = crm.app[BUS]  # type: ignore[index]
        await bus.publish("calls", event)
        await bus.publish("ext:101", event)
        for _ in range(100):  # the manager's two events, however busy the machine
            if len(received["petrov"]) >= 2:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # and time for anything others should not get
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    kinds = {name: [kind for kind, _ in items] for name, items in received.items()}
    assert kinds["petrov"] == ["screenpop", "call"]
    pop = received["petrov"][0][1]
    assert pop["client"]["name"] == "ООО Ромашка" and pop["is_new_lead"] is False
    assert pop["number"] == "+79161234567"
    assert kinds["smirnova"] == [] and kinds["kuznetsov"] == []
    assert kinds["sokolova"] == ["call"], "the supervisor sees his team's calls, no pop"
    assert kinds["admin"] == ["call"] and kinds["marketer"] == ["call"]


# -- sign-in ------------------------------------------------------------------------------------


async def test_login_cookie_logout_and_csrf(crm: Crm) -> None:
    async with aiohttp.ClientSession(cookie_jar=jar()) as http:
        async with http.post(crm.base + "/api/login",
                             json={"username": "petrov", "password": PASSWORD}) as response:
            cookie = response.headers["Set-Cookie"]
            csrf = (await response.json())["csrf_token"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
        assert await status_of(http, crm.base + "/api/me") == 200
        async with http.post(crm.base + "/api/logout") as response:
            assert response.status == 403, "logout changes state: CSRF token required"
        async with http.post(crm.base + "/api/logout",
                             headers={"X-CSRF-Token": csrf}) as response:
            assert response.status == 200
        assert await status_of(http, crm.base + "/api/me") == 401
    async with crm.anonymous.post(crm.base + "/api/login",
                                  data="username=petrov&password=x") as response:
        assert response.status == 415, "login takes JSON only (cannot be forged by a form)"
    for body in [{"username": "petrov", "password": "wrong-password"},
                 {"username": "nobody", "password": PASSWORD}]:
        async with crm.anonymous.post(crm.base + "/api/login", json=body) as response:
            assert response.status == 401
            assert await response.json() == {"error": "Неверный логин или пароль.",
                                             "code": "auth.wrong_password"}


async def test_login_is_throttled_per_user_and_ip(crm: Crm) -> None:
    url = crm.base + "/api/login"
    for _ in range(5):
        async with crm.anonymous.post(url, json={"username": "smirnova",
                                                 "password": "wrong-password"}) as r:
            assert r.status == 401
    async with crm.anonymous.post(url, json={"username": "smirnova",
                                             "password": PASSWORD}) as response:
        assert response.status == 429, "even the right password waits now"
        assert int(response.headers["Retry-After"]) > 0
    async with crm.anonymous.post(url, json={"username": "kuznetsov",
                                             "password": PASSWORD}) as response:
        assert response.status == 200, "other users from the same address are not locked out"


async def test_sign_in_form_needs_its_token(crm: Crm) -> None:
    async with aiohttp.ClientSession(cookie_jar=jar()) as http:
        async with http.post(crm.base + "/login", data={"username": "petrov",
                                                        "password": PASSWORD}) as response:
            assert response.status == 403, "no double-submit token"
        async with http.get(crm.base + "/login") as response:
            html = await response.text()
        token = html.split('name="csrf_token" value="')[1].split('"')[0]
        async with http.post(crm.base + "/login", allow_redirects=False, data={
                "username": "petrov", "password": PASSWORD, "csrf_token": token,
                "next": "//evil.example/"}) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/today", "no open redirect"
        async with http.get(crm.base + "/today") as response:
            html = await response.text()
        csrf = html.split('name="csrf-token" content="')[1].split('"')[0]
        async with http.post(crm.base + "/logout", allow_redirects=False) as response:
            assert response.status == 403
        async with http.post(crm.base + "/logout", data={"csrf_token": csrf},
                             allow_redirects=False) as response:
            assert response.status == 303
        assert await status_of(http, crm.base + "/api/me") == 401
