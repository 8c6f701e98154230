"""A sales floor with twelve days of calls, for the call log's tests (core, web and browser).

Import the fixtures under their names: ``from tests.calls.call_log_world import
call_log_db_fixture, call_log_template_fixture`` (pytest registers ``call_log_db``).

On top of ``seed_world`` (users of every role, three clients, four calls of today):
for each of the twelve days up to the pinned "now" (2026-11-20 12:00 Moscow time), each
of the three managers has an answered outbound call (talk 10 s to 200 s), a busy
outbound call and an inbound call from his client that rang him and a colleague and
was missed; every third day an inbound call comes through the billboard's number
(call tracking), every answered call of Petrov is recorded, and some calls have a
script check (one violation dismissed on one of them).
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from crm_core.calls.services import record_call
from crm_core.calls.snapshot import CallData, LegData
from crm_core.calltracking.services import add_static
from crm_core.db import create_engine, session_factory
from crm_core.speech.models import KkpReview
from crm_core.speech.transcripts import save_kkp_result
from tests.support.browser import HOOKS, World, seed_world
from tests.support.clock import pinned_clock
from tests.support.db_fixtures import BACKENDS
from tests.support.pg_server import PostgresServer

NOW = "2026-11-20T12:00:00+03:00"  # the pinned clock of these tests
NOW_UTC = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
DAYS = 12
BILLBOARD_DID = "+74951110005"
BILLBOARD = "Билборд на Садовом"
# extension -> (client's number, a colleague whose phone also rings)
MANAGERS = {"101": ("+79161234567", "102"), "102": ("+79031234567", "101"),
            "103": ("+79265550011", "101")}
TALKS = (10.0, 45.0, 90.0, 200.0)


OWNERS = {number: ext for ext, (number, _) in MANAGERS.items()}  # who owns each client
TEAMS = {"sokolova": {"101", "102"}}  # the supervisor's team, by extension


def participants(truth: dict[str, object]) -> set[str]:
    """Extensions whose phone dialled, rang or talked in the call."""
    rang = truth.get("rang") or ()
    assert isinstance(rang, tuple)
    return {str(truth["ext"]), *rang}


def visible_to(username: str, truth: dict[str, object]) -> bool:
    """Whether ``username`` may see the call (access.py's rules, written out)."""
    scope = {"petrov": {"101"}, "smirnova": {"102"}, "kuznetsov": {"103"},
             "sokolova": TEAMS["sokolova"]}.get(username)
    if scope is None:
        return username == "admin" or (username == "marketer"
                                       and truth["direction"] != "internal")
    return bool(participants(truth) & scope) or OWNERS.get(str(truth["number"])) in scope


@dataclass
class CallLogWorld:
    world: World
    linkedids: dict[str, int] = field(default_factory=dict)  # linkedid -> call id
    facts: dict[int, dict[str, object]] = field(default_factory=dict)  # call id -> truth


def _leg(uid: str, ext: str | None, role: str, start: datetime, talk: float, *,
         answered: bool, seq_start: float = 0.0) -> LegData:
    begin = start + timedelta(seconds=seq_start)
    return LegData(uniqueid=uid, channel=f"PJSIP/{ext or 'carrier'}-{uid}", role=role,
                   extension=ext, started_at=begin,
                   answered_at=begin + timedelta(seconds=3) if answered else None,
                   ended_at=begin + timedelta(seconds=3 + talk), talk_seconds=talk,
                   bridged_at=begin + timedelta(seconds=3) if answered and talk else None)


def outbound(linkedid: str, ext: str, number: str, start: datetime, talk: float,
             status: str = "answered", recordings: tuple[str, ...] = ()) -> CallData:
    answered = status == "answered"
    return CallData(
        linkedid=linkedid, direction="outbound", status=status, client_number=number,
        did=None, started_at=start,
        answered_at=start + timedelta(seconds=3) if answered else None,
        ended_at=start + timedelta(seconds=3 + talk), ring_seconds=3.0,
        talk_seconds=talk if answered else 0.0, transferred=False,
        managers=(ext,) if answered else (), recordings=recordings if answered else (),
        legs=(_leg(f"{linkedid}-m", ext, "manager", start, talk if answered else 0.0,
                   answered=True),
              _leg(f"{linkedid}-c", None, "client", start, talk if answered else 0.0,
                   answered=answered, seq_start=0.1)))


def inbound_missed(linkedid: str, number: str, did: str, rang: tuple[str, ...],
                   start: datetime) -> CallData:
    legs = [_leg(f"{linkedid}-c", None, "client", start, 0.0, answered=True)]
    legs += [_leg(f"{linkedid}-r{i}", ext, "manager", start, 0.0, answered=False,
                  seq_start=0.2) for i, ext in enumerate(rang)]
    return CallData(
        linkedid=linkedid, direction="inbound", status="missed", client_number=number,
        did=did, started_at=start, answered_at=None, ended_at=start + timedelta(seconds=25),
        ring_seconds=25.0, talk_seconds=0.0, transferred=False, managers=(), recordings=(),
        legs=tuple(legs), rang=rang, queue=None)


def inbound_answered(linkedid: str, number: str, did: str, ext: str, start: datetime,
                     talk: float) -> CallData:
    return CallData(
        linkedid=linkedid, direction="inbound", status="answered", client_number=number,
        did=did, started_at=start, answered_at=start + timedelta(seconds=5),
        ended_at=start + timedelta(seconds=5 + talk), ring_seconds=5.0, talk_seconds=talk,
        transferred=False, managers=(ext,), recordings=(),
        legs=(_leg(f"{linkedid}-c", None, "client", start, talk, answered=True),
              _leg(f"{linkedid}-m", ext, "manager", start, talk, answered=True,
                   seq_start=0.2)),
        rang=(ext,))


async def seed_call_log(db_url: str, recordings_root: Path) -> CallLogWorld:
    """The world above; ``facts`` holds for each call what the filters should find."""
    world = await seed_world(db_url, recordings_root, calls_at=NOW_UTC - timedelta(hours=2))
    found = CallLogWorld(world)
    engine = create_engine(db_url)
    sessions = session_factory(engine, writer=True)
    try:
        async with sessions() as session, session.begin():
            await add_static(session, BILLBOARD_DID, BILLBOARD, actor="test")
        specs: list[tuple[CallData, dict[str, object]]] = []
        for day in range(DAYS):
            base = NOW_UTC - timedelta(days=day, hours=1)  # 11:00 Moscow time
            for n, (ext, (number, colleague)) in enumerate(MANAGERS.items()):
                at = base - timedelta(minutes=30 * n)
                talk = TALKS[(day + n) % len(TALKS)]
                rec = (f"{at:%Y/%m/%d}/d{day}-{ext}-mix.wav",) if ext == "101" else ()
                specs.append((outbound(f"d{day}.{ext}.out", ext, number, at, talk,
                                       recordings=rec),
                              {"ext": ext, "talk": talk, "recorded": bool(rec)}))
                specs.append((outbound(f"d{day}.{ext}.busy", ext, number,
                                       at + timedelta(minutes=5), 0.0, status="busy"),
                              {"ext": ext, "talk": 0.0}))
                specs.append((inbound_missed(f"d{day}.{ext}.miss", number, "+74951110002",
                                             (ext, colleague), at + timedelta(minutes=10)),
                              {"ext": ext, "talk": 0.0, "rang": (ext, colleague)}))
            if day % 3 == 0:
                specs.append((inbound_answered(f"d{day}.bb", "+79161234567", BILLBOARD_DID,
                                               "101", base + timedelta(minutes=20), 75.0),
                              {"ext": "101", "talk": 75.0, "source": BILLBOARD}))
        for data, truth in specs:
            async with sessions() as session, session.begin():
                call = await record_call(session, data, hooks=HOOKS)
                found.linkedids[data.linkedid] = call.id
                found.facts[call.id] = {"linkedid": data.linkedid, "started_at": data.started_at,
                                        "direction": data.direction, "status": data.status,
                                        "number": data.client_number, **truth}
        async with sessions() as session, session.begin():
            violation = {"kind": "forbidden", "id": "slang", "evidence": [],
                         "needs_review": False}
            for day in (0, 1, 2):
                call_id = found.linkedids[f"d{day}.101.out"]
                result = await save_kkp_result(session, call_id, "Скрипт", "v1",
                                               {"score": 60, "stages": [],
                                                "violations": [violation]})
                if day == 2:  # dismissed by the supervisor: no longer a violation
                    session.add(KkpReview(result_id=result.id, violation_index=0,
                                          violation_id="slang", decision="dismissed",
                                          reason="ошибка распознавания", amount=0))
                found.facts[call_id]["violation"] = day != 2
            clean = found.linkedids["d3.101.out"]
            await save_kkp_result(session, clean, "Скрипт", "v1",
                                  {"score": 100, "stages": [], "violations": []})
    finally:
        await engine.dispose()
    start = NOW_UTC - timedelta(hours=2)
    for name, ext, direction, status, number, talk, minutes in (
            ("romashka_101", "101", "inbound", "answered", "+79161234567", 65.0, 0),
            ("sidorov_102", "102", "outbound", "answered", "+79031234567", 40.0, 5),
            ("vector_103", "103", "outbound", "busy", "+79265550011", 0.0, 10),
            ("missed_101", "101", "inbound", "missed", "+79161234567", 0.0, 15)):
        found.facts[world.calls[name]] = {
            "linkedid": name, "started_at": start + timedelta(minutes=minutes),
            "direction": direction, "status": status, "number": number, "ext": ext,
            "talk": talk, "recorded": name == "romashka_101"}
    for truth in found.facts.values():
        truth.setdefault("violation", False)
        truth.setdefault("source", None)
        truth.setdefault("recorded", False)
        started, linkedid = truth["started_at"], str(truth["linkedid"])
        if truth["recorded"] and linkedid.startswith("d") and isinstance(started, datetime):
            path = recordings_root / f"{started:%Y/%m/%d}/{linkedid.split('.')[0]}-101-mix.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"RIFF")
    return found


# -- fixtures: the world is seeded once per backend, each test gets a copy --------------------


@dataclass
class _Template:
    backend: str
    source: str  # a SQLite file path or a PostgreSQL template database name
    world: CallLogWorld
    recordings: Path
    server: object = None


async def _pg_admin(server: PostgresServer, sql: str) -> None:
    connection = await asyncpg.connect(server.dsn("postgres"))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="module", params=BACKENDS, name="call_log_template")
