"""API tokens: an admin creates one on the page (shown once, kept as a hash), another
system calls the API with it as its user within its scopes, the per-role rules still
apply, a revoked or unknown token is 401, and a token never passes a page's form."""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from crm_core.audit import AuditLog
from crm_core.clients.models import Client
from crm_core.db import create_engine, session_factory
from crm_core.integrations.models import ApiToken
from crm_core.integrations.scopes import FEATURES
from crm_core.people.management import deactivate_user
from crm_core.people.models import User
from telecrm.app import create_app
from telecrm.integrations.auth import ANY, NO_TOKENS, feature_of
from telecrm.settings import Settings
from tests.support.db_fixtures import db_url_fixture  # noqa: F401
from tests.support.floor import Floor, served_floor

pytestmark = pytest.mark.calendar  # the seeded calls are today's

TOKEN = re.compile(r'<code id="token-value">([^<]+)</code>')


class TokenFloor(Floor):
    async def create_token(self, name: str, user: str, scopes: list[str]) -> str:
        """The admin's form on /admin/tokens; the token read from the answer."""
        data = [("csrf_token", ""), ("name", name),
                ("user_id", str(self.world.users[user])),
                *(("scope", s) for s in scopes)]
        await self.login("admin")
        data[0] = ("csrf_token", self.csrf["admin"])
        async with self.http["admin"].post(self.base + "/admin/tokens", data=data) as response:
            assert response.status == 200, await response.text()
            assert response.headers["Cache-Control"] == "no-store"
            page = await response.text()
        found = TOKEN.search(page)
        assert found, page
        return html.unescape(found.group(1))

    async def bearer(self, token: str, method: str, path: str, body: Any = None,
                     **kwargs: Any) -> tuple[int, Any]:
        """A request of another system: the token, no cookie, no CSRF token."""
        async with aiohttp.ClientSession() as http, http.request(
                method, self.base + path, json=body,
                headers={"Authorization": f"Bearer {token}"}, **kwargs) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()


@pytest.fixture
async def floor(db_url: str, tmp_path: Path) -> AsyncIterator[TokenFloor]:
    async with served_floor(TokenFloor, db_url, tmp_path) as crm:
        yield crm


def _since() -> str:
    return (datetime.now(UTC) - timedelta(days=2)).date().isoformat()


async def test_token_acts_as_its_user_within_its_scopes(floor: TokenFloor) -> None:
    token = await floor.create_token("Выгрузка звонков", "petrov", ["calls:read"])
    assert token.startswith("tcrm_") and len(token) > 40
    # the manager's token sees exactly what the manager sees: his calls only
    status, own = await floor.bearer(token, "GET", f"/api/calls?since={_since()}")
    assert status == 200, own
    _, session_view = await floor.call("petrov", "GET", f"/api/calls?since={_since()}")
    _, admin_view = await floor.call("admin", "GET", f"/api/calls?since={_since()}")
    ids = {c["id"] for c in own["calls"]}
    assert ids == {c["id"] for c in session_view["calls"]}
    assert ids and ids < {c["id"] for c in admin_view["calls"]}
    assert all("101" in [a["extension"] for a in c["attempts"]] or c["client_id"]
               == floor.world.clients["101"] for c in own["calls"])
    other = floor.world.calls["vector_103"]  # another team's call
    status, body = await floor.bearer(token, "GET", f"/api/calls/{other}")
    assert status == 404
    # read only: calls:read reads calls, not clients, and changes nothing
    status, body = await floor.bearer(token, "GET", "/api/clients?q=Ромашка")
    assert status == 403 and body["code"] == "integrations.token_scope_missing"
    assert body["error"] == "У токена нет права «Клиенты, контакты, заметки — чтение»."
    status, body = await floor.bearer(token, "POST", "/api/calls/originate",
                                      {"number": "+79161234567"})
    assert status == 403 and body["code"] == "integrations.token_scope_missing"
    # routes of a person at a browser take no token
    for method, path in (("GET", "/api/me"), ("POST", "/api/logout"), ("GET", "/api/events")):
        status, body = await floor.bearer(token, method, path)
        assert status == 403 and body["code"] == "integrations.token_route_refused", path
    # last use is kept
    rows = await floor.rows(select(ApiToken.last_used_at, ApiToken.user_id))
    assert rows[0][0] is not None and rows[0][1] == floor.world.users["petrov"]


async def test_write_scope_changes_without_csrf_and_role_rules_still_apply(
        floor: TokenFloor) -> None:
    token = await floor.create_token("Сайт: заявки", "petrov", ["clients:write"])
    status, body = await floor.bearer(token, "POST", "/api/clients",
                                      {"name": "ООО Из сайта", "phones": ["+7 916 700-00-01"]})
    assert status == 201, body
    created = body["id"]
    owner = await floor.rows(select(Client.owner_id).where(Client.id == created))
    assert owner[0][0] == floor.world.users["petrov"]  # created as the token's user
    status, body = await floor.bearer(token, "GET", "/api/clients?q=Из сайта")
    assert status == 200 and [c["id"] for c in body["clients"]] == [created]  # write reads
    # the manager may not open another manager's client: nor may his token
    status, body = await floor.bearer(token, "GET", f"/api/clients/{floor.world.clients['103']}")
    assert status == 404
    # a marketer's token is a marketer: no client cards whatever its scopes
    marketer = await floor.create_token("BI", "marketer", ["clients:read", "calltracking:read"])
    status, body = await floor.bearer(marketer, "GET", "/api/clients?q=Ромашка")
    assert status == 403 and body["code"] != "integrations.token_scope_missing"
    status, body = await floor.bearer(marketer, "GET", "/api/ct/static")
    assert status == 200


