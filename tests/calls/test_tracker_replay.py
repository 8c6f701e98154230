"""The tracker on real captures, with no Asterisk: live state, reconciliation, odd input.

Every event here comes from ``tests/captures/`` (real bytes from the sandbox
PBX, see ``tests/support/scenarios.py``); where a test transforms them it says how.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pbx_bridge.channels import PartyRules, Role, parse_channel
from pbx_bridge.feed import LISTING_END, LISTING_ITEM, TrackerFeed
from pbx_bridge.replay import read_events
from pbx_bridge.tracker import CallTracker, FactKind
from tests.support.scenarios import CAPTURES, SCENARIOS, ended_calls, party_rules

MOSCOW = ZoneInfo("Europe/Moscow")

Event = Mapping[str, str]


def events(name: str) -> list[dict[str, str]]:
    return [dict(e) for e in read_events(CAPTURES / f"{name}.ami")]


def listing(evs: list[dict[str, str]], action_id: str) -> tuple[int, list[Event]]:
    """Index of the listing's Complete event, and its CoreShowChannel items."""
    items = [e for e in evs if e.get("Event") == LISTING_ITEM and e.get("ActionID") == action_id]
    end = next(i for i, e in enumerate(evs)
               if e.get("Event") == LISTING_END and e.get("ActionID") == action_id)
    return end, items


def stamp(event: Event) -> float:
    return float(event["Timestamp"])


def listed_seconds(item: Event) -> int:
    hours, minutes, seconds = (int(x) for x in item["Duration"].split(":"))
    return hours * 3600 + minutes * 60 + seconds


# ---------------------------------------------------------------- a call in progress


def test_a_call_in_progress_is_live_answered_and_its_talk_grows() -> None:
    evs = events("in_progress")
    tracker = CallTracker(party_rules())
    feed = TrackerFeed(tracker)
    first, _ = listing(evs, "telecrm-reconcile-scenario-1")
    second, _ = listing(evs, "telecrm-reconcile-scenario-2")
    facts = []
    for e in evs[: first + 1]:
        facts += feed.feed(e)
    assert [f.kind for f in facts if f.kind is FactKind.ANSWERED] == [FactKind.ANSWERED]
    (live,) = tracker.live_calls()
    assert live.status == "in_progress" and live.answered_at is not None
    assert live.managers == ("101",) and live.ended_at is None
    talk_1 = live.talk_seconds
    for e in evs[first + 1: second + 1]:
        feed.feed(e)
    (live,) = tracker.live_calls()
    assert live.talk_seconds > talk_1 + 1  # the listings came 1.5 s apart
    # A live board passes its clock: talk grows between events too.
    later = tracker.clock.timestamp() + 2  # type: ignore[union-attr]
    (ahead,) = tracker.live_calls(at=later)
    assert abs(ahead.talk_seconds - (live.talk_seconds + 2)) < 1e-6
    for e in evs[second + 1:]:
        facts += feed.feed(e)
    (call,) = ended_calls(facts)
    assert call.status == "answered" and abs(call.talk_seconds - 6) < 1
    assert tracker.live_calls() == []


# ---------------------------------------------------------------- midnight


def test_a_call_across_midnight_in_moscow_is_one_call() -> None:
    """A real capture (inbound_answered) with every Timestamp shifted by one constant,
    so the call starts 2.5 s before midnight Europe/Moscow and ends after it."""
    evs = events("inbound_answered")
    start = min(stamp(e) for e in evs if "Timestamp" in e and e.get("Event") == "Newchannel")
    local = datetime.fromtimestamp(start, MOSCOW)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), MOSCOW)
    shift = midnight.timestamp() - 2.5 - start
    moved = [{**e, "Timestamp": f"{stamp(e) + shift:.6f}"} if "Timestamp" in e else e
             for e in evs]
    (original,) = ended_calls(CallTracker(party_rules()).feed_all(evs))
    (call,) = ended_calls(CallTracker(party_rules()).feed_all(moved))
    assert call.ended_at is not None
    assert call.started_at.astimezone(MOSCOW).date() == local.date()
    assert call.ended_at.astimezone(MOSCOW).date() == local.date() + timedelta(days=1)
    assert call.started_at.timestamp() == midnight.timestamp() - 2.5
    assert (call.talk_seconds, call.ring_seconds, call.managers) == (
        original.talk_seconds, original.ring_seconds, original.managers)
    assert call.ended_at - call.started_at == original.ended_at - original.started_at  # type: ignore[operator]


