"""Issue 17, "no data of another team in any answer": every GET route, as every outsider.

Two teams work on one floor. Team B («Второй отдел») owns a client «ООО Чужой-маркер»
with phones nobody else has, a contact, a note, a meeting, a task, a deal, an invoice,
a payment, call outcomes and calls: one recorded, transcribed and checked against the
team's own sales script, one missed from an unknown number in its queue, one in
progress. It also owns «ООО Общий-клиент», whom team A's manager called too: that card
is his to open, team B's recorded call on it is not. Each of these things carries a
marker (a word, a call's linkedid, a phone number) that appears nowhere else.

The routes are read from the app's router, not from a list: every GET route is asked
as team A's manager, team A's supervisor and the marketer, with no query and with
plausible ones (periods covering the seeded day, CSV, searches, filters naming team
B's team, people and client), its path parameters filled with ids of team B's objects
and of team A's. A route whose parameter this test does not know fails it, so a new
route has to be taught here before it can ship unchecked.

What it proves: no answer (JSON, HTML, CSV, a stream's first bytes) is a 500, and
none holds a marker of team B in any written form (JSON escapes, HTML entities, URL
encoding, any spacing or prefix of a phone number), nor the name of one of its people
(except as the owner beside the shared client). The marketer sees the customer calls
of every team by design (call tracking: the number, the client's name, who talked), so
for him only the markers of cards, tasks, sales and speech are forbidden. The admin
asking the same, and team B's own manager and supervisor asking each route once, find
every marker, and team A's people find their own clients: the markers are findable,
the sweep reads real answers, and the check can fail.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode

import pytest
from aiohttp import web
from sqlalchemy import select

from crm_core.calls.services import record_call
from crm_core.calls.snapshot import CallData, LegData
from crm_core.db import create_engine, session_factory
from crm_core.people.models import Team
from crm_core.people.users import add_user, set_team_queue
from crm_core.sales.deals import StageSpec, create_pipeline
from crm_core.sales.models import DealStatus
from crm_core.sales.reports import REPORTS
from crm_core.speech import scripts as kkp_scripts
from crm_core.speech.transcripts import save_kkp_result, save_transcript
from speech.kkp import check
from speech.script import parse_script_text
from telecrm.settings import Settings
from tests.support.browser import (
    HOOKS,
    fake_wav,
    seed_calls_start,
    seed_world,
    seeded_password_hash,
    serve_app,
)
from tests.support.floor import Floor

# A Friday in November 2026: the seeded calls are on that day.
pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")

TEAM_A, TEAM_B = "Отдел продаж", "Второй отдел"
OUTSIDERS = ("petrov", "sokolova", "marketer")  # team A's manager and supervisor, marketer
# They must find every marker: the admin (asking everything, like the outsiders) and
# team B's manager and supervisor (each route once, without a query: enough to find them).
INSIDERS = ("admin", "kuznetsov", "volkova")

# Markers of team B's data. The marketer may see those of customer calls (who called,
# the client's name); nobody outside team B may see those of cards, tasks, sales, speech.
CALL_MARKERS = {"client": "Чужой-маркер", "call": "1799000111.11",
                "missed call": "1799000222.22", "shared call": "1799000333.33",
                "live call": "1799000555.55"}
CALL_PHONES = {"client phone": "9167771313", "unknown caller": "9038883131"}
CARD_MARKERS = {
    "comment": "Комментарий-маркер Б", "address": "Адресная-маркер улица",
    "contact": "Контактов-маркер Пётр", "e-mail": "chuzhoy.marker@example.org",
    "note": "Заметка-маркер Б", "meeting": "Встреча-маркер Б", "task": "Задача-маркер Б",
    "deal": "Сделка-маркер Б", "invoice": "СЧ-МАРКЕР-77", "payment": "Оплата-маркер Б",
    "outcome": "Итог-маркер Б", "transcript": "щавельмаркер", "script": "Скрипт-маркер Б",
    "shared call's transcript": "кедрмаркер", "shared call's outcome": "Итог-общий-маркер",
    "scorecard": "Карточка-маркер Б", "score comment": "Оценка-маркер Б",
    "appeal": "Апелляция-маркер Б",
}
CARD_PHONES = {"second phone": "4957331919", "contact phone": "9254442121"}
# Team B's people. The calls the marketer sees name who talked; team A sees them only as
# the owner of the client both teams talked with, in the answers that show that client.
PEOPLE = {"team B's manager": "Алексей Кузнецов", "team B's supervisor": "Вера Волкова"}
# Team A's client (tests/support/browser.py) and team B's client that team A's manager
# talked with too (his to open, with his own call), which team A's people do see.
SHARED_PHONE = "+7 916 555-24-24"
OWN = {"own client": "ООО Ромашка", "shared client": "Общий-клиент"}
OWN_PHONES = {"own phone": "9161234567", "shared phone": "9165552424"}

SCRIPT = """\
name: Скрипт-маркер Б
stages:
  - id: greeting
    title: Приветствие
    phrases: ["добрый день"]