async def test_unknown_and_revoked_tokens_are_401(floor: TokenFloor) -> None:
    for bad in ("tcrm_" + "x" * 43, "nonsense", ""):
        status, body = await floor.bearer(bad, "GET", f"/api/calls?since={_since()}")
        assert status == 401, bad
        assert set(body) == {"error", "code"} and body["code"] == "integrations.token_invalid"
        assert body["error"] == "Токен API неизвестен или отозван."
    token = await floor.create_token("Старая интеграция", "admin", ["calls:read"])
    status, _ = await floor.bearer(token, "GET", f"/api/calls?since={_since()}")
    assert status == 200
    (token_id,) = (await floor.rows(select(ApiToken.id)))[0]
    status, page = await floor.form("admin", "/admin/tokens/revoke", {"token_id": str(token_id)})
    assert status == 200 and "Токен отозван" in page and "отозван " in page
    status, body = await floor.bearer(token, "GET", f"/api/calls?since={_since()}")
    assert status == 401 and body["code"] == "integrations.token_invalid"
    # a cookie does not rescue a revoked token: the token decides on /api/
    http = await floor.login("admin")
    async with http.get(f"{floor.base}/api/calls?since={_since()}",
                        headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 401
    audit = await floor.rows(select(AuditLog.actor, AuditLog.action, AuditLog.changes)
                             .where(AuditLog.entity == "api_token").order_by(AuditLog.id))
    assert [(a, act) for a, act, _ in audit] == [("admin", "create"), ("admin", "revoke")]
    assert audit[0][2]["scopes"] == ["calls:read"] and audit[0][2]["user"] == "admin"
    assert all(token not in str(changes) for _, _, changes in audit)


async def test_token_is_stored_hashed_and_shown_once(floor: TokenFloor) -> None:
    token = await floor.create_token("Хранение", "sokolova", ["talktime:read"])
    rows = await floor.rows(select(ApiToken))
    (row,) = [r[0] for r in rows]
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert row.prefix == token[:12]
    stored = " ".join(str(getattr(row, c.key)) for c in ApiToken.__table__.columns)
    assert token not in stored and token[12:] not in stored
    status, page = await floor.call("admin", "GET", "/admin/tokens")
    assert status == 200 and token not in page and f"{token[:12]}…" in page
    assert "Норма разговоров — чтение" in page and "Мария Соколова" in page


async def test_a_token_never_passes_a_page_form(floor: TokenFloor) -> None:
    admin_token = await floor.create_token("Всё", "admin", [f"{f}:write" for f in FEATURES])
    before = await floor.rows(select(ApiToken.id))
    async with aiohttp.ClientSession() as http:
        # the admin's own form, posted with his token and no session: nobody signed in
        async with http.post(f"{floor.base}/admin/tokens", allow_redirects=False,
                             headers={"Authorization": f"Bearer {admin_token}"},
                             data={"name": "Подделка", "scope": "calls:read",
                                   "user_id": str(floor.world.users["admin"])}) as response:
            assert response.status == 303
            assert response.headers["Location"].startswith("/login")
        async with http.get(f"{floor.base}/admin/tokens", allow_redirects=False,
                            headers={"Authorization": f"Bearer {admin_token}"}) as response:
            assert response.status == 303
    assert await floor.rows(select(ApiToken.id)) == before
    # with a session cookie, a form still needs the session's CSRF token: the token is no
    # substitute for it
    http = await floor.login("admin")
    async with http.post(f"{floor.base}/admin/tokens",
                         headers={"Authorization": f"Bearer {admin_token}"},
                         data={"name": "Подделка", "scope": "calls:read",
                               "user_id": str(floor.world.users["admin"])}) as response:
        assert response.status == 403
    assert await floor.rows(select(ApiToken.id)) == before


async def test_only_the_admin_manages_tokens(floor: TokenFloor) -> None:
    for who in ("petrov", "sokolova", "marketer"):
        status, page = await floor.call(who, "GET", "/admin/tokens")
        assert status == 403, who
        status, page = await floor.form(who, "/admin/tokens", {
            "name": "Моё", "user_id": str(floor.world.users[who]), "scope": "calls:read"})
        assert status == 403 and "API-токенами и вебхуками управляет администратор." in page
    assert await floor.rows(select(ApiToken.id)) == []
    # the form's refusals, in Russian, with what was typed kept
    status, page = await floor.form("admin", "/admin/tokens", {
        "name": "Без прав", "user_id": str(floor.world.users["petrov"])})
    assert status == 400 and "Отметьте хотя бы одно право" in page and "Без прав" in page
    status, page = await floor.form("admin", "/admin/tokens", {"name": "", "scope": "x:read"})
    assert status == 400


def test_every_api_route_belongs_to_a_feature_or_takes_no_token() -> None:
    app = create_app(Settings(), with_listener=False)
    for route in app.router.routes():
        resource = route.resource
        if resource is None or not resource.canonical.startswith("/api/"):
            continue
        path = resource.canonical
        feature = feature_of(path)
        if feature is None:
            assert any(path == p or path.startswith(p + "/") for p in NO_TOKENS), path
        else:
            assert feature == ANY or feature in FEATURES, path


async def test_a_switched_off_users_token_stops_working(floor: TokenFloor) -> None:
    token = await floor.create_token("Интеграция Петрова", "petrov", ["calls:read"])
    status, _ = await floor.bearer(token, "GET", f"/api/calls?since={_since()}")
    assert status == 200
    engine = create_engine(floor.db_url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            petrov = await session.get(User, floor.world.users["petrov"])
            assert petrov is not None
            await deactivate_user(session, None, petrov)
    finally:
        await engine.dispose()
    status, body = await floor.bearer(token, "GET", f"/api/calls?since={_since()}")
    assert status == 401 and body["code"] == "integrations.token_invalid"
