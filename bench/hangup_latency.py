"""Hangup-to-visible latency through the real Listener, at a paced 1,000 events/s.

A stand-in AMI server (its own process, as Asterisk is; the FaultyAmiServer pattern
of tests/calls/test_listener.py but sending a real capture) streams events at
a steady rate over TCP to the real ``Listener`` (socket, framing, queue, tracker,
``CallStore``). For every ``Hangup`` that ends a call it notes when the bytes left
the server; a separate reader (its own process by default, ``--reader thread``
for a thread of the listener's process) polls the database every 2 ms and notes
when that call's row shows ``ended_at``. Latency = seen - sent. Baseline in the
same run: the same stream into a sink that only collects facts (socket + tracker,
no database), measured when the ending fact reaches the sink.

    .venv/bin/python bench/hangup_latency.py [--calls 1000] [--rate 1000] [--no-pg]
        [--reader process|thread] [--repeats 3]

Enough calls for a real p99 (issue 21): the stream runs until ``--calls`` calls have
ended (1,000 by default, about 3 minutes at 1,000 events/s); past the end of the capture
it starts again with every id and time moved on, so each pass is new calls. Every run
is reported (all its samples, and each run's p99); the headline is the pooled samples
of all runs, never the best run.

Target (issue 21): p99 < 25 ms on SQLite and PostgreSQL; the no-database ceiling of
the same run is printed beside it.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import bindparam, select

from bench._common import DEFAULT_CAPTURE, Databases, ensure_capture, quiet_logs
from crm_core.calls.models import Call
from crm_core.db import create_engine, session_factory
from pbx_bridge.ami import AmiSettings
from pbx_bridge.frames import FrameParser
from pbx_bridge.pipeline import Listener
from pbx_bridge.store import CallStore
from pbx_bridge.tracker import CallTracker, Fact
from telecrm.wiring import call_hooks

HOOKS = call_hooks()  # what the product does with each written call

POLL_S = 0.002
TARGET_P99_MS = 25.0
_ID_KEYS = ("Uniqueid", "Linkedid")  # any header ending so holds an epoch.sequence id


def _shifted(headers: dict[str, str], offset: int) -> dict[str, str]:
    """A frame's headers with its ids and time ``offset`` seconds later (a new call)."""
    if not offset:
        return headers
    out = dict(headers)
    for key, value in headers.items():
        if key.endswith(_ID_KEYS) and value:
            head, dot, tail = value.rpartition("-")[2].partition(".")
            if dot and head.isdigit():
                prefix = value[:len(value) - len(head) - len(dot) - len(tail)]
                out[key] = f"{prefix}{int(head) + offset}.{tail}"
        elif key == "Timestamp":
            with contextlib.suppress(ValueError):
                out[key] = f"{float(value) + offset:.6f}"
    return out


def prepare(path: Path, calls: int) -> tuple[list[bytes], dict[int, str]]:
    """Event frames as bytes until ``calls`` calls have ended, and which frame ends which.

    Past the end of the capture it is sent again with ids and times moved on (each pass
    a day later), so the tracker and the database see new calls every pass.
    """
    parser = FrameParser()
    frames = parser.feed(path.read_bytes()) + parser.close()
    events = [f.headers for f in frames if f.is_event]
    tracker = CallTracker()
    ending: dict[int, str] = {}
    wire: list[bytes] = []
    passes = 0
    while len(ending) < calls:
        offset = passes * 86_400
        for headers in events:
            headers = _shifted(headers, offset)
            for fact in tracker.feed(headers):
                if fact.kind == "call_ended":
                    ending[len(wire)] = fact.call.linkedid
            wire.append(("".join(f"{k}: {v}\r\n" for k, v in headers.items())
                         + "\r\n").encode())
            if len(ending) >= calls:
                break
        passes += 1
        if passes > 100:
            raise SystemExit(f"{path}: no calls end in this capture")
    return wire, ending


class PacedAmiServer:
    """Speaks just enough AMI (banner, login, action responses) and paces a capture.

    In its own process, as Asterisk is: as a thread of the listener's process it took a
    quarter of a core of the same interpreter, and every hand-over between the writer
    and its database thread waited for that interpreter lock as well.
    """

    def __init__(self, frames: list[bytes], ending: dict[int, str], rate: float) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self._out = ctx.Queue()
        self.done = ctx.Event()
        self._stop = ctx.Event()
        self._proc = ctx.Process(target=_serve, daemon=True, args=(
            frames, ending, rate, self._out, self.done, self._stop))
        self.port = 0
        self.sent_at: dict[str, float] = {}

    def __enter__(self) -> PacedAmiServer:
        self._proc.start()
        self.port = self._out.get(timeout=30)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            self.sent_at = self._out.get(timeout=30)
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()


