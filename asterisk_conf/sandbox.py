"""A real Asterisk for the demo and the tests, in a cached Debian sid chroot.

Debian 12 ships no Asterisk, sid does: ``build()`` debootstraps a sid root with
Asterisk once (cached outside the repository). ``Sandbox`` then runs two Asterisk
processes in that root: the PBX, with exactly the configuration the product ships
(``render_pbx_config``), and a "phones" instance that plays the IP phones and the
carrier over real SIP on loopback. Every process is owned by the Python parent.

Command line: ``python -m asterisk_conf.sandbox build|start|stop|status``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import errno
import fcntl
import glob
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from asterisk_conf.foreign import FOREIGN_PHONES, render_foreign_config
from asterisk_conf.phones import AmiLogin, Phones, render_phones_config
from asterisk_conf.render import PbxConfig, render_pbx_config, render_template, template_text

__all__ = [
    "AsteriskInstance",
    "BuildResult",
    "Phones",
    "Sandbox",
    "SandboxError",
    "SandboxUnavailable",
    "build",
    "debian_mirror",
    "ensure_built",
    "proc_mounted",
    "processes_in_root",
    "sandbox_root",
]

PACKAGES = ("asterisk", "asterisk-core-sounds-en-wav", "asterisk-core-sounds-ru-wav")
READY_MARKER = ".telecrm-sandbox-ready"
INSTANCES_DIR = "srv/telecrm"  # inside the root
STALE_AFTER = 24 * 3600  # seconds after which stopped instances' leftovers are removed
# Stock files not copied into instances: users.conf is deprecated (a warning at boot).
_STOCK_SKIPPED = frozenset({"users.conf"})
PROFILES = ("telecrm", "foreign")  # the PBX's configuration: ours, or somebody else's
_RTP_BLOCK = 200  # RTP ports per instance (100 simultaneous calls)


class SandboxUnavailable(RuntimeError):
    """This machine cannot run the sandbox (not root, no debootstrap, no mirror...)."""


class SandboxError(RuntimeError):
    """The sandbox could be run here but something failed (build, boot, stop)."""


# ---------------------------------------------------------------- the Debian root


def sandbox_root() -> Path:
    """Where the Debian root lives: $TELECRM_SANDBOX_ROOT or ~/.cache/telecrm/asterisk-sid."""
    env = os.environ.get("TELECRM_SANDBOX_ROOT")
    root = Path(env) if env else Path.home() / ".cache" / "telecrm" / "asterisk-sid"
    return root.expanduser().absolute()


def debian_mirror() -> str:
    """The Debian mirror this host already uses (never a hard-coded registry name)."""
    env = os.environ.get("TELECRM_DEBIAN_MIRROR", "").strip()
    if env:
        return env
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for stanza in Path(path).read_text(errors="replace").split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                key, sep, value = line.partition(":")
                if sep and not line.startswith(("#", " ")):
                    fields[key.strip().lower()] = value.strip()
            suites = fields.get("suites", "")
            if "deb" not in fields.get("types", "").split() or "security" in suites:
                continue
            for uri in fields.get("uris", "").split():
                if _usable_mirror(uri):
                    return uri
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
        with contextlib.suppress(OSError):
            for line in Path(path).read_text(errors="replace").splitlines():
                words = [w for w in line.split("#", 1)[0].split() if not w.startswith("[")]
                if len(words) >= 3 and words[0] == "deb" and "security" not in words[2]:
                    if _usable_mirror(words[1]):
                        return words[1]
    raise SandboxUnavailable(
        "no Debian mirror found in /etc/apt sources; set TELECRM_DEBIAN_MIRROR to one"
    )


def _usable_mirror(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "ftp://", "file:/")) and "security" not in uri


def _require_root() -> None:
    if os.geteuid() != 0:
        raise SandboxUnavailable(
            "the Asterisk sandbox needs root (it uses chroot and mounts /proc); run as root"
        )
    if sys.platform != "linux":
        raise SandboxUnavailable("the Asterisk sandbox needs Linux")


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if path is None:
        raise SandboxUnavailable(f"the command {name!r} is missing on this machine")
    return path


def _is_ready(root: Path) -> bool:
    return (root / READY_MARKER).is_file()


def _debootstrap_complete(target: Path) -> bool:
    """True when a debootstrap into ``target`` finished with Asterisk installed.

    debootstrap removes ``target/debootstrap`` as its very last step.
    """
    if (target / "debootstrap").exists() or not (target / "usr/sbin/asterisk").exists():
        return False
    try:
        status = (target / "var/lib/dpkg/status").read_text(errors="replace")
    except OSError:
        return False
    for package in PACKAGES:
        block = status.partition(f"\nPackage: {package}\n")[2].partition("\n\n")[0]
        if "Status: install ok installed" not in block:
            return False
    return True


def _debootstrap_running(target: Path) -> bool:
    """Is some debootstrap (perhaps not ours, started by hand) writing into ``target``?"""
    needle = str(target).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (proc / "cmdline").read_bytes()
            if b"debootstrap" in cmdline and needle in cmdline.split(b"\0"):
                return True
    return False


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) if path.exists() else str(path)
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return found


def _safe_rmtree(path: Path) -> None:
    """Remove a tree, refusing when something is mounted inside it (e.g. /proc)."""
    if not path.exists():
        return
    mounts = _mounts_under(path)
    if mounts:
        raise SandboxError(f"refusing to delete {path}: still mounted: {', '.join(mounts)}")
    for attempt in range(10):  # a process just ending may still write its last file there
        try:
            shutil.rmtree(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.ENOTEMPTY or attempt == 9:
                raise
            time.sleep(0.2)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path``: two test runs never build or mount at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclasses.dataclass(frozen=True)
class BuildResult:
    """What ``build()`` found or did."""

    root: Path
    asterisk_version: str
    cached: bool
    seconds: float
    adopted: bool = False  # finished an earlier, interrupted or manual, debootstrap

    def describe(self) -> str:
        """One line for humans."""
        if self.cached:
            how = "cached"
        elif self.adopted:
            how = f"completed an earlier debootstrap in {self.seconds:.0f} s"
        else:
            how = f"built in {self.seconds:.0f} s"
        return f"sandbox: {self.asterisk_version} ready in {self.root} ({how})"


def _asterisk_version(root: Path) -> str:
    with contextlib.suppress(OSError):
        text = (root / READY_MARKER).read_text().strip()
        if text:
            return text
    result = subprocess.run(
        [_tool("chroot"), str(root), "/usr/sbin/asterisk", "-V"],
        capture_output=True, text=True, timeout=30,
    )
    return result.stdout.strip() or "Asterisk (unknown version)"


def build(
    root: Path | None = None, *, announce: Callable[[str], None] | None = None
) -> BuildResult:
    """Build the Debian sid root with Asterisk unless it is already there.

    Safe to call from several processes at once (a lock file next to the root);
    the root appears only when complete (staging directory renamed at the end).
    A finished debootstrap left in the staging directory is adopted, not redone.
    ``announce`` is called with one line before a long build starts.
    """
    _require_root()
    root = (root or sandbox_root()).absolute()
    if _is_ready(root):
        return BuildResult(root, _asterisk_version(root), True, 0.0)
    started = time.monotonic()
    with _locked(root.with_name(root.name + ".lock")):
        if _is_ready(root):
            return BuildResult(root, _asterisk_version(root), True, 0.0)
        staging = root.with_name(root.name + ".staging")
        if root.exists():  # never ours: the root only ever appears complete, by rename
            raise SandboxError(
                f"{root} exists but is not a finished sandbox root; remove it or set "
                "TELECRM_SANDBOX_ROOT to another path"
            )
        while _debootstrap_running(staging):  # someone started it by hand: wait for it
            time.sleep(2)
        if staging.exists() and not _debootstrap_complete(staging):
            _safe_rmtree(staging)
        adopted = staging.exists()
        if not adopted:
            debootstrap = _tool("debootstrap")
            mirror = debian_mirror()
            if announce:
                announce(f"sandbox: building a Debian sid root with Asterisk in {root} "
                         "(about a minute, once)...")
            log = root.with_name(root.name + ".build.log")
            command = [debootstrap, "--variant=minbase", "--include=" + ",".join(PACKAGES),
                       "sid", str(staging), mirror]
            with open(log, "w") as out:
                result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT)
            if result.returncode != 0 or not _debootstrap_complete(staging):
                tail = log.read_text(errors="replace").strip().splitlines()[-5:]
                raise SandboxError(
                    f"debootstrap failed (exit {result.returncode}, log {log}): "
                    + " | ".join(tail)
                )
        # The package's files belong to the chroot's "asterisk" user; we run as root.
        subprocess.run(
            [_tool("chroot"), str(staging), "chown", "-R", "root:root", "/etc/asterisk",
             "/var/lib/asterisk", "/var/log/asterisk", "/var/spool/asterisk"],
            check=True, capture_output=True,
        )
        version = subprocess.run(
            [_tool("chroot"), str(staging), "/usr/sbin/asterisk", "-V"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        (staging / INSTANCES_DIR).mkdir(parents=True, exist_ok=True)
        (staging / READY_MARKER).write_text(version + "\n")
        os.rename(staging, root)
    return BuildResult(root, version, False, time.monotonic() - started, adopted)


def ensure_built(root: Path | None = None) -> Path:
    """The ready root, building it first if needed (raises SandboxUnavailable/SandboxError)."""
    return build(root).root


# ---------------------------------------------------------------- processes in the root


def processes_in_root(root: Path) -> list[int]:
    """PIDs of every process chrooted into ``root`` (how "another instance runs" is known)."""
    target = str(root.resolve())
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(proc / "root") == target:
                    pids.append(int(proc.name))
    return pids


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True


def proc_mounted(root: Path) -> bool:
    """Is ROOT/proc mounted?"""
    return str((root / "proc").resolve()) in _mounts_under(root)


def _mount_proc(root: Path) -> None:
    if not proc_mounted(root):
        result = subprocess.run(
            [_tool("mount"), "-t", "proc", "proc", str(root / "proc")],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise SandboxUnavailable(
                f"cannot mount /proc in the sandbox root: {result.stderr.strip()}"
            )


def _unmount_proc_if_unused(root: Path) -> None:
    """Unmount ROOT/proc unless another process (another instance) still runs in the root."""
    with _locked(root.with_name(root.name + ".mount.lock")):
        if proc_mounted(root) and not processes_in_root(root):
            umount = _tool("umount")
            if subprocess.run([umount, str(root / "proc")], capture_output=True).returncode:
                subprocess.run([umount, "-l", str(root / "proc")], capture_output=True)


def _set_parent_death_signal() -> None:
    """Child side of fork: get SIGTERM if the Python parent dies, so no orphan PBX lingers."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_ports(tcp: int, udp: int) -> tuple[list[int], list[int]]:
    """Ports the kernel says are free on loopback (never 5038/5060: those are ephemeral)."""
    sockets: list[socket.socket] = []
    try:
        found: dict[int, list[int]] = {socket.SOCK_STREAM: [], socket.SOCK_DGRAM: []}
        for kind, count in ((socket.SOCK_STREAM, tcp), (socket.SOCK_DGRAM, udp)):
            while len(found[kind]) < count:
                sock = socket.socket(socket.AF_INET, kind)
                sockets.append(sock)
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
                if port in (5038, 5060):
                    continue
                found[kind].append(port)
        return found[socket.SOCK_STREAM], found[socket.SOCK_DGRAM]
    finally:
        for sock in sockets:
            sock.close()


