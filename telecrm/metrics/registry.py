"""The app's metrics: one ``CollectorRegistry`` per app, never the library's global one.

Several apps live in one test process (and could in one server), so each app owns its
registry and its metric objects. Two kinds of figures:

- moved as things happen: AMI events and their lag, hang-up to row, HTTP latency
  (counters and histograms, fed by the listeners' observers and the HTTP middleware);
- read at scrape time: AMI connection state, calls in progress, event-stream
  subscribers (from this process's objects), and the backlogs (from the database and
  the job queue, cached for ``BACKLOG_TTL_SECONDS`` so a busy scraper costs nothing);
- live prompts (:mod:`telecrm.live_prompts`): the recognition lag as it is taken (a
  histogram fed by :class:`LivePromptsObserver`); streams open, taps, refused streams,
  dropped audio and events published read at scrape time from the service's own
  counters.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pbx_bridge.pipeline import Listener
from telecrm.metrics.backlog import Backlog

log = logging.getLogger(__name__)

BACKLOG_TTL_SECONDS = 5.0
# AMI event lag and hang-up to row: from a few milliseconds (healthy) to half a minute
# (a database that was away).
FAST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Live recognition behind the audio: a fraction of a second (healthy) to the backlog's cut
# (2 s) and beyond (a stalled recognizer).
LIVE_LAG_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


class LagObserver(Protocol):
    """Takes the live recognition lag where it is measured."""

    def lag_observed(self, seconds: float) -> None: ...


class LivePromptsView(Protocol):
    """What the metrics read of the live-prompt service (telecrm.live_prompts.LivePrompts)."""

    taps_started: int
    taps_failed: int
    streams_open: int
    streams_refused: int
    dropped_seconds: float
    published: int
    endpoints: int
    observer: LagObserver | None


class JobQueueView(Protocol):
    """What the metrics read of a transcription queue (speech.jobs)."""

    async def waiting(self) -> int: ...

    async def failed_count(self) -> int: ...


@dataclass(frozen=True)
class QueueFigures:
    waiting: int = 0
    failed: int = 0


class PbxObserver:
    """One PBX's listener observer (pbx_bridge.pipeline.ListenerObserver)."""

    def __init__(self, metrics: Metrics, pbx: str) -> None:
        self._events = metrics.ami_events.labels(pbx=pbx)
        self._lag = metrics.ami_event_lag.labels(pbx=pbx)
        self._stored = metrics.hangup_to_row.labels(pbx=pbx)

    def events_processed(self, count: int, lags: Sequence[float]) -> None:
        self._events.inc(count)
        for lag in lags:
            self._lag.observe(lag)

    def hangups_stored(self, seconds: Sequence[float]) -> None:
        for each in seconds:
            self._stored.observe(each)


class LivePromptsObserver:
    """The live-prompt service's observer (telecrm.live_prompts.LiveObserver)."""

    def __init__(self, metrics: Metrics) -> None:
        self._lag = metrics.live_lag

    def lag_observed(self, seconds: float) -> None:
        self._lag.observe(max(0.0, seconds))


