"""People management through the real app over HTTP: admins only, the forms, the forced
password change, and switching a user off ending his sessions and live streams at once."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from crm_core.audit import AuditLog
from crm_core.db import create_engine, session_factory
from crm_core.people.models import User
from telecrm.live_events import PEOPLE_TOPIC, signed_out_message
from telecrm.settings import Settings
from telecrm.web.keys import BUS, WEB_CONFIG
from tests.support.browser import PASSWORD, World, seed_world, serve_app

ROLES = ["admin", "sokolova", "petrov", "smirnova", "marketer"]
PROMPTLY = 3.0  # seconds; the streams' own heartbeat check would take 15


@dataclass
class Crm:
    base: str
    world: World
    app: Any
    db: str
    http: dict[str, aiohttp.ClientSession]
    csrf: dict[str, str]


def jar() -> aiohttp.CookieJar:
    return aiohttp.CookieJar(unsafe=True)


async def api_login(http: aiohttp.ClientSession, base: str, username: str,
                    password: str = PASSWORD) -> dict[str, Any]:
    async with http.post(f"{base}/api/login",
                         json={"username": username, "password": password}) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def form_login(http: aiohttp.ClientSession, base: str, username: str,
                     password: str) -> str:
    """Sign in through the page's form; returns where the app sends him."""
    async with http.get(f"{base}/login") as response:
        token = re.search(r'name="csrf_token" value="([^"]+)"', await response.text())
    assert token is not None
    async with http.post(f"{base}/login", allow_redirects=False, data={
            "username": username, "password": password, "csrf_token": token.group(1)}) as r:
        assert r.status == 303, await r.text()
        return r.headers["Location"]


def page_csrf(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]*)"', html)
    assert found is not None
    return found.group(1)


