"""Property tests of the AMI frame parser and the call tracker together.

The live listener feeds whatever the socket delivers, so the parser and the
tracker must survive anything: arbitrary bytes, arbitrary ``Key: Value`` frames,
and real event sequences that were dropped, duplicated, reordered, truncated or
corrupted (what a reconnect, a buggy PBX module or a damaged capture produce).
Whatever they are fed they must never raise, never report a negative duration or
more talk than the call lasted, and must forget a call completely once all of its
channels hung up (memory stays flat over months of uptime). Feeding every event
twice must give the same call log as feeding it once (writers are idempotent and
AMI may repeat itself across a reconnect).

Default run: a moderate number of examples (well under a minute). The long run::

    TELECRM_FUZZ=long .venv/bin/python -m pytest tests/calls/test_tracker_fuzz.py -q

Bugs the fuzzer found are pinned below as regression tests, with the shrunk input.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_core.calls.snapshot import CallData
from pbx_bridge.frames import FrameParser
from pbx_bridge.tracker import CallTracker, Fact

LONG = os.environ.get("TELECRM_FUZZ") == "long"
# Examples per property test: 7 tests, 40k each in the long run (280k inputs in total).
EXAMPLES = 40_000 if LONG else 600
EPS = 0.01  # snapshots round seconds to 3 decimals
STATUSES = {"answered", "missed", "busy", "no_answer", "failed", "in_progress"}
DIRECTIONS = {"inbound", "outbound", "internal"}
# Tracker attributes allowed to hold something after every channel hung up.
PERSISTENT_STATE: frozenset[str] = frozenset()

fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # failures are shrunk and printed; regressions are pinned below
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = (ROOT / "bench" / "captures", ROOT / "tests" / "captures")


# -- real events ------------------------------------------------------------------------


def _read_capture(path: Path) -> list[dict[str, str]]:
    parser = FrameParser()
    data = path.read_bytes()
    frames = parser.feed(data) + parser.close()
    return [dict(f.headers) for f in frames if f.is_event]


def _real_sequences() -> list[list[dict[str, str]]]:
    """Every real capture, as one event list per file (sandbox recordings)."""
    out = []
    for directory in CAPTURES:
        for path in sorted(directory.glob("*.ami")) if directory.is_dir() else ():
            events = _read_capture(path)
            if events:
                out.append(events)
    return out


REAL = _real_sequences()
assert REAL, "no real AMI capture found in bench/captures or tests/captures"


# -- invariants -----------------------------------------------------------------------------


def _seconds(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds()


def check_call(call: CallData, now: datetime) -> None:
    """Durations are never negative and talk never exceeds the time the call lasted."""
    assert call.status in STATUSES, call.status
    assert call.direction in DIRECTIONS, call.direction
    assert call.ring_seconds >= 0 and call.talk_seconds >= 0, call
    end = call.ended_at or now
    assert end >= call.started_at, call
    if call.answered_at is not None:
        assert call.started_at <= call.answered_at <= end, call
    duration = _seconds(call.started_at, end)
    assert call.talk_seconds <= duration + EPS, call
    assert call.ring_seconds + call.talk_seconds <= duration + EPS, call
    assert len(set(call.managers)) == len(call.managers), call
    for leg in call.legs:
        assert leg.talk_seconds >= 0, leg
        leg_end = leg.ended_at or end
        assert leg.talk_seconds <= max(_seconds(leg.started_at, leg_end), 0.0) + EPS, leg
        assert leg.talk_seconds <= call.talk_seconds + EPS, (leg, call)


def check_facts(facts: Iterable[Fact]) -> None:
    for fact in facts:
        check_call(fact.call, fact.at)


def hang_up_everything(tracker: CallTracker, events: Iterable[Mapping[str, Any]]) -> None:
    """Hang up every channel the events named and every channel the tracker still has."""
    uids: dict[str, None] = {}
    for event in events:
        uid = event.get("Uniqueid")
        if isinstance(uid, str) and uid:
            uids[uid] = None
    uids.update(dict.fromkeys(tracker._channels))
    for uid in uids:
        check_facts(tracker.feed({"Event": "Hangup", "Uniqueid": uid, "Cause": "16"}))
    # Channels created by a Newchannel that came after their own Hangup (reordering).
    for uid in list(tracker._channels):
        check_facts(tracker.feed({"Event": "Hangup", "Uniqueid": uid, "Cause": "16"}))


def leftovers(tracker: CallTracker) -> dict[str, Any]:
    """Containers in the tracker that still hold something."""
    return {name: value for name, value in vars(tracker).items()
            if name not in PERSISTENT_STATE and isinstance(value, dict | set | list) and value}


def run(events: Sequence[Mapping[str, Any]]) -> CallTracker:
    """Feed events one by one, checking every fact and the public read-outs."""
    tracker = CallTracker()
    for event in events:
        check_facts(tracker.feed(event))
    clock = tracker.clock
    for call in tracker.live_calls():
        check_call(call, clock or call.started_at)
    hang_up_everything(tracker, events)
    assert tracker.live_calls() == []
    assert leftovers(tracker) == {}, "state left after every channel hung up"
    return tracker


def frames_of(chunks: Iterable[bytes]) -> list[dict[str, str]]:
    parser = FrameParser()
    frames = []
    for chunk in chunks:
        frames += parser.feed(chunk)
    frames += parser.close()
    for frame in frames:
        assert frame.headers, "the parser never emits an empty message"
    return [frame.headers for frame in frames]


def wire(event: Mapping[str, Any], ending: bytes = b"\r\n") -> bytes:
    return b"".join(f"{k}: {v}\r\n".encode("utf-8", "surrogatepass") for k, v in event.items()
                    ) + ending


# -- strategies ---------------------------------------------------------------------------

HANDLED = ["Newchannel", "Newstate", "NewCallerid", "DialBegin", "DialEnd", "BridgeEnter",
           "BridgeLeave", "BridgeDestroy", "Hold", "Unhold", "MusicOnHoldStart",
           "MusicOnHoldStop", "VarSet", "Hangup", "LocalOptimizationBegin",
           "LocalOptimizationEnd", "AttendedTransfer", "BlindTransfer", "QueueCallerJoin",
           "QueueCallerLeave", "AgentConnect", "Pickup", "CoreShowChannel",
           "CoreShowChannelsComplete", "FullyBooted"]
IDS = ["1.1", "1.2", "1.3", "1.4", "1.5", "2.1"]
CHANNELS = ["PJSIP/carrier-00000001", "PJSIP/101-00000002", "PJSIP/102-00000003",
            "Local/101@from-crm-00000004;1", "Local/101@from-crm-00000004;2",
            "PJSIP/103-00000005", "SIP/trunk", "Local/x", "", "Message/ast_msg_queue"]
VARIABLES = ["__CRM_DIRECTION", "CRM_DID", "CRM_CLIENT", "CRM_REC_MIX", "CRM_REC_MANAGER",
             "MIXMONITOR_FILENAME", "BRIDGEPEER", "DIALSTATUS", "CRM_QUEUE"]
# Timestamps the tracker must take in its stride (plausible, junk, non-finite).
SANE_TIMES = st.one_of(
    st.floats(min_value=1.7e9, max_value=1.7e9 + 600).map(lambda f: f"{f:.6f}"),
    st.sampled_from(["", "x", "nan", "inf", "-inf", "1e400", "-1e400", "0", "-5", " 17e8 "]),
)
# Finite timestamps datetime cannot represent (bug 1).
HUGE_TIMES = st.sampled_from(["1e12", "-1e12", "1e20", "1e300", "99999999999999"])
TIMES = st.one_of(SANE_TIMES, HUGE_TIMES)
TEXT = st.text(max_size=20)
HUGE = st.sampled_from(["9" * 40, "x" * 70_000, "-" + "9" * 30, "\x00" * 10])


def _field(pool: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(pool), TEXT)


FIELDS: dict[str, st.SearchStrategy[str]] = {
    "Timestamp": TIMES,
    "Uniqueid": _field(IDS),
    "Linkedid": _field(IDS),
    "DestUniqueid": _field(IDS),
    "Channel": _field(CHANNELS),
    "BridgeUniqueid": _field(["b1", "b2", ""]),
    "ChannelState": _field(["4", "5", "6", "0"]),
    "Cause": st.one_of(_field(["16", "17", "19", "21", "0"]), HUGE),
    "Variable": _field(VARIABLES),
    "Value": st.one_of(_field(["inbound", "outbound", "internal", "2026/a.wav", "/abs.wav",
                               "../x.wav"]), HUGE),
    "DialStatus": _field(["ANSWER", "BUSY", "CANCEL", "CONGESTION", "CHANUNAVAIL"]),
    "DialString": _field(["101", "89031234567@carrier", "PJSIP/79161234567@carrier"]),
    "CallerIDNum": _field(["79161234567", "101", "<unknown>"]),
    "Exten": _field(["74951110001", "s", "101"]),
    "ActionID": _field(["telecrm-reconcile-1", "other"]),
}

events_strategy = st.fixed_dictionaries(
    {"Event": st.one_of(st.sampled_from(HANDLED), TEXT)}, optional=FIELDS)

# Wrong types, as a caller that passes panoramisk messages (lists for repeated
# keys) or hand-built dicts might.
WRONG = st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.lists(TEXT, max_size=2),
                  st.binary(max_size=5), st.booleans())
wrong_fields = {k: st.one_of(v, WRONG) for k, v in FIELDS.items()}
wrong_events_strategy = st.fixed_dictionaries(
    {"Event": st.one_of(st.sampled_from(HANDLED), WRONG)}, optional=wrong_fields)


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` split at arbitrary points (TCP delivers any chunking)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=8)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@st.composite
def mutated_real(draw: st.DrawFn, corrupt: bool = True) -> list[dict[str, Any]]:
    """A slice of a real capture with events dropped, duplicated, moved or damaged."""
    source = draw(st.sampled_from(REAL))
    start = draw(st.integers(0, len(source) - 1))
    length = draw(st.integers(1, len(source)))
    events = [dict(e) for e in source[start:start + length]]
    ops = draw(st.lists(st.tuples(
        st.sampled_from(["drop", "dup", "swap", "move", "del_key", "set_key"] if corrupt
                        else ["drop", "dup", "swap", "move"]),
        st.integers(0, 10**6), st.integers(0, 10**6)), max_size=12))
    for op, i, j in ops:
        if not events:
            break
        i %= len(events)
        j %= len(events)
        if op == "drop":
            del events[i]
        elif op == "dup":
            events.insert(j, dict(events[i]))
        elif op == "swap":
            events[i], events[j] = events[j], events[i]
        elif op == "move":
            events.insert(j, events.pop(i))
        elif op == "del_key":
            keys = sorted(events[i])
            del events[i][keys[j % len(keys)]]
        elif op == "set_key":
            key = draw(st.sampled_from(sorted(FIELDS)))
            events[i][key] = draw(st.one_of(FIELDS[key], HUGE))
    return events


# -- properties ---------------------------------------------------------------------------


@fuzz
@given(st.data())
def test_arbitrary_bytes_never_break_parser_or_tracker(data: st.DataObject) -> None:
    raw = data.draw(st.binary(max_size=600))
    raw += data.draw(st.sampled_from([b"", b"\r\n\r\n", b"\r\n\n", b"\n"]))
    run(frames_of(data.draw(chunked(raw))))


@fuzz
@given(st.lists(events_strategy, max_size=40), st.data())
def test_arbitrary_frames_over_the_wire(events: list[dict[str, str]],
                                        data: st.DataObject) -> None:
    endings = data.draw(st.lists(st.sampled_from([b"\r\n", b"\n", b"\r\n\r\n"]),
                                 min_size=len(events), max_size=len(events)))
    raw = b"".join(wire(e, end) for e, end in zip(events, endings, strict=True))
    run(frames_of(data.draw(chunked(raw))))


@fuzz
@given(st.lists(events_strategy, max_size=60))
def test_arbitrary_events(events: list[dict[str, str]]) -> None:
    run(events)


@fuzz
@given(st.lists(wrong_events_strategy, max_size=40))
def test_wrong_types_never_raise(events: list[dict[str, Any]]) -> None:
    run(events)


@fuzz
@given(mutated_real())
def test_mutated_real_events(events: list[dict[str, Any]]) -> None:
    run(events)


@fuzz
@given(mutated_real(), st.data())
def test_mutated_real_capture_bytes(events: list[dict[str, Any]], data: st.DataObject) -> None:
    raw = b"".join(wire(e) for e in events)
    run(frames_of(data.draw(chunked(raw))))


def final_calls(events: Iterable[Mapping[str, Any]]) -> dict[str, CallData]:
    """The newest snapshot of every call, as the store would keep it."""
    tracker = CallTracker()
    latest: dict[str, CallData] = {}
    for event in events:
        for fact in tracker.feed(event):
            latest[fact.call.linkedid] = fact.call
    for call in tracker.live_calls():
        latest[call.linkedid] = call
    return latest


@fuzz
@given(st.one_of(mutated_real(corrupt=False), mutated_real(),
                 st.lists(events_strategy, max_size=40)))
def test_every_event_twice_gives_the_same_calls(events: list[dict[str, Any]]) -> None:
    doubled = [copy for event in events for copy in (event, dict(event))]
    assert final_calls(doubled) == final_calls(events)


def test_real_captures_replay_clean() -> None:
    """The unmutated captures end every call and leave nothing behind."""
    for events in REAL:
        tracker = CallTracker()
        ended = []
        for event in events:
            facts = tracker.feed(event)
            check_facts(facts)
            ended += [f.call for f in facts if f.kind == "call_ended"]
        assert ended and tracker.events_skipped == 0
        assert leftovers(tracker) == {}


# -- bugs the fuzzer found and shrank, kept as regression tests ----------------------------


def test_fixed_bug_1_huge_timestamp_poisons_the_clock() -> None:
    """Found by the fuzzer (bug 1, fixed).

    A finite Timestamp that datetime cannot represent poisoned the clamped clock.
    """
    run([
        {"Event": "Newchannel", "Timestamp": "1700000000.0", "Uniqueid": "1.1",
         "Channel": "PJSIP/carrier-00000001"},
        {"Event": "Newstate", "Timestamp": "1e20", "Uniqueid": "1.1", "ChannelState": "6"},
        {"Event": "Hangup", "Timestamp": "1700000010.0", "Uniqueid": "1.1"},
    ])


def test_bridge_not_left_behind_after_hangup() -> None:
    """Found by the fuzzer (bug 2, fixed): a Hangup inside a bridge, its BridgeLeave lost."""
    tracker = CallTracker()
    for event in [
        {"Event": "Newchannel", "Timestamp": "1700000000.0", "Uniqueid": "1.1",
         "Channel": "PJSIP/carrier-00000001"},
        {"Event": "BridgeEnter", "Timestamp": "1700000001.0", "Uniqueid": "1.1",
         "BridgeUniqueid": "b1"},
        {"Event": "Hangup", "Timestamp": "1700000002.0", "Uniqueid": "1.1"},
    ]:
        tracker.feed(event)
    assert tracker._calls == {} and tracker._channels == {}
    assert tracker._bridges == {}


def _two_party_call(tracker: CallTracker, uid: str, t0: float) -> CallData:
    """A real-shaped inbound call: 60 s of talk between a carrier leg and 101."""
    ended = []
    for event in [
        {"Event": "Newchannel", "Uniqueid": f"{uid}.1", "Linkedid": f"{uid}.1",
         "Channel": "PJSIP/carrier-00000001", "Timestamp": str(t0)},
        {"Event": "Newchannel", "Uniqueid": f"{uid}.2", "Linkedid": f"{uid}.1",
         "Channel": "PJSIP/101-00000002", "Timestamp": str(t0 + 1)},
        {"Event": "BridgeEnter", "Uniqueid": f"{uid}.1", "BridgeUniqueid": uid,
         "Timestamp": str(t0 + 2)},
        {"Event": "BridgeEnter", "Uniqueid": f"{uid}.2", "BridgeUniqueid": uid,
         "Timestamp": str(t0 + 2)},
        {"Event": "BridgeLeave", "Uniqueid": f"{uid}.1", "BridgeUniqueid": uid,
         "Timestamp": str(t0 + 62)},
        {"Event": "BridgeLeave", "Uniqueid": f"{uid}.2", "BridgeUniqueid": uid,
         "Timestamp": str(t0 + 62)},
        {"Event": "Hangup", "Uniqueid": f"{uid}.2", "Timestamp": str(t0 + 62)},
        {"Event": "Hangup", "Uniqueid": f"{uid}.1", "Timestamp": str(t0 + 62)},
    ]:
        ended += [f.call for f in tracker.feed(event) if f.kind == "call_ended"]
    (call,) = ended
    return call


def test_fixed_bug_3_non_str_value_poisons_the_call() -> None:
    """Found by the fuzzer (bug 3, fixed).

    A non-str value (DialString=5) broke every later snapshot of its call.
    """
    run([
        {"Event": "Newchannel", "Timestamp": "100", "Uniqueid": "1.1", "Linkedid": "1.1",
         "Channel": "PJSIP/101-00000001"},
        {"Event": "Newchannel", "Timestamp": "101", "Uniqueid": "1.2", "Linkedid": "1.1",
         "Channel": "PJSIP/carrier-00000002"},
        {"Event": "DialBegin", "Timestamp": "101", "Uniqueid": "1.1", "DestUniqueid": "1.2",
         "DialString": 5},
        {"Event": "Hangup", "Timestamp": "105", "Uniqueid": "1.2"},
        {"Event": "Hangup", "Timestamp": "105", "Uniqueid": "1.1"},
    ])


def test_fixed_bug_4_future_timestamp_zeroes_later_calls() -> None:
    """Found by the fuzzer (bug 4, fixed).

    One future Timestamp (a clock step, a corrupted frame) zeroed later calls' talk.
    """
    tracker = CallTracker()
    assert _two_party_call(tracker, "1", 1795406400.0).talk_seconds == 60.0
    tracker.feed({"Event": "Newstate", "Uniqueid": "nobody", "Timestamp": "4102444800"})
    assert _two_party_call(tracker, "2", 1795406500.0).talk_seconds == 60.0


def test_fixed_bug_5_bridge_left_empty_when_entered_without_leaving() -> None:
    """Found by the long fuzz run (bug 5, fixed).

    A BridgeEnter into a second bridge without the BridgeLeave of the first left
    the first bridge behind, empty, for ever.
    """
    tracker = CallTracker()
    for event in [
        {"Event": "Newchannel", "Timestamp": "100", "Uniqueid": "1.1", "Linkedid": "1.1",
         "Channel": "PJSIP/carrier-00000001"},
        {"Event": "BridgeEnter", "Timestamp": "101", "Uniqueid": "1.1", "BridgeUniqueid": "b1"},
        {"Event": "BridgeEnter", "Timestamp": "102", "Uniqueid": "1.1", "BridgeUniqueid": "b2"},
        {"Event": "Hangup", "Timestamp": "103", "Uniqueid": "1.1"},
    ]:
        tracker.feed(event)
    assert tracker._bridges == {}
    assert tracker._calls == {} and tracker._channels == {}
