"""A throwaway, real PostgreSQL server for the test suite.

``initdb`` into a temporary directory, ``pg_ctl start`` on a free 127.0.0.1 port
(unix sockets inside the same directory, so nothing system-wide is touched),
durability switched off for speed. When running as root the server runs as the
``postgres`` OS user, as PostgreSQL refuses root.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

SUPERUSER = "postgres"
_START_TIMEOUT_S = 30


class PostgresUnavailable(RuntimeError):
    """The server could not be started; the message says why."""


def find_bin_dir() -> Path:
    """Directory with ``initdb``/``pg_ctl``: $TELECRM_PG_BIN, PATH, or the newest Debian install."""
    candidates: list[str] = []
    if env := os.environ.get("TELECRM_PG_BIN"):
        candidates.append(env)
    if on_path := shutil.which("initdb"):
        candidates.append(str(Path(on_path).parent))
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    for candidate in candidates:
        if (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    raise PostgresUnavailable("PostgreSQL binaries (initdb, pg_ctl) not found")


def _scratch_dir() -> str | None:
    """$TELECRM_PG_TMPDIR, else RAM-backed /dev/shm when usable (no disk I/O), else the default."""
    if env := os.environ.get("TELECRM_PG_TMPDIR"):
        return env
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        return str(shm)
    return None


def _sweep_stale(scratch: str | None, older_than_s: float = 3600) -> None:
    """Remove the directories of servers whose test process was killed (RAM, in /dev/shm).

    A running server's ``data/postmaster.pid`` names a live process; a directory without
    one that is over an hour old belongs to nobody (a new one is initialised in seconds).
    Its age is read on the file system's clock: under libfaketime (the suite run at a moved
    moment) ``time.time()`` is another clock, and every directory looked a year old, a
    neighbour's mid-``initdb`` included."""
    root = Path(scratch or tempfile.gettempdir())
    with tempfile.NamedTemporaryFile(dir=root, prefix=".telecrm-pg-now-") as probe:
        now = os.fstat(probe.fileno()).st_mtime
    for directory in root.glob("telecrm-pg-*"):
        with contextlib.suppress(OSError, ValueError):
            if now - directory.stat().st_mtime < older_than_s or _postmaster_alive(directory):
                continue
            shutil.rmtree(directory, ignore_errors=True)


def _postmaster_alive(directory: Path) -> bool:
    try:
        pid = int((directory / "data" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """A running server; ``url(db)`` gives a ``postgresql+asyncpg://`` URL to a database."""

    def __init__(self, bin_dir: Path | None = None, *, durable_commits: bool = False) -> None:
        """``durable_commits``: a commit is in the WAL before it returns, so it survives a
        ``halt()`` (crash); off by default for speed, where no test crashes the server."""
        self._bin_dir = bin_dir
        self._durable_commits = durable_commits
        self.root = Path()  # set by start()
        self.port = 0
        self._run_as: str | None = None
        self._started = False
        self._halted = False
        # Name of a database already migrated to head, cloned per test (set by the fixtures).
        self.migrated_template: str | None = None

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = find_bin_dir()
        return self._bin_dir

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    # -- process plumbing -------------------------------------------------------------

    def _command(self, *args: str) -> list[str]:
        argv = [str(self.bin_dir / args[0]), *args[1:]]
        if self._run_as is not None:
            return ["runuser", "-u", self._run_as, "--", *argv]
        return argv

    def _run(self, *args: str, timeout: float = _START_TIMEOUT_S) -> None:
        try:
            result = subprocess.run(
                self._command(*args), capture_output=True, text=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostgresUnavailable(f"{args[0]} failed: {exc}") from exc
        if result.returncode != 0:
            output = (result.stderr or result.stdout).strip().splitlines()[-5:]
            raise PostgresUnavailable(f"{args[0]} failed: {' | '.join(output)}")

    def _prepare_owner(self) -> None:
        if os.geteuid() != 0:
            return
        try:
            account = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise PostgresUnavailable("running as root and there is no 'postgres' user") from exc
        if shutil.which("runuser") is None:
            raise PostgresUnavailable("running as root and 'runuser' is not available")
        os.chown(self.root, account.pw_uid, account.pw_gid)
        self._run_as = "postgres"

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> PostgresServer:
        """initdb and start; raises PostgresUnavailable with the reason on failure."""
        try:
            self.bin_dir  # noqa: B018 - fail early when PostgreSQL is not installed
            _sweep_stale(_scratch_dir())
            self.root = Path(tempfile.mkdtemp(prefix="telecrm-pg-", dir=_scratch_dir()))
            self._prepare_owner()
            self._run(
                "initdb",
                "-D", str(self.data_dir),
                "-U", SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            )  # fmt: skip
            last_error: PostgresUnavailable | None = None
            for _attempt in range(3):  # the free port may be taken between probe and bind
                self.port = _free_port()
                try:
                    self._pg_ctl_start()
                except PostgresUnavailable as exc:
                    last_error = exc
                    continue
                self._started = True
                return self
            assert last_error is not None
            raise PostgresUnavailable(f"{last_error}; log: {self._log_tail()}")
        except OSError as exc:
            self.stop()
            raise PostgresUnavailable(f"cannot prepare the server directory: {exc}") from exc
        except BaseException:
            self.stop()
            raise

    def _pg_ctl_start(self) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.socket_dir}",
                "-c fsync=off",
                f"-c synchronous_commit={'on' if self._durable_commits else 'off'}",
                "-c full_page_writes=off",
                "-c max_connections=100",
                "-c shared_buffers=32MB",
                "-c jit=off",  # asyncpg type introspection is slow under JIT
            ]
        )
        self._run(
            "pg_ctl", "start", "-w", "-t", str(_START_TIMEOUT_S),
            "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options,
        )  # fmt: skip

    # -- outages (the data directory stays) ---------------------------------------------

    @property
    def running(self) -> bool:
        """True while the server process is up (not halted, not stopped)."""
        return self._started and not self._halted

    def halt(self, mode: str = "immediate") -> None:
        """Stop the server but keep its data, to simulate a database outage.

        ``immediate`` drops every connection at once, like a crash; ``fast`` is a
        clean shutdown. :meth:`resume` brings it back on the same port.
        """
        if not self._started or self._halted:
            return
        self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", mode, "-w")
        self._halted = True

    def resume(self) -> None:
        """Start a halted server again, same port and data (after crash recovery)."""
        if not self._started or not self._halted:
            return
        self._pg_ctl_start()
        self._halted = False

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return " | ".join(self.log_file.read_text(errors="replace").splitlines()[-3:])
        return "(no log)"

    def stop(self) -> None:
        """Stop the server (fast) and delete its directory; safe to call twice."""
        if self._started and not self._halted:
            with contextlib.suppress(PostgresUnavailable):
                self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate", "-w")
        self._started = False
        self._halted = False
        if self.root != Path():
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = Path()

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- addresses ----------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        """Async SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        """Plain libpq/asyncpg DSN of ``database`` on this server."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Context manager form: a started server, stopped and removed on exit."""
    with PostgresServer() as server:
        yield server
