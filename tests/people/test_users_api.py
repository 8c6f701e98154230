"""``/api/users`` through the real app: who may read and change people and their phones,
a phone held by another user refused with one sentence, garbage refused with a 400 that
says what is wrong, and every change in the audit log."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from crm_core.audit import AuditLog
from crm_core.db import create_engine, session_factory
from crm_core.people.models import User
from telecrm.settings import Settings
from tests.support.browser import PASSWORD, World, seed_world, serve_app
from tests.support.live import telecrm

ROLES = ["admin", "sokolova", "petrov", "marketer"]


@dataclass
class Crm:
    base: str
    world: World
    db: str
    http: dict[str, aiohttp.ClientSession]
    csrf: dict[str, str]

    async def call(self, who: str, method: str, path: str, body: Any = None, *,
                   csrf: bool = True, raw: bytes | None = None) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": self.csrf[who]} if csrf else {}
        if raw is not None:
            headers["Content-Type"] = "application/json"
        async with self.http[who].request(method, self.base + path, headers=headers,
                                          json=body if raw is None else None,
                                          data=raw) as response:
            return response.status, await response.json()


@pytest.fixture
async def crm(tmp_path: Path) -> AsyncIterator[Crm]:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    world = await seed_world(db, tmp_path / "recordings")
    settings = Settings(data_dir=tmp_path, database_url=db, password_hashing="light",
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (_, base):
        http = {name: aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
                for name in [*ROLES, "ivanov"]}
        try:
            csrf = {}
            for name in ROLES:
                async with http[name].post(f"{base}/api/login", json={
                        "username": name, "password": PASSWORD}) as response:
                    assert response.status == 200
                    csrf[name] = (await response.json())["csrf_token"]
            yield Crm(base, world, db, http, csrf)
        finally:
            for session in http.values():
                await session.close()


async def audit_rows(db: str, user_id: int) -> list[AuditLog]:
    engine = create_engine(db)
    try:
        async with session_factory(engine)() as session:
            return list(await session.scalars(
                select(AuditLog).where(AuditLog.entity == "user", AuditLog.entity_id == user_id)
                .order_by(AuditLog.id)))
    finally:
        await engine.dispose()


async def user_count(db: str) -> int:
    engine = create_engine(db)
    try:
        async with session_factory(engine)() as session:
            return int(await session.scalar(select(func.count()).select_from(User)) or 0)
    finally:
        await engine.dispose()


NEW_USER = {"username": "ivanov", "name": "Иван Иванов", "role": "manager",
            "password": "ivanov-password", "extension": "301",
            "devices": ["sip/150010001", "PJSIP/ivanov"], "mobiles": ["8 (916) 000-00-01"]}


# -- who may ----------------------------------------------------------------------------------


async def test_managers_and_marketers_may_not_read_or_change_people(crm: Crm) -> None:
    petrov = crm.world.users["petrov"]
    async with crm.http["ivanov"].get(f"{crm.base}/api/users") as response:  # not signed in
        assert (response.status, (await response.json())["error"]) == (401, "Войдите в систему.")
    for who in ("petrov", "marketer"):
        status, body = await crm.call(who, "GET", "/api/users")
        assert (status, body["error"]) == (403, "Список пользователей и их телефонов видят "
                                                 "руководитель (свой отдел) и администратор.")
        assert (await crm.call(who, "GET", f"/api/users/{petrov}"))[0] == 403
        status, body = await crm.call(who, "POST", "/api/users", NEW_USER)
        assert (status, body["error"]) == (
            403, "Пользователями и отделами управляет администратор.")
        status, body = await crm.call(who, "PATCH", f"/api/users/{petrov}",
                                      {"devices": ["PJSIP/mine"]})
        assert (status, body["code"]) == (403, "people.admin_only")
    assert await user_count(crm.db) == 6
    assert await audit_rows(crm.db, petrov) == []


async def test_a_supervisor_reads_his_own_team_only(crm: Crm) -> None:
    status, body = await crm.call("sokolova", "GET", "/api/users")
    assert status == 200
    assert sorted(u["username"] for u in body["users"]) == ["petrov", "smirnova", "sokolova"]
    assert [t["name"] for t in body["teams"]] == ["Отдел продаж"]
    petrov = next(u for u in body["users"] if u["username"] == "petrov")
    assert (petrov["extension"], petrov["team"]["name"], petrov["active"]) == (
        "101", "Отдел продаж", True)
    status, body = await crm.call("sokolova", "GET", f"/api/users/{crm.world.users['petrov']}")
    assert (status, body["name"]) == (200, "Иван Петров")
    # Someone of another team is not there to him.
    status, body = await crm.call("sokolova", "GET",
                                  f"/api/users/{crm.world.users['kuznetsov']}")
    assert (status, body["error"]) == (404, "Такого пользователя нет.")
    # Reading is all: he changes nobody, his own people included.
    status, body = await crm.call("sokolova", "PATCH", f"/api/users/{crm.world.users['petrov']}",
                                  {"mobiles": ["+7 916 000-00-09"]})
    assert (status, body["code"]) == (403, "people.admin_only")
    status, _ = await crm.call("sokolova", "POST", "/api/users", NEW_USER)
    assert status == 403 and await user_count(crm.db) == 6


async def test_admin_reads_everyone_and_never_a_password_hash(crm: Crm) -> None:
    status, body = await crm.call("admin", "GET", "/api/users")
    assert status == 200
    assert len(body["users"]) == 6 and len(body["teams"]) == 2
    text = str(body)
    assert "argon2" not in text and "password_hash" not in text
    assert all(set(u) >= {"role", "team", "extension", "devices", "mobiles", "active"}
               for u in body["users"])


async def test_a_change_needs_the_csrf_token(crm: Crm) -> None:
    petrov = crm.world.users["petrov"]
    status, body = await crm.call("admin", "PATCH", f"/api/users/{petrov}", {"name": "X"},
                                  csrf=False)
    assert (status, body["code"]) == (403, "request.csrf")
    status, _ = await crm.call("admin", "POST", "/api/users", NEW_USER, csrf=False)
    assert status == 403 and await user_count(crm.db) == 6


# -- what the admin does ----------------------------------------------------------------------


async def test_admin_creates_a_user_with_his_devices_and_mobiles(crm: Crm) -> None:
    sales = next(t["id"] for t in (await crm.call("admin", "GET", "/api/users"))[1]["teams"]
                 if t["name"] == "Отдел продаж")
    status, user = await crm.call("admin", "POST", "/api/users",
                                  {**NEW_USER, "team_id": sales})
    assert status == 201, user
    assert (user["name"], user["role"], user["team"]["name"], user["extension"]) == (
        "Иван Иванов", "manager", "Отдел продаж", "301")
    assert user["devices"] == ["SIP/150010001", "PJSIP/ivanov"]
    assert user["mobiles"] == ["+79160000001"]
    assert user["active"] is True
    assert "ivanov-password" not in str(user) and "argon2" not in str(user)
    (row,) = await audit_rows(crm.db, user["id"])
    assert (row.action, row.actor) == ("create", "admin")
    assert row.changes["devices"] == ["SIP/150010001", "PJSIP/ivanov"]
    assert row.changes["mobiles"] == ["+79160000001"]
    assert "ivanov-password" not in str(row.changes) and "argon2" not in str(row.changes)
    # The command line shows the same phones; his supervisor sees him; he signs in.
    listed = json.loads(telecrm("users", "list", "--format", "json", "--db", crm.db).stdout)
    assert next(u for u in listed if u["username"] == "ivanov")["devices"] == [
        "SIP/150010001", "PJSIP/ivanov"]
    status, team = await crm.call("sokolova", "GET", "/api/users")
    assert "ivanov" in [u["username"] for u in team["users"]]
    async with crm.http["ivanov"].post(f"{crm.base}/api/login", json={
            "username": "ivanov", "password": "ivanov-password"}) as response:
        assert response.status == 200


async def test_a_phone_held_by_another_user_is_refused_with_one_sentence(crm: Crm) -> None:
    status, _ = await crm.call("admin", "POST", "/api/users", NEW_USER)
    assert status == 201
    petrov = crm.world.users["petrov"]
    status, body = await crm.call("admin", "PATCH", f"/api/users/{petrov}", {
        "name": "Пётр Петров", "devices": ["PJSIP/101", "pjsip/ivanov"]})
    assert (status, body["code"]) == (409, "people.device_taken")
    assert body["error"] == "Телефон PJSIP/ivanov уже закреплён за пользователем Иван Иванов."
    status, body = await crm.call("admin", "PATCH", f"/api/users/{petrov}",
                                  {"mobiles": ["+7 916 000 00 01"]})
    assert (status, body["error"]) == (
        409, "Мобильный номер +7 916 000-00-01 уже закреплён за пользователем Иван Иванов.")
    status, body = await crm.call("admin", "POST", "/api/users", {
        **NEW_USER, "username": "ivanov2", "extension": "303", "mobiles": []})
    assert (status, body["code"]) == (409, "people.device_taken")
    # Nothing of a refused change was written: not even the name sent with the phone.
    status, body = await crm.call("admin", "GET", f"/api/users/{petrov}")
    assert (body["name"], body["devices"], body["mobiles"]) == ("Иван Петров", [], [])
    assert await audit_rows(crm.db, petrov) == []
    assert await user_count(crm.db) == 7


async def test_admin_edits_and_switches_off_a_user_audited(crm: Crm) -> None:
    status, ivanov = await crm.call("admin", "POST", "/api/users", NEW_USER)
    assert status == 201
    user_id = ivanov["id"]
    async with crm.http["ivanov"].post(f"{crm.base}/api/login", json={
            "username": "ivanov", "password": "ivanov-password"}) as response:
        assert response.status == 200
    teams = (await crm.call("admin", "GET", "/api/users"))[1]["teams"]
    second = next(t["id"] for t in teams if t["name"] == "Второй отдел")
    status, body = await crm.call("admin", "PATCH", f"/api/users/{user_id}", {
        "name": "Иван Сергеевич Иванов", "team_id": second, "extension": "302",
        "devices": ["PJSIP/ivanov", "PJSIP/302-soft"], "mobiles": []})
    assert status == 200, body
    assert (body["name"], body["team"]["name"], body["extension"]) == (
        "Иван Сергеевич Иванов", "Второй отдел", "302")
    assert (body["devices"], body["mobiles"]) == (["PJSIP/ivanov", "PJSIP/302-soft"], [])
    # The same values again change nothing and write nothing.
    assert (await crm.call("admin", "PATCH", f"/api/users/{user_id}",
                           {"extension": "302", "mobiles": []}))[0] == 200
    status, body = await crm.call("admin", "PATCH", f"/api/users/{user_id}", {"active": False})
    assert (status, body["active"]) == (200, False)
    async with crm.http["ivanov"].get(f"{crm.base}/api/me") as response:
        assert response.status == 401, "switched off: his session ended at once"
    status, body = await crm.call("admin", "PATCH", f"/api/users/{user_id}", {"active": True})
    assert (status, body["active"]) == (200, True)
    created, updated, off, on = await audit_rows(crm.db, user_id)
    assert [r.action for r in (created, updated, off, on)] == [
        "create", "update", "deactivate", "reactivate"]
    assert all(r.actor == "admin" for r in (created, updated, off, on))
    assert updated.changes["extension"] == ["301", "302"]
    assert updated.changes["team"] == [None, "Второй отдел"]
    assert updated.changes["devices"] == [["SIP/150010001", "PJSIP/ivanov"],
                                          ["PJSIP/ivanov", "PJSIP/302-soft"]]
    assert updated.changes["mobiles"] == [["+79160000001"], []]
    assert off.changes["sessions_ended"] == 1
    # The admin cannot switch himself off, nor lose the last admin.
    status, body = await crm.call("admin", "PATCH", f"/api/users/{crm.world.users['admin']}",
                                  {"active": False})
    assert (status, body["error"]) == (403, "Отключить самого себя нельзя.")
    status, body = await crm.call("admin", "PATCH", f"/api/users/{crm.world.users['admin']}",
                                  {"role": "manager"})
    assert (status, body["code"]) == (409, "people.last_admin")


# -- garbage ----------------------------------------------------------------------------------

GARBAGE = [
    ({**NEW_USER, "phone": "101"}, "Неизвестное поле phone."),
    ({**NEW_USER, "devices": "PJSIP/ivanov"},
     "Поле devices должно быть списком телефонных номеров."),
    ({**NEW_USER, "mobiles": [79160000001]},
     "Поле mobiles должно быть списком телефонных номеров."),
    ({**NEW_USER, "devices": ["ivanov"]},
     "Телефон в Asterisk записывается как технология/имя, например PJSIP/ivanov или "
     "SIP/150010001, а не «ivanov»."),
    ({**NEW_USER, "devices": ["Local/101@from-internal"]},
     "Телефон в Asterisk записывается как технология/имя, например PJSIP/ivanov или "
     "SIP/150010001, а не «Local/101@from-internal»."),
    ({**NEW_USER, "mobiles": ["позвонить Ивану"]}, "«позвонить Ивану» — не номер телефона."),
    ({**NEW_USER, "extension": 201}, "Поле extension — внутренний номер (цифры)."),
    ({**NEW_USER, "extension": "1"}, "Внутренний номер — от 2 до 8 цифр, а не «1»."),
    ({**NEW_USER, "name": "   "}, "Укажите имя."),
    ({**NEW_USER, "name": "Иван\x00"}, "Поле name содержит управляющие символы: уберите их."),
    ({**NEW_USER, "role": "boss"}, "Неизвестная роль «boss»: выберите менеджера, "
                                   "руководителя, маркетолога или администратора."),
    ({**NEW_USER, "password": "short"}, "Пароль должен быть не короче 8 символов."),
    ({k: v for k, v in NEW_USER.items() if k != "password"},
     "Заполните поле password (непустая строка)."),
    ({**NEW_USER, "team_id": "1"}, "Поле team_id должно быть целым положительным числом."),
    ({**NEW_USER, "must_change_password": "yes"}, "Поле must_change_password — true или false."),
    ({**NEW_USER, "username": "ivan ivanov"}, "Логин — от 1 до 100 символов без пробелов."),
]


@pytest.mark.parametrize(("body", "sentence"), GARBAGE)
async def test_garbage_is_a_400_that_says_what_is_wrong(crm: Crm, body: dict[str, Any],
                                                         sentence: str) -> None:
    status, answer = await crm.call("admin", "POST", "/api/users", body)
    assert (status, answer["error"]) == (400, sentence)
    petrov = crm.world.users["petrov"]
    edit = {k: v for k, v in body.items() if k not in ("username", "password",
                                                        "must_change_password")}
    if edit != {k: v for k, v in NEW_USER.items() if k not in ("username", "password")}:
        status, answer = await crm.call("admin", "PATCH", f"/api/users/{petrov}", edit)
        assert (status, answer["error"]) == (400, sentence)
    assert await user_count(crm.db) == 6
    assert await audit_rows(crm.db, petrov) == []


@pytest.mark.parametrize(("raw", "sentence"), [
    (b"{not json", "Тело запроса — не JSON."),
    (b"[1, 2]", "Тело запроса должно быть объектом JSON."),
    (b'{"active": "no"}', "Поле active — true или false."),
    (b'{"team_id": 99999}', "Такого отдела нет."),
])
async def test_a_broken_body_is_refused_with_a_sentence(crm: Crm, raw: bytes,
                                                        sentence: str) -> None:
    petrov = crm.world.users["petrov"]
    status, answer = await crm.call("admin", "PATCH", f"/api/users/{petrov}", raw=raw)
    assert answer["error"] == sentence and status in (400, 404)
    assert await audit_rows(crm.db, petrov) == []
