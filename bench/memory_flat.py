"""Memory over a long replay: flat means no growth per finished call.

Streams a synthetic capture of real calls (make_capture.stream, generated on the
fly so the capture itself takes no memory) through FrameParser + TrackerFeed and
prints RSS, tracemalloc's traced size and the tracker's live state at intervals.
Baseline in the same run: the same loop with the parser only, so the figure
shows what the tracker adds.

    .venv/bin/python bench/memory_flat.py [--events 1000000] [--every 100000]
"""

from __future__ import annotations

import argparse
import sys
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import make_capture
from bench._common import quiet_logs, rss_mib
from pbx_bridge.feed import TrackerFeed
from pbx_bridge.frames import FrameParser
from pbx_bridge.tracker import CallTracker


def _state(tracker: CallTracker | None) -> str:
    if tracker is None:
        return ""
    sizes = {k.strip("_"): len(v) for k, v in vars(tracker).items() if isinstance(v, dict)}
    return " ".join(f"{k}={v}" for k, v in sizes.items())


def replay(templates: list, events: int, every: int, with_tracker: bool,
           trace: bool) -> list[tuple]:
    parser = FrameParser()
    tracker = CallTracker() if with_tracker else None
    feed = TrackerFeed(tracker) if tracker is not None else None
    rows, seen, ended, mark = [], 0, 0, every
    if trace:
        tracemalloc.start()
    for chunk in make_capture.stream(templates, events, seed=7, calls_per_second=8.0):
        for i in range(0, len(chunk), 1 << 16):
            for frame in parser.feed(chunk[i:i + (1 << 16)]):
                if not frame.is_event:
                    continue
                seen += 1
                if feed is not None:
                    ended += sum(f.kind == "call_ended" for f in feed.feed(frame.headers))
                if seen >= mark:
                    mark += every
                    current = tracemalloc.get_traced_memory()[0] if trace else float("nan")
                    rows.append((seen, ended, rss_mib(), current / 2**20, _state(tracker)))
    if trace:
        tracemalloc.stop()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--every", type=int, default=100_000)
    ap.add_argument("--tracemalloc", action="store_true",
                    help="also trace Python allocations (about 5x slower)")
    args = ap.parse_args()
    templates = make_capture.load_templates(
        [p for p in make_capture.DEFAULT_SOURCES if p.exists()])
    with quiet_logs():
        base = replay(templates, args.events, args.every, False, args.tracemalloc)
        rows = replay(templates, args.events, args.every, True, args.tracemalloc)
    print(f"{'events':>9} {'ended':>6} {'RSS MiB':>8} {'parser-only RSS':>15} "
          f"{'traced MiB':>10} {'parser-only':>11}  tracker state")
    for (seen, ended, rss, traced, state), b in zip(rows, base, strict=False):
        print(f"{seen:>9} {ended:>6} {rss:>8.1f} {b[2]:>15.1f} {traced:>10.3f} {b[3]:>11.3f}"
              f"  {state}")
    first, last = rows[0], rows[-1]
    calls = last[1] - first[1]
    rss_growth = (last[2] - first[2]) * 2**20
    print(f"first vs last: RSS {first[2]:.1f} -> {last[2]:.1f} MiB over {calls} finished calls "
          f"({rss_growth / max(calls, 1):+.0f} bytes per finished call); parser-only baseline "
          f"RSS {base[0][2]:.1f} -> {base[-1][2]:.1f} MiB; tracked "
          f"{first[3] - base[0][3]:.3f} -> {last[3] - base[-1][3]:.3f} MiB above the baseline")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
