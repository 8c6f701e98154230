"""Hangup-to-visible latency through the real Listener, at a paced 1,000 events/s.

A stand-in AMI server (a thread with its own event loop, the FaultyAmiServer
pattern of tests/test_listener.py but sending a real capture) streams events at
a steady rate over TCP to the real ``Listener`` (socket, framing, queue, tracker,
``CallStore``). For every ``Hangup`` that ends a call it notes when the bytes left
the server; a separate reader connection polls the database every 2 ms and notes
when that call's row shows ``ended_at``. Latency = seen - sent. Baseline in the
same run: the same stream into a sink that only collects facts (socket + tracker,
no database), measured when the ending fact reaches the sink.

    .venv/bin/python bench/hangup_latency.py [--seconds 30] [--rate 1000] [--no-pg]

Target: p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select

from bench._common import DEFAULT_CAPTURE, Databases, ensure_capture, quiet_logs
from crm_core.db import create_engine, session_factory
from crm_core.models import Call
from pbx_bridge.ami import AmiSettings
from pbx_bridge.frames import FrameParser
from pbx_bridge.pipeline import Listener
from pbx_bridge.store import CallStore
from pbx_bridge.tracker import CallTracker, Fact

POLL_S = 0.002


def prepare(path: Path, count: int) -> tuple[list[bytes], dict[int, str]]:
    """The first ``count`` event frames as bytes, and which of them end which call."""
    parser = FrameParser()
    frames = parser.feed(path.read_bytes()) + parser.close()
    frames = [f for f in frames if f.is_event][:count]
    tracker = CallTracker()
    ending: dict[int, str] = {}
    wire = []
    for i, frame in enumerate(frames):
        for fact in tracker.feed(frame.headers):
            if fact.kind == "call_ended":
                ending[i] = fact.call.linkedid
        lines = [f"{k}: {v}\r\n" for k, v in frame.headers.items()]
        lines += [f"{k}: {v}\r\n" for k, vs in frame.repeated.items() for v in vs]
        wire.append(("".join(lines) + "\r\n").encode())
    return wire, ending


class PacedAmiServer:
    """Speaks just enough AMI (banner, login, action responses) and paces a capture."""

    def __init__(self, frames: list[bytes], ending: dict[int, str], rate: float) -> None:
        self.frames, self.ending, self.rate = frames, ending, rate
        self.sent_at: dict[str, float] = {}
        self.port = 0
        self.done = threading.Event()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def __enter__(self) -> PacedAmiServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _main(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        server = loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        loop.run_forever()
        server.close()
        loop.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        answering = asyncio.create_task(self._answer(reader, writer))
        await asyncio.sleep(0.5)  # login and the reconnect listing go first
        interval = 1 / self.rate
        start = time.perf_counter()
        for i, frame in enumerate(self.frames):
            delay = start + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if i in self.ending:
                self.sent_at[self.ending[i]] = time.perf_counter()
            writer.write(frame)
        await writer.drain()
        self.done.set()
        await answering

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer every action with Success (no channel listing: nothing to reconcile)."""
        with contextlib.suppress(Exception):
            while True:
                data = await reader.readuntil(b"\r\n\r\n")
                action_id = next((line.split(b": ", 1)[1] for line in data.split(b"\r\n")
                                  if line.lower().startswith(b"actionid: ")), b"")
                writer.write(b"Response: Success\r\nActionID: " + action_id +
                             b"\r\nMessage: ok\r\n\r\n")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(frames: list[bytes], ending: dict[int, str], rate: float,
                  make_sink: Callable[[], Any], watch: Callable[[set[str]], Any] | None,
                  ) -> tuple[list[float], int]:
    """Latencies (ms) for the calls ended by the stream, and how many were never seen."""
    seen_at: dict[str, float] = {}
    sink = make_sink(seen_at)
    with PacedAmiServer(frames, ending, rate) as server:
        settings = AmiSettings(port=server.port, secret="x", ping_interval=5, ping_timeout=5)
        listener = Listener(settings, sink)
        task = asyncio.create_task(listener.run())
        stop = threading.Event()
        # The reader runs in its own thread and loop, as a web worker would.
        watcher = threading.Thread(target=lambda: asyncio.run(watch(seen_at, server, stop)),
                                   daemon=True) if watch else None
        if watcher is not None:
            watcher.start()
        await asyncio.get_running_loop().run_in_executor(None, server.done.wait)
        await asyncio.sleep(1.0)
        await listener.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        stop.set()
        if watcher is not None:
            watcher.join(5)
        sent = server.sent_at
    lat = [(seen_at[k] - sent[k]) * 1000 for k in sent if k in seen_at]
    return lat, len(sent) - len(lat)


def facts_sink(seen_at: dict[str, float]) -> Any:
    async def sink(facts: list[Fact]) -> None:
        now = time.perf_counter()
        for fact in facts:
            if fact.kind == "call_ended":
                seen_at.setdefault(fact.call.linkedid, now)
    return sink


def db_watch(url: str) -> Callable[..., Any]:
    async def watch(seen_at: dict[str, float], server: PacedAmiServer,
                    stop: threading.Event) -> None:
        engine = create_engine(url)
        sessions = session_factory(engine)
        try:
            while not stop.is_set():
                pending = set(server.sent_at) - set(seen_at)
                if pending:
                    async with sessions() as session:
                        rows = await session.scalars(select(Call.linkedid).where(
                            Call.linkedid.in_(pending), Call.ended_at.is_not(None)))
                        now = time.perf_counter()
                        for linkedid in rows:
                            seen_at[linkedid] = now
                await asyncio.sleep(POLL_S)
        finally:
            await engine.dispose()
    return watch


def report(name: str, lat: list[float], missing: int, base_p99: float | None) -> None:
    if not lat:
        print(f"{name:<22} no calls seen ({missing} missing)")
        return
    p50, p99 = statistics.median(lat), percentile(lat, 0.99)
    ratio = f"  p99 x{p99 / base_p99:.1f} vs no-db" if base_p99 else ""
    verdict = "MET" if p99 < 100 else "MISSED"
    print(f"{name:<22} n={len(lat):>4}  p50={p50:7.1f} ms  p99={p99:7.1f} ms  "
          f"max={max(lat):7.1f} ms  missing={missing}{ratio}  target p99<100 ms: {verdict}")


async def main_async(args: argparse.Namespace) -> int:
    path = ensure_capture(args.capture)
    frames, ending = prepare(path, int(args.seconds * args.rate))
    print(f"{len(frames)} events at {args.rate:.0f}/s ({len(frames) / args.rate:.0f} s), "
          f"{len(ending)} calls ended by a Hangup")
    with quiet_logs():
        lat, missing = await measure(frames, ending, args.rate, facts_sink, None)
        report("socket+tracker (no db)", lat, missing, None)
        base_p99 = percentile(lat, 0.99) if lat else None
        backends = ["sqlite"] + ([] if args.no_pg else ["postgresql"])
        with Databases(want_pg=not args.no_pg) as dbs:
            for backend in backends:
                try:
                    url = await dbs.fresh(backend)
                except RuntimeError as exc:
                    print(f"{backend}: skipped ({exc})")
                    continue
                engine = create_engine(url)
                store = CallStore(session_factory(engine, writer=True))
                try:
                    lat, missing = await measure(frames, ending, args.rate,
                                                 lambda _seen, s=store: s, db_watch(url))
                finally:
                    await engine.dispose()
                report(f"{backend}", lat, missing, base_p99)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--capture", type=Path, default=DEFAULT_CAPTURE)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--no-pg", action="store_true")
    return asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