def _rtp_range(avoid: set[int]) -> tuple[int, int]:
    """A block of RTP ports below the kernel's ephemeral range, unlikely to clash.

    Asterisk retries another port of the range when one is taken, so a partial
    overlap with a concurrent run costs nothing; a random start makes it rare.
    """
    while True:
        start = random.randrange(20000, 32000 - _RTP_BLOCK, 2)
        end = start + _RTP_BLOCK
        if not any(start <= port <= end for port in avoid):
            return start, end


def _tcp_port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


def _holds_port(pid: int, kind: str, port: int) -> bool:
    """Does process ``pid`` itself have a socket bound to loopback ``port`` (``kind``:
    "udp" or "tcp", listening)?

    A port free when picked may be taken meanwhile by another sandbox's Asterisk; this
    one then runs without it (a log line), and the port still answers: the other's.
    Its SIP requests would reach the other sandbox's phones, whose settings differ.
    """
    wanted = f"0100007F:{port:04X}"
    try:
        rows = Path(f"/proc/{pid}/net/{kind}").read_text().splitlines()[1:]
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    inodes = {f"socket:[{row.split()[9]}]" for row in rows
              if row.split()[1] == wanted and (kind == "udp" or row.split()[3] == "0A")}
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(fd) in inodes:
                return True
    return False


