"""The public call-tracking endpoints on the real app, and the marketers' views and roles.

``/api/ct/session`` is hostile ground: every test here is something a stranger on
the internet can send.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.services import record_call
from crm_core.calls.snapshot import CallData, LegData
from crm_core.calltracking.services import add_static
from crm_core.db import create_engine, session_factory
from crm_core.timestamps import utcnow
from telecrm.calltracking.public import CT
from telecrm.settings import Settings
from telecrm.wiring import call_hooks
from tests.calltracking.sites import BROWSER, HOST, ORIGIN, seeded_site
from tests.support.browser import serve_app, signed_in
from tests.support.redis_fixtures import redis_server_fixture, redis_url_fixture  # noqa: F401

pytestmark = pytest.mark.calendar  # dates relative to today: make test-calendar

HOOKS = call_hooks()  # what the product does with each written call

POOL = ["+74951110011", "+74951110012"]
VISITORS: list[str] = []
Served = tuple[str, str, web.Application]  # CRM base URL, database URL, the app


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async def static(session: AsyncSession) -> None:
        await add_static(session, "+74951110005", "Радио", cost_per_month=10000)
    url = await seeded_site(tmp_path, POOL, default="+7 495 111-00-01", more=static)
    settings = Settings(data_dir=tmp_path, database_url=url, ct_rate_per_minute=40,
                        recordings_source=tmp_path / "recordings", trusted_proxies="127.0.0.1")
    async with serve_app(settings) as (app, base):
        yield base, url, app


async def post(base: str, body: Any, *, origin: str | None = ORIGIN, agent: str = BROWSER,
               raw: bytes | None = None, ip: str | None = None) -> tuple[int, Any, Any]:
    headers = {"User-Agent": agent, "Content-Type": "text/plain"}
    if ip is None:  # each request another visitor, as if from his own address
        VISITORS.append(f"198.51.100.{len(VISITORS) % 250 + 1}")
        ip = VISITORS[-1]
    headers["X-Forwarded-For"] = ip  # the test server trusts its loopback "proxy"
    if origin:
        headers["Origin"] = origin
    data = raw if raw is not None else json.dumps(body).encode()
    async with aiohttp.ClientSession() as http, http.post(
            f"{base}/api/ct/session", data=data, headers=headers) as response:
        try:
            payload = await response.json(content_type=None)
        except ValueError:
            payload = None
        return response.status, payload, response.headers


def visit(**extra: Any) -> dict[str, Any]:
    return {"site": HOST, "url": f"https://{HOST}/?utm_source=yandex&utm_campaign=spring",
            "referrer": "https://yandex.ru/", **extra}


async def test_snippet_and_unknown_site(served: Served) -> None:
    base, _, _ = served
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/ct.js?site={HOST}") as response:
            assert response.status == 200
            assert response.content_type == "application/javascript"
            text = await response.text()
        assert '"site": "shop.example"' in text and "+74951110001" in text
        assert len(text) < 8000  # small, no dependencies
        async with http.get(f"{base}/ct.js?site=other.example") as response:
            assert response.status == 404 and (await response.json())["error"]
        async with http.get(f"{base}/ct.js?site=%3Cscript%3E") as response:
            assert response.status == 404


async def test_visitors_get_distinct_numbers_then_the_fallback(served: Served) -> None:
    base, _, _ = served
    status, first, headers = await post(base, visit())
    assert status == 200 and first["tracked"] is True and first["number"] in POOL
    assert set(first) == {"session", "number", "tracked", "heartbeat"}  # nothing else
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    _, second, _ = await post(base, visit())
    assert second["number"] in POOL and second["number"] != first["number"]
    assert second["session"] != first["session"]
    _, third, _ = await post(base, visit())
    assert third == {"session": third["session"], "number": "+74951110001", "tracked": False,
                     "heartbeat": 60}
    # the first visitor's heartbeat keeps his number
    _, again, _ = await post(base, visit(session=first["session"], url=f"https://{HOST}/price"))
    assert (again["session"], again["number"]) == (first["session"], first["number"])


async def test_bots_and_idle_pages_get_no_pool_number(served: Served) -> None:
    base, _, _ = served
    for agent in ("Mozilla/5.0 (compatible; YandexBot/3.0)", "Googlebot/2.1", "curl/8.0", "",
                  "Mozilla/5.0 HeadlessChrome/120.0"):
        status, body, _ = await post(base, visit(), agent=agent)
        assert status == 200 and body["tracked"] is False, agent
    status, body, _ = await post(base, visit(activity=False))
    assert status == 200 and body["tracked"] is False
    # the idle visit gets its number once the page sees activity
    _, body, _ = await post(base, visit(session=body["session"], activity=True))
    assert body["tracked"] is True


@pytest.mark.parametrize("body, status", [
    ({"site": "other.example", "url": "https://other.example/"}, 404),
    ({"site": HOST}, 400),  # no url
    ({"site": HOST, "url": "javascript:alert(1)"}, 400),
    ({"site": HOST, "url": "https://x/" + "a" * 2000}, 400),
    ({"site": HOST, "url": f"https://{HOST}/", "referrer": 5}, 400),
    ({"site": HOST, "url": f"https://{HOST}/", "client_ids": {"ga": "<script>"}}, 400),
    ({"site": HOST, "url": f"https://{HOST}/", "client_ids": {"other": "1"}}, 400),
    ({"site": HOST, "url": f"https://{HOST}/", "activity": "yes"}, 400),
    ({"site": ["x"], "url": "https://x/"}, 400),
    ([1, 2], 400),
])
async def test_hostile_bodies(served: Served, body: Any, status: int) -> None:
    base, _, _ = served
    got, payload, _ = await post(base, body)
    assert got == status and isinstance(payload["error"], str)


async def test_size_origin_and_rate_limits(served: Served) -> None:
    base, _, _ = served
    status, payload, _ = await post(base, None, raw=b"{" + b" " * 10_000 + b"}")
    assert status == 413 and payload["error"]
    status, payload, _ = await post(base, None, raw=b"\xff\xfe not json")
    assert status == 400
    status, payload, headers = await post(base, visit(), origin="https://evil.example")
    assert status == 403 and "Access-Control-Allow-Origin" not in headers
    async with aiohttp.ClientSession() as http, http.options(
            f"{base}/api/ct/session?site={HOST}", headers={
                "Origin": ORIGIN, "Access-Control-Request-Method": "POST"}) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    # a forged session id is never taken: a new visit is started instead
    _, body, _ = await post(base, visit(session="A" * 40))
    assert body["session"] != "A" * 40
    statuses = [(await post(base, visit(activity=False), ip="203.0.113.50"))[0]
                for _ in range(41)]
    assert statuses[-1] == 429


async def test_marketer_sees_the_report_managers_do_not(served: Served) -> None:
    base, url, app = served
    _, leased, _ = await post(base, visit())
    await app[CT].history.drain()  # the visit's history is written behind the answer
    engine = create_engine(url)
    start = utcnow()
    try:
        async with session_factory(engine)() as session, session.begin():
            await record_call(session, CallData(
                linkedid="web-1", direction="inbound", status="answered",
                client_number="+79169990001", did=leased["number"], started_at=start,
                answered_at=start, ended_at=start, ring_seconds=1, talk_seconds=75,
                transferred=False, managers=("101",), recordings=("x.wav",),
                legs=(LegData("web-1-c", "PJSIP/carrier-1", "client", None, start, start,
                              start, 75.0),)), hooks=HOOKS)
    finally:
        await engine.dispose()
    marketer, manager = await signed_in(base, "marketer"), await signed_in(base, "petrov")
    try:
        async with marketer.get(f"{base}/api/ct/report?by=source") as response:
            assert response.status == 200
            body = await response.json()
        yandex = next(r for r in body["rows"] if r["key"] == "yandex")
        assert yandex["calls"] == 1 and yandex["target_calls"] == 1
        assert body["pool_health"][0]["site"] == HOST
        async with marketer.get(f"{base}/api/ct/report?format=csv") as response:
            assert response.status == 200 and "cost_per_target_call" in await response.text()
        async with marketer.get(f"{base}/api/ct/calls") as response:
            log = await response.json()
        assert log[0]["source"].startswith("Сайт: yandex") and "recordings" not in log[0]
        async with marketer.get(f"{base}/calltracking") as response:
            assert response.status == 200 and "Коллтрекинг" in await response.text()
        async with marketer.get(f"{base}/api/calls") as response:
            calls = (await response.json())["calls"]
        tracked = next(c for c in calls if c["linkedid"] == "web-1")
        assert tracked["tracking"]["campaign"] == "spring" and tracked["recordings"] == []
        for path in ("/api/ct/report", "/api/ct/calls", "/calltracking"):
            async with manager.get(f"{base}{path}") as response:
                assert response.status == 403, path
        async with marketer.get(f"{base}/api/ct/report?from=2026-13-01") as response:
            assert response.status == 400
    finally:
        await marketer.close()
        await manager.close()


async def test_with_redis_leases_and_the_history_process(tmp_path: Path, redis_url: str) -> None:
    """The scale-out mode: leases in Redis, two app instances (two web processes' worth)
    share the pool, and the visit history is written by a child process."""
    from sqlalchemy import func, select

    from crm_core.calltracking.models import CtLease, CtVisit

    url = await seeded_site(tmp_path, POOL)
    engine = create_engine(url)
    try:
        settings = Settings(data_dir=tmp_path, database_url=url, redis_url=redis_url,
                            recordings_source=tmp_path / "recordings",
                            trusted_proxies="127.0.0.1")
        async with serve_app(settings) as (app_a, base_a), serve_app(settings) as (app_b, base_b):
            _, first, _ = await post(base_a, visit())
            _, second, _ = await post(base_b, visit())
            _, third, _ = await post(base_a, visit())
            assert {first["number"], second["number"]} == set(POOL)
            assert third["tracked"] is False  # the pool is shared: exhausted
            # a session issued by one process is honoured by the other
            _, again, _ = await post(base_b, visit(session=first["session"]))
            assert (again["session"], again["number"]) == (first["session"], first["number"])
            for app in (app_a, app_b):
                await app[CT].history.drain()
        async with session_factory(engine)() as session:
            assert await session.scalar(select(func.count()).select_from(CtVisit)) == 3
            assert await session.scalar(select(func.count()).select_from(CtLease)) == 2
    finally:
        await engine.dispose()



async def _written_without_waiting(tmp_path: Path, redis_url: str | None) -> None:
    """Visits reach the writer in chunks; a quiet site's single visit must not wait for
    a chunk to fill: it is in the database a moment later, nobody draining anything."""
    import asyncio

    from sqlalchemy import select

    from crm_core.calltracking.models import CtVisit

    url = await seeded_site(tmp_path, POOL)
    settings = Settings(data_dir=tmp_path, database_url=url, redis_url=redis_url,
                        recordings_source=tmp_path / "recordings", trusted_proxies="127.0.0.1")
    engine = create_engine(url)
    try:
        async with serve_app(settings) as (_, base):
            _, body, _ = await post(base, visit())
            landing = None
            for _ in range(300):  # the chunk's 20 ms, and a loaded machine's seconds
                async with session_factory(engine)() as session:
                    landing = await session.scalar(select(CtVisit.landing).where(
                        CtVisit.session == body["session"]))
                if landing is not None:
                    break
                await asyncio.sleep(0.05)
            assert landing == visit()["url"]
    finally:
        await engine.dispose()


async def test_a_lone_visit_is_written_without_waiting_for_more(tmp_path: Path) -> None:
    await _written_without_waiting(tmp_path, None)  # the writer thread


async def test_a_lone_visit_is_written_by_the_history_process_too(
        tmp_path: Path, redis_url: str) -> None:
    await _written_without_waiting(tmp_path, redis_url)
