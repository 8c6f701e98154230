"""Each recording knows its side and the leg that recorded it, from AMI to the database.

The tracker reads the side from the dialplan variable that announced the file
(``CRM_REC_CLIENT`` -> client, ...) and the leg from the channel that announced it,
which is the channel running MixMonitor. The checks use the real captures: the
ground truth for "which channel ran MixMonitor" is the channel on which Asterisk's
MixMonitor itself set ``MIXMONITOR_FILENAME`` in the same capture.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import Call, CallLeg, Recording
from crm_core.calls.services import get_call, record_call, record_calls
from crm_core.calls.snapshot import CallData, LegData, RecordingRef, side_from_path
from crm_core.db import alembic_config, create_engine, session_factory, upgrade
from pbx_bridge.replay import read_events
from pbx_bridge.tracker import CallTracker
from telecrm.wiring import call_hooks
from tests.support.db_fixtures import (  # noqa: F401
    db_session_fixture,
    db_url_fixture,
    empty_db_url_fixture,
)
from tests.support.scenarios import CAPTURES, ended_calls, party_rules, replay_capture

HOOKS = call_hooks()  # what the product does with each written call

ANSWERED = ("inbound_answered", "inbound_queue", "outbound_answered", "internal", "hold",
            "pickup", "spy", "blind_transfer", "attended_transfer", "concurrent_calls",
            "client_on_another_call")


def mixmonitor_channels(path: Path) -> dict[str, str]:
    """Linkedid -> uniqueid of the channel MixMonitor ran on, as the capture says."""
    out: dict[str, str] = {}
    for event in read_events(path):
        if event.get("Event") == "VarSet" and event.get("Variable") == "MIXMONITOR_FILENAME":
            out.setdefault(event["Linkedid"], event["Uniqueid"])
    return out


def by_uniqueid(call: CallData) -> dict[str, LegData]:
    return {leg.uniqueid: leg for leg in call.legs}


@pytest.mark.parametrize("scenario", ANSWERED)
def test_every_recording_has_its_side_and_the_mixmonitor_leg(scenario: str) -> None:
    path = CAPTURES / f"{scenario}.ami"
    _, facts = replay_capture(path)
    calls = [c for c in ended_calls(facts) if c.status == "answered"]
    assert calls
    recorder = mixmonitor_channels(path)
    for call in calls:
        details = call.recording_details
        assert [d.path for d in details] == list(call.recordings)  # paths unchanged
        sides = sorted(d.side for d in details)
        if call.direction == "internal":
            assert sides == ["callee", "caller", "mix"], call.recordings
        else:
            assert sides == ["client", "manager", "mix"], call.recordings
        for ref in details:
            assert ref.path.endswith(f"-{ref.side}.wav")  # what the dialplan named it
            assert ref.uniqueid == recorder[call.linkedid]
            recorded_by = by_uniqueid(call)[ref.uniqueid]
            # The first channel records: the client's on an inbound call, the
            # manager's who dialled on an outbound or internal one.
            expected = "client" if call.direction == "inbound" else "manager"
            assert recorded_by.role == expected, (scenario, recorded_by)


@pytest.mark.parametrize("scenario", ["blind_transfer", "attended_transfer"])
def test_a_transferred_call_keeps_the_client_leg_as_recorder(scenario: str) -> None:
    _, facts = replay_capture(CAPTURES / f"{scenario}.ami")
    (call,) = ended_calls(facts)
    assert call.transferred and len(call.managers) == 2
    (client,) = [leg for leg in call.legs if leg.role == "client"]
    assert {ref.uniqueid for ref in call.recording_details} == {client.uniqueid}


def test_unanswered_calls_have_no_recordings_nor_details() -> None:
    for scenario in ("inbound_missed_timeout", "outbound_busy", "outbound_no_answer"):
        _, facts = replay_capture(CAPTURES / f"{scenario}.ami")
        for call in ended_calls(facts):
            assert call.recordings == () and call.recording_details == ()


def _ev(ts: float, event: str, **fields: str) -> dict[str, str]:
    return {"Event": event, "Timestamp": f"{ts:.6f}", **fields}


def _chan(ts: float, uid: str, linkedid: str, name: str, num: str) -> list[dict[str, str]]:
    return [_ev(ts, "Newchannel", Uniqueid=uid, Linkedid=linkedid, Channel=name,
                CallerIDNum=num, Exten="s")]


def test_a_merge_carries_the_recordings_of_the_absorbed_call() -> None:
    """Hand-built AMI (a second-line consultation merged by AttendedTransfer), since
    no capture has a recording on the absorbed side: its details must survive."""
    tracker = CallTracker(party_rules())
    t = 1795462400.0
    events = [
        *_chan(t, "A.1", "A.1", "PJSIP/trunk-0001", "79161234567"),
        *_chan(t, "A.2", "A.1", "PJSIP/101-0002", "101"),
        _ev(t + 1, "BridgeEnter", Uniqueid="A.1", BridgeUniqueid="b1"),
        _ev(t + 1, "BridgeEnter", Uniqueid="A.2", BridgeUniqueid="b1"),
        _ev(t + 1, "VarSet", Uniqueid="A.1", Linkedid="A.1", Variable="CRM_REC_CLIENT",
            Value="2026/11/23/A.1-client.wav"),
        *_chan(t + 2, "B.3", "B.3", "PJSIP/101-0003", "101"),
        *_chan(t + 2, "B.4", "B.3", "PJSIP/102-0004", "102"),
        _ev(t + 2, "DialBegin", Uniqueid="B.3", DestUniqueid="B.4", DialString="102"),
        _ev(t + 3, "BridgeEnter", Uniqueid="B.3", BridgeUniqueid="b2"),
        _ev(t + 3, "BridgeEnter", Uniqueid="B.4", BridgeUniqueid="b2"),
        _ev(t + 3, "VarSet", Uniqueid="B.3", Linkedid="B.3", Variable="CRM_REC_CALLER",
            Value="2026/11/23/B.3-caller.wav"),
        _ev(t + 5, "AttendedTransfer", Result="Success", OrigTransfererLinkedid="A.1",
            SecondTransfererLinkedid="B.3"),
    ]
    for event in events:
        tracker.feed(event)
    (call,) = tracker.live_calls()
    assert call.linkedid == "A.1"
    assert {(r.path, r.side, r.uniqueid) for r in call.recording_details} == {
        ("2026/11/23/A.1-client.wav", "client", "A.1"),
        ("2026/11/23/B.3-caller.wav", "caller", "B.3"),
    }
    assert list(call.recordings) == [r.path for r in call.recording_details]


def test_side_from_path() -> None:
    assert side_from_path("2026/11/23/1795462311.0-client.wav") == "client"
    assert side_from_path("2026/11/23/1795462311.0-mix.wav") == "mix"
    assert side_from_path("2026/11/23/1795462311.0.wav") is None
    assert side_from_path("other-name.wav") is None


# -- storage -----------------------------------------------------------------------------


def _snapshots(scenario: str) -> list[CallData]:
    _, facts = replay_capture(CAPTURES / f"{scenario}.ami")
    return [fact.call for fact in facts]


async def _rows(session: AsyncSession, linkedid: str) -> list[tuple[str, str | None, str | None,
                                                                     str | None]]:
    stmt = (select(Recording.path, Recording.side, CallLeg.uniqueid, CallLeg.role)
            .join(Call, Call.id == Recording.call_id)
            .outerjoin(CallLeg, CallLeg.id == Recording.leg_id)
            .where(Call.linkedid == linkedid).order_by(Recording.position))
    return [tuple(row) for row in await session.execute(stmt)]  # type: ignore[misc]


async def test_side_and_leg_land_in_the_database_and_the_call_json(
    db_session: AsyncSession,
) -> None:
    snapshots = _snapshots("blind_transfer")
    for data in snapshots:
        await record_call(db_session, data, hooks=HOOKS)
    await db_session.commit()
    final = snapshots[-1]
    (client,) = [leg for leg in final.legs if leg.role == "client"]
    rows = await _rows(db_session, final.linkedid)
    assert sorted((side, uid, role) for _, side, uid, role in rows) == [
        ("client", client.uniqueid, "client"),
        ("manager", client.uniqueid, "client"),
        ("mix", client.uniqueid, "client"),
    ]
    call_id = await db_session.scalar(select(Call.id).where(Call.linkedid == final.linkedid))
    assert call_id is not None
    db_session.expunge_all()
    shown = await get_call(db_session, call_id)
    assert shown is not None
    assert shown["recordings"] == list(final.recordings)  # the fixed shape, unchanged
    assert shown["recording_legs"] == [
        {"path": ref.path, "side": ref.side, "leg": client.uniqueid}
        for ref in final.recording_details
    ]


async def test_replaying_the_same_capture_changes_nothing(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        sessions = session_factory(engine, writer=True)
        snapshots = _snapshots("inbound_answered") + _snapshots("internal")
        async with sessions() as session, session.begin():
            await record_calls(session, snapshots, hooks=HOOKS)
        async with sessions() as session:
            before = [(r.path, r.side, r.leg_id, r.position, r.created_at)
                      for r in await session.scalars(select(Recording).order_by(Recording.id))]
            stamps = list(await session.scalars(select(Call.updated_at).order_by(Call.id)))
        for bulk in (False, True):
            async with sessions() as session, session.begin():
                if bulk:
                    await record_calls(session, snapshots, hooks=HOOKS)
                else:
                    for data in snapshots:
                        await record_call(session, data, hooks=HOOKS)
        async with sessions() as session:
            after = [(r.path, r.side, r.leg_id, r.position, r.created_at)
                     for r in await session.scalars(select(Recording).order_by(Recording.id))]
            assert after == before and len(before) == 6
            assert all(leg_id is not None for _, _, leg_id, _, _ in after)
            assert list(await session.scalars(select(Call.updated_at).order_by(Call.id))) == stamps
    finally:
        await engine.dispose()


async def test_a_snapshot_without_details_never_clears_them(db_session: AsyncSession) -> None:
    final = _snapshots("outbound_answered")[-1]
    await record_call(db_session, final, hooks=HOOKS)
    await record_call(db_session, dataclasses.replace(final, recording_details=()), hooks=HOOKS)
    await db_session.commit()
    rows = await _rows(db_session, final.linkedid)
    assert {(side, role) for _, side, _, role in rows} == {
        ("mix", "manager"), ("manager", "manager"), ("client", "manager")}


async def test_a_detail_for_a_leg_of_no_call_leaves_the_leg_empty(
    db_session: AsyncSession,
) -> None:
    final = _snapshots("inbound_answered")[-1]
    refs = tuple(RecordingRef(r.path, r.side, "no-such-leg") for r in final.recording_details)
    await record_call(db_session, dataclasses.replace(final, recording_details=refs), hooks=HOOKS)
    await db_session.commit()
    rows = await _rows(db_session, final.linkedid)
    assert len(rows) == 3 and all(side and uid is None for _, side, uid, _ in rows)


async def test_migration_0012_fills_the_side_of_existing_rows(empty_db_url: str) -> None:
    config = alembic_config(empty_db_url)
    engine = create_engine(empty_db_url)
    started = datetime(2026, 11, 23, 10, tzinfo=UTC)
    try:
        async with engine.connect() as conn:

            def old_rows_then_upgrade(sync_conn: Any) -> list[tuple[Any, ...]]:
                config.attributes["connection"] = sync_conn
                command.upgrade(config, "0011")
                sync_conn.execute(text(
                    "INSERT INTO calls (id, linkedid, direction, status, started_at, "
                    "ring_seconds, talk_seconds, transferred, managers, created_client, "
                    "created_at, updated_at) VALUES (1, 'L1', 'inbound', 'answered', :t, 0, 0, "
                    ":f, :m, :f, :t, :t)"),
                    {"t": started, "f": False, "m": "[]"})
                for pos, path in enumerate(("2026/11/23/L1-mix.wav", "2026/11/23/L1-client.wav",
                                            "2026/11/23/L1-callee.wav", "elsewhere/L1.wav")):
                    sync_conn.execute(text(
                        "INSERT INTO recordings (call_id, path, position, created_at) "
                        "VALUES (1, :p, :n, :t)"), {"p": path, "n": pos, "t": started})
                command.upgrade(config, "head")
                rows = list(sync_conn.execute(text(
                    "SELECT path, side, leg_id FROM recordings ORDER BY position")))
                command.downgrade(config, "0011")
                columns = {c["name"] for c in inspect(sync_conn).get_columns("recordings")}
                command.upgrade(config, "head")
                return [*rows, tuple(sorted(columns))]

            *rows, columns = await conn.run_sync(old_rows_then_upgrade)
            await conn.commit()
    finally:
        await engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("2026/11/23/L1-mix.wav", "mix", None),
        ("2026/11/23/L1-client.wav", "client", None),
        ("2026/11/23/L1-callee.wav", "callee", None),
        ("elsewhere/L1.wav", None, None),
    ]
    assert "side" not in columns and "leg_id" not in columns  # the downgrade undid it
    await upgrade(empty_db_url)  # at head: nothing left to do

