"""``pytest --cpu-report FILE``: the processor time each test costs, beside its wall time.

On two cores the suite's length is bounded by processor time, not by waiting (a test
that waits for a real call costs little), so this is the figure to cut. A test's time
counts its process and the programs it started and waited for (Chromium, ``telecrm``
commands); servers that live for the whole session are counted when they stop, under
the last test of the process. Each process appends JSON lines to FILE.
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    target = item.config.getoption("--cpu-report")
    if not target:
        yield
        return
    cpu, wall = _cpu(), time.monotonic()
    yield
    line = {"test": item.nodeid, "cpu": round(_cpu() - cpu, 3),
            "wall": round(time.monotonic() - wall, 3), "pid": os.getpid()}
    with Path(target).open("a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")