def _serve(frames: list[bytes], ending: dict[int, str], rate: float, out: Any, done: Any,
           stop: Any) -> None:
    """The server process: the port first, then, once stopped, when each ending frame left."""
    sent_at: dict[str, float] = {}

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer every action with Success (no channel listing: nothing to reconcile)."""
        with contextlib.suppress(Exception):
            while True:
                data = await reader.readuntil(b"\r\n\r\n")
                action_id = next((line.split(b": ", 1)[1] for line in data.split(b"\r\n")
                                  if line.lower().startswith(b"actionid: ")), b"")
                writer.write(b"Response: Success\r\nActionID: " + action_id +
                             b"\r\nMessage: ok\r\n\r\n")

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        answering = asyncio.create_task(answer(reader, writer))
        await asyncio.sleep(0.5)  # login and the reconnect listing go first
        interval = 1 / rate
        start = time.perf_counter()
        for i, frame in enumerate(frames):
            delay = start + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if i in ending:
                sent_at[ending[i]] = time.perf_counter()
            writer.write(frame)
        await writer.drain()
        done.set()
        await answering

    async def main() -> None:
        server = await asyncio.start_server(client, "127.0.0.1", 0)
        out.put(server.sockets[0].getsockname()[1])
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, stop.wait)
        server.close()

    asyncio.run(main())
    out.put(sent_at)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(frames: list[bytes], ending: dict[int, str], rate: float,
                  make_sink: Callable[[], Any], watch: Any, reader: str = "process",
                  ) -> tuple[list[float], int]:
    """Latencies (ms) for the calls ended by the stream, and how many were never seen."""
    seen_at: dict[str, float] = {}
    sink = make_sink(seen_at)
    with PacedAmiServer(frames, ending, rate) as server:
        settings = AmiSettings(port=server.port, secret="x", ping_interval=5, ping_timeout=5)
        listener = Listener(settings, sink)
        task = asyncio.create_task(listener.run())
        stop = threading.Event()
        watcher: Any = None
        if watch is not None and reader == "thread":
            # The reader in a thread of the listener's process (GIL shared with it).
            watcher = threading.Thread(target=lambda: asyncio.run(watch(seen_at, stop)),
                                       daemon=True)
            watcher.start()
        elif watch is not None:
            # The reader in its own process, as a browser's request served elsewhere.
            watcher = ReaderProcess(watch)
        await asyncio.get_running_loop().run_in_executor(None, server.done.wait)
        await asyncio.sleep(1.0)
        await listener.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        stop.set()
        if isinstance(watcher, threading.Thread):
            watcher.join(5)
        elif watcher is not None:
            seen_at.update(watcher.finish())
    sent = server.sent_at  # handed over when the server process stops
    lat = [(seen_at[k] - sent[k]) * 1000 for k in sent if k in seen_at]
    return lat, len(sent) - len(lat)


def _poll_ended(url: str, out: Any, stop: Any) -> None:
    """Reader process: first moment (CLOCK_MONOTONIC, as perf_counter) each call shows ended.

    The instrument must cost little beside what it measures, on the same two cores: one
    connection held open, one prepared query, only the rows written in the last second.
    Through the ORM, a session per poll and a NOT IN over every call seen so far (up to
    1,000 ids, 500 times a second) cost as much processor time as the listener itself,
    and added its own delay to every figure (bench/RESULTS.md).
    """
    if url.startswith("sqlite"):
        out.put(_poll_sqlite(url, stop))
    else:
        out.put(asyncio.run(_poll_postgresql(url, stop)))


def _poll_sqlite(url: str, stop: Any) -> dict[str, float]:
    from sqlalchemy import create_engine as create_sync_engine

    engine = create_sync_engine(url.replace("+aiosqlite", ""))
    query = select(Call.linkedid).where(Call.ended_at.is_not(None),
                                        Call.updated_at >= bindparam("since"))
    seen: dict[str, float] = {}
    since = datetime.now(UTC) - timedelta(seconds=1)
    try:
        with engine.connect() as connection:
            while not stop.is_set():
                began = datetime.now(UTC)
                rows = connection.execute(query, {"since": since}).scalars().all()
                connection.rollback()  # no snapshot kept: the next poll sees new commits
                now = time.perf_counter()
                for linkedid in rows:
                    seen.setdefault(linkedid, now)
                # a row stamped before this poll began may be committed during it
                since = began - timedelta(seconds=1)
                time.sleep(POLL_S)
    finally:
        engine.dispose()
    return seen


async def _poll_postgresql(url: str, stop: Any) -> dict[str, float]:
    import asyncpg

    from telecrm.election import asyncpg_dsn

    connection = await asyncpg.connect(asyncpg_dsn(url))
    seen: dict[str, float] = {}
    since = datetime.now(UTC) - timedelta(seconds=1)
    try:
        query = await connection.prepare(
            "SELECT linkedid FROM calls WHERE ended_at IS NOT NULL AND updated_at >= $1")
        while not stop.is_set():
            began = datetime.now(UTC)
            rows = await query.fetch(since)
            now = time.perf_counter()
            for row in rows:
                seen.setdefault(row["linkedid"], now)
            since = began - timedelta(seconds=1)
            await asyncio.sleep(POLL_S)
    finally:
        await connection.close()
    return seen


class ReaderProcess:
    """``db_watch`` in a separate process: its polling must not slow the listener it measures."""

    def __init__(self, url: str) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self._out = ctx.Queue()
        self._stop = ctx.Event()
        self._proc = ctx.Process(target=_poll_ended, args=(url, self._out, self._stop),
                                 daemon=True)
        self._proc.start()
        time.sleep(1.5)  # imports and first connection before the stream starts

    def finish(self) -> dict[str, float]:
        self._stop.set()
        seen: dict[str, float] = self._out.get(timeout=30)
        self._proc.join(10)
        return seen


def facts_sink(seen_at: dict[str, float]) -> Any:
    async def sink(facts: list[Fact]) -> None:
        now = time.perf_counter()
        for fact in facts:
            if fact.kind == "call_ended":
                seen_at.setdefault(fact.call.linkedid, now)
    return sink


def db_watch(url: str) -> Callable[..., Any]:
    """The reader as a thread of the listener's process (``--reader thread``), sharing its
    interpreter lock: the calls that show ended, polled as the reader process polls."""
    async def watch(seen_at: dict[str, float], stop: threading.Event) -> None:
        engine = create_engine(url)
        query = select(Call.linkedid).where(Call.ended_at.is_not(None),
                                            Call.updated_at >= bindparam("since"))
        since = datetime.now(UTC) - timedelta(seconds=1)
        try:
            async with engine.connect() as connection:
                while not stop.is_set():
                    began = datetime.now(UTC)
                    rows = (await connection.execute(query, {"since": since})).scalars().all()
                    await connection.rollback()
                    now = time.perf_counter()
                    for linkedid in rows:
                        seen_at.setdefault(linkedid, now)
                    since = began - timedelta(seconds=1)
                    await asyncio.sleep(POLL_S)
        finally:
            await engine.dispose()
    return watch


def report(name: str, runs: list[tuple[list[float], int]], base_p99: float | None) -> float:
    """Print every run, then all runs' samples pooled (the headline); returns that p99."""
    pooled = [ms for lat, _ in runs for ms in lat]
    for i, (lat, missing) in enumerate(runs, 1):
        if lat:
            print(f"  {name} run {i}: n={len(lat)}  p50={statistics.median(lat):.1f} ms  "
                  f"p99={percentile(lat, 0.99):.1f} ms  max={max(lat):.1f} ms  "
                  f"missing={missing}")
        else:
            print(f"  {name} run {i}: no calls seen (missing={missing})")
    if not pooled:
        print(f"{name:<28} no calls seen")
        return float("nan")
    p50, p99 = statistics.median(pooled), percentile(pooled, 0.99)
    ratio = f"  p99 x{p99 / base_p99:.1f} of the no-db ceiling" if base_p99 else ""
    target = "" if base_p99 is None else (
        f"  target p99<{TARGET_P99_MS:.0f} ms: " + ("MET" if p99 < TARGET_P99_MS else "MISSED"))
    print(f"{name:<28} all {len(runs)} runs: n={len(pooled):>5}  p50={p50:7.1f} ms  "
          f"p99={p99:7.1f} ms  max={max(pooled):7.1f} ms  "
          f"missing={sum(m for _, m in runs)}{ratio}{target}")
    return p99