forbidden:
  - id: slang
    phrases: ["короче"]
"""
SCRIPT_A = SCRIPT.replace("Скрипт-маркер Б", "Скрипт отдела продаж")


def _words(text: str, start: float) -> list[dict[str, object]]:
    return [{"word": w, "start": start + 0.4 * i, "end": start + 0.4 * i + 0.3, "conf": 0.95}
            for i, w in enumerate(text.split())]


TRANSCRIPT: dict[str, Any] = {
    "duration": 20.0, "model": "vosk-model-small-ru-0.22",
    "speakers": {"manager": _words("добрый день щавельмаркер короче", 0.5),
                 "client": _words("здравствуйте слушаю", 3.0)}}
SHARED_TRANSCRIPT = {**TRANSCRIPT, "speakers": {
    **TRANSCRIPT["speakers"], "manager": _words("добрый день кедрмаркер", 0.5)}}
TRANSCRIPT_A = {**TRANSCRIPT, "speakers": {**TRANSCRIPT["speakers"],
                                           "manager": _words("добрый день короче", 0.5)}}

# Query strings tried on every route: the periods every kind of page reads (covering
# the seeded day), CSV, and filters naming team B's team, people and client (ids filled
# in per run). Search words are parts of markers, never a whole one: a page that echoes
# the query must not look like a leak.
DAY = "2026-11-20"
PERIOD = {"from": "2026-11-01", "to": "2026-11-30"}
DAYS = {"since": "2026-11-19", "until": "2026-11-21"}
SEARCH = {"q": "Чужой", "number": "91677713", "client_name": "Чужой"}
TEAM_B_FILTERS = {"team": "{team}", "team_id": "{team}", "client": "{client}",
                  "with": "{client}", "manager_id": "{manager}", "owner": "{manager}",
                  "archived": "1", **PERIOD}
QUERIES: list[dict[str, str]] = [
    {}, DAYS, PERIOD, {**PERIOD, "format": "csv", "by": "source"},
    {"date": DAY, "month": "2026-11"}, SEARCH, TEAM_B_FILTERS,
    {"manager": "103", "date": DAY, "needs_review": "1", **PERIOD},
    {"manager": "{manager}", **DAYS},
]
# for routes that name one object: bare, searching in days, with team B's filters
PARAMETER_QUERIES = [{}, {**SEARCH, **DAYS}, TEAM_B_FILTERS]

# What a path parameter names, by the path segment before it. A route whose parameter is
# not here fails the test: teach it which objects of team B (and A) to try.
PARAMETERS = {("calls", "id"): "call", ("clients", "id"): "client", ("users", "id"): "user",
              ("results", "id"): "kkp result", ("scripts", "id"): "script",
              ("reports", "name"): "report", ("dictionaries", "id"): "dictionary"}
SEPARATORS = re.compile(r"[\s\-\u2010-\u2015()./]+")


@dataclass
class Seeded:
    """Ids of team B's objects (to attack with) and team A's (for contrast), by kind."""

    b: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    a: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    b_team: int = 0
    b_manager: int = 0
    b_client: int = 0
    b_call: int = 0  # the answered one: recorded, transcribed, checked, with an outcome
    shared_call: int = 0  # team B's call with the client team A's manager talked with too


def readable(body: bytes, content_type: str) -> str:
    """The answer as a person would read it, folded to lower case: JSON unescaped, HTML
    entities and URL encoding decoded."""
    text = body.decode("utf-8", errors="replace")
    if content_type == "application/json":
        text = json.dumps(json.loads(text), ensure_ascii=False)
    return html.unescape(unquote(html.unescape(text))).casefold()


def leaks(text: str, markers: dict[str, str], phones: dict[str, str]) -> list[str]:
    """Names of the markers ``text`` holds; phones in any spacing, with any prefix."""
    digits = SEPARATORS.sub("", text)
    found = [name for name, marker in markers.items() if marker.casefold() in text]
    return found + [name for name, number in phones.items() if number in digits]


def routes(app: web.Application) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every GET route's path and its parameters as (segment before it, name)."""
    out = []
    for route in app.router.routes():
        resource = route.resource
        if route.method != "GET" or resource is None or isinstance(resource,
                                                                   web.StaticResource):
            continue
        path = resource.canonical
        parts = path.strip("/").split("/")
        params = [(parts[i - 1] if i else "", part[1:-1]) for i, part in enumerate(parts)
                  if part.startswith("{")]
        out.append((path, params))
    return out


