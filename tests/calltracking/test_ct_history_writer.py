"""The visit-history writer of a web process (``telecrm.calltracking.history``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.db_fixtures import copy_migrated_sqlite

# A web process in miniature: starts the writer process (as with Redis leases), says the
# writer's pid, then waits to be killed.
_WEB_PROCESS = """
import multiprocessing, sys, time
from telecrm.calltracking.history import ProcessHistoryWriter
writer = ProcessHistoryWriter(sys.argv[1])
writer.start()
print(writer._process.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) is gone for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_a_web_process_killed_leaves_no_history_writer_behind(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    copy_migrated_sqlite(url)
    web = subprocess.Popen([sys.executable, "-c", _WEB_PROCESS, url], stdout=subprocess.PIPE,
                           text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert web.stdout is not None
        writer = int(web.stdout.readline())
        assert _alive(writer)
        web.send_signal(signal.SIGKILL)
        web.wait()
        deadline = time.monotonic() + 10
        while _alive(writer) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(writer), "the history writer outlived its web process"
    finally:
        if web.poll() is None:
            web.kill()


# A web process whose writer process dies with visits still queued, then shuts down as
# `serve` does: close() must come back (a wait on the dead queue would block its thread
# forever, and asyncio.run waits for that thread), and no semaphore name may remain.
_DEAD_WRITER = """
import asyncio, os, signal, sys, time
from telecrm.calltracking import history
writer = history.ProcessHistoryWriter(sys.argv[1])
names = history._semaphore_names(writer._queue)
writer.start()
deadline = time.monotonic() + 30
while any(os.path.exists("/dev/shm/sem." + n.lstrip("/")) for n in names):
    assert time.monotonic() < deadline, "the writer never took its semaphores over"
    time.sleep(0.05)
os.kill(writer._process.pid, signal.SIGKILL)
writer._process.join()
async def main():
    for i in range(100):
        await writer.put(("a visit nobody will write", i))
    await writer.close()
asyncio.run(main())
print(" ".join(names), flush=True)
"""


def test_a_dead_history_writer_neither_hangs_the_shutdown_nor_leaves_semaphores(
        tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    copy_migrated_sqlite(url)
    web = subprocess.run([sys.executable, "-c", _DEAD_WRITER, url], capture_output=True,
                         text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert web.returncode == 0, web.stderr[-3000:]
    names = web.stdout.split()
    assert len(names) == 8, web.stdout
    assert [n for n in names if Path("/dev/shm/sem." + n.lstrip("/")).exists()] == []
    assert "Traceback" not in web.stderr and "leaked" not in web.stderr, web.stderr[-3000:]


# The same, with the dead writer's queue full: the visits still buffered at shutdown wait
# a bounded time for room, are said to be lost, and the stop goes on.
_DEAD_WRITER_FULL = _DEAD_WRITER.replace(
    "history.ProcessHistoryWriter(sys.argv[1])",
    "history.ProcessHistoryWriter(sys.argv[1], max_queue=10)").replace(
    "for i in range(100):", "for i in range(150):")


def test_a_dead_writer_with_a_full_queue_still_lets_the_web_process_stop(
        tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    copy_migrated_sqlite(url)
    assert "max_queue=10" in _DEAD_WRITER_FULL and "range(150)" in _DEAD_WRITER_FULL
    web = subprocess.run([sys.executable, "-c", _DEAD_WRITER_FULL, url], capture_output=True,
                         text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert web.returncode == 0, web.stderr[-3000:]
    assert "50 visit records lost" in web.stderr, web.stderr[-3000:]
    names = web.stdout.split()
    assert [n for n in names if Path("/dev/shm/sem." + n.lstrip("/")).exists()] == []
