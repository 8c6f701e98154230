"""Site forms and callback requests through the real app, on SQLite and PostgreSQL.

A visitor comes from a Yandex ad (UTM tags, yclid, ``_ym_uid``), and sends a form: the
lead keeps the visit's source, is matched to the client who owns the number (written
any way) and its owner gets the call task; a new number makes a new client and goes to
the free manager with the fewest open tasks. Hostile bodies are answered 400 with the
sentence saying what is wrong and nothing is stored; other origins are refused; a
visitor sending too many leads is told to wait. A callback with nobody to ring (no
telephony here, or the working day over) is a lead with a callback task. Who sees
which lead on ``/api/leads``, and archiving (never deleting) it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import AuditLog
from crm_core.calltracking.models import CtLead
from crm_core.calltracking.services import SiteOptions, add_pool_numbers, save_site
from crm_core.clients.models import Client
from crm_core.db import create_engine, session_factory
from crm_core.integrations.models import WebhookDelivery
from crm_core.integrations.webhooks import create_endpoint
from crm_core.people.models import User
from crm_core.tasks.models import Task
from telecrm.settings import Settings
from tests.calltracking.test_ct_api import Client as ApiClient
from tests.support.browser import seed_world, serve_app

# A Friday noon in Moscow: working hours, so a callback would be placed at once.
pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")

ORIGIN = "https://shop.example"
BROWSER = {"Origin": ORIGIN, "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0"}
LANDING = ("https://shop.example/doors?utm_source=yandex&utm_medium=cpc&utm_campaign=spring"
           "&utm_term=%D0%B4%D0%B2%D0%B5%D1%80%D0%B8&yclid=8811")

Served = tuple[str, str]


async def seed_shop(db_url: str, tmp_path: Path,
                    more: Callable[[AsyncSession], Awaitable[Any]]) -> None:
    """The seeded floor and the site ``shop.example`` (forms allowed from ``ORIGIN``), and
    what ``more`` writes in the same transaction (the leads tests share this database)."""
    await seed_world(db_url, tmp_path / "recordings")
    engine = create_engine(db_url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            await save_site(session, "shop.example", SiteOptions(
                default_numbers=["+74951110080"], origins=[ORIGIN]))
            await more(session)
    finally:
        await engine.dispose()


@pytest.fixture
async def served(db_url: str, tmp_path: Path) -> AsyncIterator[Served]:
    await seed_shop(db_url, tmp_path,
                    lambda session: add_pool_numbers(session, "shop.example", ["+74951110081"]))
    settings = Settings(data_dir=tmp_path, database_url=db_url,
                        recordings_source=tmp_path / "recordings", ct_leads_per_minute=3)
    async with serve_app(settings) as (_, base):
        yield base, db_url


async def post(base: str, path: str, body: Any, headers: dict[str, str] | None = None,
               *, raw: bytes | None = None) -> tuple[int, Any, Any]:
    data = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode()
    async with aiohttp.ClientSession() as http, http.post(
            base + path, data=data,
            headers={**BROWSER, "Content-Type": "text/plain", **(headers or {})}) as r:
        return r.status, await r.json(content_type=None), r.headers


async def visit(base: str) -> str:
    status, body, _ = await post(base, "/api/ct/session", {
        "site": "shop.example", "url": LANDING, "referrer": "https://yandex.ru/",
        "client_ids": {"ym_uid": "1700000000123456789"}, "activity": True})
    assert status == 200, body
    return str(body["session"])


async def rows(url: str, model: Any, *where: Any) -> list[Any]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            return list(await session.scalars(select(model).where(*where).order_by(model.id)))
    finally:
        await engine.dispose()


async def count(url: str, model: Any) -> int:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        await engine.dispose()


async def test_a_form_is_a_lead_with_the_visit_source_client_and_task(served: Served) -> None:
    base, url = served
    engine = create_engine(url)
    try:  # another system listens for new leads (the webhook is queued, not sent, here)
        async with session_factory(engine, writer=True)() as session, session.begin():
            await create_endpoint(session, name="CRM партнёра", url="https://hooks.example/in",
                                  events=["lead.created"], actor=None)
    finally:
        await engine.dispose()
    token = await visit(base)
    status, body, headers = await post(base, "/api/ct/lead", {
        "site": "shop.example", "session": token, "name": "Ольга",
        "phone": "8 (916) 123-45-67", "email": "olga@example.org",
        "message": "Нужны двери в офис.\nПерезвоните после обеда.",
        "url": "https://shop.example/doors"})
    assert status == 201, body
    assert body == {"status": "form", "message": "Спасибо! Заявка принята, мы свяжемся с вами."}
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    # a new number and no visit token: a new client, and the freest manager's task
    status, body, _ = await post(base, "/api/ct/lead", {
        "site": "shop.example", "phone": "+7 903 555-66-77", "name": "ИП Новиков"})
    assert status == 201, body
    # the same form sent again (a double click) is the same lead
    status, body, _ = await post(base, "/api/ct/lead", {
        "site": "shop.example", "phone": "8 903 555 66 77", "name": "ИП Новиков"})
    assert (status, body["status"]) == (201, "form")

    first, second = await rows(url, CtLead)
    assert (first.kind, first.status, first.source, first.medium, first.campaign,
            first.utm_term, first.landing, first.yclid, first.ym_uid, first.channel) == (
        "form", "new", "yandex", "cpc", "spring", "двери", LANDING, "8811",
        "1700000000123456789", "Сайт")
    assert (first.phone, first.email, first.message) == (
        "+79161234567", "olga@example.org", "Нужны двери в офис.\nПерезвоните после обеда.")
    users = {u.username: u.id for u in await rows(url, User)}
    romashka = (await rows(url, Client, Client.name == "ООО Ромашка"))[0]
    assert (first.client_id, first.created_client, first.assignee_id) == (
        romashka.id, False, users["petrov"])  # the client's owner
    task = (await rows(url, Task, Task.id == first.task_id))[0]
    assert (task.kind, task.assignee_id, task.client_id, task.status) == (
        "call", users["petrov"], romashka.id, "open")
    assert task.title == "Позвонить: заявка с сайта, Ольга"

    assert (second.visit_id, second.source, second.channel, second.created_client) == (
        None, None, "Сайт", True)
    new_client = (await rows(url, Client, Client.id == second.client_id))[0]
    assert new_client.name == "ИП Новиков"
    # petrov has the seeded missed call's callback and the first lead; smirnova has none
    assert second.assignee_id == users["smirnova"] == new_client.owner_id
    audit = await rows(url, AuditLog, AuditLog.entity == "ct_lead")
    assert [(a.entity_id, a.action, a.changes["kind"]) for a in audit] == [
        (first.id, "create", "form"), (second.id, "create", "form")]
    # one «Новая заявка» webhook per lead, the double click included
    hooks = await rows(url, WebhookDelivery)
    assert [(h.event, h.key, h.payload["phone"], h.payload["source"]) for h in hooks] == [
        ("lead.created", str(first.id), "+79161234567", "yandex"),
        ("lead.created", str(second.id), "+79035556677", None)]


HOSTILE: list[tuple[str, Any, int, str]] = [
    ("not JSON", b"{site: shop.example", 400, "request.not_object"),
    ("an array", [], 400, "request.not_object"),
    ("no site", {"phone": "+79161112233"}, 400, "calltracking.site_param"),
    ("unknown site", {"site": "evil.example", "phone": "+79161112233"}, 404,
     "calltracking.unknown_site"),
    ("no contact", {"site": "shop.example", "name": "Аноним"}, 400, "leads.contact_required"),
    ("not a phone", {"site": "shop.example", "phone": "12"}, 400, "leads.phone_invalid"),
    ("a phone as a number", {"site": "shop.example", "phone": 79161112233}, 400,
     "request.text_too_long"),
    ("not an e-mail", {"site": "shop.example", "email": "a@b"}, 400, "leads.email_invalid"),
    ("a control character", {"site": "shop.example", "phone": "+79161112233",
                             "name": "Ив\x00ан"}, 400, "request.text_too_long"),
    ("a script message", {"site": "shop.example", "phone": "+79161112233",
                          "message": "\x1b[31m<script>"}, 400, "leads.message_invalid"),
    ("a long message", {"site": "shop.example", "phone": "+79161112233",
                        "message": "д" * 2001}, 400, "request.text_too_long"),
    ("an unknown field", {"site": "shop.example", "phone": "+79161112233", "admin": True},
     400, "request.unknown_field"),
    ("not a page", {"site": "shop.example", "phone": "+79161112233",
                    "url": "javascript:alert(1)"}, 400, "request.not_url"),
    ("a huge body", {"site": "shop.example", "message": "x" * 9000}, 413, "http.too_large"),
]


async def test_hostile_input_is_refused_and_nothing_is_stored(served: Served) -> None:
    base, url = served
    clients_before = await count(url, Client)
    for what, body, expected, code in HOSTILE:
        raw = body if isinstance(body, bytes) else None
        status, answer, _ = await post(base, "/api/ct/lead", body, raw=raw)
        assert (status, answer.get("code")) == (expected, code), what
        assert answer["error"].endswith(".") and "<" not in answer["error"], what
    status, answer, _ = await post(base, "/api/ct/callback",
                                   {"site": "shop.example", "email": "a@example.org"})
    assert (status, answer["code"]) == (400, "request.field_required")
    assert answer["error"] == "Заполните поле phone."
    status, answer, _ = await post(base, "/api/ct/lead",
                                   {"site": "shop.example", "phone": "12"})
    assert answer["error"] == "«12» — не телефонный номер."
    assert await count(url, CtLead) == 0
    assert await count(url, Client) == clients_before


async def test_cors_and_the_rate_of_leads(served: Served) -> None:
    base, url = served
    good = {"site": "shop.example", "phone": "+79035550001"}
    status, answer, _ = await post(base, "/api/ct/lead", good,
                                   {"Origin": "https://evil.example"})
    assert (status, answer["code"]) == (403, "calltracking.origin_not_allowed")
    async with aiohttp.ClientSession() as http:
        for origin, expected in ((ORIGIN, 204), ("https://evil.example", 403)):
            async with http.options(base + "/api/ct/lead", headers={
                    "Origin": origin, "Access-Control-Request-Method": "POST"}) as r:
                assert r.status == expected
                if expected == 204:
                    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
                    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    for n in range(3):  # TELECRM_CT_LEADS_PER_MINUTE=3
        status, answer, _ = await post(base, "/api/ct/lead", {
            **good, "name": f"Гость {n}", "phone": f"+7903555000{n}"})
        assert status == 201, answer
    status, answer, headers = await post(base, "/api/ct/lead", good)
    assert (status, answer["code"], headers["Retry-After"]) == (429, "http.too_many", "60")
    assert headers["Access-Control-Allow-Origin"] == ORIGIN  # the page can read the refusal
    assert await count(url, CtLead) == 3


async def test_a_callback_nobody_can_take_now_is_a_lead_with_a_callback_task(
        served: Served) -> None:
    """No telephony in this app: the callback cannot ring a manager, so it waits."""
    base, url = served
    token = await visit(base)
    status, body, _ = await post(base, "/api/ct/callback", {
        "site": "shop.example", "session": token, "phone": "8 916 777-88-99", "name": "Пётр"})
    assert (status, body["status"]) == (201, "later"), body
    assert body["message"] == "Спасибо! Менеджер перезвонит вам в ближайшее время."
    status, body, _ = await post(base, "/api/ct/callback", {  # pressed twice: one lead
        "site": "shop.example", "session": token, "phone": "+79167778899"})
    assert (status, body["status"]) == (201, "later"), body
    (lead,) = await rows(url, CtLead)
    assert (lead.kind, lead.status, lead.note, lead.source, lead.utm_term) == (
        "callback", "new", "не удалось позвонить менеджеру", "yandex", "двери")
    (task,) = await rows(url, Task, Task.id == lead.task_id)
    assert (task.kind, task.assignee_id, task.title) == (
        "callback", lead.assignee_id, "Перезвонить: обратный звонок с сайта, Пётр")


@pytest.mark.clock("2026-11-20T21:30:00+03:00")
async def test_a_callback_after_hours_waits_for_the_morning(served: Served) -> None:
    base, url = served
    status, body, _ = await post(base, "/api/ct/callback",
                                 {"site": "shop.example", "phone": "+79167778800"})
    assert (status, body["status"]) == (201, "off_hours"), body
    (lead,) = await rows(url, CtLead)
    assert (lead.status, lead.note) == ("new", "вне рабочего времени")
    (task,) = await rows(url, Task, Task.id == lead.task_id)
    assert task.due_at is not None
    assert task.due_at.isoformat() == "2026-11-23T06:15:00+00:00"  # Monday 09:15 in Moscow


async def test_who_sees_which_lead_and_archiving(served: Served) -> None:
    base, url = served
    for phone in ("+79161234567", "+79265550011"):  # petrov's client, kuznetsov's client
        status, body, _ = await post(base, "/api/ct/lead", {"site": "shop.example",
                                                             "phone": phone})
        assert status == 201, body
    seen = {}
    for who in ("marketer", "petrov", "kuznetsov", "smirnova", "sokolova", "admin"):
        api = await ApiClient(base).login(who)
        try:
            status, body = await api.call("GET", "/api/leads")
            assert status == 200, (who, body)
            seen[who] = [lead["phone"] for lead in body["leads"]]
        finally:
            await api.http.close()
    assert seen == {"marketer": ["+79265550011", "+79161234567"],
                    "admin": ["+79265550011", "+79161234567"],
                    "petrov": ["+79161234567"], "kuznetsov": ["+79265550011"],
                    "smirnova": [], "sokolova": ["+79161234567"]}
    lead_id = (await rows(url, CtLead, CtLead.phone == "+79265550011"))[0].id
    for who, expected in (("petrov", 403), ("marketer", 303)):
        api = await ApiClient(base).login(who)
        try:
            async with api.http.post(f"{base}/leads/archive", data={
                    "csrf_token": api.csrf, "lead": str(lead_id), "from": "2026-11-20",
                    "to": "2026-11-20", "kind": "form"}, allow_redirects=False) as r:
                assert r.status == expected, who
                if expected == 303:
                    assert r.headers["Location"] == (
                        "/leads?from=2026-11-20&to=2026-11-20&kind=form&saved=archive")
        finally:
            await api.http.close()
    (archived,) = await rows(url, CtLead, CtLead.id == lead_id)
    assert archived.archived_at is not None
    audit = await rows(url, AuditLog, AuditLog.entity == "ct_lead", AuditLog.entity_id == lead_id)
    assert [a.action for a in audit] == ["create", "update"]
    assert audit[-1].actor == "marketer"
