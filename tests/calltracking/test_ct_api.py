"""The marketer's call-tracking settings as JSON, and an archived number tracked again.

Both on SQLite and on a real PostgreSQL server (``db_url``), through the real app:
what is checked is what an API client then reads back, the audit log, and where
calls on a re-used number are attributed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from crm_core.audit import AuditLog
from crm_core.calls.models import Call
from crm_core.calls.services import record_call
from crm_core.calls.snapshot import CallData, LegData
from crm_core.calltracking.attribution import decide
from crm_core.calltracking.models import CtAttribution, CtStaticNumber
from crm_core.calltracking.services import add_pool_numbers, add_static, archive_number
from crm_core.db import create_engine, session_factory
from crm_core.timestamps import utcnow
from telecrm.settings import Settings
from telecrm.wiring import call_hooks
from tests.support.browser import PASSWORD, seed_world, serve_app

pytestmark = pytest.mark.calendar  # dates relative to today: make test-calendar

HOOKS = call_hooks()  # what the product does with each written call

Served = tuple[str, str]  # CRM base URL, database URL


@pytest.fixture
async def served(db_url: str, tmp_path: Path) -> AsyncIterator[Served]:
    await seed_world(db_url, tmp_path / "recordings")
    settings = Settings(data_dir=tmp_path, database_url=db_url,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (_, base):
        yield base, db_url


class Client:
    """A signed-in API client sending its CSRF header, as the page's scripts do."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def login(self, username: str) -> Client:
        async with self.http.post(f"{self.base}/api/login",
                                  json={"username": username, "password": PASSWORD}) as r:
            assert r.status == 200
            self.csrf = (await r.json())["csrf_token"]
        return self

    async def call(self, method: str, path: str, body: Any = None, *, csrf: bool = True
                   ) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": self.csrf} if csrf else {}
        async with self.http.request(method, f"{self.base}{path}", json=body,
                                     headers=headers) as r:
            return r.status, await r.json()


async def _audit(url: str, entity: str) -> list[AuditLog]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            return list(await session.scalars(select(AuditLog).where(
                AuditLog.entity == entity).order_by(AuditLog.id)))
    finally:
        await engine.dispose()


async def test_costs_are_set_corrected_and_listed_by_month(served: Served) -> None:
    base, url = served
    marketer = await Client(base).login("marketer")
    try:
        for month, channel, amount in (("2026-10", "Радио", 10000), ("2026-11", "Радио", "12 000"),
                                       ("2026-11", "Яндекс Директ", 45000)):
            status, body = await marketer.call("PUT", "/api/ct/costs",
                                               {"month": month, "channel": channel,
                                                "amount": amount})
            assert status == 200, body
        status, body = await marketer.call("PUT", "/api/ct/costs", {
            "month": "2026-11", "channel": "Яндекс Директ", "amount": "47500,5"})
        assert status == 200 and body == {"month": "2026-11", "channel": "Яндекс Директ",
                                          "amount": 47500.5}
        for bad, reason in (({"month": "2026-13", "channel": "X", "amount": 1},
                             "«2026-13» — не месяц"),
                            ({"month": "2026-11", "channel": "Радио", "amount": -1},
                             "нужна неотрицательная сумма"),
                            ({"month": "2026-11", "channel": " ", "amount": 1},
                             "Название канала"),
                            ({"month": "2026-11", "channel": "Радио"}, "amount")):
            status, body = await marketer.call("PUT", "/api/ct/costs", bad)
            assert status == 400 and reason in body["error"], (bad, body)
        status, body = await marketer.call("GET", "/api/ct/costs?from=2026-11&to=2026-11")
        assert status == 200 and body == [
            {"month": "2026-11", "channel": "Радио", "amount": 12000.0},
            {"month": "2026-11", "channel": "Яндекс Директ", "amount": 47500.5}]
        status, body = await marketer.call("GET", "/api/ct/costs?from=2026-10")
        assert [c["month"] for c in body] == ["2026-11", "2026-11", "2026-10"]
        status, body = await marketer.call("GET", "/api/ct/costs?from=2026-11&to=2026-10")
        assert status == 400 and body["error"] == "Первый месяц не может быть позже последнего."
        status, body = await marketer.call("PUT", "/api/ct/costs", {
            "month": "2026-11", "channel": "Радио", "amount": 1}, csrf=False)
        assert status == 403  # no write without the CSRF header
    finally:
        await marketer.http.close()
    audit = await _audit(url, "ct_ad_cost")
    assert [a.action for a in audit] == ["create", "create", "create", "update"]
    assert audit[-1].changes == {"amount": ["45000.00", "47500.50"]} and audit[-1].user_id


