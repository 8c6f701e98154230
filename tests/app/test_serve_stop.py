"""``telecrm serve`` stops cleanly on SIGTERM (systemd, Docker) as on Ctrl-C, every time,
and leaves nothing behind, even killed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.browser import free_port
from tests.support.db_fixtures import copy_migrated_sqlite
from tests.support.live import TELECRM
from tests.support.processes import run_bounded, wait_healthy
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


def _wait_unlinked(inodes: set[int], process: subprocess.Popen[bytes],
                   timeout: float = 30) -> None:
    """Until no name in /dev/shm is left for ``inodes`` (the writer took them over)."""
    deadline = time.monotonic() + timeout
    while _left(inodes):
        assert process.poll() is None, "telecrm serve ended on its own"
        assert time.monotonic() < deadline, "the history writer never unlinked its semaphores"
        time.sleep(0.1)


# How each start is stopped: by systemd and Docker (SIGTERM), by Ctrl-C in a terminal (SIGINT
# to the whole foreground group; systemd's units send SIGINT to the whole cgroup too), and
# killed outright with everything it started, the resource tracker included (SIGKILL).
_STOPS = [("term", signal.SIGTERM, 0), ("int", signal.SIGINT, 130),
          ("int-group", signal.SIGINT, 130), ("term", signal.SIGTERM, 0),
          ("kill-group", signal.SIGKILL, -9)] * 2


def test_serve_stops_cleanly_on_sigterm_and_ctrl_c_and_leaves_nothing_behind(
        tmp_path: Path, redis_server: RedisServer) -> None:
    """With Redis the visit history is written by a child process (its queue holds eight
    POSIX semaphores): ten starts and stops, however stopped, leave none of them in
    /dev/shm and nothing in the temporary directory."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    copy_migrated_sqlite(url)
    scratch = tmp_path / "tmp"  # the serve processes' TMPDIR: must stay empty
    scratch.mkdir()
    env = {**os.environ, "TELECRM_DATABASE_URL": url, "TELECRM_DATA_DIR": str(tmp_path),
           "TELECRM_REDIS_URL": redis_server.url(0), "PYTHONFAULTHANDLER": "1",
           "TMPDIR": str(scratch)}
    all_held: set[int] = set()
    for how, sig, code in _STOPS:
        port = free_port()
        process = subprocess.Popen([TELECRM, "serve", "--web", "--port", str(port)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   start_new_session=True)
        try:
            wait_healthy(port, process)
            held = _semaphores([process.pid, *_children(process.pid)])
            assert held, "the history writer's queue was not created"
            all_held |= held
            if how == "kill-group":  # nobody runs a finalizer: the names must be gone already
                _wait_unlinked(held, process)
            if how.endswith("-group"):
                os.killpg(process.pid, sig)
            else:
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
            with contextlib.suppress(ProcessLookupError):  # whatever it started, too
                os.killpg(process.pid, signal.SIGKILL)
        assert process.returncode == code, err.decode(errors="replace")[-2000:]
        assert b"Traceback" not in err, err.decode(errors="replace")[-2000:]
        assert _left(held) == [], how
        assert list(scratch.iterdir()) == [], how
    # The count of /dev/shm/sem.mp-* these ten serves added (other processes on the machine
    # may add their own meanwhile: only ours are counted, by inode).
    assert len(_left(all_held)) == 0


def _running(pid: int) -> bool:
    """Alive and not a zombie (an exited child not yet reaped is gone for our purpose)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_a_timed_out_child_leaves_no_process_behind(tmp_path: Path) -> None:
    """What the schemathesis test's `st run` goes through: on its timeout the child and
    whatever it started are killed, not left running."""
    pids = tmp_path / "pids"
    with pytest.raises(TimeoutError):
        asyncio.run(run_bounded("sh", "-c", f"sleep 300 & echo $! $$ > {pids}; wait", timeout=2))
    started = [int(pid) for pid in pids.read_text().split()]
    assert len(started) == 2
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in started if _running(pid)] == []


def test_the_redis_helper_leaves_no_temporary_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not even while it runs: a test process killed before its finalizers leaves none."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    server = RedisServer().start()
    try:
        assert list(tmp_path.iterdir()) == []
        server.stop()
        server.start()  # again on the same port, as the bus tests do
        assert list(tmp_path.iterdir()) == []
    finally:
        server.close()
    assert list(tmp_path.iterdir()) == []
