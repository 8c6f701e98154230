"""The thin shell around the tracker: ordered events in, persisted facts out.

One bounded queue per PBX sits between the socket and the tracker, so events are
processed strictly in arrival order. The tracker never waits for the database: a
separate writer task stores facts, and while one write is in flight the newest
snapshot of every call replaces older ones of the same kind (each fact is the
call's full state),
so writes never queue behind each other, a slow or absent database costs memory
per call (not per event), and nothing is lost (``deliver`` retries).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

from crm_core.calls.snapshot import on_pbx
from crm_core.clock import utcnow
from crm_core.stopping import stop_tasks

from .ami import AmiSession, AmiSettings
from .feed import RECONCILE_PREFIX, TrackerFeed
from .frames import Frame
from .tracker import CallTracker, Fact, FactKind

log = logging.getLogger(__name__)

FactSink = Callable[[list[Fact]], Awaitable[None]]
# Called after the first reconciliation of a process with the calls Asterisk still has,
# so calls left "in progress" by a previous run of the CRM can be closed.
OrphanCloser = Callable[[set[str], float], Awaitable[None]]


class ListenerObserver(Protocol):
    """What a listener reports as it works, for the metrics; calls must be cheap.

    A protocol rather than metrics objects, so the PBX side knows no metrics library.
    """

    def events_processed(self, count: int, lags: Sequence[float]) -> None:
        """``count`` events were fed to the tracker; ``lags`` are the seconds from each
        event's Asterisk ``Timestamp`` to its processing (empty for a PBX that sends none)."""

    def hangups_stored(self, seconds: Sequence[float]) -> None:
        """Calls ended and committed: seconds from the ending event's processing to the commit."""


class _Unobserved:
    def events_processed(self, count: int, lags: Sequence[float]) -> None:
        return None

    def hangups_stored(self, seconds: Sequence[float]) -> None:
        return None


def on_pbx_facts(pbx: str, sink: FactSink) -> FactSink:
    """``sink`` fed facts whose calls carry ``pbx``'s label and stored ids, so every
    consumer (the writer, live events, call tracking) names a call as the database does
    even when two PBXs use the same linkedid."""
    async def labelled(facts: list[Fact]) -> None:
        await sink([dataclasses.replace(fact, call=on_pbx(fact.call, pbx)) for fact in facts])
    return labelled