async def test_sales_floor_may_not_read_or_change_call_tracking(served: Served) -> None:
    base, _ = served
    for username in ("petrov", "sokolova"):
        client = await Client(base).login(username)
        try:
            for path in ("/api/ct/costs", "/api/ct/static", "/api/ct/sites"):
                status, body = await client.call("GET", path)
                assert status == 403 and body["error"], (username, path)
            for method, path, body in (
                    ("PUT", "/api/ct/costs", {"month": "2026-11", "channel": "X", "amount": 1}),
                    ("POST", "/api/ct/static", {"did": "+74951110041", "channel": "X"}),
                    ("POST", "/api/ct/sites", {"site": "promo.example"}),
                    ("POST", "/api/ct/pool", {"site": "promo.example",
                                              "numbers": ["+74951110051"]}),
                    ("POST", "/api/ct/numbers/archive", {"number": "+74951110041"})):
                status, answer = await client.call(method, path, body)
                assert status == 403 and answer["error"], (username, path)
        finally:
            await client.http.close()
    admin = await Client(base).login("admin")
    try:
        status, body = await admin.call("POST", "/api/ct/static",
                                        {"did": "+74951110041", "channel": "Радио"})
        assert status == 201 and body["did"] == "+74951110041"
        status, body = await admin.call("GET", "/api/ct/static")
        assert [s["did"] for s in body] == ["+74951110041"]  # nothing the floor sent stuck
    finally:
        await admin.http.close()


async def test_numbers_are_added_archived_and_added_again(served: Served) -> None:
    base, url = served
    marketer = await Client(base).login("marketer")
    try:
        status, body = await marketer.call("POST", "/api/ct/static", {
            "did": "8 (495) 111-00-41", "channel": "Билборд", "campaign": "зима",
            "cost_per_month": 25000})
        assert status == 201 and body["did"] == "+74951110041" and body["cost_per_month"] == 25000
        status, body = await marketer.call("POST", "/api/ct/static",
                                           {"did": "+74951110041", "channel": "Дубль"})
        assert status == 400 and body["code"] == "calltracking.number_static"
        assert body["error"] == "+74951110041 уже отслеживается как статический номер."
        status, body = await marketer.call("POST", "/api/ct/static", {"did": "12", "channel": "X"})
        assert status == 400 and body["error"] == "Номер DID «12» — не телефонный номер."
        status, body = await marketer.call("POST", "/api/ct/sites", {
            "site": "Promo.Example", "default_numbers": ["+7 495 111-00-50"], "channel": "Промо"})
        assert status == 200 and body["host"] == "promo.example"
        assert body["default_numbers"] == ["+74951110050"] and body["numbers"] == []
        status, body = await marketer.call("POST", "/api/ct/pool", {
            "site": "promo.example", "numbers": ["+74951110051", "+74951110052"]})
        assert status == 200 and body["numbers"] == ["+74951110051", "+74951110052"]
        status, body = await marketer.call("POST", "/api/ct/pool", {
            "site": "promo.example", "numbers": ["+74951110041"]})
        assert status == 400 and body["code"] == "calltracking.number_static"
        assert body["error"] == "+74951110041 уже отслеживается как статический номер."
        status, body = await marketer.call("POST", "/api/ct/pool",
                                           {"site": "promo.example", "numbers": "+74951110053"})
        assert status == 400 and "списком телефонных номеров" in body["error"]
        status, body = await marketer.call("POST", "/api/ct/numbers/archive",
                                           {"number": "+74951110041"})
        assert status == 200 and body == {"number": "+74951110041", "archived": "static"}
        status, body = await marketer.call("POST", "/api/ct/numbers/archive",
                                           {"number": "+74951110052"})
        assert body["archived"] == "pool"
        status, body = await marketer.call("POST", "/api/ct/numbers/archive",
                                           {"number": "+74951110052"})
        assert status == 400 and body["error"] == "+74951110052 не отслеживается."
        status, body = await marketer.call("GET", "/api/ct/static")
        assert body == []
        # Archived numbers come back: the static one in a new channel, the pool one too.
        status, body = await marketer.call("POST", "/api/ct/static",
                                           {"did": "+74951110041", "channel": "Радио"})
        assert status == 201, body
        status, body = await marketer.call("POST", "/api/ct/pool", {
            "site": "promo.example", "numbers": ["+74951110052"]})
        assert status == 200 and body["numbers"] == ["+74951110051", "+74951110052"]
        status, body = await marketer.call("GET", "/api/ct/sites")
        assert [s["host"] for s in body] == ["promo.example"]
        status, body = await marketer.call("GET", "/api/ct/static")
        assert [(s["did"], s["channel"]) for s in body] == [("+74951110041", "Радио")]
    finally:
        await marketer.http.close()
    audit = await _audit(url, "ct_static_number")
    assert [(a.action, a.actor) for a in audit] == [("create", "marketer"),
                                                    ("update", "marketer"),
                                                    ("create", "marketer")]


