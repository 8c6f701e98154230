"""Events per second from AMI bytes to committed call rows, against its ceilings.

In one run, on the same capture (see make_capture.py):
  parse     FrameParser alone, every event made a dict: the ceiling (issue 21)
  parse, tracker's filter   FrameParser(TRACKER_EVENTS): what replay parses (noise is
                passed over before it becomes dicts)
  track     CallTracker alone on pre-parsed events (no I/O)
  parse+track   what ``ami-replay`` does before the database
  cacofonisk    the peer library's EventHandler on the same pre-parsed events,
                fed as its FileRunner feeds it (its own event filter, no network)
  e2e sqlite / e2e postgresql   ``pbx_bridge.replay.replay`` + ``CallStore`` into a
                fresh migrated database each repeat (rows committed when it returns;
                the databases are made before the clock starts)

    .venv/bin/python bench/replay_throughput.py [--capture FILE] [--repeats 3] [--no-pg]

Target (issue 21): end to end >= 0.5 of "parse" measured in the same run, on SQLite and
PostgreSQL (and, as before, >= 20,000 events/s).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    DEFAULT_CAPTURE,
    Databases,
    abest_of,
    best_of,
    call_store,
    ensure_capture,
    parse_all,
    quiet_logs,
)
from pbx_bridge.feed import TRACKER_EVENTS, TrackerFeed
from pbx_bridge.frames import EventFilter, FrameParser
from pbx_bridge.replay import replay
from pbx_bridge.tracker import CallTracker

TARGET = 20_000
TARGET_RATIO = 0.5  # of parsing alone, same run


def parse_only(data: bytes, events: EventFilter | None = None) -> int:
    parser = FrameParser(events)
    n = 0
    for i in range(0, len(data), 1 << 16):
        n += len(parser.feed(data[i:i + (1 << 16)]))
    return n + len(parser.close())


def track_only(events: list[dict[str, str]]) -> int:
    feed = TrackerFeed(CallTracker())
    ended = 0
    for event in events:
        for fact in feed.feed(event):
            ended += fact.kind == "call_ended"
    return ended


def parse_and_track(data: bytes) -> int:
    return track_only(parse_all(data))


def cacofonisk_only(events: list[dict[str, str]]) -> int:
    from cacofonisk.handlers import EventHandler
    from cacofonisk.reporters import BaseReporter

    class Counting(BaseReporter):
        def __init__(self) -> None:
            self.hangups = 0

        def on_hangup(self, *args: object, **kwargs: object) -> None:
            self.hangups += 1

    reporter = Counting()
    handler = EventHandler(reporter=reporter)
    interesting = handler.event_handlers().keys()
    errors = 0
    for event in events:  # FileRunner.run's loop, plus surviving its own KeyErrors
        if event["Event"] in interesting:
            try:
                handler.on_event(event)
            except Exception:  # e.g. AttendedTransfer without TransferTargetCallerIDNum
                errors += 1
    return reporter.hangups, errors


async def end_to_end(path: Path, url: str) -> tuple[int, int]:
    async with call_store(url) as (store, _engine):
        stats = await replay([path], store)
    return stats.events, stats.calls_ended


async def count_rows(url: str) -> int:
    from sqlalchemy import func, select

    from crm_core.calls.models import Call

    async with call_store(url) as (store, _engine), store.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Call)) or 0)


def line(name: str, events: int, best: float, median: float, ref: float | None,
         ref_name: str) -> str:
    rate = events / best
    ratio = f"  x{rate / ref:.2f} vs {ref_name}" if ref else ""
    return (f"{name:<18} {rate:>11,.0f} ev/s (best)  {events / median:>11,.0f} ev/s (median)"
            f"{ratio}")


async def main_async(args: argparse.Namespace) -> int:
    path = ensure_capture(args.capture)
    data = path.read_bytes()
    events = parse_all(data)
    n = len(events)
    print(f"capture {path}: {n} events, {len(data) / 1e6:.1f} MB; repeats={args.repeats}")
    with quiet_logs():
        p_best, p_med, _ = best_of(args.repeats, lambda: parse_only(data))
        f_best, f_med, _ = best_of(args.repeats, lambda: parse_only(data, TRACKER_EVENTS))
        t_best, t_med, ended = best_of(args.repeats, lambda: track_only(events))
        pt_best, pt_med, _ = best_of(args.repeats, lambda: parse_and_track(data))
        c_best, c_med, (c_hang, c_err) = best_of(args.repeats, lambda: cacofonisk_only(events))
    c_rate = n / c_best
    print(line("parse only", n, p_best, p_med, None, ""))
    print(line("parse, filtered", n, f_best, f_med, n / p_best, "parse ceiling"))
    print(line("track only", n, t_best, t_med, c_rate, "cacofonisk"))
    print(line("parse+track", n, pt_best, pt_med, n / p_best, "parse ceiling"))
    print(line("cacofonisk", n, c_best, c_med, None, "")
          + f"  (its hangup hooks: {c_hang}, events it raised on: {c_err};"
          f" our ended calls: {ended})")
    backends = ["sqlite"] + ([] if args.no_pg else ["postgresql"])
    with Databases(want_pg=not args.no_pg) as dbs, quiet_logs():
        for backend in backends:
            # Made before the clock starts: the migrations (or PostgreSQL's CREATE DATABASE
            # ... TEMPLATE) are not part of replaying, and the parse figures carry nothing
            # like them.
            try:
                urls = [await dbs.fresh(backend) for _ in range(args.repeats)]
            except RuntimeError as exc:
                print(f"e2e {backend}: skipped ({exc})")
                continue
            unused = iter(urls)

            async def once(unused: Iterator[str] = unused) -> tuple[int, int]:
                return await end_to_end(path, next(unused))

            best, med, (ev, calls) = await abest_of(args.repeats, once)
            rows = await count_rows(urls[-1])
            ratio, med_ratio = (ev / best) / (n / p_best), (ev / med) / (n / p_med)
            print(line(f"e2e {backend}", ev, best, med, c_rate, "cacofonisk")
                  + f"  x{(ev / best) / (n / pt_best):.2f} vs parse+track"
                  + f"  rows={rows} ended={calls}")
            print(f"    target >= {TARGET_RATIO} of parse (same run): best x{ratio:.2f} "
                  + ("MET" if ratio >= TARGET_RATIO else "MISSED")
                  + f", median x{med_ratio:.2f} "
                  + ("MET" if med_ratio >= TARGET_RATIO else "MISSED")
                  + f"; >= {TARGET:,} ev/s: " + ("MET" if ev / best >= TARGET else "MISSED"))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capture", type=Path, default=DEFAULT_CAPTURE)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    tempfile.tempdir = tempfile.gettempdir()
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
