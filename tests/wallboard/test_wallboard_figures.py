"""The wallboard's figures: a queue's day from seeded calls (pinned clock, hand-checked),
and the live part from a real queue call's capture replayed into the call tracker."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.services import record_call
from crm_core.calls.snapshot import CallData, LegData
from crm_core.wallboard.figures import queue_days
from crm_core.wallboard.live import ManagerState, manager_state, waiting_callers
from pbx_bridge.replay import read_events
from pbx_bridge.tracker import CallTracker
from tests.support.db_fixtures import db_session_fixture  # noqa: F401
from tests.support.scenarios import CAPTURES, party_rules

pytestmark = pytest.mark.calendar

TZ = ZoneInfo("Europe/Moscow")
NOON = datetime(2026, 11, 20, 12, 0, tzinfo=TZ)


def queue_call(linkedid: str, start: datetime, *, wait: float, answered: bool,
               queue: str = "sales", status: str | None = None,
               direction: str = "inbound") -> CallData:
    """A call that waited ``wait`` seconds in ``queue``, then was answered by 101 (or not)."""
    start = start.astimezone(UTC)
    answer = start + timedelta(seconds=wait) if answered else None
    end = (answer + timedelta(seconds=60)) if answer else start + timedelta(seconds=wait)
    in_progress = status == "in_progress"
    return CallData(
        linkedid=linkedid, direction=direction,
        status=status or ("answered" if answered else "missed"),
        client_number="+79161234567", did="+74951110001", started_at=start,
        answered_at=answer, ended_at=None if in_progress else end, ring_seconds=wait,
        talk_seconds=60.0 if answered else 0.0, transferred=False,
        managers=("101",) if answered else (), recordings=(),
        legs=(LegData(uniqueid=f"{linkedid}-c", channel="PJSIP/carrier-01", role="client",
                      extension=None, started_at=start, answered_at=start,
                      ended_at=None if in_progress else end, talk_seconds=0.0),),
        rang=("101",), queue=queue)


@pytest.mark.clock("2026-11-20T12:00:00+03:00")
async def test_a_queues_day_hand_checked(db_session: AsyncSession) -> None:
    midnight = NOON.replace(hour=0)
    calls = [
        # today in queue «sales»: waits 5, 20 (the threshold itself counts), 35 answered;
        # 50 and 12 abandoned
        queue_call("q-1", midnight + timedelta(minutes=5), wait=5, answered=True),
        queue_call("q-2", NOON - timedelta(hours=3), wait=20, answered=True),
        queue_call("q-3", NOON - timedelta(hours=2), wait=35, answered=True),
        queue_call("q-4", NOON - timedelta(hours=1), wait=50, answered=False),
        queue_call("q-5", NOON - timedelta(minutes=30), wait=12, answered=False),
        # not today's figures: yesterday 23:55, a caller still waiting, another queue,
        # an outbound call that names the queue
        queue_call("y-1", midnight - timedelta(minutes=5), wait=1, answered=True),
        queue_call("w-1", NOON - timedelta(seconds=40), wait=40, answered=False,
                   status="in_progress"),
        queue_call("s-1", NOON - timedelta(hours=1), wait=3, answered=True, queue="support"),
        queue_call("o-1", NOON - timedelta(hours=1), wait=3, answered=True,
                   direction="outbound"),
    ]
    for data in calls:
        await record_call(db_session, data)
    await db_session.commit()

    days = await queue_days(db_session, ["sales", "support", "empty"], NOON.date(), TZ,
                            threshold_seconds=20)
    sales = days["sales"]
    assert (sales.answered, sales.abandoned, sales.offered) == (3, 2, 5)
    assert sales.answered_within == 2  # 5 s and 20 s
    assert sales.service_level == 40.0  # 2 of 5 offered, abandoned ones count against
    assert sales.average_wait_seconds == 24.4  # (5 + 20 + 35 + 50 + 12) / 5
    support = days["support"]
    assert (support.answered, support.abandoned, support.service_level) == (1, 0, 100.0)
    empty = days["empty"]
    assert (empty.offered, empty.service_level, empty.average_wait_seconds) == (0, None, None)

    # a stricter threshold: only the 5-second answer is within 10 s
    strict = await queue_days(db_session, ["sales"], NOON.date(), TZ, threshold_seconds=10)
    assert strict["sales"].service_level == 20.0


def test_a_replayed_queue_call_waits_then_is_answered() -> None:
    """inbound_queue.ami: the caller joins «sales», 101 and 102 ring, 102 answers."""
    tracker = CallTracker(party_rules())
    events = list(read_events(CAPTURES / "inbound_queue.ami"))

    def feed_until(name: str) -> None:
        while events:
            event = events.pop(0)
            tracker.feed(event)
            if event.get("Event") == name:
                return
        raise AssertionError(f"no {name} left in the capture")

    feed_until("QueueCallerJoin")
    joined = tracker.clock
    assert joined is not None
    later = joined + timedelta(seconds=30)
    (caller,) = waiting_callers(tracker.live_calls(), later)["sales"]
    assert 30 <= caller.seconds < 30.1  # he has waited since his call reached the PBX
    assert caller.number is not None and caller.number.endswith("9161234567")
    assert manager_state("101", tracker.live_calls()).state == ManagerState.IDLE

    feed_until("DialBegin")  # the queue rings 101 ...
    feed_until("DialBegin")  # ... and 102
    calls = tracker.live_calls()
    assert waiting_callers(calls, later)["sales"]  # ringing phones: still waiting
    assert manager_state("101", calls).state == ManagerState.RINGING
    assert manager_state("102", calls).state == ManagerState.RINGING
    assert manager_state("103", calls).state == ManagerState.IDLE

    feed_until("BridgeEnter")  # 102 answered
    calls = tracker.live_calls()
    while events and not calls[0].answered_at:
        tracker.feed(events.pop(0))
        calls = tracker.live_calls()
    assert waiting_callers(calls, later) == {}
    talking = manager_state("102", calls)
    assert talking.state == ManagerState.TALKING and talking.label == "в разговоре"
    assert talking.since == calls[0].answered_at
    assert manager_state("101", calls).state == ManagerState.IDLE  # his phone stopped ringing

    tracker.feed_all(events)
    assert tracker.live_calls() == []
    assert manager_state("102", tracker.live_calls()).state == ManagerState.IDLE


def test_longest_wait_first_and_what_outranks_what() -> None:
    now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    early = queue_call("a", now - timedelta(seconds=90), wait=0, answered=False,
                       status="in_progress")
    late = queue_call("b", now - timedelta(seconds=10), wait=0, answered=False,
                      status="in_progress")
    elsewhere = queue_call("c", now - timedelta(seconds=50), wait=0, answered=False,
                           status="in_progress", queue="support")
    waiting = waiting_callers([late, early, elsewhere], now)
    assert [(c.linkedid, c.seconds) for c in waiting["sales"]] == [("a", 90.0), ("b", 10.0)]
    assert [c.linkedid for c in waiting["support"]] == ["c"]

    assert manager_state("101", [], registered=False).state == ManagerState.OFFLINE
    assert manager_state("101", [], registered=False).label == "не в сети"
    assert manager_state("101", []).state == ManagerState.IDLE
    assert manager_state(None, [early]).state == ManagerState.IDLE
    # on a call with an unregistered phone (a mobile): the call wins
    leg = LegData(uniqueid="m", channel="PJSIP/101-02", role="manager", extension="101",
                  started_at=now - timedelta(seconds=30), answered_at=now,
                  ended_at=None, talk_seconds=20.0, bridged_at=now - timedelta(seconds=20))
    on_call = replace(early, legs=(*early.legs, leg), answered_at=now - timedelta(seconds=20))
    state = manager_state("101", [on_call], registered=False)
    assert (state.state, state.since) == (ManagerState.TALKING, now - timedelta(seconds=20))

