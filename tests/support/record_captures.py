"""Regenerate tests/captures/*.ami by placing every scenario for real.

``.venv/bin/python -m tests.support.record_captures [SCENARIO...] [--sandboxes N] [--out DIR]``

Needs the sandbox (root, the Debian root built once). Run it after changing the
dialplan, then run ``tests/calls/test_tracker_replay.py`` and commit the new captures.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from asterisk_conf.sandbox import Sandbox, SandboxUnavailable
from tests.support.scenarios import (
    CAPTURES,
    SCENARIOS,
    Recorded,
    ended_calls,
    record_many,
    scenario_config,
)


def main(argv: list[str] | None = None) -> int:
    """Record the named scenarios (default: all) into capture files."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.record_captures")
    parser.add_argument("scenarios", nargs="*", choices=[[], *SCENARIOS], metavar="SCENARIO")
    parser.add_argument("--sandboxes", type=int, default=4, help="PBXes run at once")
    parser.add_argument("--out", type=Path, default=CAPTURES)
    args = parser.parse_args(argv)
    names = args.scenarios or list(SCENARIOS)
    boxes: list[Sandbox] = []
    try:
        for _ in range(max(1, min(args.sandboxes, len(names)))):
            boxes.append(Sandbox(scenario_config()).start())
        started = time.monotonic()
        results = asyncio.run(record_many(boxes, names, args.out))
    except SandboxUnavailable as exc:
        print(f"error: the sandbox is unavailable: {exc}", file=sys.stderr)
        return 2
    finally:
        for box in boxes:
            box.stop(keep_monitor=False)
    failed = 0
    for name in names:
        rec = results[name]
        if not isinstance(rec, Recorded):
            failed += 1
            print(f"{name}: FAILED: {rec!r}", file=sys.stderr)
            continue
        calls = ended_calls(rec.facts)
        summary = ", ".join(f"{c.direction}/{c.status} {list(c.managers)} talk {c.talk_seconds:.1f}"
                            for c in calls)
        print(f"{rec.capture} ({rec.capture.stat().st_size} bytes): {summary}")
    print(f"recorded {len(names) - failed} of {len(names)} scenarios "
          f"in {time.monotonic() - started:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
