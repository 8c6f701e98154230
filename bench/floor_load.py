"""A sales floor through nginx: event streams, page views and real calls at once.

The real parts: PostgreSQL, Redis, the sandbox PBX with its phones, one
``telecrm serve --listener``, and Debian's nginx with ``deploy/nginx/`` in front of N
``telecrm serve --web`` processes. The load, for ``--seconds`` each:

- ``--managers`` signed-in managers (500), each with his event stream open
  (``/api/events`` through nginx); the first ``--calls`` of them have a phone on
  the sandbox PBX and a DID of their own, the others a phone nobody calls;
- ``--rate`` page views a second (50) by those sessions, open loop from a child
  process: client card (half), call log (three in ten), tasks (one in five);
- ``--calls`` concurrent real calls (30): each calling manager's client calls his DID
  again as soon as the previous call ended; the phone answers after a second. The
  lines start one after another over one call's length before the pages begin, so the
  calls are all in progress while pages are timed and end one after another.

Before the timed load, ``--warm-up`` page views (60) go one at a time, unmeasured: a
process's first pages compile its statements and templates. Each server (the Telecrm
processes, nginx, Redis) runs in a session of its own, as systemd runs each service:
Linux shares the cores between sessions first, so servers sharing the bench's session
would share one portion against the PBX's and each database backend's. The page p99 is
also printed for each 10 s of the load, to tell a start-up queue from a steady one, and
beside it the whole machine's busy, I/O-wait and stolen cores in the same 10 s, to tell
a stall of the machine from a queue in one process.

Screen pop delay: the ``ringing`` event as the listener published it to Redis (the bench
subscribes to the phones' topics as a web process does) to the ``screenpop`` frame on
that manager's stream, on this machine's monotonic clock; beside it the same from the
PBX's own event time. Lost: a ringing event whose pop never reached its manager's stream.
Every process's ``/metrics`` is scraped every 2 s with the scraper's token. The same
set-up with one web process (the baseline) runs in the same invocation, on the same
database, Redis and PBX.

    .venv/bin/python bench/floor_load.py                # 500 managers, 50 pages/s, 30 calls
    .venv/bin/python bench/floor_load.py --quick        # 40 managers, 10 pages/s, 4 calls

Targets: page p99 < 500 ms, screen pop p99 < 1 s (the deployment test's deadline), no
lost event.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import multiprocessing
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from asterisk_conf.render import PbxConfig
from asterisk_conf.sandbox import Sandbox
from bench._common import Databases, quiet_logs
from crm_core.calls.services import record_calls
from crm_core.calls.snapshot import CallData, LegData
from crm_core.clients.services import create_client
from crm_core.db import create_engine, session_factory
from crm_core.people.sessions import create_session
from crm_core.people.users import add_user
from crm_core.tasks.services import create_task
from telecrm.bus import RedisBus
from telecrm.passwords import hash_password
from telecrm.web.config import SESSION_COOKIE
from telecrm.wiring import call_hooks
from tests.support.browser import free_port
from tests.support.live import TELECRM
from tests.support.nginx import Process, nginx_site, running, status_of, until
from tests.support.redis_server import RedisServer

HOOKS = call_hooks()
ACTIVE = "election listener:main: this process is now the active one"
METRICS_TOKEN = "bench-scraper-token"
PAGE_P99_TARGET_MS = 500.0
POP_P99_TARGET_MS = 1000.0
SCRAPE_EVERY_S = 2.0
IDLE_S = 10.0  # streams open, nothing else: what they cost the processes
PAGES = (("client card", 5), ("call log", 3), ("tasks", 2))  # kind, weight
WINDOW_S = 10.0  # the page p99 is also printed for each such part of the load
# at one moment: monotonic time, each served process's CPU seconds, each program's, the
# machine's busy and total core-seconds, and each served process's seconds waiting to run
Snapshot = tuple[float, dict[str, float], dict[str, float], tuple[float, float],
                 dict[str, float]]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else \
        float("nan")


# -- the floor -----------------------------------------------------------------------------------

@dataclass
class Manager:
    username: str
    extension: str
    token: str = ""
    clients: list[int] = field(default_factory=list)
    caller: str = ""  # his calling client's number, as the carrier sends it (digits)
    did: str = ""  # his own DID, calling managers only


def calling_extension(i: int) -> str:
    return f"4{i + 1:02d}"


def floor(managers: int, calls: int) -> list[Manager]:
    """Who is on the floor: the first ``calls`` managers have sandbox phones (401...)."""
    people = []
    for i in range(managers):
        calling = i < calls
        people.append(Manager(
            username=f"m{i:03d}", extension=calling_extension(i) if calling else f"{5000 + i}",
            caller=f"7916{2_000_000 + i:07d}" if calling else "",
            did=f"74952220{calling_extension(i)}" if calling else ""))
    return people


def pbx_config(people: list[Manager]) -> PbxConfig:
    """The product's configuration with a phone and a DID for every calling manager."""
    base = PbxConfig()
    calling = [m for m in people if m.did]
    return PbxConfig(managers=[*base.managers, *((m.extension, f"bench-{m.extension}")
                                                 for m in calling)],
                     dids={**base.dids, **{m.did: m.extension for m in calling}})


