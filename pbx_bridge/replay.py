"""Replay raw AMI captures through the same tracker and sink as the live listener.

The event ``Timestamp`` is the clock, so a replay of yesterday's capture logs
yesterday's calls with yesterday's times: backfill after an outage, audit, and
support ("send us the capture") all use this path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .frames import FrameParser
from .pipeline import FactSink, deliver
from .tracker import CallTracker, Fact

CHUNK = 1 << 16


def read_events(path: Path) -> Iterator[Mapping[str, str]]:
    """Events of one capture file, in order; responses and junk are skipped."""
    parser = FrameParser()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            for frame in parser.feed(chunk):
                if frame.is_event:
                    yield frame.headers
    for frame in parser.close():
        if frame.is_event:
            yield frame.headers


@dataclass(slots=True)
class ReplayStats:
    events: int = 0
    facts: int = 0
    calls_ended: int = 0
    calls_open: int = 0


async def replay(
    paths: Iterable[Path], sink: FactSink, tracker: CallTracker | None = None,
    batch_events: int = 2000,
) -> ReplayStats:
    """Feed every capture in order; calls still open at the end are stored as in progress."""
    tracker = tracker or CallTracker()
    stats = ReplayStats()
    pending: list[Fact] = []
    for path in paths:
        for event in read_events(path):
            stats.events += 1
            facts = tracker.feed(event)
            if facts:
                pending.extend(facts)
                stats.facts += len(facts)
                stats.calls_ended += sum(1 for f in facts if f.kind == "call_ended")
            if stats.events % batch_events == 0 and pending:
                await deliver(sink, pending)
                pending = []
    if pending:
        await deliver(sink, pending)
    stats.calls_open = len(tracker.live_calls())
    return stats