@pytest.fixture
async def crm(tmp_path: Path) -> AsyncIterator[Crm]:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    world = await seed_world(db, tmp_path / "recordings")
    settings = Settings(data_dir=tmp_path, database_url=db,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (app, base):
        sessions = {name: aiohttp.ClientSession(cookie_jar=jar()) for name in ROLES}
        try:
            csrf = {name: (await api_login(sessions[name], base, name))["csrf_token"]
                    for name in ROLES}
            yield Crm(base, world, app, db, sessions, csrf)
        finally:
            for http in sessions.values():
                await http.close()


async def post(crm: Crm, who: str, path: str, data: dict[str, str] | None = None
               ) -> tuple[int, str, str]:
    """A form POST as ``who`` with his CSRF token: (status, Location, body)."""
    async with crm.http[who].post(crm.base + path, allow_redirects=False,
                                  data={"csrf_token": crm.csrf[who], **(data or {})}) as r:
        return r.status, r.headers.get("Location", ""), await r.text()


async def get(crm: Crm, who: str, path: str) -> tuple[int, str, str]:
    async with crm.http[who].get(crm.base + path, allow_redirects=False) as r:
        return r.status, r.headers.get("Location", ""), await r.text()


async def user_row(crm: Crm, username: str) -> User:
    engine = create_engine(crm.db)
    try:
        async with session_factory(engine)() as session:
            user = await session.scalar(select(User).where(User.username == username))
            assert user is not None
            return user
    finally:
        await engine.dispose()


async def read_events(http: aiohttp.ClientSession, url: str, into: list[str],
                      ready: asyncio.Event) -> int:
    """Follow an event stream until the server ends it; the event names go to ``into``."""
    async with http.get(url) as response:
        if response.status != 200:
            ready.set()
            return response.status
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line == ": connected":
                ready.set()
            elif line.startswith("event: "):
                into.append(line[7:])
        return 200


# -- who may ----------------------------------------------------------------------------------


async def test_every_people_route_is_for_admins_only(crm: Crm) -> None:
    petrov = crm.world.users["petrov"]
    sales = (await user_row(crm, "petrov")).team_id
    gets = ["/admin/users", f"/admin/users/{petrov}"]
    posts = [("/admin/users", {"username": "x", "name": "X", "role": "admin",
                               "password": "long-enough-1"}),
             (f"/admin/users/{petrov}", {"name": "Взломщик", "role": "admin"}),
             (f"/admin/users/{petrov}/deactivate", {}),
             (f"/admin/users/{petrov}/reactivate", {}),
             (f"/admin/users/{petrov}/password", {}),
             ("/admin/teams", {"name": "Чужой отдел"}),
             (f"/admin/teams/{sales}", {"name": "Переименован", "head_id": ""})]
    for who in ("petrov", "sokolova", "marketer"):
        for path in gets:
            status, _, body = await get(crm, who, path)
            assert status == 403, (who, path)
            assert "Пользователями и отделами управляет администратор." in body
        for path, data in posts:
            assert (await post(crm, who, path, data))[0] == 403, (who, path)
    async with aiohttp.ClientSession(cookie_jar=jar()) as anonymous:
        for path in gets:
            async with anonymous.get(crm.base + path, allow_redirects=False) as r:
                assert r.status == 303 and r.headers["Location"].startswith("/login")
        for path, data in [*posts, ("/password", {"current": "x", "new": "y"})]:
            async with anonymous.post(crm.base + path, data=data, allow_redirects=False) as r:
                assert r.status == 303 and r.headers["Location"].startswith("/login"), path
        async with anonymous.get(crm.base + "/password", allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"].startswith("/login")
        async with anonymous.post(crm.base + "/api/me/password",
                                  json={"current": PASSWORD, "new": "y" * 8}) as r:
            assert r.status == 401
    after = await user_row(crm, "petrov")
    assert (after.name, after.role, after.active, after.must_change_password) == (
        "Иван Петров", "manager", True, False), "nothing was changed by the refusals"
    status, _, body = await get(crm, "admin", "/admin/users")
    assert status == 200 and "Иван Петров" in body and "Отдел продаж" in body
    assert 'href="/admin/users"' in (await get(crm, "admin", "/team"))[2], "in the admin's nav"
    for who, home in (("sokolova", "/team"), ("petrov", "/today")):
        assert 'href="/admin/users"' not in (await get(crm, who, home))[2]


# -- the forms --------------------------------------------------------------------------------


async def test_admin_creates_and_edits_users_and_teams(crm: Crm) -> None:
    status, location, _ = await post(crm, "admin", "/admin/teams", {"name": "Опт"})
    assert (status, location) == (303, "/admin/users?done=team_created#teams")
    page = (await get(crm, "admin", "/admin/users"))[2]
    wholesale = re.search(r'<option value="(\d+)">Опт</option>', page)
    assert wholesale is not None
    new_user = {"username": "kozlov", "name": "Пётр Козлов", "role": "manager",
                "team_id": wholesale.group(1), "extension": "101",
                "password": "first-password", "must_change": "1"}
    status, _, body = await post(crm, "admin", "/admin/users", new_user)
    assert status == 409, "101 is Petrov's phone"
    assert "Внутренний номер 101 уже занят: он у пользователя Иван Петров." in body
    assert 'value="Пётр Козлов"' in body and "first-password" not in body, \
        "the form keeps what was typed, but never the password"
    status, location, _ = await post(crm, "admin", "/admin/users",
                                     {**new_user, "extension": "104"})
    assert status == 303 and location.endswith("?done=created")
    kozlov = await user_row(crm, "kozlov")
    assert (kozlov.team_id, kozlov.extension, kozlov.must_change_password) == (
        int(wholesale.group(1)), "104", True)
    status, _, body = await get(crm, "admin", location)
    assert status == 200 and "Пользователь создан." in body
    status, location, _ = await post(crm, "admin", f"/admin/users/{kozlov.id}", {
        "name": "Пётр Козлов", "role": "supervisor", "team_id": wholesale.group(1),
        "extension": ""})
    assert status == 303 and location.endswith("?done=saved")
    kozlov = await user_row(crm, "kozlov")
    assert (kozlov.role, kozlov.extension, kozlov.heads_team) == ("supervisor", None, True), \
        "the only supervisor of a team without a head heads it"
    status, _, body = await get(crm, "admin", f"/admin/users/{kozlov.id}")
    assert "Роль: Менеджер → Руководитель" in body and "Руководит отделом: нет → да" in body
    # the team page: rename, and Sokolova heads it instead (she moves into it)
    status, _, _ = await post(crm, "admin", f"/admin/teams/{wholesale.group(1)}",
                              {"name": "Оптовый отдел",
                               "head_id": str(crm.world.users["sokolova"])})
    assert status == 303
    sokolova, kozlov = await user_row(crm, "sokolova"), await user_row(crm, "kozlov")
    assert sokolova.team_id == int(wholesale.group(1)) and sokolova.heads_team
    assert not kozlov.heads_team
    status, _, body = await post(crm, "admin", f"/admin/teams/{wholesale.group(1)}",
                                 {"name": "Оптовый отдел",
                                  "head_id": str(crm.world.users["petrov"])})
    assert status == 400 and "«Руководитель», а Иван Петров — нет" in body
    engine = create_engine(crm.db)
    async with session_factory(engine)() as session:
        actors = set(await session.scalars(select(AuditLog.actor).where(
            AuditLog.entity.in_(["user", "team"]))))
    await engine.dispose()
    assert actors == {"admin"}


async def test_a_reset_password_must_be_changed_before_anything_else(crm: Crm) -> None:
    smirnova = crm.world.users["smirnova"]
    status, _, body = await post(crm, "admin", f"/admin/users/{smirnova}/password")
    assert status == 200
    temporary = re.search(r'<code id="temporary-password">([^<]+)</code>', body)
    assert temporary is not None
    assert (await get(crm, "admin", f"/admin/users/{smirnova}"))[2].count(
        temporary.group(1)) == 0, "shown once"
    # her open session ended with the reset
    assert (await get(crm, "smirnova", "/api/me"))[0] == 401
    async with aiohttp.ClientSession(cookie_jar=jar()) as http:
        assert await form_login(http, crm.base, "smirnova", temporary.group(1)) == "/password"
        async with http.get(crm.base + "/today", allow_redirects=False) as r:
            assert (r.status, r.headers["Location"]) == (303, "/password")
        async with http.get(crm.base + "/password") as r:
            html = await r.text()
            assert r.status == 200 and "Вы вошли с временным паролем" in html
            assert 'data-live="1"' not in html and 'href="/today"' not in html
        csrf = page_csrf(html)
        for path in ("/api/calls", "/api/events", "/api/talktime"):
            async with http.get(crm.base + path) as r:
                assert r.status == 403, path
                body_json = await r.json()
                assert body_json["code"] == "people.password_change_required"
                assert body_json["error"].startswith("Сначала смените временный пароль")
        for data, sentence in [
                ({"current": "wrong-password", "new": "my-password-1",
                  "repeat": "my-password-1"}, "Текущий пароль введён неверно."),
                ({"current": temporary.group(1), "new": "my-password-1",
                  "repeat": "my-password-2"}, "Новый пароль и его повтор не совпадают."),
                ({"current": temporary.group(1), "new": "short", "repeat": "short"},
                 "Пароль должен быть не короче 8 символов.")]:
            async with http.post(crm.base + "/password", allow_redirects=False,
                                 data={"csrf_token": csrf, **data}) as r:
                assert r.status == 400 and sentence in await r.text()
        async with http.post(crm.base + "/password", allow_redirects=False, data={
                "csrf_token": csrf, "current": temporary.group(1), "new": "my-password-1",
                "repeat": "my-password-1"}) as r:
            assert (r.status, r.headers["Location"]) == (303, "/today")
        async with http.get(crm.base + "/today") as r:
            assert r.status == 200 and str(r.url).endswith("/today")
    assert not (await user_row(crm, "smirnova")).must_change_password


async def test_the_api_has_its_own_way_to_change_a_temporary_password(crm: Crm) -> None:
    petrov = crm.world.users["petrov"]
    body = (await post(crm, "admin", f"/admin/users/{petrov}/password"))[2]
    temporary = re.search(r'<code id="temporary-password">([^<]+)</code>', body)
    assert temporary is not None
    async with aiohttp.ClientSession(cookie_jar=jar()) as http:
        signed = await api_login(http, crm.base, "petrov", temporary.group(1))
        assert signed["user"]["must_change_password"] is True
        headers = {"X-CSRF-Token": signed["csrf_token"]}
        async with http.get(crm.base + "/api/calls") as r:
            assert r.status == 403
        async with http.post(crm.base + "/api/me/password", headers=headers,
                             json={"current": "nope-nope", "new": "fresh-password"}) as r:
            assert r.status == 400 and (await r.json())["code"] == "people.password_wrong"
        async with http.post(crm.base + "/api/me/password", headers=headers, json={
                "current": temporary.group(1), "new": "fresh-password"}) as r:
            assert r.status == 200
        async with http.get(crm.base + "/api/calls") as r:
            assert r.status == 200


# -- switching off ---------------------------------------------------------------------------


async def test_switching_off_ends_sessions_and_event_streams_at_once(crm: Crm) -> None:
    assert crm.app[WEB_CONFIG].sse_heartbeat_seconds >= 15
    events: list[str] = []
    ready = asyncio.Event()
    stream = asyncio.create_task(read_events(crm.http["petrov"], crm.base + "/api/events",
                                             events, ready))
    others: list[str] = []
    other_ready = asyncio.Event()
    bystander = asyncio.create_task(read_events(crm.http["smirnova"],
                                                crm.base + "/api/events", others, other_ready))
    try:
        await asyncio.wait_for(asyncio.gather(ready.wait(), other_ready.wait()), 10)
        started = time.monotonic()
        status, location, _ = await post(crm, "admin",
                                         f"/admin/users/{crm.world.users['petrov']}/deactivate")
        assert status == 303 and location.endswith("?done=deactivated")
        assert await asyncio.wait_for(stream, PROMPTLY) == 200
        assert time.monotonic() - started < PROMPTLY
        assert events == ["signed_out"]
        assert not bystander.done(), "a colleague's stream goes on"
    finally:
        for task in (stream, bystander):
            task.cancel()
        await asyncio.gather(stream, bystander, return_exceptions=True)
    assert (await get(crm, "petrov", "/api/me"))[0] == 401
    assert (await get(crm, "petrov", "/today"))[0] == 303
    async with aiohttp.ClientSession(cookie_jar=jar()) as http:
        async with http.post(crm.base + "/api/login",
                             json={"username": "petrov", "password": PASSWORD}) as r:
            assert r.status == 401
        async with http.get(crm.base + "/api/events") as r:
            assert r.status == 401
    status, _, body = await get(crm, "admin", f"/admin/users/{crm.world.users['petrov']}")
    assert "Отключён" in body and "Завершено сеансов: 1" in body
    # switched on again, he signs in as before
    assert (await post(crm, "admin",
                       f"/admin/users/{crm.world.users['petrov']}/reactivate"))[0] == 303
    async with aiohttp.ClientSession(cookie_jar=jar()) as http:
        await api_login(http, crm.base, "petrov")


async def test_a_sign_out_announced_by_another_process_ends_streams(crm: Crm) -> None:
    """What another web process (or ``telecrm users deactivate`` with Redis) announces."""
    events: list[str] = []
    ready = asyncio.Event()
    stream = asyncio.create_task(read_events(crm.http["smirnova"], crm.base + "/api/events",
                                             events, ready))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        await crm.app[BUS].publish(PEOPLE_TOPIC, signed_out_message(
            crm.world.users["smirnova"]))
        assert await asyncio.wait_for(stream, PROMPTLY) == 200
    finally:
        stream.cancel()
        await asyncio.gather(stream, return_exceptions=True)
    assert events == ["signed_out"]


async def test_the_admin_cannot_switch_himself_off(crm: Crm) -> None:
    status, _, body = await post(crm, "admin",
                                 f"/admin/users/{crm.world.users['admin']}/deactivate")
    assert status == 403 and "Отключить самого себя нельзя." in body
    assert (await user_row(crm, "admin")).active


# -- the Today bar is a manager's -------------------------------------------------------------


@pytest.mark.calendar  # today's talk time: make test-calendar
async def test_only_managers_have_a_talk_time_bar(crm: Crm) -> None:
    status, _, html = await get(crm, "petrov", "/today")
    assert status == 200 and 'id="today-talk"' in html
    status, _, fragment = await get(crm, "petrov", "/today/talk")
    assert status == 200 and fragment.lstrip().startswith("<section")
    assert re.search(r"<b>1 мин</b> из 150", fragment), "65 s of talk is 1 whole minute"
    for who in ("sokolova", "admin"):
        status, _, html = await get(crm, who, "/today")
        assert status == 200 and 'id="today-talk"' not in html and "из 150" not in html
        assert (await get(crm, who, "/today/talk"))[0] == 404
    async with crm.http["sokolova"].get(crm.base + "/api/talktime/live") as r:
        rows = (await r.json())["managers"]
    assert {m["extension"] for m in rows} == {"101", "102"}, "the board lists managers only"
    json.dumps(rows)


async def test_admin_gives_a_user_his_devices_and_mobiles(crm: Crm) -> None:
    new_user = {"username": "kozlov", "name": "Пётр Козлов", "role": "manager", "team_id": "",
                "extension": "20104", "password": "first-password",
                "devices": "SIP/150010001\r\npjsip/kozlov-soft\r\n",
                "mobiles": "+7 916 000-00-01"}
    status, location, _ = await post(crm, "admin", "/admin/users", new_user)
    assert status == 303, "a five-digit extension is fine"
    kozlov = await user_row(crm, "kozlov")
    status, _, body = await get(crm, "admin", location)
    assert ">SIP/150010001\nPJSIP/kozlov-soft</textarea>" in body, "one per line, as stored"
    assert ">+7 916 000-00-01</textarea>" in body
    listed = (await get(crm, "admin", "/admin/users"))[2]
    row = re.search(r'<tr data-user="kozlov".*?</tr>', listed, re.S)
    assert row is not None and "<div>PJSIP/kozlov-soft</div>" in row.group(0)
    assert "<div>+7 916 000-00-01</div>" in row.group(0)
    # Petrov may not take Kozlov's mobile: one sentence, the form as typed.
    petrov = crm.world.users["petrov"]
    status, _, body = await post(crm, "admin", f"/admin/users/{petrov}", {
        "devices": "", "mobiles": "8 (916) 000-00-01"})
    assert status == 409
    assert "Мобильный номер +7 916 000-00-01 уже закреплён за пользователем Пётр Козлов." in body
    assert ">8 (916) 000-00-01</textarea>" in body
    status, _, body = await post(crm, "admin", f"/admin/users/{petrov}", {"devices": "101"})
    assert status == 400 and "например PJSIP/ivanov или SIP/150010001, а не «101»" in body
    # Editing the list: one device taken away, the mobile kept.
    status, _, _ = await post(crm, "admin", f"/admin/users/{kozlov.id}", {
        "devices": "SIP/150010001", "mobiles": "+79160000001"})
    assert status == 303
    body = (await get(crm, "admin", f"/admin/users/{kozlov.id}"))[2]
    assert ">SIP/150010001</textarea>" in body
    assert "Телефоны в Asterisk: SIP/150010001, PJSIP/kozlov-soft → SIP/150010001" in body
