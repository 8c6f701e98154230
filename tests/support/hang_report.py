"""Where a hung test waits: its asyncio tasks' stacks, printed shortly before
pytest-timeout ends it.

pytest-timeout prints the threads' stacks, and a test stuck on an ``await`` shows only
the event loop sleeping in ``select``; the tasks' own stacks say which ``await`` it is.
"""

from __future__ import annotations

import asyncio
import gc
import io
import sys
import threading
from collections.abc import Iterator

import pytest

EARLY = 20.0  # seconds before the timeout


def _timeout(item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    try:
        return float(item.config.getini("timeout") or 0)
    except (ValueError, TypeError):
        return 0.0


def _awaiting(task: asyncio.Task[object]) -> Iterator[str]:
    """The task's chain of awaits, outermost first (``print_stack`` shows one frame)."""
    step: object = task.get_coro()
    for _ in range(40):
        frame = (getattr(step, "cr_frame", None) or getattr(step, "gi_frame", None)
                 or getattr(step, "ag_frame", None))
        if frame is None:
            yield f"    waits on {step!r}"[:300]
            return
        yield f"    {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"
        step = (getattr(step, "cr_await", None) or getattr(step, "gi_yieldfrom", None)
                or getattr(step, "ag_await", None))
        if step is None:
            return
        if type(step).__name__ == "async_generator_asend":  # an asynccontextmanager's body
            step = getattr(frame.f_locals.get("self"), "gen", step)


def _print_tasks(loop: asyncio.AbstractEventLoop, nodeid: str) -> None:
    out = io.StringIO()
    out.write(f"\n+++ asyncio tasks of {nodeid}, still running near its timeout +++\n")
    for task in asyncio.all_tasks(loop):
        out.write(f"--- {task.get_name()}\n")
        out.writelines(line + "\n" for line in _awaiting(task))
    sys.stderr.write(out.getvalue())
    sys.stderr.flush()


def _report(nodeid: str) -> None:
    for thing in gc.get_objects():
        if isinstance(thing, asyncio.AbstractEventLoop) and thing.is_running():
            thing.call_soon_threadsafe(_print_tasks, thing, nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    limit = _timeout(item)
    timer = None
    if limit > 2 * EARLY:
        timer = threading.Timer(limit - EARLY, _report, args=(item.nodeid,))
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