def _call(linkedid: str, did: str, caller: str, at: Any) -> CallData:
    end = at + timedelta(seconds=95)
    return CallData(
        linkedid=linkedid, direction="inbound", status="answered", client_number=caller,
        did=did, started_at=at, answered_at=at + timedelta(seconds=5), ended_at=end,
        ring_seconds=5.0, talk_seconds=90.0, transferred=False, managers=(), recordings=(),
        legs=(LegData(f"{linkedid}-c", "PJSIP/carrier-1", "client", None, at, at, end, 90.0),))


async def test_old_calls_keep_the_archived_rows_channel(db_url: str) -> None:
    engine = create_engine(db_url)
    sessions = session_factory(engine, writer=True)
    try:
        async with sessions() as session:
            await add_static(session, "+74951110041", "Билборд")
            await add_pool_numbers(session, "old.example", ["+74951110061"])
            await session.commit()
            old_static = await record_call(session, _call("a", "+74951110041", "+79160000001",
                                                          utcnow()), hooks=HOOKS)
            old_pool = await record_call(session, _call("b", "+74951110061", "+79160000002",
                                                        utcnow()), hooks=HOOKS)
            await session.commit()
            await archive_number(session, "+74951110041")
            await archive_number(session, "+74951110061")
            await session.commit()
            # The database itself refuses two tracked rows of one number.
            with pytest.raises(IntegrityError):
                async with session.begin_nested():
                    session.add_all([CtStaticNumber(did="+74951110099", channel="A"),
                                     CtStaticNumber(did="+74951110099", channel="B")])
            await add_static(session, "+74951110041", "Радио")
            site = await add_pool_numbers(session, "new.example", ["+74951110061"])
            site.channel = "Новый сайт"
            await session.commit()
            new_static = await record_call(session, _call("c", "+74951110041", "+79160000003",
                                                          utcnow() + timedelta(seconds=1)),
                                           hooks=HOOKS)
            new_pool = await record_call(session, _call("d", "+74951110061", "+79160000004",
                                                         utcnow() + timedelta(seconds=1)),
                                           hooks=HOOKS)
            await session.commit()
            stored = {row.call_id: row.channel for row in await session.scalars(
                select(CtAttribution))}
            assert stored[old_static.id] == "Билборд" and stored[new_static.id] == "Радио"
            assert stored[old_pool.id] == "Сайт" and stored[new_pool.id] == "Новый сайт"
            # Deciding again (a replay or a backfill) gives each call its own time's row.
            for call_id, channel in ((old_static.id, "Билборд"), (new_static.id, "Радио"),
                                     (old_pool.id, "Сайт"), (new_pool.id, "Новый сайт")):
                call = await session.get(Call, call_id)
                assert call is not None
                assert (await decide(session, call))["channel"] == channel
    finally:
        await engine.dispose()


async def test_migration_0013_goes_down_and_up_keeping_the_numbers(db_url: str) -> None:
    from alembic import command
    from sqlalchemy.engine import Connection

    from crm_core.db import alembic_config, upgrade

    def down(connection: Connection) -> None:
        config = alembic_config(db_url)
        config.attributes["connection"] = connection
        command.downgrade(config, "0012")

    engine = create_engine(db_url)
    try:
        async with session_factory(engine, writer=True)() as session:
            await add_static(session, "+74951110041", "Билборд")
            await session.commit()
        async with engine.connect() as connection:
            await connection.run_sync(down)
            await connection.commit()
    finally:
        await engine.dispose()
    await upgrade(db_url)
    engine = create_engine(db_url)
    try:
        async with session_factory(engine, writer=True)() as session:
            await archive_number(session, "+74951110041")
            await add_static(session, "+74951110041", "Радио")
            await session.commit()
            rows = list(await session.scalars(select(CtStaticNumber).order_by(CtStaticNumber.id)))
            assert [(r.channel, r.archived_at is None) for r in rows] == [("Билборд", False),
                                                                         ("Радио", True)]
    finally:
        await engine.dispose()
