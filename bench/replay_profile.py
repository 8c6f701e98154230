"""Where ``ami-replay``'s time goes: cProfile around ``replay`` into a fresh database.

    python bench/replay_profile.py [--backend sqlite|postgresql] [--capture FILE] [--top 45]

Prints events/s under the profiler, then the top lines by cumulative and by own time
(the tables in bench/RESULTS.md, issue 21, come from this).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import DEFAULT_CAPTURE, Databases, call_store, ensure_capture, quiet_logs
from pbx_bridge.replay import replay


async def main_async(args: argparse.Namespace) -> int:
    path = ensure_capture(args.capture)
    with Databases(want_pg=args.backend == "postgresql") as dbs, quiet_logs():
        url = await dbs.fresh(args.backend)
        async with call_store(url) as (store, _engine):
            profile = cProfile.Profile()
            started = time.perf_counter()
            profile.enable()
            stats = await replay([path], store)
            profile.disable()
            seconds = time.perf_counter() - started
    print(f"{stats.events / seconds:,.0f} ev/s under cProfile; {stats}")
    out = io.StringIO()
    table = pstats.Stats(profile, stream=out)
    table.sort_stats("cumulative").print_stats(args.top)
    table.sort_stats("tottime").print_stats(args.top)
    print(out.getvalue())
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capture", type=Path, default=DEFAULT_CAPTURE)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--top", type=int, default=45)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