class Metrics:
    """The registry and every metric of one app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.ami_events = Counter(
            "telecrm_ami_events_received", "AMI events received and processed, per PBX",
            ["pbx"], registry=r)
        self.ami_event_lag = Histogram(
            "telecrm_ami_event_lag_seconds",
            "From the event's Asterisk Timestamp to its processing (PBXs with "
            "timestampevents=yes only)", ["pbx"], buckets=FAST_BUCKETS, registry=r)
        self.hangup_to_row = Histogram(
            "telecrm_call_hangup_to_row_seconds",
            "From processing the event that ended a call to its row being committed",
            ["pbx"], buckets=FAST_BUCKETS, registry=r)
        self.http_latency = Histogram(
            "telecrm_http_request_duration_seconds",
            "HTTP request time per route (its canonical path), method and status class",
            ["route", "method", "status"], buckets=HTTP_BUCKETS, registry=r)
        self.live_lag = Histogram(
            "telecrm_live_prompt_lag_seconds",
            "How far live recognition runs behind a call's audio, after each chunk",
            buckets=LIVE_LAG_BUCKETS, registry=r)
        self.prompts: LivePromptsView | None = None
        r.register(_LivePromptFigures(self))
        self.backlog = Backlog()
        self.queue = QueueFigures()
        self.backlog_read_at: float | None = None
        self._refreshing = asyncio.Lock()
        self._live: _LiveFigures | None = None

    def watch(self, listeners: Mapping[str, Listener], streams: Sized) -> None:
        """Read connection state, calls in progress and subscribers from these at scrape
        time (``listeners`` and ``streams`` are the app's own, read as they change)."""
        if self._live is None:
            self._live = _LiveFigures(self, listeners, streams)
            self.registry.register(self._live)
        else:
            self._live.listeners, self._live.streams = listeners, streams
        self.observe(listeners)

    def observe(self, listeners: Mapping[str, Listener]) -> None:
        """Give every listener not yet observed its PBX's observer."""
        for name, listener in listeners.items():
            if not isinstance(getattr(listener, "observer", None), PbxObserver):
                listener.observer = PbxObserver(self, name)

    def watch_live(self, prompts: LivePromptsView | None) -> None:
        """Read the live-prompt service's counters at scrape time and time its lag (None:
        live prompts are off in this process, the figures stay at zero)."""
        self.prompts = prompts
        if prompts is not None and not isinstance(prompts.observer, LivePromptsObserver):
            prompts.observer = LivePromptsObserver(self)

    async def refresh(self, read_backlog: Callable[[], Awaitable[Backlog]],
                      queues: Sequence[JobQueueView]) -> None:
        """Re-read the backlogs unless read within ``BACKLOG_TTL_SECONDS``; a database or
        Redis that is away leaves the last figures (and a warning in the log)."""
        async with self._refreshing:
            now = time.monotonic()
            if self.backlog_read_at is not None and now - self.backlog_read_at < \
                    BACKLOG_TTL_SECONDS:
                return
            try:
                self.backlog = await read_backlog()
                waiting = failed = 0
                for queue in queues:
                    waiting += await queue.waiting()
                    failed += await queue.failed_count()
                self.queue = QueueFigures(waiting, failed)
            except Exception as exc:  # a scrape must still answer with what it has
                log.warning("metrics: could not read the backlogs: %s", exc)
            self.backlog_read_at = now


class _LiveFigures(Collector):
    """The gauges read at scrape time from this process's objects and the cached backlog."""

    def __init__(self, metrics: Metrics, listeners: Mapping[str, Listener],
                 streams: Sized) -> None:
        self.metrics = metrics
        self.listeners = listeners
        self.streams = streams

    def collect(self) -> Iterator[Metric]:
        connected = GaugeMetricFamily("telecrm_ami_connected",
                                      "1 while the PBX's AMI login is up, else 0", labels=["pbx"])
        calls = GaugeMetricFamily("telecrm_calls_in_progress",
                                  "Calls the PBX's call tracker holds now", labels=["pbx"])
        for name, listener in dict(self.listeners).items():
            connected.add_metric([name], 1.0 if listener.session.connected.is_set() else 0.0)
            calls.add_metric([name], float(len(listener.tracker.live_calls())))
        yield connected
        yield calls
        yield GaugeMetricFamily("telecrm_event_stream_subscribers",
                                "Open live-event streams (SSE) served by this process",
                                value=float(len(self.streams)))
        backlog, queue = self.metrics.backlog, self.metrics.queue
        yield GaugeMetricFamily("telecrm_recordings_waiting",
                                "Ended calls whose recordings are not yet finalized",
                                value=float(backlog.recordings_waiting))
        yield GaugeMetricFamily("telecrm_recordings_failed",
                                "Calls whose recordings could not be finalized",
                                value=float(backlog.recordings_failed))
        yield GaugeMetricFamily("telecrm_transcription_backlog",
                                "Ended calls with recordings and no transcript yet "
                                "(failed ones not counted)",
                                value=float(max(0, backlog.untranscribed - queue.failed)))
        yield GaugeMetricFamily("telecrm_transcription_failed",
                                "Transcription jobs that failed for good",
                                value=float(queue.failed))
        depth = GaugeMetricFamily("telecrm_job_queue_depth",
                                  "Jobs waiting for a worker, per queue", labels=["queue"])
        depth.add_metric(["recordings"], float(backlog.recordings_waiting))
        depth.add_metric(["transcription"], float(queue.waiting))
        yield depth


class _LivePromptFigures(Collector):
    """Live prompts' figures read at scrape time from the service's own counters."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        p = self.metrics.prompts
        yield GaugeMetricFamily("telecrm_live_streams_open",
                                "Call sides streaming to live prompts now",
                                value=float(p.streams_open if p else 0))
        counters = (
            ("telecrm_live_taps_started", "Taps (AMI Originate to AudioSocket) the PBX took",
             p.taps_started if p else 0),
            ("telecrm_live_taps_failed", "Taps the PBX refused: that side goes unprompted",
             p.taps_failed if p else 0),
            ("telecrm_live_streams_refused", "AudioSocket streams of no known tap, dropped",
             p.streams_refused if p else 0),
            ("telecrm_live_audio_dropped_seconds",
             "Audio dropped unheard because recognition fell behind",
             p.dropped_seconds if p else 0.0),
            ("telecrm_live_prompt_events", "Live prompt events published on the bus",
             p.published if p else 0),
            ("telecrm_live_pause_endpoints",
             "Utterances ended by a pause in the speech, not by Vosk's own rules",
             p.endpoints if p else 0),
        )
        for name, documentation, figure in counters:
            yield CounterMetricFamily(name, documentation, value=float(figure))
