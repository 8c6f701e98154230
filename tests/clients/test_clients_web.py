"""The clients' pages and API for every role (and anonymous) on both backends: who may list,
find, create, edit, merge and reassign; a manager never finds another manager's client."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest
from sqlalchemy import func, select

from crm_core.audit import AuditLog
from crm_core.clients.models import Client
from crm_core.db import create_engine, session_factory
from telecrm.settings import Settings
from tests.support.browser import PASSWORD, World, seed_world, serve_app

pytestmark = pytest.mark.calendar  # seed_world's calls are today's

ROLES = ["petrov", "smirnova", "kuznetsov", "sokolova", "marketer", "admin"]
# Seeded clients by owner extension: ООО Ромашка (101), ИП Сидоров (102), АО Вектор (103).
SEES = {"petrov": {"101"}, "smirnova": {"102"}, "kuznetsov": {"103"},
        "sokolova": {"101", "102"}, "admin": {"101", "102", "103"}}
NAMES = {"101": "ООО Ромашка", "102": "ИП Сидоров", "103": "АО Вектор"}


@dataclass
class Crm:
    base: str
    url: str
    world: World
    http: dict[str, aiohttp.ClientSession]
    csrf: dict[str, str]
    anonymous: aiohttp.ClientSession

    async def call(self, who: str, method: str, path: str, body: Any = None
                   ) -> tuple[int, Any]:
        async with self.http[who].request(method, self.base + path, json=body,
                                          headers={"X-CSRF-Token": self.csrf[who]}) as r:
            return r.status, await r.json()

    async def page(self, who: str, path: str) -> tuple[int, str]:
        async with self.http[who].get(self.base + path, allow_redirects=False) as r:
            return r.status, await r.text()

    async def form(self, who: str, path: str, data: list[tuple[str, str]]
                   ) -> tuple[int, str, str]:
        """POST a page form; (status, Location, body)."""
        async with self.http[who].post(self.base + path, allow_redirects=False,
                                       data=[("csrf_token", self.csrf[who]), *data]) as r:
            return r.status, r.headers.get("Location", ""), await r.text()


@pytest.fixture
async def crm(db_url: str, tmp_path: Path) -> AsyncIterator[Crm]:
    world = await seed_world(db_url, tmp_path / "recordings")
    settings = Settings(data_dir=tmp_path, database_url=db_url,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (_, base):
        jar = lambda: aiohttp.CookieJar(unsafe=True)  # noqa: E731
        sessions = {name: aiohttp.ClientSession(cookie_jar=jar()) for name in ROLES}
        anonymous = aiohttp.ClientSession(cookie_jar=jar())
        csrf = {}
        try:
            for name in ROLES:
                async with sessions[name].post(f"{base}/api/login", json={
                        "username": name, "password": PASSWORD}) as response:
                    csrf[name] = (await response.json())["csrf_token"]
            crm = Crm(base, db_url, world, sessions, csrf, anonymous)
            # requisites and e-mails to be found by
            vector = world.clients["103"]
            status, _ = await crm.call("admin", "PATCH", f"/api/clients/{vector}", {
                "inn": "7736207543", "emails": ["office@vector.ru"]})
            assert status == 200
            status, _ = await crm.call("admin", "PATCH", f"/api/clients/{world.clients['102']}",
                                       {"inn": "500100732259", "emails": ["ip@sidorov.ru"]})
            assert status == 200
            yield crm
        finally:
            for http in [*sessions.values(), anonymous]:
                await http.close()


def _listed(html: str) -> set[str]:
    return set(re.findall(r'<td data-label="Клиент" class="cl-name"><span><a href="/clients/\d+">'
                          r"([^<]+)</a>", html))


async def test_anonymous_and_marketer_are_kept_out(crm: Crm) -> None:
    client = crm.world.clients["101"]
    for path in ["/clients", "/clients/new", f"/clients/{client}/edit",
                 f"/clients/{client}/merge"]:
        async with crm.anonymous.get(crm.base + path, allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"].startswith("/login")
        assert (await crm.page("marketer", path))[0] == 403, path
    async with crm.anonymous.get(crm.base + "/api/clients?q=ромашка") as response:
        assert response.status == 401
    for method, path in [("POST", "/api/clients"), ("PATCH", f"/api/clients/{client}"),
                         ("POST", f"/api/clients/{client}/merge"),
                         ("POST", f"/api/clients/{client}/contacts")]:
        async with crm.anonymous.request(method, crm.base + path, json={}) as response:
            assert response.status == 401, path
    status, body = await crm.call("marketer", "GET", "/api/clients?q=ромашка")
    assert status == 403 and body["error"] == "Клиенты недоступны для вашей роли."
    status, _ = await crm.call("marketer", "POST", "/api/clients", {"name": "X"})
    assert status == 403
    assert "/clients" not in (await crm.page("marketer", "/calls"))[1].split("<main")[0]


async def test_each_role_lists_and_finds_only_whom_he_may_open(crm: Crm) -> None:
    for who, owners in SEES.items():
        status, html = await crm.page(who, "/clients")
        assert status == 200
        assert _listed(html) == {NAMES[o] for o in owners}, who
        assert 'href="/clients"' in html.split("<main")[0], "the navigation leads here"
        status, body = await crm.call(who, "GET", "/api/clients")
        assert {c["name"] for c in body["clients"]} == {NAMES[o] for o in owners}
    # every other manager's client: by phone in any form, name, INN and e-mail
    probes = {
        "101": ["8 916 123-45-67", "+7(916)1234567", "9161234567", "ромашка"],
        "102": ["8 903 123 45 67", "9031234567", "сидоров", "500100732259", "ip@sidorov.ru"],
        "103": ["89265550011", "+7 926 555-00-11", "вектор", "7736207543", "office@vector.ru",
                "vector.ru"],
    }
    for who in ("petrov", "smirnova", "kuznetsov", "sokolova", "admin"):
        for owner, typed_all in probes.items():
            for typed in typed_all:
                expected = [NAMES[owner]] if owner in SEES[who] else []
                status, body = await crm.call(who, "GET", f"/api/clients?q={typed}")
                assert status == 200
                assert [c["name"] for c in body["clients"]] == expected, (who, typed)
                status, html = await crm.page(who, f"/clients?q={typed}")
                assert _listed(html) == set(expected), (who, typed)
    status, body = await crm.call("petrov", "GET", "/api/clients?q=8 916 123-45-67")
    [found] = body["clients"]
    assert found["phones"] == ["+79161234567"] and found["owner"]["name"] == "Иван Петров"
    assert found["status"] == "potential" and body["next"] is None
    for bad in ("status=nope", "sort=x", "owner=abc", "as_of=2026-13-01", "cursor=%%%"):
        status, body = await crm.call("admin", "GET", f"/api/clients?{bad}")
        assert status == 400 and body["error"], bad


async def test_create_edit_and_a_number_already_taken(crm: Crm) -> None:
    status, body = await crm.call("petrov", "POST", "/api/clients", {
        "name": "ООО «Лютик»", "phones": ["8 (912) 000-00-01"], "inn": "7707083893",
        "emails": ["info@lutik.ru"], "region": "Москва",
        "contacts": [{"name": "Анна Ли", "position": "Бухгалтер", "phones": ["+79120000002"]}]})
    assert status == 201, body
    assert body["owner"]["name"] == "Иван Петров"  # a manager's own client
    assert body["inn"] == "7707083893" and body["emails"] == ["info@lutik.ru"]
    assert body["contacts"][0]["name"] == "Анна Ли" and body["contacts"][0]["phones"] == [
        "+79120000002"]
    lutik = body["id"]
    # a number another client has: refused with his name, whoever asks
    status, body = await crm.call("smirnova", "POST", "/api/clients", {
        "name": "Дубль", "phones": ["+7 912 000 00 01"]})
    assert status == 409 and body["code"] == "clients.phone_taken"
    assert body["error"] == "Этот номер уже у клиента «ООО «Лютик»» (+7 912 000-00-01)."
    status, body = await crm.call("petrov", "PATCH", f"/api/clients/{lutik}",
                                  {"phones": ["+79161234567"]})
    assert status == 409 and "«ООО Ромашка»" in body["error"]
    status, body = await crm.call("petrov", "PATCH", f"/api/clients/{lutik}",
                                  {"inn": "1234567890"})
    assert status == 400 and body["code"] == "clients.inn_invalid" and "ИНН" in body["error"]
    status, body = await crm.call("petrov", "PATCH", f"/api/clients/{lutik}",
                                  {"annual_potential": "1000000"})
    assert status == 403 and body["error"] == "Годовой потенциал задаёт руководитель отдела."
    status, body = await crm.call("petrov", "PATCH", f"/api/clients/{lutik}", {"nmae": "x"})
    assert status == 400
    status, body = await crm.call("sokolova", "PATCH", f"/api/clients/{lutik}",
                                  {"annual_potential": "1 200 000", "site": "lutik.ru"})
    assert status == 200 and body["annual_potential"] == "1200000.00"
    assert body["abc_group"] == "A" and body["site"] == "lutik.ru"
    # other people's clients: 404 (not even there), read-only ones 403
    sidorov = crm.world.clients["102"]
    status, _ = await crm.call("petrov", "PATCH", f"/api/clients/{sidorov}", {"name": "X"})
    assert status == 404
    status, _ = await crm.call("kuznetsov", "PATCH", f"/api/clients/{lutik}", {"name": "X"})
    assert status == 404
    status, body = await crm.call("sokolova", "POST", "/api/clients", {
        "name": "ИП Новиков", "owner_id": crm.world.users["smirnova"]})
    assert status == 201 and body["owner"]["name"] == "Ольга Смирнова"
    status, body = await crm.call("sokolova", "POST", "/api/clients", {
        "name": "ИП Чужой", "owner_id": crm.world.users["kuznetsov"]})
    assert status == 400 and body["code"] == "clients.owner_invalid"
    # contacts through the API
    status, person = await crm.call("petrov", "POST", f"/api/clients/{lutik}/contacts", {
        "name": "Олег", "emails": ["oleg@lutik.ru"]})
    assert status == 201 and person["emails"] == ["oleg@lutik.ru"]
    status, person = await crm.call("petrov", "PATCH",
                                    f"/api/clients/{lutik}/contacts/{person['id']}",
                                    {"name": "Олег Иванов", "position": "Снабженец"})
    assert status == 200 and person["position"] == "Снабженец" and person["emails"] == []
    status, _ = await crm.call("smirnova", "PATCH",
                               f"/api/clients/{lutik}/contacts/{person['id']}", {"name": "X"})
    assert status == 404


async def test_page_forms_per_role(crm: Crm) -> None:
    mine, theirs, far = (crm.world.clients[e] for e in ("101", "102", "103"))
    expected = {  # path: status per role
        "/clients/new": {"petrov": 200, "sokolova": 200, "admin": 200},
        f"/clients/{mine}/edit": {"petrov": 200, "smirnova": 404, "kuznetsov": 404,
                                  "sokolova": 200, "admin": 200},
        f"/clients/{theirs}/edit": {"petrov": 404, "smirnova": 200, "sokolova": 200},
        f"/clients/{far}/edit": {"sokolova": 404, "admin": 200},
        f"/clients/{mine}/merge": {"petrov": 403, "smirnova": 403, "sokolova": 200,
                                   "admin": 200},
        f"/clients/{mine}/merge?with={far}": {"sokolova": 404, "admin": 200},
        "/clients?status=nope": {"petrov": 400},
    }
    for path, statuses in expected.items():
        for who, status in statuses.items():
            assert (await crm.page(who, path))[0] == status, (path, who)
    # the card shows the buttons to whom they are for
    for who, edit, merge in (("petrov", True, False), ("sokolova", True, True),
                             ("admin", True, True)):
        html = (await crm.page(who, f"/clients/{mine}"))[1]
        assert ("Редактировать" in html) is edit and ("Объединить с…" in html) is merge, who

    # save the card through the form: refused with the sentence, then saved
    status, _, html = await crm.form("petrov", f"/clients/{mine}/edit", [
        ("name", "ООО Ромашка"), ("inn", "7707083894"), ("phone", "+79161234567")])
    assert status == 400 and "ИНН «7707083894» неверный" in html
    assert 'value="7707083894"' in html, "what was typed stays in the form"
    status, location, _ = await crm.form("petrov", f"/clients/{mine}/edit", [
        ("name", "ООО Ромашка"), ("inn", "7707083893"), ("phone", "+79161234567"),
        ("phone", ""), ("email", "hello@romashka.ru")])
    assert status == 303 and location == f"/clients/{mine}?done=saved"
    html = (await crm.page("petrov", location))[1]
    assert "Карточка сохранена." in html and "7707083893" in html
    for who, path, status_expected in (
            ("smirnova", f"/clients/{mine}/edit", 404),
            ("marketer", f"/clients/{mine}/edit", 403),
            ("smirnova", f"/clients/{mine}/contacts", 404),
            ("petrov", f"/clients/{theirs}/contacts", 404)):
        status, _, _ = await crm.form(who, path, [("name", "X")])
        assert status == status_expected, (who, path)
    # a person added on the page; archiving him is the supervisor's
    status, location, _ = await crm.form("petrov", f"/clients/{mine}/contacts", [
        ("name", "Пётр Сидоров"), ("position", "Директор"), ("phone", "8 916 000 11 22"),
        ("email", "petr@romashka.ru")])
    assert status == 303 and location.endswith("done=contact_added#contacts")
    status, body = await crm.call("petrov", "GET", f"/api/clients/{mine}")
    [person] = body["contacts"]
    status, _, html = await crm.form("petrov", f"/clients/{mine}/contacts/{person['id']}/archive",
                                     [("action", "archive")])
    assert status == 403 and "руководитель" in html
    status, location, _ = await crm.form(
        "sokolova", f"/clients/{mine}/contacts/{person['id']}/archive", [("action", "archive")])
    assert status == 303
    status, body = await crm.call("petrov", "GET", f"/api/clients/{mine}")
    assert body["contacts"] == []  # archived, not deleted:
    engine = create_engine(crm.url)
    try:
        async with session_factory(engine)() as session:
            archived = await session.scalar(select(func.count()).select_from(AuditLog).where(
                AuditLog.entity == "contact", AuditLog.entity_id == person["id"]))
            assert archived == 2  # created, archived
    finally:
        await engine.dispose()
    # a new client through the form
    status, location, _ = await crm.form("smirnova", "/clients/new", [
        ("name", "ООО «Берёзка»"), ("phone", "8 (999) 111-22-33"), ("contact_name", "Ирина"),
        ("contact_phone", "8 999 111 22 44")])
    assert status == 303 and re.fullmatch(r"/clients/\d+\?done=created", location)
    html = (await crm.page("smirnova", location))[1]
    assert "ООО «Берёзка»" in html and "Ирина" in html and "Клиент создан." in html


async def test_merge_and_reassign_from_the_api_and_the_list(crm: Crm) -> None:
    mine, theirs, far = (crm.world.clients[e] for e in ("101", "102", "103"))
    status, body = await crm.call("petrov", "POST", f"/api/clients/{mine}/merge",
                                  {"duplicate_id": theirs})
    assert status == 403
    status, body = await crm.call("sokolova", "POST", f"/api/clients/{mine}/merge",
                                  {"duplicate_id": far})
    assert status == 404  # not her team's: she does not see it
    status, body = await crm.call("sokolova", "POST", f"/api/clients/{mine}/merge",
                                  {"duplicate_id": theirs})
    assert status == 200 and body["moved"]["calls"] == 1 and body["merged"] == theirs
    status, card = await crm.call("petrov", "GET", f"/api/clients/{mine}")
    assert sorted(p["e164"] for p in card["phones"]) == ["+79031234567", "+79161234567"]
    status, card = await crm.call("sokolova", "GET", f"/api/clients/{theirs}")
    assert card["archived_at"] and card["merged_into_id"] == mine
    html = (await crm.page("sokolova", f"/clients/{theirs}"))[1]
    assert "Этот клиент объединён с" in html and "Редактировать" not in html
    status, body = await crm.call("sokolova", "GET", "/api/clients?archived=1")
    assert [c["id"] for c in body["clients"]] == [theirs]

    # reassign from the list: ticked clients, a manager from the list, audited
    back = "/clients?q=ромашка"
    for who, code in (("petrov", 403), ("marketer", 403)):
        status, _, _ = await crm.form(who, "/clients/reassign", [
            ("client_id", str(mine)), ("owner_id", str(crm.world.users["smirnova"])),
            ("back", back)])
        assert status == code, who
    status, location, _ = await crm.form("sokolova", "/clients/reassign", [
        ("client_id", str(mine)), ("owner_id", str(crm.world.users["kuznetsov"])),
        ("back", back)])
    assert status == 303 and "error_text=" in location  # not her team's manager
    assert "Передавать можно только клиентов своего отдела" in (
        await crm.page("sokolova", location))[1]
    status, location, _ = await crm.form("sokolova", "/clients/reassign", [
        ("client_id", str(far)), ("owner_id", str(crm.world.users["smirnova"])),
        ("back", back)])
    assert status == 404
    status, location, _ = await crm.form("sokolova", "/clients/reassign", [
        ("client_id", str(mine)), ("owner_id", str(crm.world.users["smirnova"])),
        ("reason", "отпуск"), ("back", back)])
    assert status == 303 and unquote(location).startswith(back + "&done_text=")
    assert "Передано клиентов: 1." in (await crm.page("sokolova", location))[1]
    status, body = await crm.call("smirnova", "GET", "/api/clients?q=ромашка")
    assert [c["owner"]["name"] for c in body["clients"]] == ["Ольга Смирнова"]
    engine = create_engine(crm.url)
    try:
        async with session_factory(engine)() as session:
            audited = list(await session.scalars(select(AuditLog).where(
                AuditLog.entity == "client", AuditLog.entity_id == mine).order_by(AuditLog.id)))
            assert [a.action for a in audited][-2:] == ["merge", "update"]
            assert audited[-1].changes["reason"] == "отпуск"
            assert audited[-1].actor == "sokolova"
            assert await session.scalar(select(func.count()).select_from(Client)) == 3
    finally:
        await engine.dispose()
