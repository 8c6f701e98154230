"""The JSON API of integrations: an admin creates, lists and revokes API tokens and
registers, lists and switches off webhook endpoints, with the pages' services, audit and
Russian sentences; the token and the secret are shown once; other roles and any API
token are refused; the operations are in the OpenAPI document."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from crm_core.audit import AuditLog
from telecrm.web.openapi import openapi_document
from tests.support.db_fixtures import db_url_fixture  # noqa: F401
from tests.support.floor import Floor, served_floor


@pytest.fixture
async def floor(db_url: str, tmp_path: Path) -> AsyncIterator[Floor]:
    async with served_floor(Floor, db_url, tmp_path) as crm:
        yield crm


async def _bearer(floor: Floor, token: str, method: str, path: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.request(
            method, floor.base + path, headers={"Authorization": f"Bearer {token}"}) as r:
        return r.status, await r.json()


async def test_tokens_created_listed_revoked_by_the_admin(floor: Floor) -> None:
    petrov = floor.world.users["petrov"]
    http = await floor.login("admin")
    async with http.post(floor.base + "/api/tokens", headers={"X-CSRF-Token": floor.csrf["admin"]},
                         json={"name": "  1С  выгрузка ", "user_id": petrov,
                               "scopes": ["calls:read", "clients:write"]}) as response:
        assert response.status == 201, await response.text()
        assert response.headers["Cache-Control"] == "no-store"
        created = await response.json()
    token = created["token"]
    assert token.startswith("tcrm_") and created["prefix"] == token[:12]
    assert (created["name"], created["user"]["username"], created["revoked"]) == (
        "1С выгрузка", "petrov", False)
    assert created["scopes"] == ["calls:read", "clients:read", "clients:write"]
    assert created["described"] == ["Звонки и записи — чтение",
                                    "Клиенты, контакты, заметки — чтение и запись"]

    status, listed = await floor.call("admin", "GET", "/api/tokens")
    assert status == 200 and [t["id"] for t in listed["tokens"]] == [created["id"]]
    assert "token" not in listed["tokens"][0] and token not in str(listed)

    # the token works for what it may do, and never on the tokens' own routes
    assert (await _bearer(floor, token, "GET", "/api/calls"))[0] == 200
    status, refused = await _bearer(floor, token, "GET", "/api/tokens")
    assert (status, refused["code"]) == (403, "integrations.token_route_refused")

    status, revoked = await floor.call("admin", "POST", f"/api/tokens/{created['id']}/revoke")
    assert status == 200 and revoked["revoked"] and revoked["revoked_at"]
    assert (await _bearer(floor, token, "GET", "/api/calls"))[0] == 401
    status, missing = await floor.call("admin", "POST", "/api/tokens/999999/revoke")
    assert (status, missing["code"], missing["error"]) == (
        404, "integrations.token_not_found", "Такого токена нет.")

    audit = await floor.rows(select(AuditLog.action, AuditLog.actor).where(
        AuditLog.entity == "api_token").order_by(AuditLog.id))
    assert [tuple(row) for row in audit] == [("create", "admin"), ("revoke", "admin")]


@pytest.mark.parametrize(("body", "code", "sentence"), [
    ({"name": "X", "user_id": 1, "scopes": ["nope:read"]}, "integrations.scope_unknown",
     "Неизвестное право доступа «nope:read»."),
    ({"name": "X", "user_id": 1, "scopes": []}, "integrations.scopes_missing",
     "Отметьте хотя бы одно право: чтение или запись раздела."),
    ({"name": "X", "user_id": 1, "scopes": "calls:read"}, "request.string_list",
     "Поле scopes должно быть списком строк."),
    ({"name": "X", "user_id": 1, "scopes": ["calls:read"], "admin": True},
     "request.unknown_field", "Неизвестное поле admin."),
    ({"name": " ", "user_id": 1, "scopes": ["calls:read"]}, "request.string_required",
     "Заполните поле name (непустая строка)."),
])
async def test_bad_token_requests_get_one_russian_sentence(
        floor: Floor, body: dict, code: str, sentence: str) -> None:
    status, answer = await floor.call("admin", "POST", "/api/tokens", body)
    assert (status, answer["code"], answer["error"]) == (400, code, sentence)
    status, listed = await floor.call("admin", "GET", "/api/tokens")
    assert listed["tokens"] == []


async def test_webhooks_registered_listed_switched_off(floor: Floor) -> None:
    status, created = await floor.call("admin", "POST", "/api/webhooks", {
        "name": "ERP", "url": "https://erp.example.com/telecrm",
        "events": ["lead.created", "call.ended"]})
    assert status == 201, created
    assert created["secret"].startswith("whsec_") and created["active"] is True
    assert created["events"] == ["call.ended", "lead.created"]
    status, listed = await floor.call("admin", "GET", "/api/webhooks")
    assert status == 200 and "secret" not in listed["endpoints"][0]
    assert created["secret"] not in str(listed)
    assert listed["events"]["lead.created"] == "Новая заявка"

    status, off = await floor.call("admin", "PATCH", f"/api/webhooks/{created['id']}",
                                   {"active": False})
    assert status == 200 and off["active"] is False
    status, answer = await floor.call("admin", "PATCH", f"/api/webhooks/{created['id']}", {})
    assert (status, answer["code"]) == (400, "request.boolean_required")

    status, local = await floor.call("admin", "POST", "/api/webhooks", {
        "name": "Внутри", "url": "http://127.0.0.1:9000/", "events": ["deal.won"]})
    assert (status, local["code"]) == (400, "integrations.url_private")
    assert local["error"].startswith("Адрес 127.0.0.1 — в локальной сети")

    status, log = await floor.call("admin", "GET", "/api/webhooks/deliveries?state=failed")
    assert (status, log) == (200, {"deliveries": []})
    status, answer = await floor.call("admin", "GET", "/api/webhooks/deliveries?state=x")
    assert (status, answer["code"]) == (400, "request.format_invalid")
    status, answer = await floor.call("admin", "POST", "/api/webhooks/deliveries/77/resend")
    assert (status, answer["code"]) == (404, "integrations.delivery_not_found")

    audit = await floor.rows(select(AuditLog.action).where(
        AuditLog.entity == "webhook_endpoint").order_by(AuditLog.id))
    assert [row[0] for row in audit] == ["create", "update"]


async def test_only_a_signed_in_admin(floor: Floor) -> None:
    for who in ("petrov", "sokolova", "marketer"):
        for method, path in (("GET", "/api/tokens"), ("GET", "/api/webhooks"),
                             ("POST", "/api/webhooks"), ("GET", "/api/webhooks/deliveries")):
            status, answer = await floor.call(who, method, path, {} if method == "POST" else None)
            assert (status, answer["code"]) == (403, "integrations.admin_only"), (who, path)
            assert answer["error"] == "API-токенами и вебхуками управляет администратор."
    status, _ = await floor.call(None, "GET", "/api/tokens")
    assert status == 401
    status, answer = await floor.call("admin", "POST", "/api/webhooks", {}, csrf=False)
    assert status == 403


def test_in_the_openapi_document_for_sessions_only() -> None:
    paths = openapi_document()["paths"]
    for path in ("/api/tokens", "/api/tokens/{id}/revoke", "/api/webhooks",
                 "/api/webhooks/{id}", "/api/webhooks/deliveries",
                 "/api/webhooks/deliveries/{id}/resend"):
        for operation in paths[path].values():
            assert operation["security"] == [{"session": []}]
            assert "x-token-scope" not in operation


async def test_tokens_from_the_command_line(tmp_path: Path) -> None:
    from tests.support.browser import seed_world
    from tests.support.live import telecrm

    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed_world(db, tmp_path / "recordings")
    made = telecrm("tokens", "create", "--db", db, "--name", "BI", "--user", "sokolova",
                   "--scope", "reports:read", "--scope", "calls:read")
    token = made.stdout.strip()
    assert token.startswith("tcrm_") and "\n" not in token
    assert made.stderr.strip() == "Токен «BI» для sokolova создан и выведен один раз: " \
                                  "сохраните его."
    listed = telecrm("tokens", "list", "--db", db, "--format", "json")
    [row] = json.loads(listed.stdout)
    assert (row["name"], row["user"], row["scopes"], row["revoked_at"]) == (
        "BI", "sokolova", ["calls:read", "reports:read"], None)
    assert token not in listed.stdout and row["prefix"] == token[:12]
    table = telecrm("tokens", "list", "--db", db).stdout
    assert "действует" in table and "BI" in table
    revoked = telecrm("tokens", "revoke", "--db", db, str(row["id"]))
    assert revoked.stdout.strip() == "Токен «BI» отозван: запросы с ним больше не принимаются."
    assert "отозван" in telecrm("tokens", "list", "--db", db).stdout
    refused = telecrm("tokens", "create", "--db", db, "--name", "X", "--user", "nobody",
                      "--scope", "calls:read", check=False)
    assert refused.returncode == 2 and refused.stderr.startswith("telecrm: Выберите активного")
    refused = telecrm("tokens", "create", "--db", db, "--name", "X", "--user", "petrov",
                      "--scope", "calls:delete", check=False)
    assert refused.returncode == 2
    assert refused.stderr.strip() == "telecrm: Неизвестное право доступа «calls:delete»."
    audit = await _audit(db)
    assert audit == [("create", "cli"), ("revoke", "cli")]


async def _audit(db: str) -> list[tuple[str, str]]:
    from crm_core.db import create_engine, session_factory

    engine = create_engine(db)
    try:
        async with session_factory(engine)() as session:
            rows = await session.execute(select(AuditLog.action, AuditLog.actor).where(
                AuditLog.entity == "api_token").order_by(AuditLog.id))
            return [(a, b) for a, b in rows]
    finally:
        await engine.dispose()
