"""The call log over HTTP: ``GET /api/calls``, the ``/calls`` page, its CSV, the call page.

The seeded sales floor (``call_log_world``) is served by the real app with the clock
pinned to 2026-11-20 12:00 Moscow time. Each role sees what it may, whatever it asks
for: a manager's filters, CSV and cursors never reach another manager's calls.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web

from crm_core.calls.services import record_call
from crm_core.db import create_engine, session_factory
from crm_core.speech.transcripts import save_transcript
from telecrm.app import create_app
from telecrm.settings import Settings
from telecrm.web.keys import LISTENER
from tests.calls.call_log_world import (
    BILLBOARD,
    NOW,
    NOW_UTC,
    CallLogWorld,
    call_log_db_fixture,  # noqa: F401
    call_log_template_fixture,  # noqa: F401
    outbound,
    participants,
    visible_to,
)
from tests.support.browser import HOOKS, PASSWORD, free_port, serve_app

pytestmark = pytest.mark.clock(NOW)

ROLES = ("petrov", "smirnova", "kuznetsov", "sokolova", "marketer", "admin")
MOSCOW = 3  # hours ahead of UTC


@dataclass
class Served:
    base: str
    world: CallLogWorld
    db_url: str
    http: dict[str, aiohttp.ClientSession]

    def ids_where(self, keep: Any) -> set[int]:
        return {i for i, truth in self.world.facts.items() if keep(truth)}

    def visible(self, username: str, keep: Any = lambda t: True) -> set[int]:
        return self.ids_where(lambda t: visible_to(username, t) and keep(t))


@pytest.fixture
async def served(call_log_db: tuple[str, CallLogWorld, Path], tmp_path: Path
                 ) -> AsyncIterator[Served]:
    db_url, world, recordings = call_log_db
    settings = Settings(data_dir=tmp_path, database_url=db_url, recordings_source=recordings)
    async with serve_app(settings) as (_, base):
        sessions = {name: aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
                    for name in ROLES}
        try:
            for name, http in sessions.items():
                async with http.post(f"{base}/api/login",
                                     json={"username": name, "password": PASSWORD}) as r:
                    assert r.status == 200
            yield Served(base, world, db_url, sessions)
        finally:
            for http in sessions.values():
                await http.close()


async def get_json(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as response:
        return response.status, await response.json()


async def walk(served: Served, username: str, query: dict[str, Any] | list[tuple[str, Any]],
               ) -> list[int]:
    """Every call of ``/api/calls?query`` for ``username``, following ``next``."""
    params = list(query.items()) if isinstance(query, dict) else list(query)
    ids: list[int] = []
    cursor = None
    for _ in range(1000):
        url = f"{served.base}/api/calls?" + urlencode(params + ([("cursor", cursor)]
                                                               if cursor else []))
        status, body = await get_json(served.http[username], url)
        assert status == 200, body
        assert len(body["calls"]) <= int(dict(params).get("limit", 100))
        ids += [call["id"] for call in body["calls"]]
        cursor = body["next"]
        if cursor is None:
            return ids
    raise AssertionError("the cursor never ended")


SINCE_ALL = "2026-11-01"  # before every seeded call


# -- the API ----------------------------------------------------------------------------------


async def test_api_pages_with_a_cursor_and_is_never_unbounded(served: Served) -> None:
    everything = served.visible("admin")
    assert len(everything) > 100, "enough calls for more than one default page"
    status, body = await get_json(served.http["admin"], f"{served.base}/api/calls?since="
                                  f"{SINCE_ALL}")
    assert status == 200 and len(body["calls"]) == 100 and body["next"], "default page: 100"
    for limit in (1, 7, 500):
        ids = await walk(served, "admin", {"since": SINCE_ALL, "limit": limit})
        assert len(ids) == len(set(ids)) and set(ids) == everything, limit
    async with served.http["admin"].get(f"{served.base}/api/calls?since={SINCE_ALL}&limit=5"
                                        ) as response:
        link = response.headers["Link"]
        body = await response.json()
    assert link.endswith('>; rel="next"') and f"cursor={body['next']}" in link
    for bad in ("limit=0", "limit=501", "limit=x", "cursor=nonsense", "sort=cheapest",
                "cursor=" + body["next"] + "&sort=oldest", "min_duration=-1",
                "direction=sideways", "status=lost", "recording=maybe", "manager=abc",
                "team=999999", "since=2026-11-20&until=2026-11-01"):
        status, error = await get_json(served.http["admin"], f"{served.base}/api/calls?{bad}")
        assert status == 400 and error["error"] and error["code"].startswith("calls."), bad


async def test_since_alone_runs_until_now(served: Served) -> None:
    since = datetime(2026, 11, 17, tzinfo=UTC) - timedelta(hours=MOSCOW)  # 17.11, Moscow
    ids = await walk(served, "admin", {"since": "2026-11-17"})
    assert set(ids) == served.ids_where(lambda t: t["started_at"] >= since), \
        "from the 17th until now, not the 17th alone"
    assert served.ids_where(lambda t: t["started_at"] >= since + timedelta(days=1)), \
        "the seeding has calls after the first day"
    moment = (NOW_UTC - timedelta(hours=1, minutes=30)).isoformat()
    ids = await walk(served, "admin", {"since": moment})
    assert set(ids) == served.ids_where(lambda t: t["started_at"] >= NOW_UTC -
                                        timedelta(hours=1, minutes=30))
    today = datetime(2026, 11, 20, tzinfo=UTC) - timedelta(hours=MOSCOW)
    assert set(await walk(served, "admin", {})) == served.ids_where(
        lambda t: t["started_at"] >= today), "neither since nor until: today"
    until = set(await walk(served, "admin", {"until": "2026-11-18"}))
    assert until == served.ids_where(
        lambda t: today - timedelta(days=2) <= t["started_at"] < today - timedelta(days=1))
    assert await walk(served, "admin", {"since": "2026-11-21"}) == [], "the future: nothing"


async def test_the_api_filters(served: Served) -> None:
    http = served.http["admin"]
    users = {name: uid for name, uid in served.world.world.users.items()}
    base = {"since": SINCE_ALL}
    sidorov = served.ids_where(lambda t: t["number"] == "+79031234567")
    for typed in ("8 903 123-45-67", "+7(903)1234567", "89031234567", "+7 903 123 45 67"):
        assert set(await walk(served, "admin", {**base, "number": typed})) == sidorov, typed
    status, error = await get_json(http, f"{served.base}/api/calls?number=12345")
    assert status == 400 and error["code"] == "calls.bad_phone"
    assert "не номер телефона" in error["error"]
    cases: list[tuple[dict[str, Any], Any]] = [
        ({"manager": users["smirnova"], "min_duration": 60},
         lambda t: "102" in participants(t) and t["talk"] >= 60),
        ({"direction": "outbound", "status": "busy"},
         lambda t: t["direction"] == "outbound" and t["status"] == "busy"),
        ({"source": BILLBOARD}, lambda t: t["source"] == BILLBOARD),
        ({"recording": "yes"}, lambda t: t["recorded"]),
        ({"violation": "yes"}, lambda t: t["violation"]),
        ({"violation": "no", "manager": users["petrov"], "status": "answered"},
         lambda t: not t["violation"] and "101" in participants(t)
         and t["status"] == "answered"),
        ({"client_name": "рОмАшКа"}, lambda t: t["number"] == "+79161234567"),
        ({"client": served.world.world.clients["103"]}, lambda t: t["number"] ==
         "+79265550011"),
    ]
    for query, keep in cases:
        want = served.ids_where(keep)
        assert want, query
        assert set(await walk(served, "admin", {**base, **query})) == want, query
    two = [("since", SINCE_ALL), ("manager", users["smirnova"]),
           ("manager", users["kuznetsov"])]
    assert set(await walk(served, "admin", two)) == served.ids_where(
        lambda t: bool(participants(t) & {"102", "103"}))
    status, body = await get_json(http, f"{served.base}/api/calls?since={SINCE_ALL}"
                                  "&client_name=нет+такого")
    assert status == 200 and body == {"calls": [], "next": None}


async def test_a_manager_never_sees_another_managers_calls(served: Served) -> None:
    w = served.world.world
    mine = served.visible("petrov")
    assert mine and mine != served.visible("admin")
    queries: list[dict[str, Any]] = [
        {}, {"number": "+79031234567"}, {"number": "+79265550011"}, {"status": "busy"},
        {"client_name": "Вектор"}, {"source": BILLBOARD}, {"sort": "longest"},
        {"manager": w.users["petrov"]}, {"min_duration": 0},
    ]
    for query in queries:
        found = set(await walk(served, "petrov", {"since": SINCE_ALL, "limit": 4, **query}))
        assert found <= mine, query
    assert set(await walk(served, "petrov", {"since": SINCE_ALL})) == mine
    # Picking someone else, or another team, or someone else's client is refused.
    for who, query in (("petrov", f"manager={w.users['smirnova']}"),
                       ("petrov", f"manager={w.users['kuznetsov']}"), ("petrov", "team=1"),
                       ("petrov", "team=2"), ("kuznetsov", f"client={w.clients['101']}")):
        status, body = await get_json(served.http[who],
                                      f"{served.base}/api/calls?since={SINCE_ALL}&{query}")
        assert status == 400 and body["code"].startswith("calls.unknown_"), query
    # A cursor taken from the admin's list only moves where petrov's own list starts.
    status, body = await get_json(served.http["admin"],
                                  f"{served.base}/api/calls?since={SINCE_ALL}&limit=3")
    ids = []
    cursor = body["next"]
    while cursor:
        status, body = await get_json(served.http["petrov"], f"{served.base}/api/calls?since="
                                      f"{SINCE_ALL}&limit=5&cursor={cursor}")
        assert status == 200
        ids += [c["id"] for c in body["calls"]]
        cursor = body["next"]
    assert set(ids) <= mine
    # The CSV too.
    async with served.http["petrov"].get(f"{served.base}/calls.csv?since={SINCE_ALL}"
                                         ) as response:
        rows = list(csv.reader(io.StringIO((await response.read()).decode("utf-8-sig")),
                               delimiter=";"))
    links = {int(row[-1].rsplit("/", 1)[1]) for row in rows[1:]}
    assert links == mine
    # The marketer keeps the API of architecture.md (no recordings) but has no call log.
    status, body = await get_json(served.http["marketer"], f"{served.base}/api/calls?since="
                                  f"{SINCE_ALL}&limit=500")
    assert status == 200 and all(c["recordings"] == [] for c in body["calls"])
    status, body = await get_json(served.http["marketer"],
                                  f"{served.base}/api/calls?recording=yes")
    assert status == 403 and body["code"] == "calls.recordings_not_allowed"


# -- the CSV -------------------------------------------------------------------------------------


async def test_the_csv_opens_in_russian_excel(served: Served, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    w = served.world.world
    url = (f"{served.base}/calls.csv?since=2026-11-11&until=2026-11-20&manager="
           f"{w.users['petrov']}")
    async with served.http["sokolova"].get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert response.headers["Content-Disposition"] == \
            'attachment; filename="calls-2026-11-11-2026-11-20.csv"'
        raw = await response.read()
    assert raw.startswith(b"\xef\xbb\xbf"), "a BOM: Excel reads UTF-8"
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    header = rows[0]
    assert header[:4] == ["Дата", "Время", "Направление", "Статус"]
    assert "Кто звонил / кому звонили" in header and "Говорили" in header
    start = datetime(2026, 11, 10, 21, tzinfo=UTC)
    want = served.ids_where(lambda t: "101" in participants(t) and t["started_at"] >= start)
    got = {int(row[-1].rsplit("/", 1)[1]): dict(zip(header, row, strict=True))
           for row in rows[1:]}
    assert set(got) == want
    busy = got[served.world.linkedids["d1.101.busy"]]
    assert busy["Статус"] == "Занято" and busy["Кто звонил / кому звонили"] == "Иван Петров"
    assert busy["Говорили"] == "" and busy["Дата"] == "19.11.2026"
    missed = got[served.world.linkedids["d1.102.miss"]]
    assert missed["Кто звонил / кому звонили"] == "Ольга Смирнова, Иван Петров"
    answered = got[served.world.linkedids["d1.101.out"]]
    assert answered["Говорили"] == "Иван Петров" and answered["Клиент"] == "ООО Ромашка"
    assert answered["Номер клиента"] == "8 (916) 123-45-67" and answered["Запись"] == "есть"
    billboard = got[served.world.linkedids["d3.bb"]]
    assert billboard["Источник"] == BILLBOARD and billboard["Наш номер"] == "8 (495) 111-00-05"
    # A lead is named after its number ("+7 999 ..."): Excel must not take it for a formula.
    engine = create_engine(served.db_url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            await record_call(session, outbound("lead.1", "101", "+7 999 000-11-22",
                                                NOW_UTC - timedelta(minutes=20), 30.0),
                              hooks=HOOKS)
    finally:
        await engine.dispose()
    async with served.http["sokolova"].get(url) as response:
        rows = list(csv.reader(io.StringIO((await response.read()).decode("utf-8-sig")),
                               delimiter=";"))
    lead = next(dict(zip(rows[0], row, strict=True)) for row in rows[1:]
                if row[5] == "8 (999) 000-11-22")
    assert lead["Клиент"] == "8 (999) 000-11-22"
    assert not [cell for row in rows for cell in row if cell[:1] in ("=", "+", "-", "@")]
    # Bounded: the last line says the export was cut.
    import telecrm.calls.routes as calls_routes

    monkeypatch.setattr(calls_routes, "CSV_MAX_ROWS", 5)
    monkeypatch.setattr(calls_routes, "CSV_BATCH", 2)
    async with served.http["sokolova"].get(url) as response:
        rows = list(csv.reader(io.StringIO((await response.read()).decode("utf-8-sig")),
                               delimiter=";"))
    assert len(rows) == 1 + 5 + 1 and rows[-1][0].startswith("Выгрузка ограничена 5 звонками")
    async with served.http["marketer"].get(f"{served.base}/calls.csv") as response:
        assert response.status == 403
    async with served.http["sokolova"].get(f"{served.base}/calls.csv?number=abc") as response:
        assert response.status == 400 and "не номер телефона" in await response.text()


# -- the pages -------------------------------------------------------------------------------------


def call_links(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<td data-label="Время"><a href="/calls/(\d+)"', html)]


async def test_the_call_log_page_filters_pages_and_links(served: Served) -> None:
    w = served.world.world
    http = served.http["sokolova"]
    url = (f"{served.base}/calls?since=2026-11-11&until=2026-11-20&manager="
           f"{w.users['smirnova']}&min_duration=60")
    async with http.get(url) as response:
        assert response.status == 200
        html = await response.text()
    start = datetime(2026, 11, 10, 21, tzinfo=UTC)
    want = served.ids_where(lambda t: "102" in participants(t) and t["talk"] >= 60
                            and t["started_at"] >= start)
    assert want and set(call_links(html)) == want
    assert "Звонки с 11.11.2026 по 20.11.2026" in html
    assert f'<option value="{w.users["smirnova"]}" selected>Ольга Смирнова (102)' in html
    assert 'value="60"' in html and "Скачать CSV" in html
    assert f'href="/calls.csv?since=2026-11-11&amp;until=2026-11-20&amp;manager=' \
           f'{w.users["smirnova"]}&amp;min_duration=60"' in html
    # The supervisor picks among his team only; no team picker (he has one team).
    assert "Алексей Кузнецов" not in html.split("</form>")[0]
    assert 'name="team"' not in html
    # Paging on the page: 50 a page, next and back.
    async with http.get(f"{served.base}/calls?since={SINCE_ALL}") as response:
        first = await response.text()
    assert len(call_links(first)) == 50 and "Дальше →" in first and "← Назад" not in first
    next_url = re.search(r'<a href="([^"]+)" rel="next">', first)
    assert next_url is not None
    async with http.get(served.base + next_url.group(1).replace("&amp;", "&")) as response:
        second = await response.text()
    assert "← Назад" in second and not set(call_links(first)) & set(call_links(second))
    everything: list[int] = []
    page_html = first
    while True:
        everything += call_links(page_html)
        found = re.search(r'<a href="([^"]+)" rel="next">', page_html)
        if found is None:
            break
        async with http.get(served.base + found.group(1).replace("&amp;", "&")) as response:
            page_html = await response.text()
    assert len(everything) == len(set(everything)) and set(everything) == \
        served.visible("sokolova")
    # Errors are said in Russian beside the form, not as an error page.
    async with http.get(f"{served.base}/calls?number=123") as response:
        assert response.status == 400
        html = await response.text()
    assert "«123» — не номер телефона" in html and 'id="call-filters"' in html
    async with http.get(f"{served.base}/calls?since=2026-11-20&until=2026-11-01") as response:
        html = await response.text()
    assert "Начало периода позже его конца." in html
    assert 'name="since" value="2026-11-20"' in html and 'name="until" value="2026-11-01"' in html
    # Older links by day still work.
    async with http.get(f"{served.base}/calls?date=2026-11-19") as response:
        html = await response.text()
    assert "Звонки за 19.11.2026" in html
    # Managers see no people picker; admins get the team picker.
    async with served.http["petrov"].get(f"{served.base}/calls") as response:
        assert 'name="manager"' not in await response.text()
    async with served.http["admin"].get(f"{served.base}/calls") as response:
        html = await response.text()
    assert 'name="team"' in html and "Второй отдел" in html
    async with served.http["marketer"].get(f"{served.base}/calls",
                                           allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"] == "/calltracking"


async def test_rows_and_the_call_page_name_who_dialled_and_who_rang(served: Served) -> None:
    http = served.http["sokolova"]
    busy = served.world.linkedids["d0.101.busy"]
    missed = served.world.linkedids["d0.102.miss"]
    async with http.get(f"{served.base}/calls?status=busy") as response:
        html = await response.text()
    row = html.split(f'href="/calls/{busy}"')[1].split("</tr>")[0]
    assert 'title="Набор номера, без ответа">Иван Петров</span>' in row
    assert '<td data-label="Говорили">—</td>' in row
    async with http.get(f"{served.base}/calls/{missed}") as response:
        page = await response.text()
    assert "Кто звонил и кому звонили" in page
    assert "Ольга Смирнова <span class=\"muted\">102</span>" in page
    assert "Иван Петров <span class=\"muted\">101</span>" in page
    assert page.count("Входящий вызов, без ответа") == 2
    answered = served.world.linkedids["d0.101.out"]
    async with http.get(f"{served.base}/calls/{answered}") as response:
        page = await response.text()
    facts = page.split("<dt>Говорили</dt><dd>")[1].split("</dd>")[0]
    assert facts == "Иван Петров", "names, not extensions"
    assert "<dt>АТС</dt>" not in page, "a company with one PBX is not told its name"


async def test_a_call_without_a_transcript_asks_for_none(served: Served) -> None:
    http = served.http["sokolova"]
    plain = served.world.linkedids["d0.101.out"]
    async with http.get(f"{served.base}/calls/{plain}") as response:
        page = await response.text()
    assert "data-transcript=" not in page and "Расшифровки пока нет." in page
    engine = create_engine(served.db_url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            await save_transcript(session, plain, {"duration": 5.0, "model": "m", "speakers": {
                "manager": [{"word": "добрый", "start": 0.1, "end": 0.4, "conf": 0.9}],
                "client": []}})
    finally:
        await engine.dispose()
    async with http.get(f"{served.base}/calls/{plain}") as response:
        page = await response.text()
    assert f'data-transcript="/api/calls/{plain}/transcript"' in page


async def test_favicon_is_served_to_anyone(served: Served) -> None:
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(f"{served.base}/favicon.ico") as response:
            assert response.status == 200
            body = await response.read()
    assert body[:4] == b"\x00\x00\x01\x00", "an ICO file"
    async with served.http["petrov"].get(f"{served.base}/calls") as response:
        html = await response.text()
    assert '<link rel="icon" href="/favicon.ico"' in html


# -- the live board --------------------------------------------------------------------------------


@dataclass
class FakeLeg:
    role: str
    extension: str | None
    channel: str
    answered_at: datetime | None
    ended_at: datetime | None = None


@dataclass
class FakeCall:
    linkedid: str
    direction: str
    client_number: str | None
    legs: list[FakeLeg]


class FakeTracker:
    def __init__(self, calls: list[FakeCall]) -> None:
        self.calls = calls

    def live_calls(self, at: float | None = None) -> list[FakeCall]:
        return self.calls


class FakeListener:
    def __init__(self, calls: list[FakeCall]) -> None:
        self.tracker = FakeTracker(calls)


async def test_the_live_board_names_known_clients(call_log_db: tuple[str, CallLogWorld, Path],
                                                  tmp_path: Path) -> None:
    db_url, _, recordings = call_log_db
    talking = NOW_UTC - timedelta(minutes=2)
    calls = [FakeCall("1.1", "inbound", "89161234567", [
                 FakeLeg("client", None, "PJSIP/carrier-1", talking),
                 FakeLeg("manager", "101", "PJSIP/101-1", talking)]),
             FakeCall("2.1", "outbound", "+79990001122", [
                 FakeLeg("manager", "102", "PJSIP/102-1", talking),
                 FakeLeg("client", None, "PJSIP/carrier-2", talking)])]
    settings = Settings(data_dir=tmp_path, database_url=db_url, recordings_source=recordings)
    app = create_app(settings, with_listener=False)
    app[LISTENER] = FakeListener(calls)  # type: ignore[assignment]
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            base = f"http://127.0.0.1:{port}"
            async with http.post(f"{base}/api/login", json={"username": "sokolova",
                                                             "password": PASSWORD}) as r:
                assert r.status == 200
            status, body = await get_json(http, f"{base}/api/calls/live")
    finally:
        await runner.cleanup()
    assert status == 200
    by_id = {c["linkedid"]: c for c in body["calls"]}
    assert by_id["1.1"]["client_name"] == "ООО Ромашка" and by_id["1.1"]["client_id"]
    assert by_id["2.1"]["client_name"] is None, "an unknown number stays a number"
    assert by_id["1.1"]["manager"] == "Иван Петров"


def test_the_demo_table_names_who_dialled_even_when_nobody_talked() -> None:
    from zoneinfo import ZoneInfo

    from telecrm.demo import format_table

    busy = {"started_at": "2026-11-20T09:00:00+00:00", "client_name": "АО Вектор",
            "client_number": "+79265550011", "managers": [], "direction": "outbound",
            "status": "busy", "talk_seconds": 0.0,
            "attempts": [{"extension": "103", "kind": "dialled", "talked": False}]}
    missed = {**busy, "client_name": "ООО Северный ветер", "direction": "inbound",
              "status": "missed", "attempts": [{"extension": "102", "kind": "rang",
                                                "talked": False}]}
    table = format_table([busy, missed], ZoneInfo("Europe/Moscow")).splitlines()
    assert "Вызов" in table[0] and "Говорили" in table[0]
    assert "103 Алексей Кузнецов" in table[2] and "102 Ольга Смирнова" in table[3]