async def main_async(args: argparse.Namespace) -> int:
    path = ensure_capture(args.capture)
    frames, ending = prepare(path, args.calls)
    print(f"{len(frames)} events at {args.rate:.0f}/s ({len(frames) / args.rate:.0f} s), "
          f"{len(ending)} calls ended by a Hangup; {args.repeats} runs each, all reported")
    with quiet_logs():
        runs = [await measure(frames, ending, args.rate, facts_sink, None)
                for _ in range(args.repeats)]
        base_p99 = report("socket+tracker (no db)", runs, None)
        backends = ["sqlite"] + ([] if args.no_pg else ["postgresql"])
        with Databases(want_pg=not args.no_pg) as dbs:
            for backend in backends:
                runs = []
                for _ in range(args.repeats):
                    try:
                        url = await dbs.fresh(backend)
                    except RuntimeError as exc:
                        print(f"{backend}: skipped ({exc})")
                        break
                    engine = create_engine(url)
                    store = CallStore(session_factory(engine, writer=True), HOOKS)
                    watch = url if args.reader == "process" else db_watch(url)
                    try:
                        runs.append(await measure(frames, ending, args.rate,
                                                  lambda _seen, s=store: s, watch, args.reader))
                    finally:
                        await engine.dispose()
                if runs:
                    report(f"{backend} ({args.reader} reader)", runs, base_p99)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--capture", type=Path, default=DEFAULT_CAPTURE)
    ap.add_argument("--calls", type=int, default=1000,
                    help="calls ended per run (the capture is sent again, shifted, as needed)")
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--reader", choices=("process", "thread"), default="process",
                    help="poll the database from a separate process (default) or from a "
                         "thread of the listener's process (measures GIL contention too)")
    return asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
