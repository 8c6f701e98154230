"""``telecrm serve`` stops cleanly on SIGTERM (systemd, Docker) as on Ctrl-C, every time."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.support.browser import free_port
from tests.support.db_fixtures import copy_migrated_sqlite
from tests.support.live import TELECRM
from tests.support.redis_server import RedisServer


def _semaphores(pids: list[int]) -> set[int]:
    """Inodes of the POSIX semaphores these processes have mapped (glibc maps a file it
    then renames, so the inode, not the name, is what ties a mapping to its file)."""
    inodes: set[int] = set()
    for pid in pids:
        try:
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            continue
        inodes |= {int(line.split()[4]) for line in maps.splitlines() if "/dev/shm/sem." in line}
    return inodes


def _left(inodes: set[int]) -> list[str]:
    """Named semaphores still in /dev/shm among ``inodes``."""
    left = []
    for path in Path("/dev/shm").glob("sem.mp-*"):
        try:
            if path.stat().st_ino in inodes:
                left.append(path.name)
        except FileNotFoundError:
            continue
    return left


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(child) for child in found]


def _wait_healthy(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "telecrm serve ended on its own"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("telecrm serve did not answer /healthz")


def test_serve_stops_cleanly_on_sigterm_and_ctrl_c_and_leaves_nothing_behind(
        tmp_path: Path, redis_server: RedisServer) -> None:
    """With Redis the visit history is written by a child process (its queue holds POSIX
    semaphores): each stop ends it and gives them back."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    copy_migrated_sqlite(url)
    env = {**os.environ, "TELECRM_DATABASE_URL": url, "TELECRM_DATA_DIR": str(tmp_path),
           "TELECRM_REDIS_URL": redis_server.url(0), "PYTHONFAULTHANDLER": "1"}
    for sig, code in ((signal.SIGTERM, 0), (signal.SIGINT, 130), (signal.SIGTERM, 0)):
        port = free_port()
        process = subprocess.Popen([TELECRM, "serve", "--web", "--port", str(port)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _wait_healthy(port, process)
            held = _semaphores([process.pid, *_children(process.pid)])
            assert held, "the history writer's queue was not created"
            process.send_signal(sig)
            try:
                _, err = process.communicate(timeout=60)  # the writer ends within 20 s
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGABRT)  # every thread's stack, to see where
                _, err = process.communicate(timeout=10)
                raise AssertionError(f"no stop after {sig!r}: {err.decode()[-4000:]}") from None
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == code, err.decode(errors="replace")[-2000:]
        assert b"Traceback" not in err, err.decode(errors="replace")[-2000:]
        assert _left(held) == []