def call_log_template_fixture(request: pytest.FixtureRequest,
                              tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Template]:
    """The seeded world, once per backend and module (seeding takes a while)."""
    directory = tmp_path_factory.mktemp("call-log")
    recordings = directory / "recordings"
    if request.param == "sqlite":
        path = directory / "template.sqlite3"
        with pinned_clock(datetime.fromisoformat(NOW)):
            world = asyncio.run(seed_call_log(f"sqlite+aiosqlite:///{path}", recordings))
        yield _Template("sqlite", str(path), world, recordings)
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"calllog_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(server, f'CREATE DATABASE "{name}" TEMPLATE template0'))
    with pinned_clock(datetime.fromisoformat(NOW)):
        world = asyncio.run(seed_call_log(server.url(name), recordings))
    try:
        yield _Template("postgresql", name, world, recordings, server)
    finally:
        asyncio.run(_pg_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(name="call_log_db")
async def call_log_db_fixture(call_log_template: _Template, tmp_path: Path
                              ) -> AsyncIterator[tuple[str, CallLogWorld, Path]]:
    """(database URL, the world, the recordings root): a fresh copy of the seeded world."""
    template = call_log_template
    recordings = tmp_path / "recordings"
    shutil.copytree(template.recordings, recordings)
    if template.backend == "sqlite":
        path = tmp_path / "calls.sqlite3"
        shutil.copyfile(template.source, path)
        yield f"sqlite+aiosqlite:///{path}", template.world, recordings
        return
    server = template.server
    assert isinstance(server, PostgresServer)
    name = f"test_{uuid.uuid4().hex[:16]}"
    await _pg_admin(server, f'CREATE DATABASE "{name}" TEMPLATE "{template.source}"')
    try:
        yield server.url(name), template.world, recordings
    finally:
        await _pg_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
