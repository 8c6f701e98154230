"""Live prompts (issue 19): each side of an answered call streams to the CRM, is recognised
as it goes, and the manager's card shows which stages of his client's script are done.

Three parts, each failing alone:

- :meth:`LivePrompts.tap_sink`, a fact sink after the call store: when a call is
  answered (or a new manager leg joins it) it sends one AMI ``Originate`` per side that
  is not tapped yet (:func:`pbx_bridge.actions.live_tap`: ChanSpy ``qoE`` on that channel
  into ``AudioSocket`` to us). A refused Originate costs that side's prompts, never the
  call;
- the AudioSocket server (:meth:`LivePrompts.serve`), a thin shell around the sans-IO
  parser :mod:`pbx_bridge.audiosocket`: a stream it does not know, or bad input, is
  dropped. Reading never waits for recognition: audio that piles up while the
  recognizers are busy is cut to the newest ``MAX_BACKLOG_SECONDS`` (counted in
  ``dropped_seconds``), so a slow CRM never pushes back on Asterisk;
- recognition in a small thread pool (one Vosk ``Model`` per process,
  :class:`speech.live.SideRecognizer` per side) and the script's progress
  (:class:`speech.live.LiveScript`), published on the bus as ``live_prompt`` events on
  the ``calls`` topic and the manager's ``ext:<extension>`` topic (the web layer lets
  through what each user may see, like call events).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.calls.models import Call
from crm_core.clients.models import Client
from crm_core.clock import utcnow
from crm_core.speech.scripts import script_for_call
from crm_core.stopping import stop_tasks
from crm_core.timestamps import isoformat
from pbx_bridge.actions import live_tap
from pbx_bridge.ami import AmiSession
from pbx_bridge.audiosocket import Audio, AudioSocketParser, Bad, PeerError, StreamId
from pbx_bridge.tracker import Fact, FactKind
from speech.live import LiveScript, SideRecognizer
from speech.model import LoadedModel, load_model, resolve_model_dir
from speech.script import KkpError, Script, parse_script_text
from telecrm.bus import Bus
from telecrm.live_events import CALLS_TOPIC, LIVE_PROMPT, extension_topic
from telecrm.settings import Settings, split_address

log = logging.getLogger(__name__)

CHUNK_SECONDS = 0.1  # audio handed to a recognizer at once (at least)
MAX_BACKLOG_SECONDS = 2.0  # older audio is dropped when recognition falls behind
TRANSCRIPT_EVERY = 0.3  # seconds between events that only change the running transcript
BYTES_PER_SECOND = 16000  # 8 kHz, 16-bit
SIDES = ("manager", "client")
FactSink = Callable[[list[Fact]], Awaitable[None]]


class LiveObserver(Protocol):
    """What the metrics take as it happens (telecrm.metrics); counters are read as kept."""

    def lag_observed(self, seconds: float) -> None: ...


@dataclass
class _Tap:
    call: _LiveCall
    side: str
    channel: str
    connected: bool = False


@dataclass
class _LiveCall:
    key: str  # the stored linkedid (pbx_key)
    pbx: str
    extension: str | None
    managers: list[str]
    direction: str
    queue: str | None
    call_id: int | None = None
    client_id: int | None = None
    client_name: str | None = None
    script: LiveScript | None = None
    sides: dict[str, SideRecognizer] = field(default_factory=dict)
    tapped: set[str] = field(default_factory=set)  # channels with a tap
    # when each side's audio began (its first frame): a second of the stream -> wall time
    started: dict[str, datetime] = field(default_factory=dict)
    recognised: dict[str, str] = field(default_factory=dict)  # stage id -> when matched (ISO)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # one per side: two streams of one side (a transfer's old and new manager leg, for a
    # moment) never feed its recognizer at once (Kaldi's recognizer is not thread-safe)
    side_locks: dict[str, threading.Lock] = field(default_factory=dict)
    published_at: float = 0.0
    ended: bool = False


class LivePrompts:
    """The live-prompt service of one ``telecrm serve`` process."""

    def __init__(self, settings: Settings, bus: Bus,
                 sessions: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.bus = bus
        self.sessions = sessions
        listen = split_address(settings.live_listen)
        if listen is None:
            raise ValueError(f"TELECRM_LIVE_LISTEN {settings.live_listen!r} is not host:port")
        self.listen = listen
        self.advertise = settings.live_advertise or settings.live_listen
        self.executor = ThreadPoolExecutor(max(1, settings.live_threads),
                                           thread_name_prefix="live-prompts")
        self.model: LoadedModel | None = None
        self._taps: dict[str, _Tap] = {}
        self._calls: dict[str, _LiveCall] = {}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        # counters (metrics, tests)
        self.taps_started = 0
        self.taps_failed = 0
        self.streams = 0
        self.streams_open = 0  # connected streams of known taps, now
        self.endpoints = 0  # utterances ended by a pause (speech.live.ENDPOINT_SECONDS)
        self.streams_refused = 0
        self.dropped_seconds = 0.0
        self.published = 0
        # how far recognition ran behind the audio (s), after each chunk: the newest 1000
        self.lags: deque[float] = deque(maxlen=1000)
        self.observer: LiveObserver | None = None  # the metrics' histogram of the lag

    # -- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen, and load the model in the background (audio before it is ready is dropped)."""
        host, port = self.listen
        self._server = await asyncio.start_server(self._handle, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.advertise.endswith(":0"):  # a test's ephemeral port
            self.advertise = f"{self.advertise.rpartition(':')[0]}:{self.port}"
        self._spawn(self._load_model())
        log.info("live prompts: listening on %s:%s", host, self.port)

    async def _load_model(self) -> None:
        try:
            path = resolve_model_dir(self.settings.vosk_model or None)
            self.model = await asyncio.get_running_loop().run_in_executor(
                self.executor, load_model, path)
        except Exception:
            log.warning("live prompts: no speech model; streams will be dropped", exc_info=True)

    def kill(self) -> None:
        """Stop listening and cut every stream at once, as a crashed CRM would (tests)."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        await stop_tasks(*self._tasks)
        self.executor.shutdown(wait=False, cancel_futures=True)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- taps: started from call facts ---------------------------------------------------

    def tap_sink(self, session: Callable[[], AmiSession | None]) -> FactSink:
        """A fact sink that taps answered calls through the AMI ``session()`` gives."""

        async def sink(facts: list[Fact]) -> None:
            for fact in facts:
                try:
                    self._on_fact(fact, session)
                except Exception:  # prompts are hints: never fail the pipeline
                    log.warning("live prompts: fact of %s not handled", fact.call.linkedid,
                                exc_info=True)

        return sink

    def _on_fact(self, fact: Fact, session: Callable[[], AmiSession | None]) -> None:
        data = fact.call
        if fact.kind is FactKind.ENDED:
            call = self._calls.pop(data.linkedid, None)
            if call is not None:
                call.ended = True
                for stream_id, tap in list(self._taps.items()):  # never connected
                    if tap.call is call:
                        del self._taps[stream_id]
                self._spawn(self._publish(call, force=True))
            return
        if fact.kind not in (FactKind.ANSWERED, FactKind.LEG_JOINED):
            return
        talking = [leg for leg in data.legs if leg.answered_at and leg.ended_at is None
                   and leg.channel and leg.role in SIDES]
        if not talking:
            return
        call = self._calls.get(data.linkedid)
        if call is None:
            call = self._calls[data.linkedid] = _LiveCall(
                key=data.linkedid, pbx=data.pbx or "", extension=None,
                managers=list(data.managers), direction=data.direction, queue=data.queue)
            self._spawn(self._identify(call))
        call.managers = list(data.managers)
        managers = [leg for leg in talking if leg.role == "manager"]
        if managers:
            call.extension = managers[-1].extension
        ami = session()
        if ami is None:
            return
        for leg in (*managers[-1:], *[leg for leg in talking if leg.role == "client"][:1]):
            if leg.channel in call.tapped:
                continue
            call.tapped.add(leg.channel)
            stream_id = str(uuid.uuid4())
            self._taps[stream_id] = _Tap(call, leg.role, leg.channel)
            self._spawn(self._start_tap(ami, stream_id, leg.channel))

    async def _start_tap(self, ami: AmiSession, stream_id: str, channel: str) -> None:
        try:
            await live_tap(ami, channel, stream_id, self.advertise)
            self.taps_started += 1
        except Exception as exc:
            self.taps_failed += 1
            self._taps.pop(stream_id, None)
            log.warning("live prompts: no tap on %s: %s", channel, exc)

    async def _identify(self, call: _LiveCall) -> None:
        """The stored call's id, client and the script in force for him (his deal's stage)."""
        try:
            async with self.sessions() as session:
                row = (await session.execute(
                    select(Call.id, Call.client_id, Client.name)
                    .outerjoin(Client, Client.id == Call.client_id)
                    .where(Call.linkedid == call.key))).first()
                if row is None:
                    return
                call.call_id, call.client_id, call.client_name = row[0], row[1], row[2]
                version = await script_for_call(session, row[0])
            if version is not None:
                script: Script = await asyncio.to_thread(parse_script_text, version.text)
                call.script = LiveScript(script)
                await self._publish(call, force=True)
        except KkpError:
            log.warning("live prompts: the script of call %s does not parse", call.key)
        except Exception:
            log.warning("live prompts: call %s not identified", call.key, exc_info=True)

    # -- the AudioSocket server ----------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = AudioSocketParser()
        tap: _Tap | None = None
        pending = bytearray()
        busy: asyncio.Future[bool] | None = None
        self._writers.add(writer)
        try:
            while not parser.closed:
                data = await reader.read(65536)
                if not data:
                    break
                for event in parser.feed(data):
                    if isinstance(event, StreamId):
                        tap = self._taps.pop(event.id, None)
                        if tap is None:
                            self.streams_refused += 1
                            log.warning("live prompts: unknown stream %s refused", event.id)
                            return
                        tap.connected = True
                        self.streams += 1
                        self.streams_open += 1
                    elif isinstance(event, Audio) and tap is not None:
                        if tap.side not in tap.call.started:
                            tap.call.started[tap.side] = utcnow() - timedelta(
                                seconds=len(event.pcm) / BYTES_PER_SECOND)
                        pending += event.pcm
                    elif isinstance(event, Bad | PeerError):
                        log.warning("live prompts: stream closed: %s", event)
                if tap is None or tap.call.ended or self.model is None:
                    pending.clear()
                    continue
                if len(pending) < CHUNK_SECONDS * BYTES_PER_SECOND or (
                        busy is not None and not busy.done()):
                    continue
                keep = int(MAX_BACKLOG_SECONDS * BYTES_PER_SECOND)
                if len(pending) > keep:
                    self.dropped_seconds += (len(pending) - keep) / BYTES_PER_SECOND
                    del pending[:len(pending) - keep]
                chunk = bytes(pending)
                pending.clear()
                busy = asyncio.ensure_future(self._recognize(tap, chunk))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if tap is not None:
                self.streams_open -= 1
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            if busy is not None:
                with contextlib.suppress(Exception):
                    await busy

    async def _recognize(self, tap: _Tap, chunk: bytes) -> bool:
        loop = asyncio.get_running_loop()
        try:
            changed = await loop.run_in_executor(self.executor, self._step, tap, chunk)
        except Exception:
            log.warning("live prompts: recognition failed on %s", tap.channel, exc_info=True)
            return False
        started = tap.call.started.get(tap.side)
        side = tap.call.sides.get(tap.side)
        if started is not None and side is not None:
            lag = (utcnow() - started).total_seconds() - side.seconds
            self.lags.append(lag)
            if self.observer is not None:
                try:
                    self.observer.lag_observed(lag)
                except Exception:  # metrics never cost a prompt
                    log.warning("live prompts: the observer failed", exc_info=True)
        if changed is not None:
            await self._publish(tap.call, force=changed)
        return True

    def _step(self, tap: _Tap, chunk: bytes) -> bool | None:
        """In a worker thread: feed one side; None when nothing changed, True when the
        script's view did, False when only the transcript did."""
        call = tap.call
        model = self.model
        if model is None:
            return None
        with call.lock:
            side_lock = call.side_locks.setdefault(tap.side, threading.Lock())
        with side_lock:
            side = call.sides.get(tap.side)
            if side is None:
                side = call.sides[tap.side] = SideRecognizer(model)
            before = side.endpoints
            accepted = side.accept(chunk)
            self.endpoints += side.endpoints - before
            if not accepted:
                return None
        with call.lock:
            if call.script is None:
                return False
            manager = call.sides["manager"].words() if "manager" in call.sides else []
            client = call.sides["client"].words() if "client" in call.sides else []
            return call.script.update(manager, client)

    # -- events ----------------------------------------------------------------------------

    def event(self, call: _LiveCall) -> dict[str, Any]:
        """The call's live state as a bus message (JSON-safe)."""
        with call.lock:
            progress = call.script.view() if call.script is not None else None
            lines = {side: list(rec.lines) for side, rec in call.sides.items()}
            partial = {side: rec.text() for side, rec in call.sides.items()}
        started = call.started.get("manager")
        for stage in (progress or {}).get("stages", ()):
            said = stage.pop("said_second", None)
            stage["said_at"] = (isoformat(started + timedelta(seconds=said))
                                if said is not None and started is not None else None)
            if stage["done"] and stage["id"] not in call.recognised:
                call.recognised[stage["id"]] = isoformat(utcnow())
            stage["recognised_at"] = call.recognised.get(stage["id"])
        return {
            "kind": LIVE_PROMPT, "linkedid": call.key, "at": isoformat(utcnow()),
            "extension": call.extension, "managers": list(call.managers), "rang": [],
            "direction": call.direction, "queue": call.queue, "call_id": call.call_id,
            "client_id": call.client_id, "client_name": call.client_name,
            "ended": call.ended, "progress": progress,
            "transcript": lines, "partial": partial,
        }

    async def _publish(self, call: _LiveCall, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now - call.published_at < TRANSCRIPT_EVERY:
            return
        call.published_at = now
        event = self.event(call)
        topics = [CALLS_TOPIC, *(extension_topic(e) for e in
                                 dict.fromkeys([call.extension, *call.managers]) if e)]
        try:
            for topic in topics:
                await self.bus.publish(topic, event)
            self.published += 1
        except Exception as exc:  # a bus outage costs prompts, never calls
            log.warning("live prompts: event of %s not published: %s", call.key, exc)

    def live_calls(self) -> list[dict[str, Any]]:
        """Every call being prompted now, as its latest event (the supervisors' board)."""
        return [self.event(call) for call in self._calls.values()]