def _history_call(linkedid: str, manager: Manager, number: str, start: datetime,
                  answered: bool) -> CallData:
    talk = 95.0 if answered else 0.0
    ring = start + timedelta(seconds=3)
    legs = (
        LegData(uniqueid=f"{linkedid}-c", channel="PJSIP/carrier-0001", role="client",
                extension=None, started_at=start, answered_at=ring if answered else None,
                ended_at=ring + timedelta(seconds=talk), talk_seconds=talk),
        LegData(uniqueid=f"{linkedid}-m", channel=f"PJSIP/{manager.extension}-0001",
                role="manager", extension=manager.extension, started_at=start,
                answered_at=ring if answered else None,
                ended_at=ring + timedelta(seconds=talk), talk_seconds=talk))
    return CallData(
        linkedid=linkedid, direction="inbound", status="answered" if answered else "missed",
        client_number=number, did="+74951110002", started_at=start,
        answered_at=ring if answered else None, ended_at=ring + timedelta(seconds=talk),
        ring_seconds=3.0, talk_seconds=talk, transferred=False,
        managers=(manager.extension,) if answered else (), recordings=(), legs=legs,
        rang=(manager.extension,))


async def seed(url: str, people: list[Manager], history: int) -> None:
    """Managers in teams of 20, two clients and a task each, ``history`` calls each, and a
    web session each (as signing in makes it: the bench holds the cookie)."""
    engine = create_engine(url)
    sessions = session_factory(engine, writer=True)
    hashed = hash_password("bench-password", "light")
    now = datetime.now(UTC)
    try:
        async with sessions() as session, session.begin():
            for i, m in enumerate(people):
                user = await add_user(session, m.username, name=f"Менеджер {i + 1}",
                                      role="manager", extension=m.extension,
                                      team=f"Группа {i // 20 + 1}", password_hash=hashed,
                                      created_at=now - timedelta(days=365))
                for j in range(2):
                    phone = f"+{m.caller}" if j == 0 and m.caller else \
                        f"+7926{3_000_000 + i * 2 + j:07d}"
                    client = await create_client(session, f"ООО Нагрузка {i + 1}-{j + 1}",
                                                 phones=[phone], owner_id=user.id,
                                                 actor="bench")
                    m.clients.append(client.id)
                await create_task(session, kind="callback", title="Перезвонить по счёту",
                                  client_id=m.clients[0], assignee_id=user.id,
                                  due_at=now + timedelta(days=1), created_by_id=user.id)
                m.token = (await create_session(session, user, timedelta(hours=12))).token
        batch: list[CallData] = []
        for i, m in enumerate(people):
            number = f"+{m.caller}" if m.caller else f"+7926{3_000_000 + i * 2:07d}"
            for k in range(history):
                start = now - timedelta(hours=2 + 20 * k, minutes=i % 60)
                batch.append(_history_call(f"bench-{i}-{k}", m, number, start, k % 4 != 3))
        for chunk in range(0, len(batch), 200):
            async with sessions() as session, session.begin():
                await record_calls(session, batch[chunk:chunk + 200], hooks=HOOKS)
    finally:
        await engine.dispose()


# -- page views, from a child process -------------------------------------------------------------

def _page_views(base: str, visits: list[tuple[str, str, str]], rate: float, seconds: float,
                control: Any, out: Any) -> None:
    """Child process: ``rate`` page views a second on a fixed schedule from the moment the
    parent sends (monotonic, the same clock in both processes), once this child is ready.

    Each view is timed from its planned moment to its last byte (an open loop: a server
    that falls behind is charged for the queue it built), and from its sending.
    """
    async def run() -> list[tuple[str, int, float, float, float]]:
        results: list[tuple[str, int, float, float, float]] = []
        out.put("ready")
        start_at = await asyncio.to_thread(control.get)
        connector = aiohttp.TCPConnector(ssl=False, limit=100)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                         cookie_jar=aiohttp.DummyCookieJar()) as http:
            async def view(kind: str, token: str, path: str, planned: float) -> None:
                status = 0
                sent = time.monotonic()
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(base + path, allow_redirects=False,
                                        headers={"Cookie": f"{SESSION_COOKIE}={token}"}) as rsp:
                        await rsp.read()
                        status = rsp.status
                done = time.monotonic()
                results.append((kind, status, (done - planned) * 1000, (done - sent) * 1000,
                                planned - start_at))

            tasks = []
            count = int(rate * seconds)
            for i in range(count):
                planned = start_at + i / rate
                delay = planned - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                kind, token, path = visits[i % len(visits)]
                tasks.append(asyncio.create_task(view(kind, token, path, planned)))
            await asyncio.gather(*tasks)
        return results

    out.put(asyncio.run(run()))


