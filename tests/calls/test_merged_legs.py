"""No leg is ever lost when a call absorbs another (a consultation merged by a transfer).

A leg belongs to one call row. When a consultation from a phone's second line is
merged into the client's call, its legs carry on in the client's call; whatever
batches the writer gets (one by one, a replay's final snapshots, the live
listener's coalesced facts), every leg must end up there with its talk time.
SQLAlchemy warnings are errors here: the old bug only showed as one on stderr.
"""

from __future__ import annotations

import asyncio
import shutil
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from crm_core.calls.models import Call, CallLeg
from crm_core.calls.services import record_call
from crm_core.db import create_engine, session_factory, upgrade
from pbx_bridge.feed import TrackerFeed
from pbx_bridge.replay import read_events, replay
from pbx_bridge.store import CallStore
from pbx_bridge.tracker import CallTracker, Fact
from telecrm.wiring import call_hooks
from tests.support.handmade import second_line_transfer, write_capture
from tests.support.scenarios import CAPTURES, party_rules

pytestmark = pytest.mark.filterwarnings("error::sqlalchemy.exc.SAWarning")

HOOKS = call_hooks()
TRANSFERS = ("attended_transfer", "blind_transfer")


def _facts(events: Sequence[dict[str, str]]) -> list[Fact]:
    feed = TrackerFeed(CallTracker(party_rules()))
    return [fact for event in events for fact in feed.feed(event)]


def _events_of(name: str) -> list[dict[str, str]]:
    if name == "second_line_transfer":
        return second_line_transfer()
    return [dict(event) for event in read_events(CAPTURES / f"{name}.ami")]


@pytest.fixture(scope="module", name="template")
def template_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("merged-legs") / "template.sqlite3"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


def _fresh(template: Path, directory: Path, name: str) -> str:
    path = directory / f"{name}.sqlite3"
    shutil.copyfile(template, path)
    return f"sqlite+aiosqlite:///{path}"


async def _stored(url: str) -> dict[str, Any]:
    """Every leg by uniqueid (its call, extension, talk) and each manager's talk time."""
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            linkedid = {c.id: c.linkedid for c in await session.scalars(select(Call))}
            legs = {leg.uniqueid: (linkedid[leg.call_id], leg.extension, leg.talk_seconds)
                    for leg in await session.scalars(select(CallLeg))}
            calls = {c.linkedid: (c.status, tuple(c.managers), c.talk_seconds)
                     for c in await session.scalars(select(Call))}
    finally:
        await engine.dispose()
    talk: dict[str, float] = defaultdict(float)
    for _call, extension, seconds in legs.values():
        if extension:
            talk[extension] += seconds
    return {"legs": legs, "calls": calls, "talk": dict(talk)}


async def _one_by_one(url: str, facts: Sequence[Fact]) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        sessions = session_factory(engine, writer=True)
        for fact in facts:
            async with sessions() as session, session.begin():
                await record_call(session, fact.call, hooks=HOOKS)
    finally:
        await engine.dispose()
    return await _stored(url)


def _coalesced(facts: Sequence[Fact]) -> list[Fact]:
    """The live listener's rule: the newest fact per call, kind and extension, in order."""
    pending: dict[tuple[str, str, str | None], Fact] = {}
    for fact in facts:
        key = (fact.call.linkedid, fact.kind, fact.extension)
        pending.pop(key, None)
        pending[key] = fact
    return list(pending.values())


async def _batched(url: str, batches: Sequence[Sequence[Fact]]) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        store = CallStore(session_factory(engine, writer=True), HOOKS)
        for batch in batches:
            await store(_coalesced(batch))
    finally:
        await engine.dispose()
    return await _stored(url)


async def test_a_consultation_and_the_call_it_joins_in_one_batch_keep_every_leg(
        template: Path, tmp_path: Path) -> None:
    facts = _facts(second_line_transfer())
    expected = await _one_by_one(_fresh(template, tmp_path, "one"), facts)
    # The client's call absorbed the consultation: all four legs are its own.
    client_call = "1795462400.16"
    assert {call for call, _, _ in expected["legs"].values()} == {client_call}
    assert len(expected["legs"]) == 4
    assert expected["talk"]["102"] > 0  # the transfer target talked
    # The final snapshots in one batch, the client's call first (as a replay hands them).
    latest: dict[str, Fact] = {}
    for fact in facts:
        latest[fact.call.linkedid] = fact
    assert list(latest) == [client_call, "1795462412.18"]
    assert await _batched(_fresh(template, tmp_path, "bulk"), [list(latest.values())]) == expected
    # Every fact in one batch, and the absorbed call's end written after the client's call.
    assert await _batched(_fresh(template, tmp_path, "all"), [facts]) == expected
    assert await _batched(_fresh(template, tmp_path, "rev"), [list(latest.values())[::-1]]
                          ) == expected


@pytest.mark.parametrize("name", ["second_line_transfer", *TRANSFERS])
async def test_a_replayed_transfer_gives_each_manager_the_talk_of_live_writing(
        name: str, template: Path, tmp_path: Path) -> None:
    events = _events_of(name)
    expected = await _one_by_one(_fresh(template, tmp_path, "one"), _facts(events))
    capture = write_capture(tmp_path / f"{name}.ami", events)
    url = _fresh(template, tmp_path, "replay")
    engine = create_engine(url)
    try:
        store = CallStore(session_factory(engine, writer=True), HOOKS)
        await replay([capture], store, CallTracker(party_rules()))
    finally:
        await engine.dispose()
    replayed = await _stored(url)
    assert replayed == expected
    assert len(expected["talk"]) >= 2 and all(v > 0 for v in expected["talk"].values())


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["second_line_transfer", *TRANSFERS]), data=st.data())
def test_any_batch_split_stores_the_legs_of_writing_one_by_one(
        name: str, data: st.DataObject, template: Path, tmp_path_factory: pytest.TempPathFactory,
) -> None:
    facts = _facts(_events_of(name))
    cuts = sorted(data.draw(st.sets(st.integers(1, len(facts) - 1), max_size=len(facts) - 1)))
    batches = [facts[a:b] for a, b in zip([0, *cuts], [*cuts, len(facts)], strict=True)]
    directory = tmp_path_factory.mktemp("split")

    async def both() -> tuple[dict[str, Any], dict[str, Any]]:
        return (await _one_by_one(_fresh(template, directory, "one"), facts),
                await _batched(_fresh(template, directory, "batched"), batches))

    expected, batched = asyncio.run(both())
    assert batched == expected