class CaptureWriter:
    """Appends the raw AMI byte stream to one file per UTC day.

    The files are exactly what ``telecrm ami-replay`` reads: an audit trail and a
    way to rebuild the call log after a bug fix or a database restore.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._day = ""
        self._file: BinaryIO | None = None

    def __call__(self, data: bytes) -> None:
        day = utcnow().strftime("%Y-%m-%d")
        if day != self._day or self._file is None:
            self.close()
            self.directory.mkdir(parents=True, exist_ok=True)
            self._file = open(self.directory / f"{day}.ami", "ab")
            self._day = day
        self._file.write(data)
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


async def deliver(sink: FactSink, facts: list[Fact], *, retry_max: float = 30.0) -> None:
    """Hand facts to the sink, retrying with backoff until it takes them.

    A database that is down for a while delays the facts; it never loses them.
    """
    delay = 0.5
    while True:
        try:
            await sink(facts)
            return
        except Exception as exc:  # the sink's failure is logged, never fatal
            log.warning("could not store %d call facts (%s); retrying in %.1f s",
                        len(facts), exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, retry_max)


class Listener:
    """Live AMI events through the tracker into a sink, in order, with back-pressure."""

    def __init__(
        self,
        settings: AmiSettings,
        sink: FactSink,
        tracker: CallTracker | None = None,
        capture: CaptureWriter | None = None,
        queue_size: int = 20_000,
        batch_size: int = 500,
        close_orphans: OrphanCloser | None = None,
    ) -> None:
        self.tracker = tracker or CallTracker()
        self.feed = TrackerFeed(self.tracker)
        self.sink = sink
        self.capture = capture
        self.batch_size = batch_size
        self.close_orphans = close_orphans
        self.queue: asyncio.Queue[Mapping[str, str]] = asyncio.Queue()
        self._high = queue_size
        self._low = queue_size // 2
        self.session = AmiSession(settings, self._on_event, on_connected=self._on_connected,
                                  on_bytes=capture)
        self.stored_batches = 0
        self._orphans_closed = False
        # Facts not yet handed to the writer: the newest per call, kind and extension
        # (the store needs only the newest per call; live events must not lose the
        # RINGING of one phone to the RINGING of another), so it grows with the calls
        # in progress and their phones, never with the events.
        self._pending: dict[tuple[str, str, str | None], Fact] = {}
        self._orphan_request: tuple[set[str], float] | None = None
        self._wake = asyncio.Event()
        self._writing = False
        self._workers: tuple[asyncio.Task[None], ...] = ()
        self._finished = asyncio.Event()
        self.drain_timeout = 10.0
        # Metrics (telecrm.metrics sets one); ended calls wait here from the processing
        # of their last event until their row is committed (linkedid -> monotonic time).
        self.observer: ListenerObserver = _Unobserved()
        self._ended: dict[str, float] = {}

    async def _on_connected(self) -> None:
        """Ask for the channel listing; it reconciles the tracker in event order.

        Asterisk stamps no Timestamp on a listing, so a global Setvar goes first:
        its ``VarSet`` event is stamped and dates the listing for the tracker.
        """
        n = self.session.connections
        self.session.send_untracked({"Action": "Setvar", "Variable": "TELECRM_LISTING",
                                     "Value": str(n), "ActionID": f"telecrm-listing-time-{n}"})
        self.session.send_untracked({"Action": "CoreShowChannels",
                                     "ActionID": f"{RECONCILE_PREFIX}{n}"})

    def _on_event(self, frame: Frame) -> None:
        self.queue.put_nowait(frame.headers)
        if self.queue.qsize() >= self._high:
            self.session.pause_reading()

    async def run(self) -> None:
        """Run until stopped or cancelled; the AMI session reconnects on its own."""
        consumer = asyncio.create_task(self._consume(), name="ami-consumer")
        writer = asyncio.create_task(self._write(), name="ami-writer")
        self._workers = (consumer, writer)
        try:
            await self.session.run()
            await self._drain()
        finally:
            await stop_tasks(consumer, writer)
            if self.capture is not None:
                self.capture.close()
            self._finished.set()

    async def stop(self) -> None:
        """Stop reading AMI, then store what was already received, and return.

        Events still queued and facts not yet written are the last moments of calls
        (an answer, a hang-up): dropping them on a restart would leave an answered call
        to be closed later as missed.
        """
        await self.session.stop()
        if self._workers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finished.wait(), self.drain_timeout + 1)

    async def _drain(self) -> None:
        """Wait (at most ``drain_timeout``, for a database that is down) until stored."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.drain_timeout):
                while self._unwritten():  # noqa: ASYNC110 -- state of two tasks, no one event
                    await asyncio.sleep(0.02)

    def _unwritten(self) -> bool:
        """Received but not yet stored, and the tasks that would store it still run."""
        busy = (not self.queue.empty() or bool(self._pending)
                or self._orphan_request is not None or self._writing)
        return busy and all(not task.done() for task in self._workers)

    async def _consume(self) -> None:
        while True:
            events = [await self.queue.get()]
            while len(events) < self.batch_size and not self.queue.empty():
                events.append(self.queue.get_nowait())
            reconciled = self.feed.reconciliations
            pending = self._pending
            self._observe_events(events)
            for event in events:
                try:
                    facts = self.feed.feed(event)
                except Exception:  # the tracker promises not to raise; never die if it does
                    log.exception("the call tracker failed on a %s event", event.get("Event"))
                    continue
                for fact in facts:
                    # The newest snapshot wins, moved to the end: the batch stays in order
                    # of the snapshots it carries.
                    key = (fact.call.linkedid, fact.kind, fact.extension)
                    pending.pop(key, None)
                    pending[key] = fact
                    if fact.kind == FactKind.ENDED:
                        self._ended.setdefault(fact.call.linkedid, time.monotonic())
            if self.feed.reconciliations != reconciled and not self._orphans_closed:
                self._orphans_closed = True
                if self.close_orphans is not None:
                    # Closed by the writer right after the facts seen so far, as before.
                    clock = self.tracker.clock
                    live = {call.linkedid for call in self.tracker.live_calls()}
                    self._orphan_request = (live, clock.timestamp() if clock else 0.0)
            if pending or self._orphan_request is not None:
                self._wake.set()
            if self.queue.qsize() < self._low:
                self.session.resume_reading()

    def _observe_events(self, events: list[Mapping[str, str]]) -> None:
        """Count the batch and, when Asterisk stamps its events, how late each is processed
        (a stamp of our own receipt would only measure our queue, so it is skipped)."""
        if isinstance(self.observer, _Unobserved):
            return
        lags: list[float] = []
        if self.session.asterisk_stamps:
            now = utcnow().timestamp()
            for event in events:
                try:
                    lags.append(max(0.0, now - float(event["Timestamp"])))
                except (KeyError, TypeError, ValueError):
                    continue
        try:
            self.observer.events_processed(len(events), lags)
        except Exception:  # metrics must never stop the calls
            log.exception("the listener's observer failed")

    def _observe_stored(self, facts: list[Fact]) -> None:
        now = time.monotonic()
        seconds = [now - self._ended.pop(fact.call.linkedid) for fact in facts
                   if fact.kind == FactKind.ENDED and fact.call.linkedid in self._ended]
        if seconds:
            try:
                self.observer.hangups_stored(seconds)
            except Exception:  # metrics must never stop the calls
                log.exception("the listener's observer failed")

    async def _write(self) -> None:
        """Store the newest snapshot of every call touched since the last write, in turn."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            facts = list(self._pending.values())
            self._pending = {}
            orphans, self._orphan_request = self._orphan_request, None
            self._writing = True
            try:
                if facts:
                    await deliver(self.sink, facts)
                    self.stored_batches += 1
                    self._observe_stored(facts)
                if orphans is not None and self.close_orphans is not None:
                    await self.close_orphans(*orphans)
            finally:
                self._writing = False