async def warm_up(base: str, visits: list[tuple[str, str, str]]) -> float:
    """Ask for ``visits`` one at a time, unmeasured; returns the seconds it took.

    A web process's first pages compile their statements and templates (the first card
    50 ms of processor, the next ones 10-20): once in the process's life, as it starts
    taking traffic. Met by the full rate at once they start a queue, which the first 10 s
    of the load then show (p99 833 ms against 133-593 after); the run is about the
    floor's steady pages, not that one start.
    """
    started = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False),
                                     cookie_jar=aiohttp.DummyCookieJar()) as http:
        for _, token, path in visits:
            async with http.get(base + path, allow_redirects=False,
                                headers={"Cookie": f"{SESSION_COOKIE}={token}"}) as rsp:
                await rsp.read()
                if rsp.status != 200:
                    raise RuntimeError(f"warming up: {path} answered {rsp.status}")
    return time.monotonic() - started


def visits_of(people: list[Manager], count: int, seed_value: int = 7) -> list[tuple[str, str, str]]:
    """``count`` page views: (kind, session token, path), by the weights of PAGES."""
    rnd = random.Random(seed_value)
    kinds = [kind for kind, weight in PAGES for _ in range(weight)]
    out = []
    for _ in range(count):
        m = rnd.choice(people)
        kind = rnd.choice(kinds)
        path = {"client card": f"/clients/{rnd.choice(m.clients)}", "call log": "/calls",
                "tasks": "/tasks"}[kind]
        out.append((kind, m.token, path))
    return out


# -- metrics -------------------------------------------------------------------------------------

def parse_metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Samples of a Prometheus text page by (name, labels)."""
    from prometheus_client.parser import text_string_to_metric_families

    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **where: str) -> float:
    return sum(value for (n, labels), value in samples.items() if n == name and
               all(dict(labels).get(k) == v for k, v in where.items()))


class Scraper:
    """Every process's /metrics every 2 s, as the metrics scraper with its token."""

    def __init__(self, ports: dict[str, int]) -> None:
        self.ports = ports
        self.pages: dict[str, list[dict[tuple[str, tuple[tuple[str, str], ...]], float]]] = \
            defaultdict(list)
        self.failed = 0

    async def scrape(self) -> None:
        for name, port in self.ports.items():
            status, _, body = await status_of(
                f"http://127.0.0.1:{port}/metrics",
                headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
            if status == 200:
                self.pages[name].append(parse_metrics(body))
            else:
                self.failed += 1

    async def run(self) -> None:
        while True:
            await self.scrape()
            await asyncio.sleep(SCRAPE_EVERY_S)

    def moved(self, name: str, metric: str, **where: str) -> float:
        pages = self.pages[name]
        return total(pages[-1], metric, **where) - total(pages[0], metric, **where) \
            if pages else float("nan")

    def highest(self, name: str, metric: str, **where: str) -> float:
        return max((total(page, metric, **where) for page in self.pages[name]),
                   default=float("nan"))


# -- one phase: N web processes ------------------------------------------------------------------

@dataclass
class Phase:
    webs: int
    # kind, status, ms from its planned moment, ms from its sending, planned s into the load
    pages: list[tuple[str, int, float, float, float]] = field(default_factory=list)
    pops_ms: list[float] = field(default_factory=list)
    pops_from_pbx_ms: list[float] = field(default_factory=list)
    expected: int = 0
    lost: int = 0
    calls_placed: int = 0
    streams_open: int = 0
    streams_broken: int = 0
    reloads: int = 0
    refused: dict[int, int] = field(default_factory=dict)
    connect_s: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    cpu_s: float = 0.0
    idle_cores: dict[str, float] = field(default_factory=dict)  # streams open, nothing else
    busy_cores: dict[str, float] = field(default_factory=dict)  # under the load
    machine_cores: tuple[float, int] = (0.0, 0)  # busy, of how many, under the load
    program_cores: dict[str, float] = field(default_factory=dict)  # every program on it
    waited: dict[str, float] = field(default_factory=dict)  # s/s runnable, waiting for a core
    warm_up_s: float = 0.0
    # for each WINDOW_S of the load: cores busy, waiting for I/O, and stolen by the host
    machine_windows: list[tuple[float, float, float]] = field(default_factory=list)


class Streams:
    """Every manager's event stream through nginx, and when each screen pop arrived."""

    def __init__(self, base: str, people: list[Manager]) -> None:
        self.base = base
        self.people = people
        self.popped: dict[tuple[str, str], tuple[float, float]] = {}
        self.open: set[str] = set()
        self.broken = 0
        self.reloads = 0
        self.refused: Counter[int] = Counter()  # HTTP status of streams refused
        self.tasks: list[asyncio.Task[None]] = []
        self.http: aiohttp.ClientSession | None = None

    async def start(self) -> float:
        t0 = time.monotonic()
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=False, limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
            cookie_jar=aiohttp.DummyCookieJar())
        for i in range(0, len(self.people), 50):  # as a floor signs in: not all at once
            self.tasks += [asyncio.create_task(self._follow(m)) for m in self.people[i:i + 50]]
            opened = min(i + 50, len(self.people))
            try:
                await until(functools.partial(self._opened, opened), timeout=120,
                            what="event streams open")
            except AssertionError:
                raise RuntimeError(f"{len(self.open)} of {opened} event streams open; "
                                   f"refused: {dict(self.refused)}") from None
        return time.monotonic() - t0

    def _opened(self, count: int) -> bool:
        return len(self.open) >= count

    async def _follow(self, m: Manager) -> None:
        """His stream as the browser's EventSource keeps it: reconnect 2 s after it broke
        or was refused (the stream's own ``retry``)."""
        while True:
            await self._listen(m)
            await asyncio.sleep(2.0)

    async def _listen(self, m: Manager) -> None:
        assert self.http is not None
        try:
            async with self.http.get(f"{self.base}/api/events",
                                     headers={"Cookie": f"{SESSION_COOKIE}={m.token}"}) as rsp:
                if rsp.status != 200:
                    self.refused[rsp.status] += 1
                    return
                kind = ""
                async for raw in rsp.content:
                    line = raw.decode().rstrip("\n")
                    if line == ": connected":
                        self.open.add(m.username)
                    elif line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: ") and kind == "screenpop":
                        now, wall = time.monotonic(), time.time()
                        linkedid = json.loads(line[6:]).get("linkedid") or ""
                        self.popped.setdefault((m.extension, linkedid), (now, wall))
                    elif line.startswith("data: ") and kind == "reload":
                        self.reloads += 1
            self.broken += 1
        except asyncio.CancelledError:
            raise
        except Exception:
            self.broken += 1
        finally:
            self.open.discard(m.username)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.http is not None:
            await self.http.close()