# ---------------------------------------------------------------- reconciliation


def test_reconcile_creates_calls_that_started_while_away() -> None:
    """The CRM (re)connects mid-call: it knows nothing, then gets the real listing."""
    evs = events("in_progress")
    end, items = listing(evs, "telecrm-reconcile-scenario-1")
    truth = {e["Uniqueid"]: stamp(e) for e in evs if e.get("Event") == "Newchannel"}
    bridged = next(stamp(e) for e in evs if e.get("Event") == "BridgeEnter")
    at = stamp(evs[end - len(items) - 1])  # the VarSet sent just before the listing
    tracker = CallTracker(party_rules())
    facts = tracker.reconcile(items, at)
    assert [f.kind for f in facts] == [FactKind.STARTED, FactKind.ANSWERED]
    (live,) = tracker.live_calls()
    assert live.status == "in_progress" and live.direction == "inbound"
    assert live.client_number == "79161234567" and live.managers == ("101",)
    # Durations are whole seconds: started_at within 1 s of the truth.
    assert abs(live.started_at.timestamp() - min(truth.values())) < 1
    assert abs(live.answered_at.timestamp() - bridged) < 1.5  # type: ignore[union-attr]
    facts = []
    for e in evs[end + 1:]:  # the rest of the call, live as usual
        facts += tracker.feed(e)
    (call,) = ended_calls(facts)
    assert call.status == "answered" and call.managers == ("101",)
    assert abs(call.talk_seconds - 6) < 1.5
    assert tracker.live_calls() == []


def test_reconcile_ends_calls_that_ended_while_away_and_keeps_the_others() -> None:
    """A call known from one capture is absent from another capture's listing."""
    known = events("inbound_answered")
    cut = next(i for i, e in enumerate(known) if e.get("Event") == "BridgeLeave")
    tracker = CallTracker(party_rules())
    tracker.feed_all(known[:cut])  # the connection dropped mid-call
    (gone,) = tracker.live_calls()
    evs = events("in_progress")  # recorded minutes later: the CRM was away meanwhile
    _, items = listing(evs, "telecrm-reconcile-scenario-1")
    stale = tracker.clock.timestamp()  # type: ignore[union-attr]
    # No Timestamp on a listing: it dates itself by its channels' Uniqueid + Duration.
    at = max(int(i["Uniqueid"].split(".")[0]) + listed_seconds(i) for i in items)
    assert at > stale + 60
    facts = tracker.reconcile(items, stale)
    (ended,) = ended_calls(facts)
    assert ended.linkedid == gone.linkedid and ended.status == "answered"
    assert ended.ended_at is not None and ended.ended_at.timestamp() == at
    assert abs(ended.talk_seconds - (at - gone.answered_at.timestamp())) < 1e-3  # type: ignore[union-attr]
    (new,) = tracker.live_calls()
    assert new.linkedid != gone.linkedid and new.managers == ("101",)
    # Reconciling again with the same listing changes nothing.
    assert tracker.reconcile(items, at) == []


def test_reconcile_moves_known_channels_into_their_bridge() -> None:
    """Events lost between ringing and answer: the listing shows both in one bridge."""
    evs = events("in_progress")
    ringing = next(i for i, e in enumerate(evs) if e.get("Event") == "DialBegin")
    _, items = listing(evs, "telecrm-reconcile-scenario-1")
    tracker = CallTracker(party_rules())
    tracker.feed_all(evs[: ringing + 1])
    (before,) = tracker.live_calls()
    assert before.answered_at is None
    at = tracker.clock.timestamp() + 3  # type: ignore[union-attr]
    facts = tracker.reconcile(items, at)
    assert [f.kind for f in facts] == [FactKind.ANSWERED]
    (after,) = tracker.live_calls(at=at + 1)
    assert after.answered_at is not None and after.answered_at.timestamp() == at
    assert after.managers == ("101",) and after.talk_seconds == 1


def test_a_listing_with_no_time_waits_for_the_first_stamped_event() -> None:
    """The real listing minus its Duration fields: nothing dates it."""
    evs = events("in_progress")
    end, items = listing(evs, "telecrm-reconcile-scenario-1")
    items = [{k: v for k, v in item.items() if k != "Duration"} for item in items]
    tracker = CallTracker(party_rules())
    assert tracker.reconcile(items, 0.0) == []
    nxt = next(e for e in evs[end + 1:] if "Timestamp" in e)
    facts = tracker.feed(nxt)
    assert FactKind.STARTED in [f.kind for f in facts]
    assert tracker.live_calls()[0].linkedid == items[0]["Linkedid"]


