"""A real S3 server for the tests: Ceph's radosgw, standalone, on its SQLite "dbstore" backend.

No MinIO binary exists in Debian 12; Debian sid ships Ceph 20 whose radosgw can run
without any Ceph cluster (``--no-mon-config``, ``rgw_backend_store = dbstore``). It is
built once in its own debootstrap root (``~/.cache/telecrm/radosgw-sid``, under a lock,
appearing only when complete) and started per test session on a free loopback port;
``radosgw-admin`` creates the user and keys, boto3 the bucket.

Known defect of this server (Ceph 20.2.4, dbstore): ranged GETs answer 206 with the
right length but bytes from the wrong offset; see ``RADOSGW_RANGED_GET_BROKEN`` and
``S3Location.ranged_get``.

Fixtures: ``s3_server`` (one per test session, each test under its own prefix) and
``own_s3_server`` (a private one a test may stop and start: the outage test). Marked
tests use ``pytest.mark.s3``; under ``CI=true`` their skip is a failure.

Command line: ``python -m tests.support.s3_server build|run``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from asterisk_conf.sandbox import (
    SandboxError,
    SandboxUnavailable,
    _debootstrap_running,
    _locked,
    _require_root,
    _tool,
    debian_mirror,
)

PACKAGES = ("radosgw",)
READY_MARKER = ".telecrm-radosgw-ready"
INSTANCES = "srv/telecrm-s3"
RADOSGW_RANGED_GET_BROKEN = True  # Ceph 20.2.4 dbstore; asserted by tests/test_s3_store.py


def root_dir() -> Path:
    """$TELECRM_RADOSGW_ROOT or ~/.cache/telecrm/radosgw-sid."""
    env = os.environ.get("TELECRM_RADOSGW_ROOT")
    root = Path(env) if env else Path.home() / ".cache" / "telecrm" / "radosgw-sid"
    return root.expanduser().absolute()


def _complete(target: Path) -> bool:
    if (target / "debootstrap").exists() or not (target / "usr/bin/radosgw").exists():
        return False
    with contextlib.suppress(OSError):
        status = (target / "var/lib/dpkg/status").read_text(errors="replace")
        block = status.partition("\nPackage: radosgw\n")[2].partition("\n\n")[0]
        return "Status: install ok installed" in block
    return False


def build(root: Path | None = None) -> Path:
    """The ready Debian sid root with radosgw, debootstrapping it once (a few minutes)."""
    _require_root()
    root = (root or root_dir()).absolute()
    if (root / READY_MARKER).is_file():
        return root
    with _locked(root.with_name(root.name + ".lock")):
        if (root / READY_MARKER).is_file():
            return root
        if root.exists():
            raise SandboxError(f"{root} exists but is not a finished radosgw root; remove it")
        staging = root.with_name(root.name + ".staging")
        while _debootstrap_running(staging):
            time.sleep(2)
        if staging.exists() and not _complete(staging):
            shutil.rmtree(staging)
        if not staging.exists():
            log = root.with_name(root.name + ".build.log")
            command = [_tool("debootstrap"), "--variant=minbase",
                       "--include=" + ",".join(PACKAGES), "sid", str(staging), debian_mirror()]
            print(f"s3: building a Debian sid root with radosgw in {root} (once)...",
                  file=sys.stderr)
            with open(log, "w") as out:
                result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT)
            if result.returncode or not _complete(staging):
                tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-5:])
                raise SandboxError(f"debootstrap of radosgw failed (log {log}): {tail}")
        version = subprocess.run([_tool("chroot"), str(staging), "radosgw", "--version"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        (staging / INSTANCES).mkdir(parents=True, exist_ok=True)
        (staging / READY_MARKER).write_text(version + "\n")
        os.rename(staging, root)
    return root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _conf(inside: str, port: int) -> str:
    return f"""[global]