class Ringing:
    """The ringing events of the calling phones as the listener published them to Redis."""

    def __init__(self, bus: RedisBus, extensions: set[str]) -> None:
        self.bus = bus
        self.extensions = extensions
        self.rang: dict[tuple[str, str], tuple[float, float]] = {}
        self.ended: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        subscription = await self.bus.subscribe("ext:4*")

        async def watch() -> None:
            async with subscription:
                async for event in subscription:
                    ext = event.get("extension")
                    if event.get("kind") == "ringing" and ext in self.extensions \
                            and event.get("direction") != "internal":
                        at = datetime.fromisoformat(event["at"]).timestamp() \
                            if event.get("at") else float("nan")
                        self.rang.setdefault((ext, event["linkedid"]), (time.monotonic(), at))
                    if event.get("kind") == "call_ended":
                        for e in event.get("rang", ()):
                            self.ended[e].set()

        self.task = asyncio.create_task(watch())

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


async def keep_calling(sandbox: Sandbox, calling: list[Manager], ringing: Ringing,
                       until_at: float, talk: float, spread: float) -> int:
    """Each calling manager's client calls his DID again as soon as his last call ended;
    the lines' first calls spread evenly over ``spread`` seconds."""
    placed = 0
    async with sandbox.phones() as phones:
        for m in calling:
            await phones.set_behaviour(m.extension, mode="answer", answer_after=1)

        async def line(i: int, m: Manager) -> None:
            nonlocal placed
            await asyncio.sleep(i * spread / len(calling))  # nor do a floor's calls
            while time.monotonic() < until_at:
                ringing.ended[m.extension].clear()
                await phones.client_calls(m.caller, m.did, talk=talk, ring_timeout=20)
                placed += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ringing.ended[m.extension].wait(), talk + 40)
                await asyncio.sleep(0.5)

        await asyncio.gather(*(line(i, m) for i, m in enumerate(calling)))
        await phones.wait_idle(timeout=talk + 60)
        await phones.reset_behaviours()
    return placed


