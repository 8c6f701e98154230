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
