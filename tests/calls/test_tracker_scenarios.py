"""Every call scenario, placed for real and asserted twice: live and by replay.

Each scenario in ``tests/support/scenarios.py`` drives the sandbox Asterisk over real SIP
(the phones instance) and AMI (the CRM's own session). Its check below states
what a user sees in the exported call. ``test_live`` places the call now and
checks what the CRM's live tracker concluded; ``test_replay`` feeds the
committed raw capture (``tests/captures/<scenario>.ami``, recorded the same way
by ``python -m tests.support.record_captures``) through the tracker with no Asterisk.

Durations are what the scenario makes the phones do (answer after 1 s, talk
4 s, ...); the checks allow 1 s for SIP and scheduling.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from asterisk_conf.sandbox import Sandbox, SandboxUnavailable
from crm_core.calls.snapshot import CallData, LegData
from tests.support.sandbox_fixtures import skip_or_fail_unavailable
from tests.support.scenarios import (
    CAPTURES,
    CLIENT,
    CLIENT_B,
    DID_101,
    DID_QUEUE,
    SCENARIOS,
    Recorded,
    ended_calls,
    record_many,
    replay_capture,
    scenario_config,
)

TOL = 1.0
SANDBOXES = 4  # scenarios run at once, one PBX each (a capture holds one scenario)


def near(value: float, expected: float, tol: float = TOL) -> bool:
    return abs(value - expected) <= tol


def leg(call: CallData, extension: str) -> LegData:
    (found,) = [x for x in call.legs if x.extension == extension]
    return found


def one(calls: list[CallData]) -> CallData:
    assert len(calls) == 1, [(c.linkedid, c.direction, c.status) for c in calls]
    return calls[0]


def answered_inbound(call: CallData, managers: tuple[str, ...], talk: float) -> None:
    assert (call.direction, call.status) == ("inbound", "answered"), call
    assert call.client_number == CLIENT
    assert call.managers == managers
    assert near(call.talk_seconds, talk), call.talk_seconds
    assert len(call.recordings) == 3 and all(r.endswith(".wav") for r in call.recordings)
    assert not any(x.role == "local" or x.channel.startswith("Local/") for x in call.legs)


def overlap(a: CallData, b: CallData) -> bool:
    assert a.ended_at and b.ended_at
    return a.started_at < b.ended_at and b.started_at < a.ended_at


# ---------------------------------------------------------------- the checks


def check_inbound_answered(calls: list[CallData]) -> None:
    call = one(calls)
    answered_inbound(call, ("101",), 4)
    assert call.did == DID_101 and not call.transferred and call.queue is None
    assert near(call.ring_seconds, 1)
    assert sorted(x.role for x in call.legs) == ["client", "manager"]
    manager = leg(call, "101")
    assert near(manager.talk_seconds, 4) and manager.hold_seconds == 0
    assert manager.bridged_at == call.answered_at
    client = next(x for x in call.legs if x.role == "client")
    assert client.talk_seconds == 0  # talk is counted on the manager's side


def _missed(calls: list[CallData], ring: float) -> None:
    call = one(calls)
    assert (call.direction, call.status) == ("inbound", "missed"), call
    assert call.client_number == CLIENT and call.did == DID_101
    assert call.managers == () and call.talk_seconds == 0 and call.answered_at is None
    assert call.rang == ("101",)
    assert call.recordings == ()
    assert near(call.ring_seconds, ring), call.ring_seconds


def check_inbound_missed_timeout(calls: list[CallData]) -> None:
    _missed(calls, scenario_config().ring_timeout)


def check_inbound_missed_abandoned(calls: list[CallData]) -> None:
    _missed(calls, 3)


def check_inbound_queue(calls: list[CallData]) -> None:
    call = one(calls)
    answered_inbound(call, ("102",), 3)
    assert call.did == DID_QUEUE and call.queue == "sales"
    assert set(call.rang) == {"101", "102"}
    loser = leg(call, "101")  # rang, was cancelled: not a missed call of 101's
    assert loser.role == "manager" and loser.talk_seconds == 0 and loser.answered_at is None
    assert loser.hangup_cause == 26  # "answered elsewhere"
    assert loser.bridged_at is None
    assert near(leg(call, "102").talk_seconds, 3)


def check_outbound_answered(calls: list[CallData]) -> None:
    call = one(calls)
    assert (call.direction, call.status) == ("outbound", "answered"), call
    assert call.client_number == CLIENT_B and call.did is None
    assert call.managers == ("102",)
    assert near(call.talk_seconds, 3) and near(leg(call, "102").talk_seconds, 3)
    assert near(call.ring_seconds, 1)
    assert len(call.recordings) == 3


def _unanswered_outbound(calls: list[CallData], status: str) -> CallData:
    call = one(calls)
    assert (call.direction, call.status) == ("outbound", status), call
    assert call.client_number == CLIENT_B
    assert call.managers == () and call.talk_seconds == 0 and call.recordings == ()
    return call


def check_outbound_busy(calls: list[CallData]) -> None:
    _unanswered_outbound(calls, "busy")


def check_outbound_no_answer(calls: list[CallData]) -> None:
    call = _unanswered_outbound(calls, "no_answer")
    assert near(call.ring_seconds, 4)


def check_outbound_failed(calls: list[CallData]) -> None:
    _unanswered_outbound(calls, "failed")


def check_internal(calls: list[CallData]) -> None:
    call = one(calls)
    assert (call.direction, call.status) == ("internal", "answered"), call
    assert call.client_number is None and call.did is None
    assert call.managers == ("101", "102") and not call.transferred
    assert near(call.talk_seconds, 3)  # counted once, though both legs talk
    assert {x.role for x in call.legs} == {"manager"}


def check_blind_transfer(calls: list[CallData]) -> None:
    call = one(calls)
    answered_inbound(call, ("101", "102"), 7)  # 2 s with 101, 1 s ringing 102, 5 s with 102
    assert call.transferred
    assert near(leg(call, "101").talk_seconds, 2)
    assert near(leg(call, "102").talk_seconds, 5)


def check_attended_transfer(calls: list[CallData]) -> None:
    call = one(calls)
    # 2 s with 101, then 3 s on hold while 101 consults 102 (1 s ringing, 2 s
    # talking: never client talk), then 6 s with 102.
    answered_inbound(call, ("101", "102"), 8)
    assert call.transferred
    assert near(leg(call, "101").talk_seconds, 2)
    assert near(leg(call, "102").talk_seconds, 6)
    assert leg(call, "102").bridged_at > leg(call, "101").bridged_at


def check_pickup(calls: list[CallData]) -> None:
    call = one(calls)
    answered_inbound(call, ("103",), 4)
    assert "101" in call.rang and not call.transferred
    assert near(call.ring_seconds, 2.5, 1.5)
    assert leg(call, "101").talk_seconds == 0


def check_hold(calls: list[CallData]) -> None:
    call = one(calls)
    answered_inbound(call, ("101",), 9 - 3)
    manager = leg(call, "101")
    assert near(manager.hold_seconds, 3)
    assert near(manager.talk_seconds + manager.hold_seconds, 9)


def check_concurrent_calls(calls: list[CallData]) -> None:
    assert len(calls) == 2
    inbound = next(c for c in calls if c.direction == "inbound")
    outbound = next(c for c in calls if c.direction == "outbound")
    answered_inbound(inbound, ("101",), 7)
    assert outbound.status == "answered" and outbound.client_number == CLIENT_B
    assert outbound.managers == ("101",) and near(outbound.talk_seconds, 3)
    assert overlap(inbound, outbound) and inbound.linkedid != outbound.linkedid


def check_client_on_another_call(calls: list[CallData]) -> None:
    assert len(calls) == 2
    inbound = next(c for c in calls if c.direction == "inbound")
    outbound = next(c for c in calls if c.direction == "outbound")
    answered_inbound(inbound, ("101",), 7)
    assert outbound.status == "answered" and outbound.client_number == CLIENT
    assert outbound.managers == ("102",) and near(outbound.talk_seconds, 3)
    assert overlap(inbound, outbound) and inbound.linkedid != outbound.linkedid


def check_in_progress(calls: list[CallData]) -> None:
    answered_inbound(one(calls), ("101",), 6)


def check_spy(calls: list[CallData]) -> None:
    call = one(calls)  # the supervisor's own channel is no call of its own
    answered_inbound(call, ("101",), 7)
    spy = leg(call, "201")
    assert spy.role == "supervisor" and spy.talk_seconds == 0 and spy.bridged_at is None
    assert sorted(x.role for x in call.legs) == ["client", "manager", "supervisor"]
    assert near(leg(call, "101").talk_seconds, 7)


CHECKS: dict[str, Callable[[list[CallData]], None]] = {
    name: globals()[f"check_{name}"] for name in SCENARIOS
}


# ---------------------------------------------------------------- replay (no Asterisk)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_replay(name: str) -> None:
    tracker, facts = replay_capture(CAPTURES / f"{name}.ami")
    CHECKS[name](ended_calls(facts))
    assert tracker.live_calls() == []


# ---------------------------------------------------------------- live (the sandbox)


@pytest.fixture(scope="module")
def live_runs() -> Iterator[dict[str, Recorded | BaseException]]:
    """Every scenario placed now, several PBXes at once; captures in a temporary dir."""
    boxes: list[Sandbox] = []
    try:
        for _ in range(SANDBOXES):
            boxes.append(Sandbox(scenario_config()).start())
    except SandboxUnavailable as exc:
        for box in boxes:
            box.stop(keep_monitor=False)
        skip_or_fail_unavailable(exc)
    try:
        with tempfile.TemporaryDirectory(prefix="telecrm-scenarios-") as tmp:
            yield asyncio.run(record_many(boxes, list(SCENARIOS), Path(tmp)))
    finally:
        for box in boxes:
            box.stop(keep_monitor=False)


@pytest.mark.asterisk
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_live(name: str, live_runs: dict[str, Recorded | BaseException]) -> None:
    run = live_runs[name]
    if isinstance(run, BaseException):
        raise run
    calls = ended_calls(run.facts)
    CHECKS[name](calls)
    # The capture just taken replays into exactly what the live tracker concluded.
    _, facts = replay_capture(run.capture)
    assert ended_calls(facts) == calls
    if name == "in_progress":
        samples = run.notes["samples"]
        assert [s[:2] for s in samples] == [("in_progress", True)] * 2
        assert 0 < samples[0][2] < samples[1][2], samples  # talk grows between events
        assert all(s[3] >= s[2] for s in samples)  # and with the wall clock in between


def test_checks_cover_every_scenario() -> None:
    assert set(CHECKS) == set(SCENARIOS)
    assert {p.stem for p in CAPTURES.glob("*.ami")} == set(SCENARIOS)


def test_started_at_is_utc() -> None:
    _, facts = replay_capture(CAPTURES / "inbound_answered.ami")
    call = one(ended_calls(facts))
    assert isinstance(call.started_at, datetime) and call.started_at.utcoffset() is not None