async def run_phase(webs: int, args: argparse.Namespace, people: list[Manager], url: str,
                    redis_url: str, sandbox: Sandbox, root: Path) -> Phase:
    pbx = sandbox.pbx
    assert pbx is not None
    phase = Phase(webs)
    root.mkdir(parents=True)
    env = {**os.environ, "TELECRM_DATABASE_URL": url, "TELECRM_REDIS_URL": redis_url,
           "TELECRM_AMI_HOST": pbx.ami_host, "TELECRM_AMI_PORT": str(pbx.ami_port),
           "TELECRM_AMI_USER": pbx.ami_user, "TELECRM_AMI_SECRET": pbx.ami_secret,
           "TELECRM_RECORDINGS_SOURCE": str(pbx.monitor_dir),
           "TELECRM_HTTP_HOST": "127.0.0.1", "TELECRM_TRUSTED_PROXIES": "127.0.0.1",
           "TELECRM_METRICS_TOKEN": METRICS_TOKEN}

    def telecrm_process(name: str, *argv: str) -> Process:
        data = root / name
        data.mkdir()
        return Process(name, [TELECRM, "serve", *argv], {**env, "TELECRM_DATA_DIR": str(data)},
                       root)

    listener_port = free_port()
    web_ports = [free_port() for _ in range(webs)]
    listener = telecrm_process("listener", "--listener", "--port", str(listener_port))
    processes = [telecrm_process(f"web-{port}", "--web", "--port", str(port))
                 for port in web_ports]
    nginx = "/usr/sbin/nginx"
    site = nginx_site(nginx, root / "nginx", web_ports, (free_port(), free_port(), free_port()),
                      worker_connections=4 * len(people) + 1024)
    proxy = site.process(nginx, env, root)
    calling = [m for m in people if m.did]
    bus = RedisBus(redis_url)
    ringing = Ringing(bus, {m.extension for m in calling})
    streams = Streams(site.office, people)
    scraper = Scraper({"listener": listener_port,
                       **{f"web-{i + 1}": port for i, port in enumerate(web_ports)}})
    with running(listener, *processes, proxy):
        await until(lambda: ACTIVE in listener.text() and "connected to Asterisk AMI"
                    in listener.text(), timeout=60, what="the listener is active and connected")
        for port in web_ports:
            await until(functools.partial(_serves_login, f"http://127.0.0.1:{port}"),
                        timeout=60, what=f"the web process on {port}")
        await until(lambda: _serves_login(site.office), what="nginx passes the office on")
        cpu0 = _own_cpu()
        served = [listener, *processes, proxy]
        try:
            await ringing.start()
            phase.connect_s = await streams.start()
            # What the open streams alone cost: CPU of each process, nothing else going on.
            idle0, t0 = {p.name: _cpu_of(p) for p in served}, time.monotonic()
            await asyncio.sleep(IDLE_S)
            phase.idle_cores = {p.name: (_cpu_of(p) - idle0[p.name]) / (time.monotonic() - t0)
                                for p in served}
            phase.warm_up_s = await warm_up(site.office, visits_of(people, args.warm_up, 11))
            await scraper.scrape()
            def snapshot() -> Snapshot:
                return (time.monotonic(), {p.name: _cpu_of(p) for p in served},
                        _programs_cpu(), _machine_busy(),
                        {p.name: _waited_of(p) for p in served})

            async def snapshot_at(moment: float) -> Snapshot:
                await asyncio.sleep(max(0.0, moment - time.monotonic()))
                return snapshot()

            scraping = asyncio.create_task(scraper.run())
            ctx = multiprocessing.get_context("spawn")
            out, control = ctx.Queue(), ctx.Queue()
            visits = visits_of(people, int(args.rate * args.seconds))
            child = ctx.Process(target=_page_views, args=(site.office, visits, args.rate,
                                                          args.seconds, control, out))
            child.start()
            assert await asyncio.to_thread(out.get, True, 120) == "ready"
            # every line calls before the pages start, their first calls spread over one
            # call's length: 30 calls in progress the whole time, ending one after another
            # as a floor's do (not a burst of hang-ups every cycle)
            ramp = args.talk + 2
            start_at = time.monotonic() + ramp
            control.put(start_at)
            machine = asyncio.create_task(machine_by_window(start_at, args.seconds))
            # the processor figures cover the timed load only, not the calls' ramp before it
            load_start = asyncio.create_task(snapshot_at(start_at))
            phase.calls_placed = await keep_calling(
                sandbox, calling, ringing, start_at + args.seconds, args.talk, spread=ramp)
            phase.pages = await asyncio.to_thread(out.get, True, args.seconds + 120)
            t0, busy0, programs0, machine0, waited0 = await load_start
            t1, busy1, programs1, machine1, waited1 = snapshot()
            await asyncio.to_thread(child.join, 10)
            phase.machine_windows = await machine
            await asyncio.sleep(3)  # the last pops of the last calls
            scraping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await scraping
            await scraper.scrape()
            span = t1 - t0
            phase.busy_cores = {name: (busy1[name] - busy0[name]) / span for name in busy0}
            phase.waited = {name: (waited1[name] - waited0[name]) / span for name in waited0}
            phase.machine_cores = ((machine1[0] - machine0[0]) / span,
                                   round((machine1[1] - machine0[1]) / span))
            phase.program_cores = _programs_cores(programs0, programs1, span)
            phase.streams_open = len(streams.open)
        finally:
            phase.cpu_s = _own_cpu() - cpu0
            await streams.close()
            await ringing.close()
            await bus.close()
    for key, (rang_at, pbx_at) in ringing.rang.items():
        phase.expected += 1
        if key not in streams.popped:
            phase.lost += 1
            continue
        popped_at, popped_wall = streams.popped[key]
        phase.pops_ms.append((popped_at - rang_at) * 1000)
        phase.pops_from_pbx_ms.append((popped_wall - pbx_at) * 1000)
    phase.streams_broken, phase.reloads = streams.broken, streams.reloads
    phase.refused = dict(streams.refused)
    phase.metrics = _figures(scraper, webs)
    for process in (listener, *processes):
        if "Traceback" in process.text():
            print(f"  ! {process.name} logged a traceback; see {process.log}")
    return phase


