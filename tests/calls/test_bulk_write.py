"""``record_calls`` (bulk) leaves exactly what ``record_call`` one by one leaves, on both backends.

Each test writes the same snapshots into two twin databases, one by one and in
bulk batches, and compares everything the writer touches: calls, legs,
recordings, clients and their phones (leads), tasks (callback rules) and audit rows.
Database ids are replaced by stable names (PostgreSQL sequences are not shared).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import AuditLog
from crm_core.calls.models import Call, CallLeg, Recording
from crm_core.calls.services import record_call, record_calls
from crm_core.calls.snapshot import CallData
from crm_core.clients.models import Client, Phone
from crm_core.clients.services import create_client
from crm_core.db import create_engine, session_factory
from crm_core.people.users import add_user
from crm_core.tasks.models import Task
from pbx_bridge.store import CallStore
from telecrm.wiring import call_hooks
from tests.sales.test_tasks import NUMBER, answered, in_progress, leg, missed
from tests.support.db_fixtures import _admin, db_url_fixture  # noqa: F401
from tests.support.scenarios import CAPTURES, replay_capture

HOOKS = call_hooks()  # what the product does with each written call

NEW_NUMBER = "+79035550101"


@pytest.fixture(name="twin_urls")
async def twin_urls_fixture(db_url: str, request: pytest.FixtureRequest,
                            tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """``db_url`` and a copy of it (both fresh and migrated)."""
    if db_url.startswith("sqlite"):
        source = Path(db_url.split("///", 1)[1])
        twin = tmp_path / "twin.sqlite3"
        shutil.copyfile(source, twin)
        yield db_url, f"sqlite+aiosqlite:///{twin}"
        return
    server = request.getfixturevalue("postgres_server")
    source_name = db_url.rsplit("/", 1)[1].split("?", 1)[0]
    name = f"{source_name}_twin"
    await _admin(server, f'CREATE DATABASE "{name}" TEMPLATE "{source_name}"')
    try:
        yield db_url, server.url(name)
    finally:
        await _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _prepare(session: AsyncSession) -> None:
    """Staff and one known client, identical in both twins."""
    owner = await add_user(session, "ivanov", "Ivan", extension="101", team="Sales")
    await add_user(session, "petrov", "Petr", extension="102", team="Support")
    await create_client(session, "Known", phones=[NUMBER], owner_id=owner.id, actor="test")
    await session.commit()


async def _write(url: str, batches: Sequence[Sequence[CallData]], bulk: bool) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        sessions = session_factory(engine, writer=True)
        async with sessions() as session:
            await _prepare(session)
        for batch in batches:
            async with sessions() as session, session.begin():
                if bulk:
                    await record_calls(session, batch, hooks=HOOKS)
                else:
                    for data in batch:
                        await record_call(session, data, hooks=HOOKS)
        async with sessions() as session:
            return await _dump(session)
    finally:
        await engine.dispose()


def _row(obj: Any, skip: set[str]) -> dict[str, Any]:
    return {c.key: getattr(obj, c.key) for c in obj.__table__.columns if c.key not in skip}


async def _dump(session: AsyncSession) -> dict[str, Any]:
    """Everything the writer touches, with ids replaced by names."""
    calls = {c.id: c.linkedid for c in await session.scalars(select(Call))}
    clients = {c.id: c.name for c in await session.scalars(select(Client))}
    tasks = {t.id: (t.kind, calls.get(t.call_id), t.title) for t in await session.scalars(
        select(Task))}
    names = {"call": calls, "client": clients, "task": tasks}

    def named(row: dict[str, Any]) -> dict[str, Any]:
        for key, table in (("call_id", calls), ("client_id", clients),
                           ("result_call_id", calls)):
            if key in row:
                row[key] = table.get(row[key], row[key])
        return row

    def changes(entity: str, value: dict[str, Any]) -> str:
        value = dict(value)
        for key, table in (("call_id", calls), ("client_id", clients),
                           ("result_call_id", calls)):
            if isinstance(value.get(key), int):
                value[key] = table.get(value[key])
            elif isinstance(value.get(key), list):
                value[key] = [table.get(v, v) for v in value[key]]
        return json.dumps(value, sort_keys=True, default=str)

    volatile = {"id", "created_at", "updated_at"}
    out: dict[str, Any] = {
        "calls": sorted((named(_row(c, volatile)) for c in await session.scalars(select(Call))),
                        key=lambda r: r["linkedid"]),
        "legs": sorted((named(_row(x, volatile)) for x in await session.scalars(select(CallLeg))),
                       key=lambda r: r["uniqueid"]),
        "recordings": sorted(
            (named(_row(r, volatile)) for r in await session.scalars(select(Recording))),
            key=lambda r: (r["call_id"], r["path"])),
        # status_since / owner_since are the wall-clock moments of the write.
        "clients": sorted(repr(sorted(_row(c, volatile | {"status_since", "owner_since"}).items()))
                          for c in await session.scalars(select(Client))),
        "phones": sorted((named(_row(p, volatile)) for p in await session.scalars(select(Phone))),
                         key=repr),
        "tasks": sorted((named(_row(t, volatile)) for t in await session.scalars(select(Task))),
                        key=repr),
        "audit": sorted(
            (a.actor, a.entity, a.action, str(names.get(a.entity, {}).get(a.entity_id)),
             changes(a.entity, a.changes))
            for a in await session.scalars(select(AuditLog))),
    }
    return out


async def _assert_same(twin_urls: tuple[str, str], batches: Sequence[Sequence[CallData]]) -> None:
    one_by_one = await _write(twin_urls[0], batches, bulk=False)
    bulk = await _write(twin_urls[1], batches, bulk=True)
    for key in one_by_one:
        assert bulk[key] == one_by_one[key], key
    assert one_by_one["calls"]  # the comparison compared something


async def test_bulk_equals_one_by_one_on_rules_leads_and_stale_snapshots(
    twin_urls: tuple[str, str],
) -> None:
    moved = dataclasses.replace(
        answered("L-move", 500), legs=(*answered("L-move", 500).legs,
                                       leg("L-lead1-c", "client", None, 500, 505, 565, 60.0)))
    batches = [
        [
            in_progress(missed("L-miss", 0)),  # known client, owner 101
            missed("L-miss", 0),
            answered("L-reach", 100),  # reaches the client: closes the callback
            missed("L-lead1", 200, number=NEW_NUMBER, rang=("102",)),  # a lead
            missed("L-lead2", 300, number=NEW_NUMBER, rang=("101",)),  # same lead
            answered("L-int", 50, direction="internal", client_number=None),
            dataclasses.replace(answered("L-rec", 400), recordings=("a/1.wav", "/etc/x")),
        ],
        [
            in_progress(missed("L-miss", 0)),  # stale: never rewinds the ended call
            moved,  # takes over a leg recorded under another linkedid
            answered("L-late", 250, client_number=NEW_NUMBER),
            missed("L-old", -500),  # missed before the reaching call: made and closed
        ],
    ]
    await _assert_same(twin_urls, batches)


async def test_bulk_equals_one_by_one_on_every_snapshot_of_the_real_captures(
    twin_urls: tuple[str, str],
) -> None:
    snapshots: list[CallData] = []
    for path in sorted(CAPTURES.glob("*.ami")):
        _tracker, facts = replay_capture(path)
        snapshots += [fact.call for fact in facts]
    assert len(snapshots) > 50
    batches = [snapshots[i:i + 7] for i in range(0, len(snapshots), 7)]
    await _assert_same(twin_urls, batches)


async def test_call_store_skips_a_malformed_snapshot_and_writes_the_rest(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        store = CallStore(session_factory(engine, writer=True), HOOKS)
        bad = dataclasses.replace(missed("L-bad", 0), direction="sideways")
        facts = [type("F", (), {"call": data})() for data in
                 (missed("L-a", 0), bad, answered("L-b", 100))]
        await store(facts)  # type: ignore[arg-type]
        assert store.calls_written == 2
        async with session_factory(engine)() as session:
            linkedids = set(await session.scalars(select(Call.linkedid)))
        assert linkedids == {"L-a", "L-b"}
    finally:
        await engine.dispose()
