"""The sales API as each role would use it: rules, invoices, payments, potential, owners.

The seeded floor (tests/support/browser.py): managers petrov (101) and smirnova (102) with
supervisor sokolova in «Отдел продаж», kuznetsov (103) in «Второй отдел», an admin
and a marketer; one client per manager. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from telecrm.settings import Settings
from tests.support.browser import PASSWORD, World, seed_world, serve_app
from tests.support.db_fixtures import db_url_fixture  # noqa: F401

pytestmark = pytest.mark.calendar  # dates relative to today: make test-calendar


class Api:
    def __init__(self, base: str) -> None:
        self.base = base
        self.http: dict[str, aiohttp.ClientSession] = {}
        self.csrf: dict[str, str] = {}

    async def login(self, username: str) -> None:
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        async with http.post(f"{self.base}/api/login",
                             json={"username": username, "password": PASSWORD}) as response:
            assert response.status == 200
            self.csrf[username] = (await response.json())["csrf_token"]
        self.http[username] = http

    async def call(self, who: str, method: str, path: str, body: Any = None
                   ) -> tuple[int, Any]:
        if who not in self.http:
            await self.login(who)
        async with self.http[who].request(method, self.base + path, json=body,
                                          headers={"X-CSRF-Token": self.csrf[who]}) as r:
            return r.status, await r.json()

    async def close(self) -> None:
        for http in self.http.values():
            await http.close()


@pytest.fixture
async def api(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[Api, World]]:
    world = await seed_world(db_url, tmp_path / "recordings")
    settings = Settings(data_dir=tmp_path, database_url=db_url,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (_, base):
        client = Api(base)
        try:
            yield client, world
        finally:
            await client.close()


async def test_rules_money_and_owners_by_role(api: tuple[Api, World]) -> None:
    crm, world = api
    mine, theirs, far = world.clients["101"], world.clients["102"], world.clients["103"]
    today = datetime.now(ZoneInfo("Europe/Moscow")).date().isoformat()

    # rules: the supervisor changes his team's; a manager and the other team may not
    status, body = await crm.call("petrov", "PUT", "/api/sales/settings",
                                  {"new_period_days": 30})
    assert status == 403 and body["code"] == "sales.rules.not_allowed"
    assert body["error"] == ("Правила отдела меняет администратор или руководитель этого "
                             "отдела.")
    status, body = await crm.call("sokolova", "GET", "/api/sales/settings")
    assert status == 200 and body["new_period_days"] == 90
    team = body["team_id"]
    status, body = await crm.call("sokolova", "PUT", "/api/sales/settings",
                                  {"team_id": team, "new_period_days": "дни"})
    assert status == 400 and body["code"] == "sales.rules.not_days"
    assert body["error"] == ("Срок «нового» клиента: неверное значение — укажите целое число "
                             "дней.")
    status, body = await crm.call("sokolova", "PUT", "/api/sales/settings",
                                  {"team_id": team, "abc_b_min": "500000"})
    assert status == 200 and body["abc_b_min"] == "500000.00"
    status, body = await crm.call("sokolova", "PUT", "/api/sales/settings",
                                  {"new_period_days": 30})  # no team: the company's
    assert status == 403
    status, body = await crm.call("marketer", "GET", "/api/sales/settings")
    assert status == 403

    # invoices: a manager for his own client only
    status, body = await crm.call("petrov", "POST", "/api/invoices", {
        "client_id": mine, "number": "СЧ-101", "amount": "90 000", "issued_on": today})
    assert status == 201 and body["status"] == "unpaid" and body["amount"] == "90000.00"
    status, body = await crm.call("petrov", "POST", "/api/invoices", {
        "client_id": far, "number": "СЧ-103", "amount": 5, "issued_on": today})
    assert status == 404
    status, body = await crm.call("petrov", "POST", "/api/invoices", {
        "client_id": mine, "number": "СЧ-101", "amount": 5, "issued_on": today})
    assert status == 400 and body["error"] == "Счёт СЧ-101 уже есть."

    # payments: supervisor (his team's clients) and admin; the status follows
    status, body = await crm.call("petrov", "POST", "/api/payments", {
        "client_id": mine, "amount": 100, "paid_on": today})
    assert status == 403
    status, body = await crm.call("sokolova", "POST", "/api/payments", {
        "client_id": far, "amount": 100, "paid_on": today})
    assert status == 404
    status, body = await crm.call("sokolova", "POST", "/api/payments", {
        "client_id": mine, "amount": "30000", "paid_on": today, "invoice": "СЧ-101"})
    assert status == 201
    status, card = await crm.call("petrov", "GET", f"/api/clients/{mine}/sales")
    assert status == 200 and card["status"] == "new"
    assert card["invoices"][0]["status"] == "partly_paid"
    assert [(h["from"], h["to"]) for h in card["status_history"]] == [("potential", "new")]
    assert card["contact_every_days"] == 30  # not qualified yet

    # potential: the supervisor sets it; the team's B threshold (500 000) applies
    status, body = await crm.call("petrov", "PUT", f"/api/clients/{mine}/potential",
                                  {"amount": 400000})
    assert status == 403
    status, body = await crm.call("sokolova", "PUT", f"/api/clients/{mine}/potential",
                                  {"amount": 400000, "contact_every_days": 10})
    assert status == 200 and body["abc_group"] == "C" and body["contact_every_days"] == 10

    # owners: within the team only, for the supervisor; the admin anywhere
    status, body = await crm.call("sokolova", "POST", "/api/clients/reassign", {
        "client_ids": [mine, theirs], "owner_id": world.users["kuznetsov"]})
    assert status == 403 and body["error"] == "Алексей Кузнецов не из вашего отдела."
    status, body = await crm.call("sokolova", "POST", "/api/clients/reassign", {
        "client_ids": [mine], "owner_id": world.users["smirnova"], "reason": "отпуск"})
    assert status == 200 and body["reassigned"] == 1
    status, card = await crm.call("smirnova", "GET", f"/api/clients/{mine}/sales")
    assert status == 200 and card["owner_history"][0]["reason"] == "отпуск"
    status, body = await crm.call("admin", "POST", "/api/clients/reassign", {
        "client_ids": [far], "owner_id": world.users["petrov"]})
    assert status == 200

    # archive, never delete
    status, body = await crm.call("petrov", "POST", f"/api/clients/{theirs}/archive", {})
    assert status == 404  # not his client
    status, body = await crm.call("sokolova", "POST", f"/api/clients/{theirs}/archive",
                                  {"reason": "закрылись"})
    assert status == 200 and body["archived_at"]
    status, body = await crm.call("sokolova", "POST", f"/api/clients/{theirs}/archive",
                                  {"restore": True})
    assert status == 200 and body["archived_at"] is None
