"""Child programs a test runs with a deadline, and that never outlive it.

``run_bounded`` starts the program in a process group of its own, so on a timeout or
a cancelled test the whole group is killed (the program and anything it started),
not only its first process; on Linux every one of them also gets SIGKILL if the test
process itself dies first (``PR_SET_PDEATHSIG``: a pytest killed by a CI timeout runs
no ``finally``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Any


def _die_with_parent() -> None:
    """Child side of fork, before exec: SIGKILL when the test process dies."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGKILL to every process of the group ``process`` leads (the group id stays
    taken while any of them lives, so nothing else can be hit)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


async def run_bounded(*argv: str, timeout: float, **kwargs: Any) -> tuple[int, bytes]:
    """(return code, standard output and error) of ``argv``, killed with its group at
    ``timeout`` seconds (then :class:`TimeoutError` is raised) or when cancelled."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True, preexec_fn=_die_with_parent, **kwargs)
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
    finally:  # timed out, cancelled, or what it left running: the whole group goes
        kill_group(process)
        if process.returncode is None:
            await process.wait()
    assert process.returncode is not None
    return process.returncode, output


def wait_healthy(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Until the ``telecrm serve`` started as ``process`` answers ``/healthz`` on ``port``;
    fails at once if the process ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "telecrm serve ended on its own"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("telecrm serve did not answer /healthz")