def _cpu_of(process: Process) -> float:
    """CPU seconds (user + system) of a process so far, from /proc."""
    assert process.process is not None
    fields = Path(f"/proc/{process.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _waited_of(process: Process) -> float:
    """Seconds the process's threads have waited, runnable, for a core (/proc schedstat):
    a web process can be slow with a core to spare in the average, when every one of
    a page's statements waits its turn for a CPU after its answer came."""
    assert process.process is not None
    total = 0
    for task in Path(f"/proc/{process.process.pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def _programs_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of every live process on the machine, by program name,
    from /proc: where the machine's cores go beside the processes the bench started."""
    tick = os.sysconf("SC_CLK_TCK")
    out: defaultdict[str, float] = defaultdict(float)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        out[name] += (int(fields[11]) + int(fields[12])) / tick
    return dict(out)


def _machine_ticks() -> list[float]:
    """The machine's core-seconds so far by state, in /proc/stat's order: user, nice,
    system, idle, iowait, irq, softirq, steal."""
    line = Path("/proc/stat").read_text().split("\n")[0]
    return [int(v) / os.sysconf("SC_CLK_TCK") for v in line.split()[1:9]]


def _machine_times() -> tuple[float, float, float]:
    """Core-seconds of the whole machine so far: busy, waiting for I/O, stolen by the host."""
    ticks = _machine_ticks()
    return sum(ticks) - ticks[3] - ticks[4] - ticks[7], ticks[4], ticks[7]


async def machine_by_window(start_at: float, seconds: float) -> list[tuple[float, float, float]]:
    """The machine's busy, I/O-wait and stolen cores in each ``WINDOW_S`` of the load, to
    tell a stall of the whole machine from a queue in one process."""
    windows: list[tuple[float, float, float]] = []
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    before, at = _machine_times(), time.monotonic()
    while at < start_at + seconds - 1:
        await asyncio.sleep(max(0.0, start_at + (len(windows) + 1) * WINDOW_S - time.monotonic()))
        now, then = _machine_times(), time.monotonic()
        span = then - at
        windows.append(((now[0] - before[0]) / span, (now[1] - before[1]) / span,
                        (now[2] - before[2]) / span))
        before, at = now, then
    return windows


def _machine_busy() -> tuple[float, float]:
    """Busy and total core-seconds of the whole machine so far (/proc/stat)."""
    ticks = _machine_ticks()
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)  # idle and iowait are not busy


def _programs_cores(before: dict[str, float], after: dict[str, float], seconds: float,
                    top: int = 8) -> dict[str, float]:
    """The programs that used most cores between two :func:`_programs_cpu` readings (a
    process that ended in between is not counted: it is in the machine's total)."""
    used = {name: (after[name] - before.get(name, 0.0)) / seconds for name in after}
    return dict(sorted(((n, c) for n, c in used.items() if c >= 0.005),
                       key=lambda item: -item[1])[:top])


def _own_cpu() -> float:
    """CPU seconds of this process (streams, calls, scrapes); the page child is apart."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _figures(scraper: Scraper, webs: int) -> dict[str, Any]:
    names = [f"web-{i + 1}" for i in range(webs)]
    requests: Counter[str] = Counter()
    seconds: defaultdict[str, float] = defaultdict(float)
    for name in names:
        last = scraper.pages[name][-1] if scraper.pages[name] else {}
        for metric, labels in last:
            route = dict(labels).get("route", "")
            if metric == "telecrm_http_request_duration_seconds_count":
                requests[route] += int(scraper.moved(name, metric, **dict(labels)))
            elif metric == "telecrm_http_request_duration_seconds_sum":
                seconds[route] += scraper.moved(name, metric, **dict(labels))
    return {
        "events": scraper.moved("listener", "telecrm_ami_events_received_total"),
        "calls_max": scraper.highest("listener", "telecrm_calls_in_progress"),
        "hangups_stored": scraper.moved("listener", "telecrm_call_hangup_to_row_seconds_count"),
        "subscribers": {n: scraper.highest(n, "telecrm_event_stream_subscribers")
                        for n in names},
        "requests": {route: n for route, n in requests.most_common() if n},
        "server_ms": {route: round(1000 * seconds[route] / n, 1)
                      for route, n in requests.most_common() if n},
        "scrapes": sum(len(p) for p in scraper.pages.values()),
        "scrape_failures": scraper.failed,
    }


async def _serves_login(base: str) -> bool:
    status, _, body = await status_of(f"{base}/login")
    return status == 200 and "Вход" in body


# -- the report ----------------------------------------------------------------------------------

def report(phase: Phase, base: Phase | None, args: argparse.Namespace) -> None:
    ok = [ms for _, status, ms, _, _ in phase.pages if status == 200]
    failed = Counter(status for _, status, _, _, _ in phase.pages if status != 200)
    p50, p99 = statistics.median(ok) if ok else float("nan"), percentile(ok, 0.99)
    pop50, pop99 = (statistics.median(phase.pops_ms) if phase.pops_ms else float("nan"),
                    percentile(phase.pops_ms, 0.99))

    def ratio(value: float, other: float) -> str:
        return f"  (x{value / other:.2f} of one web process)" if base and other else ""

    base_ok = [ms for _, s, ms, _, _ in base.pages if s == 200] if base else []
    base_pops = base.pops_ms if base else []
    print(f"\n== {phase.webs} web process{'es' if phase.webs > 1 else ''} behind nginx ==")
    print(f"  streams: {len(args.people)} opened in {phase.connect_s:.1f} s, "
          f"{phase.streams_open} open at the end; {phase.streams_broken} broke and "
          f"{sum(phase.refused.values())} reconnects were refused {dict(phase.refused)} "
          f"(each reconnected 2 s later); "
          f"{phase.reloads} 'reload' frames (the bus dropped events)")
    print(f"  pages: {len(phase.pages)} offered at {args.rate:g}/s, {len(ok)} answered 200, "
          f"others {dict(failed) or 0}; before them {args.warm_up} one at a time, not "
          f"measured ({phase.warm_up_s:.1f} s)")
    print(f"  page time p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(ok, default=0):.1f} ms"
          + (ratio(p99, percentile(base_ok, 0.99)) if base_ok else "")
          + f"   target p99 < {PAGE_P99_TARGET_MS:.0f} ms: "
          + ("MET" if p99 < PAGE_P99_TARGET_MS else "NOT MET"))
    for kind, _ in PAGES:
        times = [ms for k, s, ms, _, _ in phase.pages if k == kind and s == 200]
        p50_kind = statistics.median(times) if times else float("nan")
        print(f"    {kind:<12} n={len(times):>5}  p50 {p50_kind:7.1f} ms  "
              f"p99 {percentile(times, 0.99):7.1f} ms")
    windows: dict[int, list[float]] = {}
    for _, status, ms, _, at in phase.pages:
        if status == 200:
            windows.setdefault(int(at // WINDOW_S), []).append(ms)
    print(f"    p99 by {WINDOW_S:g} s of the load: " + ", ".join(
        f"{percentile(times, 0.99):.0f}" for _, times in sorted(windows.items())) + " ms")
    if phase.machine_windows:
        busy, io, stolen = zip(*phase.machine_windows, strict=True)
        print(f"    the machine by {WINDOW_S:g} s, cores: busy "
              + ", ".join(f"{v:.2f}" for v in busy) + "; waiting for I/O "
              + ", ".join(f"{v:.2f}" for v in io) + "; stolen by the host "
              + ", ".join(f"{v:.2f}" for v in stolen))
    served = [ms for _, status, _, ms, _ in phase.pages if status == 200]
    print(f"  from sending (the client's own queue left out): p50 "
          f"{statistics.median(served) if served else float('nan'):.1f} ms, "
          f"p99 {percentile(served, 0.99):.1f} ms")
    print(f"  calls placed: {phase.calls_placed} ({len([m for m in args.people if m.did])} "
          f"lines, {args.talk:g} s of talk each)")
    print(f"  screen pops: {len(phase.pops_ms)} of {phase.expected} ringing events; "
          f"LOST {phase.lost}")
    print(f"  screen pop delay (Redis ringing -> SSE frame) p50 {pop50:.1f} ms, "
          f"p99 {pop99:.1f} ms, max {max(phase.pops_ms, default=0):.1f} ms"
          + (ratio(pop99, percentile(base_pops, 0.99)) if base_pops else "")
          + f"   target p99 < {POP_P99_TARGET_MS:.0f} ms: "
          + ("MET" if pop99 < POP_P99_TARGET_MS and phase.lost == 0 else "NOT MET"))
    if phase.pops_from_pbx_ms:
        print(f"  from the PBX's event time: p50 {statistics.median(phase.pops_from_pbx_ms):.1f}"
              f" ms, p99 {percentile(phase.pops_from_pbx_ms, 0.99):.1f} ms")
    m = phase.metrics
    print(f"  /metrics ({m['scrapes']} scrapes, {m['scrape_failures']} failed): AMI events "
          f"+{m['events']:.0f}, calls in progress max {m['calls_max']:.0f}, hang-ups stored "
          f"+{m['hangups_stored']:.0f}, stream subscribers max {m['subscribers']}")
    print(f"    HTTP latency histogram counts: {m['requests']}")
    print(f"    mean time inside the web processes (histogram sum/count), ms: {m['server_ms']}")
    print(f"  bench's own CPU (streams, calls, scrapes): {phase.cpu_s:.1f} s")

    def cores(figures: dict[str, float]) -> str:
        return ", ".join(f"{name} {value:.2f}" for name, value in figures.items())

    print(f"  cores used, streams open and nothing else ({IDLE_S:g} s): "
          f"{cores(phase.idle_cores)}")
    print(f"  cores used under the load: {cores(phase.busy_cores)}")
    print(f"  seconds a second each waited, runnable, for a core: {cores(phase.waited)}")
    print(f"  the machine under the load: {phase.machine_cores[0]:.2f} of "
          f"{phase.machine_cores[1]} cores busy; by program: {cores(phase.program_cores)}")


async def main_async(args: argparse.Namespace) -> int:
    people = args.people
    print(f"{len(people)} managers, {args.rate:g} page views/s, {args.calls} concurrent calls, "
          f"{args.seconds:g} s per set-up; web processes: {args.webs}; load {_load()}")
    with Databases() as dbs, RedisServer() as redis:
        if dbs.pg is None:
            print(f"PostgreSQL unavailable: {dbs.pg_error}")
            return 1
        url = await dbs.fresh("postgresql")
        t0 = time.monotonic()
        await seed(url, people, args.history)
        print(f"seeded in {time.monotonic() - t0:.1f} s "
              f"({len(people) * args.history} calls of history)")
        sandbox = Sandbox(pbx_config(people))
        await asyncio.to_thread(sandbox.start)
        try:
            root = Path(tempfile.mkdtemp(prefix="telecrm-floor-"))
            phases: dict[int, Phase] = {}
            for webs in args.webs:
                print(f"-- {webs} web process(es): running {args.seconds:g} s, load {_load()}",
                      flush=True)
                phases[webs] = await run_phase(webs, args, people, url, redis.url(), sandbox,
                                               root / f"webs-{webs}")
            for webs in args.webs:
                report(phases[webs], phases.get(1) if webs != 1 else None, args)
            print(f"\nload at the end: {_load()}")
        finally:
            await asyncio.to_thread(sandbox.stop)
            sandbox.discard_recordings()
    lost = sum(p.lost for p in phases.values())
    return 1 if lost else 0


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="40 managers, 10 pages/s, 4 calls, 20 s: a check that it all works")
    ap.add_argument("--managers", type=int)
    ap.add_argument("--rate", type=float, help="page views a second")
    ap.add_argument("--calls", type=int, help="concurrent calls")
    ap.add_argument("--seconds", type=float, help="load time per set-up")
    ap.add_argument("--talk", type=float, help="seconds each call talks")
    ap.add_argument("--history", type=int, default=6, help="past calls per manager")
    ap.add_argument("--webs", default="2,1", help="web processes per set-up, in order")
    ap.add_argument("--warm-up", type=int, default=60,
                    help="page views one at a time before the load, not measured (0: none)")
    args = ap.parse_args(argv)
    quick = dict(managers=40, rate=10.0, calls=4, seconds=20.0, talk=6.0)
    full = dict(managers=500, rate=50.0, calls=30, seconds=60.0, talk=20.0)
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if not 0 < args.calls <= min(args.managers, 99):
        ap.error("--calls: between 1 and 99, and at most --managers")
    args.webs = [int(n) for n in args.webs.split(",")]
    args.people = floor(args.managers, args.calls)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with quiet_logs():
        return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