auth_client_required = none
auth_cluster_required = none
auth_service_required = none
log_file = {inside}/radosgw.log
run_dir = {inside}
admin_socket = {inside}/radosgw.asok
[client]
rgw_backend_store = dbstore
rgw_config_store = dbstore
dbstore_db_dir = {inside}/db
dbstore_config_uri = file:{inside}/db/config.db
rgw_data = {inside}
rgw_frontends = beast endpoint=127.0.0.1:{port}
rgw_thread_pool_size = 16
"""


@dataclass
class RadosGW:
    """One radosgw process in the root; data kept across stop/start (the outage test)."""

    root: Path
    port: int
    directory: Path  # outside view of the instance's directory
    access_key: str
    secret_key: str
    bucket: str = "telecrm-recordings"
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(cls, root: Path) -> RadosGW:
        directory = Path(tempfile.mkdtemp(prefix="rgw-", dir=root / INSTANCES))
        (directory / "db").mkdir()
        return cls(root, _free_port(), directory, "TELECRM" + secrets.token_hex(6).upper(),
                   secrets.token_hex(20))

    @property
    def inside(self) -> str:
        return "/" + str(self.directory.relative_to(self.root))

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _command(self, program: str, *args: str) -> list[str]:
        return [_tool("chroot"), str(self.root), program, "-c", f"{self.inside}/ceph.conf",
                "--no-mon-config", "-n", "client.rgw", *args]

    def start(self, timeout: float = 30) -> None:
        (self.directory / "ceph.conf").write_text(_conf(self.inside, self.port))
        log = open(self.directory / "stdout.log", "ab")
        self.process = subprocess.Popen(self._command("radosgw", "-f"), stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SandboxError(f"radosgw exited ({self.process.returncode}): "
                                   f"{self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.5):
                return
            time.sleep(0.2)
        self.stop()
        raise SandboxError(f"radosgw did not listen on {self.port}: {self.log_tail()}")

    def provision(self, exit_timeout: float = 30) -> None:
        """The user with our keys (radosgw-admin works on dbstore) and the bucket.

        radosgw-admin has been seen to print the new user and then never exit (once in
        a whole test run, under load). The user is stored by then: a printed user that
        holds our access key counts once the process is killed, and creating the bucket
        with those keys right after proves they work.
        """
        process = subprocess.Popen(
            self._command("radosgw-admin", "user", "create", "--uid=telecrm",
                          "--display-name=telecrm", f"--access-key={self.access_key}",
                          f"--secret-key={self.secret_key}"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = process.communicate(timeout=exit_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            if not _holds_key(out, self.access_key):
                raise SandboxError(f"radosgw-admin user create hung for {exit_timeout:g} s "
                                   f"without creating the user: {err[-500:]}") from None
        else:
            if process.returncode:
                raise SandboxError(f"radosgw-admin user create failed: {err[-500:]}")
        self.client().create_bucket(Bucket=self.bucket)

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1",
                            aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM (radosgw shuts down in about a second), SIGKILL if it hangs."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def discard(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def log_tail(self, lines: int = 6) -> str:
        with contextlib.suppress(OSError):
            text = (self.directory / "radosgw.log").read_text(errors="replace")
            return " | ".join(text.strip().splitlines()[-lines:])
        return "(no log)"


def _holds_key(printed: str, access_key: str) -> bool:
    """Whether radosgw-admin printed a whole user with ``access_key`` among its keys."""
    try:
        user = json.loads(printed)
    except ValueError:
        return False
    return any(key.get("access_key") == access_key for key in user.get("keys", []))


def start_server() -> RadosGW:
    """Build if needed, start and provision a fresh server (raises SandboxUnavailable)."""
    server = RadosGW.create(build())
    try:
        server.start()
        server.provision()
    except BaseException:
        server.discard()
        raise
    return server


def _started() -> RadosGW:
    try:
        return start_server()
    except SandboxUnavailable as exc:
        pytest.skip(f"no S3 server: {exc}")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[RadosGW]:
    """The session's radosgw (shared: tests use their own key prefixes)."""
    server = _started()
    yield server
    server.discard()


@pytest.fixture
def own_s3_server() -> Iterator[RadosGW]:
    """A private radosgw for a test that stops it for real."""
    server = _started()
    yield server
    server.discard()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.s3_server")
    parser.add_argument("action", choices=["build", "run"])
    args = parser.parse_args(argv)
    try:
        if args.action == "build":
            print(f"s3: radosgw ready in {build()}")
            return 0
        server = start_server()
    except (SandboxUnavailable, SandboxError) as exc:
        print(f"s3: {exc}", file=sys.stderr)
        return 1
    print(f"s3: {server.endpoint_url} bucket {server.bucket} key {server.access_key} "
          f"secret {server.secret_key} (Ctrl-C stops it)")
    try:
        while server.running():
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.discard()
    return 0


if __name__ == "__main__":
    sys.exit(main())
