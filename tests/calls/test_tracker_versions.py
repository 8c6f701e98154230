"""Older Asterisk versions (20, 18, 16, 13) log the same calls as Asterisk 22.

Only Asterisk 22 installs here. ``tests/support/older_asterisk.py`` edits the real
captures of ``tests/captures/`` into what the older versions send for the same call
(chan_sip channel names and Dial strings; no ``TechCause`` before 22; no
``Linkedid``, ``Language`` or ``BridgeVideoSourceMode`` in Asterisk 13), by the
differences and sources listed in ``pbx_bridge/VERSIONS.md``. The ones in
``tests/captures/versions/`` are committed (README there); every other capture is
converted here in memory. Each must give the calls the original gives.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_core.calls.snapshot import CallData
from pbx_bridge.replay import read_events
from pbx_bridge.tracker import CallTracker, FactKind
from tests.support.older_asterisk import COMMITTED, PROFILES, VERSIONS_DIR, older
from tests.support.scenarios import CAPTURES, ended_calls, party_rules, replay_capture

ORIGINALS = sorted(p.stem for p in CAPTURES.glob("*.ami"))


def outcome(path: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """What a user checks of each call: ended ones, then the ones still live."""
    tracker, facts = replay_capture(path)

    def row(call: CallData) -> tuple[object, ...]:
        return (call.direction, call.status, call.managers, round(call.talk_seconds, 1),
                call.client_number, call.transferred, call.merged_into is not None,
                call.started_at, call.answered_at)

    return [row(c) for c in ended_calls(facts)], [row(c) for c in tracker.live_calls()]


@pytest.mark.parametrize("version", sorted(PROFILES))
@pytest.mark.parametrize("name", ORIGINALS)
def test_every_capture_as_an_older_asterisk_sends_it_gives_the_same_calls(
        name: str, version: str, tmp_path: Path) -> None:
    path = tmp_path / f"asterisk{version}_{name}.ami"
    path.write_bytes(older(name, version))
    assert outcome(path) == outcome(CAPTURES / f"{name}.ami")


@pytest.mark.parametrize("target", sorted(COMMITTED))
def test_the_committed_captures_are_what_the_converter_makes(target: str) -> None:
    version, source = COMMITTED[target]
    assert (VERSIONS_DIR / f"{target}.ami").read_bytes() == older(source, version)


def only_call(target: str) -> CallData:
    _, facts = replay_capture(VERSIONS_DIR / f"{target}.ami")
    (call,) = ended_calls(facts)
    return call


def headers(target: str) -> set[str]:
    return {key for event in read_events(VERSIONS_DIR / f"{target}.ami") for key in event}


def test_asterisk16_chan_sip_inbound_call_is_answered_by_101() -> None:
    call = only_call("asterisk16_inbound_answered")
    assert (call.direction, call.status, call.managers) == ("inbound", "answered", ("101",))
    assert call.client_number == "79161234567" and call.talk_seconds > 3
    assert {leg.channel for leg in call.legs} == {"SIP/carrier-00000000", "SIP/101-00000001"}
    assert {(leg.role, leg.extension) for leg in call.legs} == {
        ("client", None), ("manager", "101")}


def test_asterisk16_chan_sip_dial_string_gives_the_busy_clients_number() -> None:
    call = only_call("asterisk16_outbound_busy")
    assert (call.direction, call.status, call.managers) == ("outbound", "busy", ())
    assert call.client_number == "89031234567", "from DialString carrier/89031234567"
    assert call.talk_seconds == 0


def test_asterisk16_attended_transfer_is_one_call_of_both_managers() -> None:
    call = only_call("asterisk16_attended_transfer")
    assert (call.status, call.managers, call.transferred) == ("answered", ("101", "102"), True)
    assert call.talk_seconds > 5


def test_asterisk18_hold_is_not_talk() -> None:
    call = only_call("asterisk18_hold")
    original = ended_calls(replay_capture(CAPTURES / "hold.ami")[1])[0]
    assert call.talk_seconds == original.talk_seconds
    (phone,) = [leg for leg in call.legs if leg.extension]
    assert phone.channel.startswith("SIP/") and phone.hold_seconds > 1


def test_asterisk18_blind_transfer() -> None:
    call = only_call("asterisk18_blind_transfer")
    assert call.transferred and len(call.managers) == 2 and call.status == "answered"


def test_asterisk20_queue_call_names_its_queue() -> None:
    call = only_call("asterisk20_inbound_queue")
    assert (call.status, call.queue) == ("answered", "sales")
    assert "TechCause" not in headers("asterisk20_inbound_queue")


def test_asterisk13_sends_no_linkedid_and_the_calls_are_still_whole() -> None:
    for target in ("asterisk13_inbound_answered", "asterisk13_outbound_answered",
                   "asterisk13_inbound_queue"):
        assert not {k for k in headers(target) if k.endswith("Linkedid")}, target
    inbound = only_call("asterisk13_inbound_answered")
    assert (inbound.linkedid, inbound.status, inbound.managers) == (
        "1795462311.0", "answered", ("101",)), "named by the caller's channel"
    outbound = only_call("asterisk13_outbound_answered")
    assert (outbound.direction, outbound.status) == ("outbound", "answered")
    assert outbound.client_number == "89031234567" and outbound.talk_seconds > 1
    queue = only_call("asterisk13_inbound_queue")
    assert (queue.status, queue.queue, len(queue.managers)) == ("answered", "sales", 1)
    assert not [leg for leg in queue.legs if leg.channel.startswith("Local/")]


def test_asterisk13_call_in_progress_is_reconciled_without_linkedid() -> None:
    _, facts = replay_capture(VERSIONS_DIR / "asterisk13_in_progress.ami")
    _, original_facts = replay_capture(CAPTURES / "in_progress.ami")
    assert [f.kind for f in facts] == [f.kind for f in original_facts]
    assert [(c.status, c.managers, c.talk_seconds) for c in ended_calls(facts)] == [
        (c.status, c.managers, c.talk_seconds) for c in ended_calls(original_facts)]
    assert any(f.kind is FactKind.ANSWERED for f in facts)


def test_asterisk11_events_are_ignored_and_break_nothing() -> None:
    """``Dial``, ``Bridge``, ``Join`` and ``Masquerade`` (Asterisk 11 and older) say
    nothing the tracker reads; they must never break the listener."""
    tracker = CallTracker(party_rules())
    old = [
        {"Event": "Newchannel", "Timestamp": "1795462311.1", "Channel": "SIP/carrier-0000004a",
         "Uniqueid": "1795462311.0", "CallerIDNum": "79161234567"},
        {"Event": "Dial", "SubEvent": "Begin", "Timestamp": "1795462311.2",
         "Channel": "SIP/carrier-0000004a", "Destination": "SIP/101-0000004b",
         "UniqueID": "1795462311.0", "DestUniqueID": "1795462311.1", "Dialstring": "101"},
        {"Event": "Bridge", "Bridgestate": "Link", "Timestamp": "1795462312.0",
         "Channel1": "SIP/carrier-0000004a", "Channel2": "SIP/101-0000004b"},
        {"Event": "Join", "Queue": "sales", "Timestamp": "1795462312.1"},
        {"Event": "Masquerade", "Clone": "SIP/101-0000004b", "Original": "x"},
        {"Event": "Hangup", "Timestamp": "1795462315.0", "Channel": "SIP/carrier-0000004a",
         "Uniqueid": "1795462311.0", "Cause": "16"},
    ]
    facts = tracker.feed_all(old)
    assert tracker.events_skipped == 0
    (call,) = ended_calls(facts)
    assert (call.direction, call.status, call.client_number) == (
        "inbound", "missed", "79161234567"), "what the events the tracker knows say"