# ---------------------------------------------------------------- one Asterisk process


class AsteriskInstance:
    """One Asterisk process in the shared root, with its own directories and ports.

    Its files live in ``ROOT/srv/telecrm/<name>-<random>/`` (etc, run, spool, lib,
    log, cache). ``stop()`` removes that directory but keeps the recordings
    (``monitor_dir``) for the caller; ``discard()`` removes them too.
    """

    def __init__(
        self,
        root: Path,
        name: str,
        files: dict[str, str],
        *,
        ami_port: int,
        ami_user: str,
        ami_secret: str,
        sip_port: int,
        rtp_range: tuple[int, int],
    ) -> None:
        self.root = root
        self.name = f"{name}-{secrets.token_hex(4)}"
        self.files = files
        self.ami_host = "127.0.0.1"
        self.ami_port = ami_port
        self.ami_user = ami_user
        self.ami_secret = ami_secret
        self.sip_port = sip_port
        self.rtp_range = rtp_range
        self.inner_dir = f"/{INSTANCES_DIR}/{self.name}"  # as Asterisk sees it
        self.dir = root / INSTANCES_DIR / self.name  # as the host sees it
        self.conf = f"{self.inner_dir}/etc/asterisk.conf"
        self.monitor_dir = self.dir / "spool" / "monitor"
        self.log_path = self.dir / "log" / "asterisk.out"
        self.pid: int | None = None
        self.state: dict[str, Any] = {}  # what instance.json said (from_state)
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return (f"<AsteriskInstance {self.name} pid={self.pid} ami={self.ami_port} "
                f"sip={self.sip_port}>")

    # -- control

    def rx(self, command: str, timeout: float = 15) -> str:
        """Run one CLI command (``asterisk -rx``) and return its output."""
        result = subprocess.run(
            [_tool("chroot"), str(self.root), "/usr/sbin/asterisk", "-C", self.conf, "-rx",
             command],
            capture_output=True, text=True, timeout=timeout,
        )
        if result.returncode != 0:
            raise SandboxError(f"{self.name}: 'asterisk -rx {command}' failed: "
                               f"{(result.stderr or result.stdout).strip()}")
        return result.stdout

    def active_channels(self) -> int:
        """How many channels exist right now."""
        output = self.rx("core show channels count")
        for line in output.splitlines():
            if "active channel" in line:
                return int(line.split()[0])
        raise SandboxError(f"{self.name}: unexpected 'core show channels count': {output!r}")

    @property
    def running(self) -> bool:
        """Is the Asterisk process alive?"""
        return _pid_alive(self.pid)

    def spawn(self, *, owned: bool = True) -> None:
        """Create the directories and start Asterisk (returns before it finished booting).

        ``owned``: the process gets SIGTERM when this Python process dies (unless
        started from a thread other than the main one, whose end would kill it).
        """
        for sub in ("etc", "run", "spool/monitor", "lib/keys", "log/cdr-csv", "cache"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        # Start from the package's stock files, like an admin's /etc/asterisk, then
        # lay the rendered ones over them: core files we do not ship (indications,
        # cdr, ccss, ...) keep their defaults instead of logging errors.
        for stock in (self.root / "etc/asterisk").iterdir():
            if stock.is_file() and stock.name not in _STOCK_SKIPPED:
                shutil.copyfile(stock, self.dir / "etc" / stock.name)
        _fix_root(self.root)
        moddir = _module_dir(self.root)
        config = {"asterisk.conf": render_template(
            template_text("sandbox", "asterisk.conf"), {"dir": self.inner_dir, "moddir": moddir}
        ), **self.files}
        for file_name, text in config.items():
            (self.dir / "etc" / file_name).write_text(text)
        die_with_parent = owned and threading.current_thread() is threading.main_thread()
        with _locked(self.root.with_name(self.root.name + ".mount.lock")):
            _mount_proc(self.root)
            with open(self.log_path, "ab") as log:
                self._process = subprocess.Popen(
                    [_tool("chroot"), str(self.root), "/usr/sbin/asterisk", "-f", "-n",
                     "-C", self.conf],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_set_parent_death_signal if die_with_parent else None,
                )
            self.pid = self._process.pid
            # Hold the lock until the process is inside the root, so a concurrent
            # stop() elsewhere sees it and leaves /proc mounted.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self._process.poll() is None:
                if self.pid in processes_in_root(self.root):
                    break
                time.sleep(0.01)
        self._write_state(owner=os.getpid() if owned else None)

    def wait_booted(self, timeout: float = 60) -> None:
        """Block until Asterisk is fully booted with its AMI and SIP ports listening."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise SandboxError(f"{self.name}: Asterisk exited while booting: "
                                   f"{self.log_tail()}")
            with contextlib.suppress(SandboxError, subprocess.TimeoutExpired):
                left = max(0.5, deadline - time.monotonic())
                if "fully booted" in self.rx("core waitfullybooted", timeout=left):
                    break
            if time.monotonic() > deadline:
                raise SandboxError(f"{self.name}: not booted after {timeout:.0f} s: "
                                   f"{self.log_tail()}")
            time.sleep(0.05)
        while not _tcp_port_open(self.ami_port):
            if time.monotonic() > deadline:
                raise SandboxError(f"{self.name}: AMI port {self.ami_port} is not listening")
            time.sleep(0.05)
        for kind, port in (("tcp", self.ami_port), ("udp", self.sip_port)):
            if not _holds_port(self.pid, kind, port):
                raise SandboxError(f"{self.name}: its {kind.upper()} port {port} is not "
                                   f"bound by it: {self.log_tail()}")

    def start(self, timeout: float = 60) -> None:
        """Spawn and wait until booted; on failure nothing is left running."""
        self.spawn()
        try:
            self.wait_booted(timeout)
        except BaseException:
            self.stop(keep_monitor=False)
            raise

    def stop(self, timeout: float = 10, *, keep_monitor: bool = True) -> None:
        """Stop Asterisk, remove its files (except recordings if asked), unmount if last."""
        self.request_stop()
        self.wait_stopped(timeout)
        self.cleanup(keep_monitor=keep_monitor)

    def request_stop(self) -> None:
        """Ask Asterisk to stop now (hanging up calls); returns at once."""
        if self.running:
            with contextlib.suppress(SandboxError, subprocess.TimeoutExpired):
                self.rx("core stop now", timeout=5)

    def wait_stopped(self, timeout: float = 10) -> None:
        """Wait for the process to end; SIGTERM then SIGKILL when it takes too long."""
        deadline = time.monotonic() + timeout
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None and self.running and self.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, sig)
                deadline = time.monotonic() + 3
            while self.running and time.monotonic() < deadline:
                if self._process is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self._process.wait(0.05)
                else:
                    time.sleep(0.05)
            if not self.running:
                break
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(1)
        if self.running:
            raise SandboxError(f"{self.name}: Asterisk (pid {self.pid}) does not stop")

    def cleanup(self, *, keep_monitor: bool = True) -> None:
        """Remove the instance's files; unmount the root's /proc if no process uses it."""
        if self.dir.exists():
            if keep_monitor and self.monitor_dir.exists():
                for child in self.dir.iterdir():
                    if child.name != "spool":
                        _remove(child)
                for child in (self.dir / "spool").iterdir():
                    if child != self.monitor_dir:
                        _remove(child)
                self._write_state(owner=None, stopped=True)
            else:
                _safe_rmtree(self.dir)
        _unmount_proc_if_unused(self.root)

    def discard(self) -> None:
        """Remove everything of a stopped instance, recordings included."""
        if self.running:
            raise SandboxError(f"{self.name} is still running")
        _safe_rmtree(self.dir)

    def log_tail(self, lines: int = 8) -> str:
        """The end of the instance's console log and messages log, for error messages."""
        text = []
        for path in (self.log_path, self.dir / "log" / "messages.log"):
            with contextlib.suppress(OSError):
                text += path.read_text(errors="replace").strip().splitlines()[-lines:]
        return " | ".join(text) or "(no log)"

    def _write_state(self, *, owner: int | None, stopped: bool = False) -> None:
        state = {
            "name": self.name, "pid": self.pid, "owner_pid": owner, "stopped": stopped,
            "conf": self.conf, "ami_host": self.ami_host, "ami_port": self.ami_port,
            "ami_user": self.ami_user, "ami_secret": self.ami_secret,
            "sip_port": self.sip_port, "rtp_range": list(self.rtp_range),
            "monitor_dir": str(self.monitor_dir), "created": time.time(),
        }
        (self.dir / "instance.json").write_text(json.dumps(state, indent=1))

    @classmethod
    def from_state(cls, root: Path, directory: Path) -> AsteriskInstance | None:
        """Rebuild a handle on an instance from its ``instance.json`` (CLI stop/status)."""
        try:
            state = json.loads((directory / "instance.json").read_text())
        except (OSError, ValueError):
            return None
        instance = cls(root, "x", {}, ami_port=state["ami_port"], ami_user=state["ami_user"],
                       ami_secret=state["ami_secret"], sip_port=state["sip_port"],
                       rtp_range=tuple(state["rtp_range"]))
        instance.name = state["name"]
        instance.inner_dir = f"/{INSTANCES_DIR}/{instance.name}"
        instance.dir = directory
        instance.conf = state["conf"]
        instance.monitor_dir = directory / "spool" / "monitor"
        instance.log_path = directory / "log" / "asterisk.out"
        pid = state.get("pid")
        instance.pid = pid if pid in processes_in_root(root) else None
        instance.state = state
        return instance


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        _safe_rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _fix_root(root: Path) -> None:
    """Small repairs of the Debian root, cheap and idempotent (also for older roots)."""
    # The stock musiconhold.conf points at a directory only the MoH packages create.
    (root / "usr/share/asterisk/moh").mkdir(exist_ok=True)
    # Without /etc/hosts Asterisk resolves its own host name through DNS at boot
    # (and falls back to A.ROOT-SERVERS.NET), which fails or hangs offline.
    hosts = root / "etc/hosts"
    name = socket.gethostname()
    with contextlib.suppress(OSError):
        if name not in hosts.read_text().split():
            hosts.unlink()
    if not hosts.exists():
        hosts.write_text(f"127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n::1\tlocalhost\n")


def _module_dir(root: Path) -> str:
    found = sorted(glob.glob(str(root / "usr/lib/*/asterisk/modules")))
    if not found:
        raise SandboxError(f"no Asterisk modules directory in {root}")
    return "/" + str(Path(found[0]).relative_to(root))


def collect_stale(root: Path) -> list[str]:
    """Clean up after runs that died: orphaned processes and old leftovers. Returns names.

    Other runs start and stop sandboxes at the same time (one per test process): an
    instance that vanishes while it is looked at was theirs to remove, and is skipped.
    """
    removed = []
    base = root / INSTANCES_DIR
    if not base.is_dir():
        return removed
    now = time.time()
    for directory in base.iterdir():
        try:
            name = _collect_one(root, directory, now)
        except FileNotFoundError:
            continue
        if name is not None:
            removed.append(name)
    return removed


def _collect_one(root: Path, directory: Path, now: float) -> str | None:
    """The name of ``directory``'s instance if it was stale and is now cleaned up."""
    instance = AsteriskInstance.from_state(root, directory)
    age = now - directory.stat().st_mtime
    if instance is None:
        if age > 3600:  # a start that died before writing its state
            _remove(directory)
            return directory.name
        return None
    owner = instance.state.get("owner_pid")
    if instance.running:
        if owner and not _pid_alive(owner):
            instance.request_stop()
            instance.wait_stopped(5)
            instance.cleanup(keep_monitor=True)
            return instance.name
        return None
    if not instance.state.get("stopped") or age > STALE_AFTER:
        with contextlib.suppress(SandboxError):
            if age > STALE_AFTER:
                instance.discard()
            else:
                instance.cleanup(keep_monitor=True)
            return instance.name
    return None


# ---------------------------------------------------------------- the sandbox


class Sandbox:
    """The PBX (the product's own configuration) plus the phones instance, on loopback.

    Use as a context manager (``with Sandbox() as sb:``) or call ``start()`` and
    ``stop()``; both are blocking, so an asyncio program should run them in a
    thread or accept a few seconds' block at start-up.
    """

    def __init__(self, config: PbxConfig | None = None, *, root: Path | None = None,
                 boot_timeout: float = 60, profile: str = "telecrm") -> None:
        """``profile``: ``telecrm`` (the product's configuration, from ``config``) or
        ``foreign`` (``asterisk_conf.foreign``: a FreePBX-style PBX not configured by
        us; of ``config`` only the timeouts apply)."""
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}, not {profile!r}")
        self.profile = profile
        self.base_config = config or PbxConfig()
        self.base_config.validate()
        self.root = (root or sandbox_root()).absolute()
        self.boot_timeout = boot_timeout
        self.config: PbxConfig | None = None  # the PBX's effective config, once started
        self.pbx: AsteriskInstance | None = None
        self.phones_instance: AsteriskInstance | None = None

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, *, owned: bool = True) -> Sandbox:
        """Build the root if needed, then boot both instances; raises SandboxUnavailable."""
        _require_root()
        build(self.root)
        collect_stale(self.root)
        for attempt in range(3):  # a port picked as free may be taken before Asterisk binds
            self._prepare()
            assert self.pbx and self.phones_instance
            try:
                for instance in (self.pbx, self.phones_instance):
                    instance.spawn(owned=owned)
                for instance in (self.pbx, self.phones_instance):
                    instance.wait_booted(self.boot_timeout)
                return self
            except SandboxError:
                self.stop(keep_monitor=False)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _prepare(self) -> None:
        (pbx_ami, phones_ami), (pbx_sip, phones_sip) = _free_ports(2, 2)
        pbx_rtp = _rtp_range({pbx_sip, phones_sip})
        phones_rtp = _rtp_range(set(range(pbx_rtp[0], pbx_rtp[1] + 1)) | {pbx_sip, phones_sip})
        config = dataclasses.replace(
            self.base_config,
            ami_bind="127.0.0.1", ami_port=pbx_ami,
            ami_permit=["127.0.0.1/255.255.255.255"],
            sip_bind="127.0.0.1", sip_port=pbx_sip,
            carrier_host="127.0.0.1", carrier_port=phones_sip,
            phones_contact_host="127.0.0.1", phones_contact_port=phones_sip,
            rtp_start=pbx_rtp[0], rtp_end=pbx_rtp[1],
        )
        pbx_files = render_pbx_config(config)
        phones = [*config.managers, *config.supervisors]
        if self.profile == "foreign":
            passwords = {p.device: secrets.token_hex(8) for p in FOREIGN_PHONES}
            pbx_files = {
                **{name: pbx_files[name] for name in ("modules.conf", "logger.conf")},
                **render_foreign_config(
                    ami_port=pbx_ami, ami_user=config.ami_user, ami_secret=config.ami_secret,
                    sip_port=pbx_sip, carrier_port=phones_sip, phones_port=phones_sip,
                    secrets=passwords, rtp_start=pbx_rtp[0], rtp_end=pbx_rtp[1],
                    ring_timeout=config.ring_timeout, group_timeout=config.group_timeout,
                    outbound_timeout=config.outbound_timeout)}
            phones = list(passwords.items())
        phones_secret = secrets.token_hex(8)
        phones_files = render_phones_config(
            sip_port=phones_sip, pbx_sip_port=pbx_sip, ami_port=phones_ami, ami_user="phones",
            ami_secret=phones_secret, phones=phones,
            rtp_start=phones_rtp[0], rtp_end=phones_rtp[1],
            common={name: pbx_files[name] for name in ("modules.conf", "logger.conf")},
        )
        self.config = config
        self.pbx = AsteriskInstance(
            self.root, "pbx", pbx_files, ami_port=pbx_ami, ami_user=config.ami_user,
            ami_secret=config.ami_secret, sip_port=pbx_sip, rtp_range=pbx_rtp,
        )
        self.phones_instance = AsteriskInstance(
            self.root, "phones", phones_files, ami_port=phones_ami, ami_user="phones",
            ami_secret=phones_secret, sip_port=phones_sip, rtp_range=phones_rtp,
        )

    def stop(self, *, keep_monitor: bool = True) -> None:
        """Stop both instances (calls are cut); recordings stay in ``pbx.monitor_dir``."""
        instances = [i for i in (self.phones_instance, self.pbx) if i is not None]
        for instance in instances:
            instance.request_stop()
        errors = []
        for instance in instances:
            try:
                instance.wait_stopped()
            except SandboxError as exc:
                errors.append(str(exc))
        for instance in instances:
            instance.cleanup(keep_monitor=keep_monitor and instance is self.pbx)
        if errors:
            raise SandboxError("; ".join(errors))

    def discard_recordings(self) -> None:
        """Remove what ``stop()`` kept (the PBX's recordings)."""
        for instance in (self.pbx, self.phones_instance):
            if instance is not None:
                instance.discard()

    @property
    def monitor_dir(self) -> Path:
        """Host path of the PBX's recordings (Asterisk's monitor directory)."""
        if self.pbx is None:
            raise SandboxError("the sandbox is not started")
        return self.pbx.monitor_dir

    def phones(self, *, action_timeout: float = 10) -> Phones:
        """A driver for the phones instance (``async with sandbox.phones() as phones:``)."""
        if self.pbx is None or self.phones_instance is None:
            raise SandboxError("the sandbox is not started")
        ph = self.phones_instance
        pbx = self.pbx
        return Phones(ph.ami_host, ph.ami_port, ph.ami_user, ph.ami_secret,
                      also_idle=[AmiLogin(pbx.ami_host, pbx.ami_port, pbx.ami_user,
                                          pbx.ami_secret)],
                      action_timeout=action_timeout)


