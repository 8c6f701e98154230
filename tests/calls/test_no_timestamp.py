"""Calls from a PBX that stamps no time on its events (Asterisk's default).

Live, the listener stamps each event on receipt, in the capture too, so a replay
of the capture equals what was stored live. A foreign capture without any time
still gives the same calls, parties and transfers; its times come from ``--start``.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crm_core.calls.snapshot import CallData
from crm_core.errors import DomainError
from pbx_bridge.ami import AmiSettings
from pbx_bridge.feed import TrackerFeed
from pbx_bridge.pipeline import CaptureWriter, Listener
from pbx_bridge.replay import read_events, replay
from pbx_bridge.tracker import CallTracker, Fact, FactKind
from tests.calls.test_listener import FAST, Collect, FaultyAmiServer
from tests.support.handmade import second_line_transfer, write_capture
from tests.support.scenarios import CAPTURES, party_rules

SCENARIOS = ("inbound_answered", "inbound_queue", "outbound_busy", "inbound_missed_timeout",
             "attended_transfer", "blind_transfer", "pickup", "hold", "concurrent_calls")
START = datetime(2026, 12, 5, 7, 15, tzinfo=UTC)


def _stripped(path: Path, tmp_path: Path) -> Path:
    events = [{k: v for k, v in event.items() if k != "Timestamp"}
              for event in read_events(path)]
    return write_capture(tmp_path / f"untimed-{path.name}", events)


def _ended(path: Path, start: datetime | None = None) -> list[CallData]:
    feed = TrackerFeed(CallTracker(party_rules()))
    facts = [f for event in read_events(path, start) for f in feed.feed(event)]
    return [fact.call for fact in facts if fact.kind is FactKind.ENDED]


def _who(call: CallData) -> tuple[object, ...]:
    return (call.linkedid, call.direction, call.status, call.client_number, call.managers,
            call.transferred, tuple((leg.uniqueid, leg.role) for leg in call.legs))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_capture_without_time_gives_the_same_calls(scenario: str, tmp_path: Path) -> None:
    timed = _ended(CAPTURES / f"{scenario}.ami")
    untimed = _ended(_stripped(CAPTURES / f"{scenario}.ami", tmp_path), START)
    assert [_who(c) for c in untimed] == [_who(c) for c in timed]
    for call in untimed:
        assert call.started_at >= START and call.ended_at is not None
        assert call.ended_at.year == 2026  # from --start, never 1970
        if call.status == "answered" and call.direction != "internal":
            assert call.managers  # bridged with the client: a party whatever the clock


def test_a_merged_second_line_transfer_without_time(tmp_path: Path) -> None:
    timed = write_capture(tmp_path / "timed.ami", second_line_transfer())
    untimed = _stripped(timed, tmp_path)
    assert [_who(c) for c in _ended(untimed, START)] == [_who(c) for c in _ended(timed)]


async def test_a_capture_without_time_and_no_start_is_refused(tmp_path: Path) -> None:
    untimed = _stripped(CAPTURES / "inbound_answered.ami", tmp_path)
    sink = Collect()
    with pytest.raises(DomainError) as refused:
        await replay([untimed], sink, CallTracker(party_rules()))
    assert refused.value.code == "ami.replay_no_time"
    assert sink.facts == []


async def test_the_listener_stamps_on_receipt_and_the_capture_replays_the_same(
        tmp_path: Path) -> None:
    untimed = _stripped(CAPTURES / "attended_transfer.ami", tmp_path).read_bytes()
    live = Collect()
    captures = tmp_path / "captured"
    async with FaultyAmiServer(untimed) as server:
        listener = Listener(AmiSettings(port=server.port, secret="x", **FAST), live,
                            tracker=CallTracker(party_rules()),
                            capture=CaptureWriter(captures))
        task = asyncio.create_task(listener.run())
        await asyncio.sleep(1.0)
        await listener.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    (captured,) = sorted(captures.glob("*.ami"))
    stamped = [e for e in read_events(captured) if e.get("Event") == "Newchannel"]
    assert stamped and all("Timestamp" in e for e in stamped)  # the receipt stamp is kept

    replayed: list[Fact] = []

    async def sink(facts: list[Fact]) -> None:
        replayed.extend(facts)

    await replay([captured], sink, CallTracker(party_rules()))
    live_ended = [f.call for f in live.facts if f.kind is FactKind.ENDED]
    replay_ended = [f.call for f in replayed if f.kind is FactKind.ENDED]
    assert live_ended and replay_ended == live_ended  # times included
    (call,) = live_ended
    assert call.managers == ("101", "102") and call.transferred
    assert call.started_at.year > 1970


async def test_a_replay_leaves_the_collector_as_it_found_it(tmp_path: Path) -> None:
    """A replay freezes the older objects for its full collections only: afterwards
    nothing stays frozen, even when it is refused, and its garbage is collected; a
    process that froze its own objects first keeps them frozen."""
    import gc
    import weakref

    class Node:
        def __init__(self) -> None:
            self.me = self  # a cycle: only the collector frees it

    left: list[weakref.ref[Node]] = []

    async def sink(facts: list[Fact]) -> None:
        left.append(weakref.ref(Node()))

    session_froze = gc.get_freeze_count() > 0  # tests/support/collector.py
    gc.unfreeze()
    try:
        stats = await replay([CAPTURES / "attended_transfer.ami"], sink,
                             CallTracker(party_rules()))
        assert stats.calls_ended and left
        assert gc.get_freeze_count() == 0
        gc.collect()
        assert all(ref() is None for ref in left)
        with pytest.raises(DomainError):
            await replay([_stripped(CAPTURES / "inbound_answered.ami", tmp_path)], sink)
        assert gc.get_freeze_count() == 0
        gc.freeze()
        kept = gc.get_freeze_count()
        await replay([CAPTURES / "attended_transfer.ami"], sink, CallTracker(party_rules()))
        # not thawed (0); a frozen object freed by its last reference leaves the count
        assert gc.get_freeze_count() > kept // 2
    finally:
        gc.unfreeze()
        if session_froze:
            gc.collect()
            gc.freeze()