# ---------------------------------------------------------------- robustness


def test_every_capture_leaves_memory_empty_and_replays_identically() -> None:
    for name in SCENARIOS:
        runs = []
        for _ in range(2):
            tracker = CallTracker(party_rules())
            feed = TrackerFeed(tracker)
            facts = [f for e in events(name) for f in feed.feed(e)]
            runs.append([(f.kind, f.at, f.call, f.extension) for f in facts])
            for store in ("_channels", "_calls", "_bridges", "_local_pairs", "_by_name",
                          "_call_of_linkedid"):
                assert not getattr(tracker, store), (name, store)  # finished calls forgotten
        assert runs[0] == runs[1], name


def test_odd_input_never_raises() -> None:
    tracker = CallTracker()
    rng = random.Random(7)
    real = events("attended_transfer")
    odd: list[object] = [
        {}, {"Event": None}, {"Event": "Hangup"}, {"Event": "Newchannel", "Timestamp": "nan"},
        {"Event": "BridgeEnter", "Uniqueid": "x"}, {"Event": "DialBegin", "Timestamp": "-5"},
        {"Event": "AttendedTransfer", "Result": "Success", "TransfereeLinkedid": "nope"},
        {"Event": "ChanSpyStart", "SpyerChannel": "PJSIP/201-1"}, {"Event": "Pickup"},
        {"Event": "Rename", "Uniqueid": "1", "Newname": ""}, {"Event": ["VarSet", "VarSet"]},
    ]
    for e in odd:
        assert tracker.feed(e) == []  # type: ignore[arg-type]
    assert tracker.reconcile([{"Uniqueid": "9.9", "Duration": "zz"}, {}], float("nan")) == []
    shuffled = real[:]
    rng.shuffle(shuffled)
    tracker.feed_all(shuffled)  # out of order: nonsense in, no exception out
    for call in tracker.live_calls():
        assert call.talk_seconds >= 0 and call.ring_seconds >= 0


def test_supervisors_are_told_apart_by_the_pbx_config() -> None:
    rules = PartyRules(supervisors=frozenset({"201"}))
    assert rules.role(parse_channel("PJSIP/201-0000000a")) is Role.SUPERVISOR
    assert rules.extension(parse_channel("PJSIP/201-0000000a")) == "201"
    assert rules.role(parse_channel("PJSIP/101-00000001")) is Role.MANAGER
    assert rules.role(parse_channel("Local/102@crm-transfer-00000000;1")) is Role.LOCAL


def test_captures_are_raw_ami_bytes() -> None:
    for path in Path(CAPTURES).glob("*.ami"):
        head = path.read_bytes()[:300]  # the AMI banner, then the login response
        assert b"Message: Authentication accepted\r\n\r\nEvent: FullyBooted\r\n" in head, path


def test_a_merged_call_keeps_the_older_linkedid_when_the_sequence_gains_a_digit() -> None:
    """Asterisk's ids are ``epoch.sequence``: ``.9`` is older than ``.10`` of the same second,
    though it sorts after it as text (and a float of the epoch cannot tell them apart)."""
    second = "1795462400"
    client, spy = f"{second}.9", f"{second}.10"

    def ev(event: str, uid: str, channel: str, **fields: str) -> dict[str, str]:
        return {"Event": event, "Timestamp": f"{second}.5", "Channel": channel,
                "Uniqueid": uid, "Linkedid": uid, **fields}

    tracker = CallTracker(party_rules())
    tracker.feed_all([
        ev("Newchannel", client, "PJSIP/carrier-00000009", CallerIDNum="79161234567",
           Exten="74951110002", Context="from-carrier", ChannelState="0"),
        ev("VarSet", client, "PJSIP/carrier-00000009", Variable="CRM_DIRECTION",
           Value="inbound"),
        ev("Newchannel", spy, "PJSIP/201-0000000a", CallerIDNum="201", Exten="s",
           Context="crm-listen", ChannelState="0"),
        ev("VarSet", spy, "PJSIP/201-0000000a", Variable="CRM_ORIGIN", Value="spy"),
    ])
    tracker.feed({"Event": "ChanSpyStart", "Timestamp": f"{second}.6",
                  "SpyerChannel": "PJSIP/201-0000000a", "SpyerUniqueid": spy,
                  "SpyeeChannel": "PJSIP/carrier-00000009", "SpyeeUniqueid": client})
    assert [call.linkedid for call in tracker.live_calls()] == [client]
