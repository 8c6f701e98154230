"""The listener's figures against a stand-in AMI server replaying a real capture.

A PBX that stamps its events (``timestampevents = yes``) has each event's lag measured;
one that does not (Asterisk's default) has its events counted and no lag, since the
only stamp is our own receipt. Either way the hang-up of the transferred call is timed
to its row.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from prometheus_client import generate_latest

from pbx_bridge.ami import AmiSettings
from pbx_bridge.pipeline import Listener
from pbx_bridge.replay import read_events
from pbx_bridge.tracker import CallTracker, FactKind
from telecrm.metrics import Metrics
from tests.calls.test_listener import FAST, Collect, FaultyAmiServer
from tests.calls.test_no_timestamp import _stripped
from tests.metrics.test_metrics import Samples, parse, value
from tests.support.scenarios import CAPTURES, party_rules

CAPTURE = CAPTURES / "attended_transfer.ami"


async def listen(payload: bytes) -> tuple[Samples, Collect]:
    """Run a listener observed by a fresh registry until the call is stored."""
    metrics = Metrics()
    stored = Collect()
    async with FaultyAmiServer(payload) as server:
        listener = Listener(AmiSettings(port=server.port, secret="x", **FAST), stored,
                            tracker=CallTracker(party_rules()))
        metrics.watch({"main": listener}, set())
        task = asyncio.create_task(listener.run())
        try:
            deadline = time.monotonic() + 10
            while not any(f.kind is FactKind.ENDED for f in stored.facts):
                assert time.monotonic() < deadline, "the call was never stored"
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)  # the rest of the capture
            samples = parse(generate_latest(metrics.registry).decode())
        finally:
            await listener.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return samples, stored


def events_in(path: Path) -> int:
    return sum(1 for _ in read_events(path))


async def test_a_pbx_that_stamps_its_events_has_their_lag_measured() -> None:
    samples, _ = await listen(CAPTURE.read_bytes())
    events = events_in(CAPTURE)
    assert value(samples, "telecrm_ami_events_received_total", pbx="main") == events
    assert value(samples, "telecrm_ami_event_lag_seconds_count", pbx="main") == events
    assert value(samples, "telecrm_call_hangup_to_row_seconds_count", pbx="main") == 1
    assert value(samples, "telecrm_ami_connected", pbx="main") == 1
    assert value(samples, "telecrm_calls_in_progress", pbx="main") == 0


async def test_a_pbx_without_timestamps_has_events_counted_and_no_lag(
        tmp_path: Path) -> None:
    untimed = _stripped(CAPTURE, tmp_path)
    samples, _ = await listen(untimed.read_bytes())
    assert value(samples, "telecrm_ami_events_received_total", pbx="main") == events_in(CAPTURE)
    assert value(samples, "telecrm_ami_event_lag_seconds_count", pbx="main") == 0
    assert value(samples, "telecrm_call_hangup_to_row_seconds_count", pbx="main") == 1