# ---------------------------------------------------------------- command line


def _instances(root: Path) -> list[AsteriskInstance]:
    base = root / INSTANCES_DIR
    found = []
    if base.is_dir():
        for directory in sorted(base.iterdir()):
            instance = AsteriskInstance.from_state(root, directory)
            if instance is not None:
                found.append(instance)
    return found


def main(argv: list[str] | None = None) -> int:
    """``python -m asterisk_conf.sandbox build|start|stop|status``."""
    parser = argparse.ArgumentParser(
        prog="python -m asterisk_conf.sandbox",
        description="The sandbox Asterisk (Debian sid root) for telecrm's demo and tests.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build the Debian root with Asterisk once (cached)")
    sub.add_parser("start", help="start the PBX and the phones in the background")
    stop = sub.add_parser("stop", help="stop what 'start' started")
    stop.add_argument("--all", action="store_true", help="also instances of test runs")
    sub.add_parser("status", help="show the root and the running instances")
    args = parser.parse_args(argv)
    root = sandbox_root()
    try:
        if args.command == "build":
            result = build(root, announce=lambda line: print(line, file=sys.stderr, flush=True))
            print(result.describe())
        elif args.command == "start":
            sandbox = Sandbox(root=root).start(owned=False)
            assert sandbox.pbx and sandbox.phones_instance and sandbox.config
            pbx, ph = sandbox.pbx, sandbox.phones_instance
            print(f"PBX: AMI {pbx.ami_host}:{pbx.ami_port} user {pbx.ami_user} secret "
                  f"{pbx.ami_secret}, SIP 127.0.0.1:{pbx.sip_port}, recordings {pbx.monitor_dir}")
            print(f"phones: AMI {ph.ami_host}:{ph.ami_port} user {ph.ami_user} secret "
                  f"{ph.ami_secret}, SIP 127.0.0.1:{ph.sip_port}")
            print(f"CLI: chroot {root} asterisk -C {pbx.conf} -r")
        elif args.command == "stop":
            stopped = []
            for instance in _instances(root):
                owner = instance.state.get("owner_pid")
                if instance.running and (args.all or owner is None):
                    # Keep the PBX's recordings; the phones instance records nothing.
                    instance.stop(keep_monitor=instance.name.startswith("pbx-"))
                    stopped.append(instance.name)
            _unmount_proc_if_unused(root)
            print(f"sandbox: stopped {', '.join(stopped) or 'nothing'}")
        elif args.command == "status":
            if not _is_ready(root):
                print(f"sandbox: not built ({root})")
                return 0
            print(f"sandbox: {_asterisk_version(root)} in {root}; /proc "
                  f"{'mounted' if proc_mounted(root) else 'not mounted'}")
            for instance in _instances(root):
                state = "running" if instance.running else "stopped"
                print(f"  {instance.name}: {state}, AMI {instance.ami_port}, "
                      f"SIP {instance.sip_port}, recordings {instance.monitor_dir}")
    except SandboxUnavailable as exc:
        # Not an error for `make`: the tests that need Asterisk skip with this reason.
        print(f"sandbox: unavailable here: {exc}")
        return 0 if args.command in ("build", "status") else 1
    except SandboxError as exc:
        print(f"sandbox: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
