"""nginx with ``deploy/nginx/`` and ``telecrm`` processes on this machine, for the
multi-process test (tests/deploy/) and the floor load benchmark (bench/floor_load.py).

The deployment files are rendered with loopback ports and a self-signed certificate;
each process writes its own log file, which is how a caller waits for it to be ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.live import TELECRM

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


# -- the deployment files, rendered for this machine ------------------------------------------

def render_nginx(conf: str, *, web_ports: list[int], http_port: int, public_port: int,
                 office_port: int, cert: Path, key: Path) -> str:
    """``deploy/nginx/telecrm.conf`` with loopback addresses in place of the examples.

    Every substitution must hit exactly where the file says, so a change of the
    deployment file that the test no longer follows fails here, not silently.
    """
    def sub(pattern: str, replacement: str, text: str, count: int) -> str:
        result, hits = re.subn(pattern, replacement, text, flags=re.MULTILINE)
        assert hits == count, f"{pattern!r}: {hits} matches in deploy/nginx/telecrm.conf"
        return result

    servers = re.findall(r"^\s*server (\S+:\d+)( [^;]*)?;$", conf, flags=re.MULTILINE)
    assert servers, "the upstream lists the web processes"
    options = servers[0][1]
    ours = "".join(f"    server 127.0.0.1:{port}{options};\n" for port in web_ports)
    conf = sub(r"^\s*server \S+:\d+( [^;]*)?;\n", "", conf, len(servers))
    conf = sub(r"^(upstream telecrm_web \{\n)", rf"\g<1>{ours}", conf, 1)
    conf = sub(r"^    listen 80;", f"    listen 127.0.0.1:{http_port};", conf, 1)
    # The public face is the first server on 443, the office the second.
    conf = re.sub(r"^    listen 443 ssl", f"    listen 127.0.0.1:{public_port} ssl", conf,
                  count=1, flags=re.MULTILINE)
    conf = re.sub(r"^    listen 443 ssl", f"    listen 127.0.0.1:{office_port} ssl", conf,
                  count=1, flags=re.MULTILINE)
    assert "listen 443" not in conf and conf.count("listen 127.0.0.1:") == 3
    conf = sub(r"ssl_certificate\s+\S+;", f"ssl_certificate {cert};", conf, 2)
    conf = sub(r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {key};", conf, 2)
    # The office is this machine; the metrics scraper's address stays another one.
    return sub(r"^    allow 10\.0\.0\.0/8;", "    allow 127.0.0.1;", conf, 1)


def nginx_main_conf(prefix: Path, worker_connections: int = 512) -> str:
    """What /etc/nginx/nginx.conf holds around conf.d/telecrm.conf, with the prefix's paths.

    ``worker_connections``: an event stream holds two (browser side, web process side).
    """
    user = "user root root;\n" if os.geteuid() == 0 else ""  # workers read the test's files
    temp = "\n".join(f"    {kind}_temp_path {prefix / 'tmp' / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (f"{user}worker_processes 1;\npid {prefix / 'nginx.pid'};\n"
            f"error_log {prefix / 'error.log'} info;\n"
            f"events {{ worker_connections {worker_connections}; }}\n"
            "http {\n"
            f"    access_log {prefix / 'access.log'};\n{temp}\n"
            "    include conf.d/telecrm.conf;\n"
            "}\n")


def self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "crm.pem", directory / "crm.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=crm.office.example.com", "-keyout", str(key),
                    "-out", str(cert), "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def nginx_checks(nginx: str, prefix: Path, conf: Path) -> None:
    """``nginx -t``: the rendered configuration is one nginx accepts."""
    checked = subprocess.run([nginx, "-t", "-p", str(prefix), "-c", str(conf)],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


# -- the processes -------------------------------------------------------------------------------

class Process:
    """One ``telecrm`` (or nginx) process with its log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], root: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log = root / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        # A session of its own, as a service manager starts each service: Linux shares
        # the processor between sessions first (autogroup), so in the caller's session
        # every process started here would share one portion against the PBX and each
        # database backend (a session each), and wait for a core behind them.
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(self.args, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT if self.args[0] == TELECRM else signal.SIGQUIT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def running(*processes: Process) -> Iterator[None]:
    try:
        for process in processes:
            process.start()
        yield
    finally:
        for process in reversed(processes):
            process.stop()


async def until(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout} s: {what}")
        await asyncio.sleep(0.2)


async def status_of(url: str, method: str = "GET", **kwargs: Any) -> tuple[int, str, str]:
    """Status, content type and body; a fresh connection, none left open to a process."""
    with contextlib.suppress(aiohttp.ClientError):
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(
                ssl=False, force_close=True)) as http, \
                http.request(method, url, allow_redirects=False, **kwargs) as response:
            return response.status, response.content_type, await response.text()
    return 0, "", ""


def connections_to(port: int) -> int:
    """Established TCP connections to a local port (nginx's, to a web process)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as lines:
            for line in list(lines)[1:]:
                local, state = line.split()[1], line.split()[3]
                if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


@dataclass
class NginxSite:
    """A rendered nginx prefix: its main configuration and the three loopback faces."""

    prefix: Path
    main_conf: Path
    http_port: int
    public_port: int
    office_port: int

    @property
    def office(self) -> str:
        return f"https://127.0.0.1:{self.office_port}"

    @property
    def public(self) -> str:
        return f"https://127.0.0.1:{self.public_port}"

    def process(self, nginx: str, env: dict[str, str], root: Path) -> Process:
        return Process("nginx", [nginx, "-p", str(self.prefix), "-c", str(self.main_conf),
                                 "-g", "daemon off;"], env, root)


def nginx_site(nginx: str, prefix: Path, web_ports: list[int], ports: tuple[int, int, int],
               worker_connections: int = 512) -> NginxSite:
    """``deploy/nginx/`` rendered under ``prefix`` for ``web_ports``, checked by ``nginx -t``.

    ``ports``: plain HTTP, the public face and the office face.
    """
    http_port, public_port, office_port = ports
    (prefix / "conf.d").mkdir(parents=True)
    (prefix / "snippets").mkdir()
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "tmp" / kind).mkdir(parents=True)
    cert, key = self_signed(prefix)
    shutil.copy(DEPLOY / "nginx" / "telecrm-proxy.conf", prefix / "snippets")
    (prefix / "conf.d" / "telecrm.conf").write_text(render_nginx(
        (DEPLOY / "nginx" / "telecrm.conf").read_text(), web_ports=web_ports,
        http_port=http_port, public_port=public_port, office_port=office_port,
        cert=cert, key=key))
    main_conf = prefix / "nginx.conf"
    main_conf.write_text(nginx_main_conf(prefix, worker_connections))
    nginx_checks(nginx, prefix, main_conf)
    return NginxSite(prefix, main_conf, http_port, public_port, office_port)
