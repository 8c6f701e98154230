"""A throwaway, real Redis server for the test suite.

Debian's ``redis-server`` on a free 127.0.0.1 port, with no persistence (no RDB
snapshots, no AOF) and no unix socket, so nothing system-wide is touched. It leaves
nothing on disk, however the test process ends (a killed pytest runs no finalizer):
its working directory is removed as soon as it answers (it writes nothing there) and
its log goes to an anonymous temporary file. ``stop()`` and ``start()`` again on the
same port let tests cut the connection under a client and bring the server back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

_START_TIMEOUT_S = 10.0


class RedisUnavailable(RuntimeError):
    """The server could not be started; the message says why."""


def _machine_clock_env() -> dict[str, str]:
    """The environment without libfaketime: redis-server aborts under it (recursive
    ``clock_gettime``), and a server keeps the machine's clock anyway."""
    return {key: value for key, value in os.environ.items()
            if not key.startswith("FAKETIME")
            and not (key == "LD_PRELOAD" and "faketime" in value)}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    """True once the server replies to PING on ``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A running server; ``url(db)`` gives its ``redis://`` URL."""

    def __init__(self, binary: str | None = None) -> None:
        self._binary = binary
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None  # anonymous: no name on disk, gone with us

    @property
    def binary(self) -> str:
        if self._binary is None:
            found = shutil.which("redis-server") or (
                "/usr/bin/redis-server" if Path("/usr/bin/redis-server").is_file() else None
            )
            if found is None:
                raise RedisUnavailable("redis-server not found (Debian package redis-server)")
            self._binary = found
        return self._binary

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> RedisServer:
        """Start (first time: on a fresh port and directory; later: the same port again)."""
        if self.running:
            return self
        binary = self.binary
        if self._log is None:
            self._log = tempfile.TemporaryFile()
        root = Path(tempfile.mkdtemp(prefix="telecrm-redis-"))
        try:
            return self._start(binary, root, self._log)
        finally:  # it has made it its working directory and will never write there
            shutil.rmtree(root, ignore_errors=True)

    def _start(self, binary: str, root: Path, log: IO[bytes]) -> RedisServer:
        ports = [self.port] if self.port else [_free_port() for _ in range(3)]
        last = "no attempt"
        for port in ports:  # a probed port may be taken before the server binds it
            argv = [
                binary,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--unixsocket", "",
                "--dir", str(root),
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
                "--logfile", "",  # standard output: the anonymous file
                "--protected-mode", "yes",
            ]  # fmt: skip
            try:
                self._process = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=_machine_clock_env(), start_new_session=True,  # as a service
                )  # fmt: skip
            except OSError as exc:
                raise RedisUnavailable(f"cannot run {binary}: {exc}") from exc
            deadline = time.monotonic() + _START_TIMEOUT_S
            while time.monotonic() < deadline and self.running:
                if _answers(port):
                    self.port = port
                    return self
                time.sleep(0.05)
            last = self._log_tail()
            self._kill()
        raise RedisUnavailable(f"redis-server did not start: {last}")

    def _log_tail(self) -> str:
        if self._log is None:
            return "(no log)"
        self._log.seek(0)
        lines = self._log.read().decode(errors="replace").splitlines()
        return " | ".join(lines[-3:]) or "(no log)"

    def _kill(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def stop(self) -> None:
        """Stop the server at once (clients see their connections drop); keep its port."""
        self._kill()

    def close(self) -> None:
        """Stop it and drop its log; safe to call twice."""
        self._kill()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


@contextlib.contextmanager
def running_redis() -> Iterator[RedisServer]:
    """Context manager form: a started server, stopped and removed on exit."""
    with RedisServer() as server:
        yield server
