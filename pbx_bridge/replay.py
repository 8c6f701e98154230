"""Replay raw AMI captures through the same tracker and sink as the live listener.

The event ``Timestamp`` is the clock, so a replay of yesterday's capture logs
yesterday's calls with yesterday's times: backfill after an outage, audit, and
support ("send us the capture") all use this path. The live listener stamps the
events of a PBX without ``timestampevents`` on receipt, in the capture itself.

A foreign capture may carry no time at all. Its calls, directions, statuses,
parties and transfers are still right, but its times come from ``start``: the
n-th event without a time of a capture is stamped ``start + n`` milliseconds, so
events keep their order and every duration is order, not time (a call of 40
events "lasts" 0.04 s). Without ``start`` such a capture is refused, never dated 1970.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from crm_core.errors import DomainError

from .feed import TRACKER_EVENTS, TrackerFeed
from .frames import EventFilter, FrameParser
from .pipeline import FactSink, deliver
from .tracker import CallTracker, Fact, FactKind

CHUNK = 1 << 16


SPACING = 0.001  # seconds between the events of a capture without time


def read_events(path: Path, start: datetime | None = None,
                parser: FrameParser | None = None) -> Iterator[Mapping[str, str]]:
    """Events of one capture file, in order; responses and junk are skipped.

    With ``start``, a capture whose events carry no ``Timestamp`` is stamped from it
    (see the module docstring); once an event shows a time, nothing more is stamped.
    ``parser`` may filter (``FrameParser(events=...)``); its stats count what it passed
    over.
    """
    parser = parser or FrameParser()
    base = start.timestamp() if start is not None else None
    stamped = 0
    timed = False
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            for frame in parser.feed(chunk):
                if frame.is_event:
                    headers = frame.headers
                    if "Timestamp" in headers:
                        timed = True
                    elif base is not None and not timed:
                        headers["Timestamp"] = f"{base + stamped * SPACING:.6f}"
                        stamped += 1
                    yield headers
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
    flush_every: int = 20_000, start: datetime | None = None,
) -> ReplayStats:
    """Feed every capture in order; calls still open at the end are stored as in progress.

    Nobody watches a replay live, so only each call's final snapshot is written:
    ended calls are flushed every ``flush_every`` events (memory stays bounded on
    long captures), and calls still open are written once at the end.
    """
    with _older_objects_frozen():
        return await _replay(paths, sink, tracker or CallTracker(), flush_every, start)


@contextlib.contextmanager
def _older_objects_frozen() -> Iterator[None]:
    """Full garbage collections during a replay skip every object alive before it.

    The calls a replay holds for a batch survive into the oldest generation, so a
    replay triggers full collections, and each of those walked every module, class and
    function of the process as well (about 100,000 objects, 60-100 ms a walk here):
    an eighth of a replay's time. Whatever the replay leaves unreachable is still
    collected; what was alive before is only looked at again after it. A process that
    froze its own objects already (the test session does) is left as
    it is: ``gc.unfreeze`` would thaw those too.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def _replay(paths: Iterable[Path], sink: FactSink, tracker: CallTracker,
                  flush_every: int, start: datetime | None) -> ReplayStats:
    feed = TrackerFeed(tracker, text_only=True)  # read_events gives FrameParser's dicts
    stats = ReplayStats()
    latest: dict[str, Fact] = {}
    # The tracker's filter drops most events before they become dicts; stamping a
    # capture without time counts every event, so it reads them all.
    events: EventFilter | None = TRACKER_EVENTS if start is None else None
    for path in paths:
        parser = FrameParser(events)
        for event in read_events(path, start, parser):
            stats.events += 1
            facts = feed.feed(event)
            if facts:
                stats.facts += len(facts)
                for fact in facts:
                    latest[fact.call.linkedid] = fact
                    if fact.kind == FactKind.ENDED:
                        stats.calls_ended += 1
            if stats.events % flush_every == 0:
                _check_time(tracker, latest, path)
                ended = [f for f in latest.values() if f.kind == FactKind.ENDED]
                if ended:
                    await deliver(sink, ended)
                    for fact in ended:
                        del latest[fact.call.linkedid]
        stats.events += parser.stats.filtered
    if latest:
        _check_time(tracker, latest, None)
        await deliver(sink, list(latest.values()))
    stats.calls_open = len(tracker.live_calls())
    return stats


def _check_time(tracker: CallTracker, latest: Mapping[str, Fact], path: Path | None) -> None:
    """Calls from a capture without any time would be dated 1970: refuse them."""
    if latest and tracker.clock is None:
        raise DomainError("ami.replay_no_time",
                          "the capture's events carry no Timestamp; give --start",
                          path=str(path) if path else "")