def fill(path: str, params: list[tuple[str, str]], ids: dict[str, list[int | str]]
         ) -> list[str]:
    """``path`` with each combination of its parameters' ids."""
    paths = [path]
    for segment, name in params:
        kind = PARAMETERS.get((segment, name))
        assert kind is not None, (
            f"{path}: this test does not know what {{{name}}} after /{segment}/ names; "
            "add it to PARAMETERS with team B's objects of that kind")
        values = ids.get(kind) or []
        assert values, f"{path}: no seeded {kind} to try"
        paths = [p.replace("{" + name + "}", str(v), 1) for p in paths for v in values]
    return paths


def _leg(uid: str, ext: str | None, role: str, start: datetime, talk: float,
         answered: bool) -> LegData:
    return LegData(uniqueid=uid, channel=f"PJSIP/{ext or 'carrier'}-00b1", role=role,
                   extension=ext, started_at=start,
                   answered_at=start + timedelta(seconds=2) if answered else None,
                   ended_at=start + timedelta(seconds=2 + talk), talk_seconds=talk)


async def seed_people(db_url: str) -> int:
    """Team B gets a supervisor and a queue of its own; the company a sales pipeline."""
    engine = create_engine(db_url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            start = seed_calls_start()
            volkova = await add_user(session, "volkova", name=PEOPLE["team B's supervisor"],
                                     role="supervisor", extension="202", team=TEAM_B,
                                     password_hash=seeded_password_hash(),
                                     created_at=start - timedelta(days=366))
            await set_team_queue(session, TEAM_B, "second")
            await create_pipeline(session, "Продажи", [
                StageSpec("Квалификация"), StageSpec("Выиграна", DealStatus.WON.value),
                StageSpec("Проиграна", DealStatus.LOST.value)], by=None, actor="test")
    finally:
        await engine.dispose()
    return volkova.id


def _call(linkedid: str, number: str, ext: str, start: datetime, *, answered: bool = True,
          direction: str = "inbound", queue: str | None = None, live: bool = False
          ) -> CallData:
    """A call of one manager with a client; an answered one is recorded (a mix)."""
    talk = 60.0 if answered else 0.0
    recording = (f"{start:%Y/%m/%d}/{linkedid}-mix.wav",) if answered and not live else ()
    legs = [_leg(f"{linkedid}-c", None, "client", start, talk, answered),
            _leg(f"{linkedid}-m", ext, "manager", start, talk, answered)]
    if live:
        legs = [replace(leg, ended_at=None, talk_seconds=0.0) for leg in legs]
    return CallData(
        linkedid=linkedid, direction=direction,
        status="in_progress" if live else "answered" if answered else "missed",
        client_number=number, did="+74951110002" if direction == "inbound" else None,
        started_at=start, answered_at=start + timedelta(seconds=2) if answered else None,
        ended_at=None if live else start + timedelta(seconds=2 + talk), ring_seconds=2.0,
        talk_seconds=0.0 if live else talk, transferred=False,
        managers=(ext,) if answered else (), recordings=recording, rang=(ext,), queue=queue,
        legs=tuple(legs))


async def seed_calls(db_url: str, root: Path, seeded: Seeded) -> None:
    """Team B's calls: one recorded, transcribed and checked, one missed in its queue, one
    in progress, and one with the client team A's manager talked with too (after B's
    call: the card is his to open, B's call on it is not)."""
    start = seed_calls_start() + timedelta(minutes=20)
    calls = {
        "b": _call(CALL_MARKERS["call"], "+7 916 777-13-13", "103", start, queue="second"),
        "missed": _call(CALL_MARKERS["missed call"], "8 (903) 888-31-31", "103",
                        start + timedelta(minutes=5), answered=False, queue="second"),
        "shared b": _call(CALL_MARKERS["shared call"], SHARED_PHONE, "103",
                          start + timedelta(minutes=10)),
        "shared a": _call("1799000444.44", SHARED_PHONE, "101", start + timedelta(minutes=15),
                          direction="outbound"),
        "live": _call(CALL_MARKERS["live call"], "+7 916 777-13-13", "103",
                      seed_calls_start() + timedelta(minutes=58), live=True, queue="second"),
    }
    ids: dict[str, int] = {}
    engine = create_engine(db_url)
    try:
        sessions = session_factory(engine, writer=True)
        for name, data in calls.items():
            for path in data.recordings:
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                (root / path).write_bytes(fake_wav(seconds=1))
            async with sessions() as session, session.begin():
                ids[name] = (await record_call(session, data, hooks=HOOKS)).id
        seeded.b["call"] += [ids["b"], ids["missed"], ids["shared b"], ids["live"]]
        seeded.a["call"].append(ids["shared a"])
        seeded.b_call, seeded.shared_call = ids["b"], ids["shared b"]
        async with sessions() as session, session.begin():
            teams = dict((await session.execute(select(Team.name, Team.id))).all())
            for team, text, call_id, transcript in (
                    (TEAM_B, SCRIPT, ids["b"], TRANSCRIPT),
                    (TEAM_B, SCRIPT, ids["shared b"], SHARED_TRANSCRIPT),
                    (TEAM_A, SCRIPT_A, seeded.a["call"][0], TRANSCRIPT_A)):
                row = await kkp_scripts.add_version(
                    session, name=parse_script_text(text).name, text=text,
                    team_id=teams[team], stage=None, effective_from=start - timedelta(days=1),
                    fine_amount=500, actor="test")
                await save_transcript(session, call_id, transcript)
                script = parse_script_text(text)
                result = await save_kkp_result(session, call_id, script.name, row.digest,
                                               check(script, transcript), script_id=row.id)
                side = seeded.b if team == TEAM_B else seeded.a
                side["script"].append(row.id)
                side["kkp result"].append(result.id)
            seeded.b_team = teams[TEAM_B]
    finally:
        await engine.dispose()


async def seed_card(crm: Floor, seeded: Seeded) -> None:
    """Team B's clients, and everything on the card of the first, written by team B."""
    async def ok(who: str, method: str, path: str, body: object) -> dict[str, object]:
        status, answer = await crm.call(who, method, path, body)
        assert status in (200, 201), (path, status, answer)
        assert isinstance(answer, dict)
        return answer

    client = await ok("kuznetsov", "POST", "/api/clients", {
        "name": "ООО Чужой-маркер", "phones": ["+7 916 777-13-13", "8 (495) 733-19-19"],
        "comment": CARD_MARKERS["comment"], "legal_address": CARD_MARKERS["address"]})
    cid = int(client["id"])  # type: ignore[call-overload]
    seeded.b_client = cid
    seeded.b["client"] += [cid, crm.world.clients["103"]]
    await ok("kuznetsov", "POST", f"/api/clients/{cid}/contacts", {
        "name": CARD_MARKERS["contact"], "phones": ["+7 925 444-21-21"],
        "emails": [CARD_MARKERS["e-mail"]]})
    await ok("kuznetsov", "POST", f"/api/clients/{cid}/notes", {"text": CARD_MARKERS["note"]})
    await ok("kuznetsov", "POST", f"/api/clients/{cid}/activities",
             {"kind": "meeting", "text": CARD_MARKERS["meeting"]})
    await ok("kuznetsov", "POST", f"/api/clients/{cid}/tasks",
             {"kind": "call", "due_at": f"{DAY}T17:00:00+03:00", "title": CARD_MARKERS["task"]})
    pipelines = await ok("kuznetsov", "GET", "/api/pipelines", None)
    pipeline = pipelines["pipelines"][0]["id"]  # type: ignore[index]
    await ok("kuznetsov", "POST", "/api/deals", {
        "client_id": cid, "pipeline_id": pipeline, "title": CARD_MARKERS["deal"],
        "amount": "777 000"})
    await ok("kuznetsov", "POST", "/api/invoices", {
        "client_id": cid, "number": CARD_MARKERS["invoice"], "amount": "777000",
        "issued_on": "2026-11-02"})
    await ok("volkova", "POST", "/api/payments", {
        "client_id": cid, "amount": "1000", "paid_on": "2026-11-03",
        "invoice": CARD_MARKERS["invoice"], "note": CARD_MARKERS["payment"]})
    shared = await ok("kuznetsov", "POST", "/api/clients",
                      {"name": "ООО Общий-клиент", "phones": [SHARED_PHONE]})
    seeded.b["client"].append(int(shared["id"]))  # type: ignore[call-overload]


async def seed_quality(crm: Floor, seeded: Seeded) -> None:
    """Team B's scorecard and a score of its call; a confirmed fine its manager appeals."""
    async def ok(who: str, path: str, body: object) -> Any:
        status, answer = await crm.call(who, "POST" if body is not None else "GET", path,
                                        body)
        assert status in (200, 201), (path, status, answer)
        return answer

    card = await ok("volkova", "/api/qc/scorecards", {
        "name": CARD_MARKERS["scorecard"], "items": [{"title": "Приветствие", "weight": 10}]})
    await ok("volkova", f"/api/calls/{seeded.b_call}/scores", {
        "scorecard_id": card["id"], "answers": {"k1": "yes"},
        "comment": CARD_MARKERS["score comment"]})
    result = seeded.b["kkp result"][0]
    detail = await ok("volkova", f"/api/kkp/results/{result}", None)
    slang = next(v["index"] for v in detail["violations"] if v["kind"] == "forbidden")
    fine = await ok("volkova", f"/api/kkp/results/{result}/violations/{slang}",
                    {"decision": "confirmed"})
    await ok("kuznetsov", f"/api/kkp/fines/{fine['id']}/appeal",
             {"reason": CARD_MARKERS["appeal"]})


async def fetch(crm: Floor, who: str, path: str) -> tuple[int, str]:
    """Status and readable text of a GET as ``who``; a stream gives its first moment."""
    http = await crm.login(who)
    async with http.get(crm.base + path, allow_redirects=False) as response:
        if response.content_type == "text/event-stream":
            try:
                body = await asyncio.wait_for(response.content.read(65536), 0.2)
            except TimeoutError:
                body = b""
            response.close()
        else:
            body = await response.read()
        if response.status >= 500:
            return response.status, body.decode("utf-8", "replace")
        return response.status, readable(body, response.content_type)


async def sweep(crm: Floor, who: str, paths: list[str]) -> tuple[set[str], list[str]]:
    """Ask every path as ``who``; the markers he saw and what went wrong.

    Outsiders (see OUTSIDERS) must see no marker of team B: each one seen is an error.
    Everyone's answers are searched for team A's own client too (OWN), to show the
    sweep reads real answers.
    """
    markers, phones = dict(CARD_MARKERS), dict(CARD_PHONES)
    if who != "marketer":
        markers |= CALL_MARKERS
        phones |= CALL_PHONES
    found: set[str] = set()
    errors: list[str] = []
    gate = asyncio.Semaphore(4)

    async def one(path: str) -> None:
        async with gate:
            status, text = await fetch(crm, who, path)
        if status >= 500:
            errors.append(f"{who} GET {path}: {status} {text[:300]}")
            return
        own = leaks(text, OWN, OWN_PHONES)
        people = {} if who == "marketer" or "shared client" in own else PEOPLE
        seen = leaks(text, markers | people, phones)
        found.update(seen, own)
        if seen and who in OUTSIDERS:
            errors.append(f"{who} GET {path}: {status}, shows team B's {', '.join(seen)}")

    await asyncio.gather(*(one(path) for path in paths))
    return found, errors


def requests(app: web.Application, seeded: Seeded, *, queries: bool = True) -> list[str]:
    """Every GET route with every id of B and A in its path, and with every query
    (those that name one object: the few that fit); no query unless ``queries``."""
    ids: dict[str, list[int | str]] = {kind: [*seeded.b.get(kind, []), *seeded.a.get(kind, [])]
                                       for kind in {*seeded.b, *seeded.a}}
    ids["report"] = list(REPORTS)
    values = {"team": seeded.b_team, "client": seeded.b_client, "manager": seeded.b_manager}
    out: list[str] = []
    for path, params in routes(app):
        tried = (PARAMETER_QUERIES if params else QUERIES) if queries else [{}]
        for filled in fill(path, params, ids):
            for query in tried:
                query = {k: v.format(**values) for k, v in query.items()}
                out.append(filled + ("?" + urlencode(query) if query else ""))
    return out


async def test_no_answer_to_an_outsider_holds_another_teams_data(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    root = tmp_path / "recordings"
    world = await seed_world(db_url, root)
    volkova = await seed_people(db_url)
    seeded = Seeded()
    seeded.b_manager = world.users["kuznetsov"]
    seeded.a["call"] += [world.calls["romashka_101"], world.calls["sidorov_102"]]
    seeded.a["client"] += [world.clients["101"], world.clients["102"]]
    seeded.a["user"] += [world.users["petrov"]]
    seeded.b["call"] += [world.calls["vector_103"]]
    settings = Settings(data_dir=tmp_path, database_url=db_url, recordings_source=root)
    async with serve_app(settings) as (app, base):
        crm = Floor(base, db_url, world)
        try:
            await seed_card(crm, seeded)
            await seed_calls(db_url, root, seeded)
            seeded.b["user"] += [world.users["kuznetsov"], volkova]
            # a company's phrase dictionary: its report and its calls quote team B's
            # transcript (the phrase «короче» is said in team B's call beside the marker)
            status, dictionary = await crm.call("admin", "POST", "/api/dictionaries",
                                                {"name": "Сленг", "phrases": ["короче"]})
            assert status == 201, dictionary
            seeded.b["dictionary"].append(int(dictionary["id"]))
            _, outcomes = await crm.call("kuznetsov", "GET", "/api/call-outcomes")
            for call_id, note in ((seeded.b_call, CARD_MARKERS["outcome"]),
                                  (seeded.shared_call, CARD_MARKERS["shared call's outcome"])):
                status, _ = await crm.call("kuznetsov", "POST", f"/api/calls/{call_id}/outcome",
                                           {"outcome_id": outcomes["outcomes"][0]["id"],
                                            "note": note})
                assert status == 200
            await seed_quality(crm, seeded)

            paths, bare = requests(app, seeded), requests(app, seeded, queries=False)
            for who in OUTSIDERS + INSIDERS:
                await crm.login(who)
            sweeps = await asyncio.gather(*(
                sweep(crm, who, paths if who in (*OUTSIDERS, "admin") else bare)
                for who in OUTSIDERS + INSIDERS))
            for who in OUTSIDERS + INSIDERS:  # no answer came from a session that had ended
                assert (await crm.call(who, "GET", "/api/me"))[0] == 200, who
        finally:
            await crm.close()
    found = dict(zip(OUTSIDERS + INSIDERS, (seen for seen, _ in sweeps), strict=True))
    errors = [error for _, errs in sweeps for error in errs]
    assert not errors, f"{len(errors)} answers:\n" + "\n".join(sorted(errors)[:40])
    everything = {*CARD_MARKERS, *CALL_MARKERS, *CARD_PHONES, *CALL_PHONES, *PEOPLE}
    assert found["admin"] >= everything, everything - found["admin"]
    assert found["kuznetsov"] | found["volkova"] >= everything, (
        everything - found["kuznetsov"] - found["volkova"])
    # the outsiders were signed in and read real answers: their own team's client
    assert {*OWN, *OWN_PHONES} <= found["petrov"] & found["sokolova"]
    assert "own phone" in found["marketer"]  # his call tracking shows every customer call


def test_a_route_with_a_parameter_it_does_not_know_fails_the_sweep() -> None:
    """A new route cannot slip past: the sweep refuses to guess what its id names."""
    assert fill("/clients/{id}", [("clients", "id")], {"client": [4, 1]}) == ["/clients/4",
                                                                               "/clients/1"]
    with pytest.raises(AssertionError, match=r"does not know what \{id\} after /widgets/"):
        fill("/api/widgets/{id}", [("widgets", "id")], {"client": [4]})
    with pytest.raises(AssertionError, match="no seeded call"):
        fill("/api/calls/{id}", [("calls", "id")], {})
