"""Replay raw AMI captures through the same tracker and sink as the live listener.

The event ``Timestamp`` is the clock, so a replay of yesterday's capture logs
yesterday's calls with yesterday's times: backfill after an outage, audit, and
support ("send us the capture") all use this path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .feed import TrackerFeed
from .frames import FrameParser
from .pipeline import FactSink, deliver
from .tracker import CallTracker, Fact, FactKind

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
    flush_every: int = 20_000,
) -> ReplayStats:
    """Feed every capture in order; calls still open at the end are stored as in progress.

    Nobody watches a replay live, so only each call's final snapshot is written:
    ended calls are flushed every ``flush_every`` events (memory stays bounded on
    long captures), and calls still open are written once at the end.
    """
    tracker = tracker or CallTracker()
    feed = TrackerFeed(tracker)
    stats = ReplayStats()
    latest: dict[str, Fact] = {}
    for path in paths:
        for event in read_events(path):
            stats.events += 1
            facts = feed.feed(event)
            if facts:
                stats.facts += len(facts)
                for fact in facts:
                    latest[fact.call.linkedid] = fact
                    if fact.kind == FactKind.ENDED:
                        stats.calls_ended += 1
            if stats.events % flush_every == 0:
                ended = [f for f in latest.values() if f.kind == FactKind.ENDED]
                if ended:
                    await deliver(sink, ended)
                    for fact in ended:
                        del latest[fact.call.linkedid]
    if latest:
        await deliver(sink, list(latest.values()))
    stats.calls_open = len(tracker.live_calls())
    return stats
