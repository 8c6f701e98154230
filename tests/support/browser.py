"""Helpers for the web tests: a seeded CRM, the app served on loopback, headless Chromium.

``seed_world`` writes a small sales floor: two teams, a user of every role, three
clients and a few calls (with a recording file), so role tests can check who sees
what. ``serve_app`` runs the real app factory on a free loopback port;
``serve_page`` serves a customer's site page (one carrying ``ct.js``) on another.
``signed_in`` is an HTTP client signed in as a seeded user (no CSRF header).
``serve_on_loopback`` serves any stand-in aiohttp app (a webhook receiver, the ad systems).
``chromium`` starts Debian's Chromium through Playwright (never ``playwright
install``) with a fresh profile.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import functools
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from argon2 import PasswordHasher

from crm_core.calls.services import record_call
from crm_core.calls.snapshot import CallData, LegData
from crm_core.clients.services import create_client
from crm_core.db import create_engine, session_factory
from crm_core.people.users import add_user, set_team_queue
from telecrm.app import create_app
from telecrm.settings import Settings
from telecrm.web import server as http_server
from telecrm.wiring import call_hooks
from tests.support.chromium import SHARED_CHROMIUM
from tests.support.clock import WORKDAY_TZ
from tests.support.db_fixtures import migrated, sqlite_file

HOOKS = call_hooks()  # what the product does with each written call

PASSWORD = "secret-password"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--lang=ru-RU",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}

# username, full name, role, extension, team
USERS = [
    ("petrov", "Иван Петров", "manager", "101", "Отдел продаж"),
    ("smirnova", "Ольга Смирнова", "manager", "102", "Отдел продаж"),
    ("kuznetsov", "Алексей Кузнецов", "manager", "103", "Второй отдел"),
    ("sokolova", "Мария Соколова", "supervisor", "201", "Отдел продаж"),
    ("marketer", "Анна Маркетова", "marketer", None, None),
    ("admin", "Администратор", "admin", None, None),
]
# name, phone, owner extension
CLIENTS = [
    ("ООО Ромашка", "+79161234567", "101"),
    ("ИП Сидоров", "+79031234567", "102"),
    ("АО Вектор", "+79265550011", "103"),
]


@functools.cache
def seeded_password_hash(password: str = PASSWORD) -> str:
    """An Argon2id hash of ``password`` at the lowest cost Argon2id allows, made once.

    A sign-in checks a password at the parameters its hash carries, and the tests sign
    in thousands of times: at the product's light strength that was 20 ms of a core each.
    What each strength costs is tested in ``tests/app/test_passwords.py``.
    """
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(password)


def seed_calls_start(tz: str = WORKDAY_TZ) -> datetime:
    """When the seeded calls begin: an hour ago, but never before today's midnight.

    Pages and the API show "today" in the workday timezone; right after midnight
    an hour ago is yesterday, and the seeded calls would vanish from today.
    """
    now = datetime.now(UTC)
    local = now.astimezone(ZoneInfo(tz))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    # whole minutes: the tests of one minute share one seeded database (seed_world)
    hour_ago = (now - timedelta(hours=1)).replace(second=0, microsecond=0)
    return max(hour_ago, midnight + timedelta(minutes=1))


@dataclass
class World:
    """Ids of what ``seed_world`` wrote, by a readable name."""

    users: dict[str, int] = field(default_factory=dict)
    clients: dict[str, int] = field(default_factory=dict)  # by owner extension
    calls: dict[str, int] = field(default_factory=dict)  # by name, see seed_world
    recording: str = ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serve_page(page: str, crm: str, paths: Sequence[str] = ("/",)
                     ) -> AsyncIterator[tuple[str, str]]:
    """A customer's website on its own loopback port, for the call-tracking browser tests.

    ``page`` is the HTML served at each of ``paths``, formatted with ``crm`` (the CRM's base
    URL, for the ``ct.js`` tag) and ``host`` (the site's own host:port, the snippet's
    ``site``). Yields the site's base URL and host.
    """
    port = free_port()
    host = f"127.0.0.1:{port}"

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=page.format(crm=crm, host=host), content_type="text/html")

    app = web.Application()
    for path in paths:
        app.router.add_get(path, index)
    async with serve_on_loopback(app, port) as base:
        yield base, host


@contextlib.asynccontextmanager
async def serve_on_loopback(app: web.Application, port: int | None = None
                            ) -> AsyncIterator[str]:
    """``app`` served on 127.0.0.1 (on ``port``, else a free one); yields its base URL."""
    port = port or free_port()
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def signed_in(base: str, username: str) -> aiohttp.ClientSession:
    """An HTTP client signed in as ``username`` (a seeded user, ``PASSWORD``)."""
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.post(f"{base}/api/login",
                         json={"username": username, "password": PASSWORD}) as response:
        assert response.status == 200
    return http


def _leg(uid: str, ext: str | None, role: str, start: datetime, talk: float,
         answered: bool = True) -> LegData:
    channel = f"PJSIP/{ext}-0001" if ext else "PJSIP/carrier-0001"
    return LegData(uniqueid=uid, channel=channel, role=role, extension=ext, started_at=start,
                   answered_at=start + timedelta(seconds=2) if answered else None,
                   ended_at=start + timedelta(seconds=2 + talk), talk_seconds=talk)


def _call(linkedid: str, direction: str, status: str, number: str, ext: str,
          start: datetime, talk: float, recordings: tuple[str, ...] = ()) -> CallData:
    answered = status == "answered"
    return CallData(
        linkedid=linkedid, direction=direction, status=status, client_number=number,
        did="+74951110002" if direction == "inbound" else None, started_at=start,
        answered_at=start + timedelta(seconds=2) if answered else None,
        ended_at=start + timedelta(seconds=2 + talk), ring_seconds=2.0,
        talk_seconds=talk if answered else 0.0, transferred=False,
        managers=(ext,) if answered else (), recordings=recordings,
        legs=(_leg(f"{linkedid}-c", None, "client", start, talk if answered else 0, answered),
              _leg(f"{linkedid}-m", ext, "manager", start, talk if answered else 0, answered)),
        rang=(ext,),
    )


# seeded SQLite files of this test process, by the calls' start: copies are ~100 times
# cheaper than writing the same floor again (each writes ~0.5 s of ORM work)
_seeded: dict[datetime, tuple[Path, World]] = {}


async def seed_world(db_url: str, recordings_root: Path, *, calls_at: datetime | None = None,
                     ) -> World:
    """Users of every role, clients of three managers and four calls (one recorded).

    A new SQLite file gets a copy of the same floor seeded earlier in this process
    with the same start of calls (its ids and rows are the same), if there is one.
    """
    start = calls_at or seed_calls_start()
    path = sqlite_file(db_url)
    fresh = path is not None and not path.exists()
    seeded = _seeded.get(start) if fresh else None
    if path is not None and seeded is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(seeded[0], path)
        world = copy.deepcopy(seeded[1])
    else:
        world = await _seed(db_url, start)
        if path is not None and fresh:
            directory = Path(tempfile.mkdtemp(prefix="telecrm-seeded-"))
            atexit.register(shutil.rmtree, directory, True)
            shutil.copyfile(path, directory / "seeded.sqlite3")
            _seeded[start] = (directory / "seeded.sqlite3", copy.deepcopy(world))
    recording = recordings_root / world.recording
    recording.parent.mkdir(parents=True, exist_ok=True)
    recording.write_bytes(fake_wav(seconds=1))
    return world


async def _seed(db_url: str, start: datetime) -> World:
    await migrated(db_url)
    engine = create_engine(db_url)
    sessions = session_factory(engine, writer=True)
    world = World()
    hashed = seeded_password_hash()
    # The floor has worked for a year: talk time judges the seeded days like any other.
    hired = start - timedelta(days=366)
    try:
        async with sessions() as session, session.begin():
            for username, name, role, ext, team in USERS:
                user = await add_user(session, username, name=name, role=role, extension=ext,
                                      team=team, password_hash=hashed, created_at=hired)
                world.users[username] = user.id
            await set_team_queue(session, "Отдел продаж", "sales")
            by_ext = {ext: world.users[u] for u, _, _, ext, _ in USERS if ext}
            for name, phone, owner in CLIENTS:
                client = await create_client(session, name, phones=[phone],
                                             owner_id=by_ext[owner], actor="test")
                world.clients[owner] = client.id
        world.recording = f"{start:%Y/%m/%d}/t-1.0-mix.wav"
        specs = {
            "romashka_101": _call("t-1.0", "inbound", "answered", CLIENTS[0][1], "101", start,
                                  65.0, (world.recording,)),
            "sidorov_102": _call("t-2.0", "outbound", "answered", CLIENTS[1][1], "102",
                                 start + timedelta(minutes=5), 40.0),
            "vector_103": _call("t-3.0", "outbound", "busy", CLIENTS[2][1], "103",
                                start + timedelta(minutes=10), 0.0),
            "missed_101": _call("t-4.0", "inbound", "missed", CLIENTS[0][1], "101",
                                start + timedelta(minutes=15), 0.0),
        }
        for name, data in specs.items():
            async with sessions() as session, session.begin():
                call = await record_call(session, data, hooks=HOOKS)
                world.calls[name] = call.id
    finally:
        await engine.dispose()
    return world


def fake_wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A valid, silent 16-bit mono WAV."""
    import io
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x00" * int(rate * seconds))
    return buffer.getvalue()


@contextlib.asynccontextmanager
async def serve_app(settings: Settings, *, with_listener: bool = False, with_web: bool = True,
                    **roles: Any) -> AsyncIterator[tuple[web.Application, str]]:
    """The real app on a free loopback port; yields it and its base URL. ``roles`` go to
    ``create_app`` as they are (``webhooks=True``: the webhook sender runs too)."""
    port = free_port()
    settings = settings.with_overrides(http_host="127.0.0.1", http_port=port)
    app = create_app(settings, with_listener=with_listener, with_web=with_web, **roles)
    runner = await http_server.start(app, "127.0.0.1", port, shutdown_timeout=1)
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def chromium(*, bypass_csp: bool = True, ignore_https_errors: bool = False,
                   user_agent: str | None = None) -> AsyncIterator[Any]:
    """A Playwright browser context on Debian's Chromium, as fresh as an empty profile
    (cookies, storage and cache of its own), closed at the end.

    Playwright polls ``wait_for_function("expression")`` with ``eval`` inside the page,
    which the app's Content-Security-Policy refuses; tests therefore bypass the policy,
    except the one that checks every page under it (``bypass_csp=False``).
    ``ignore_https_errors`` accepts a test's self-signed certificate (nginx in front);
    ``user_agent`` replaces Chromium's own (which says HeadlessChrome).
    """
    browser = await SHARED_CHROMIUM.browser(CHROMIUM, CHROMIUM_ARGS)
    context = await browser.new_context(viewport=DESKTOP, locale="ru-RU",
                                        bypass_csp=bypass_csp,
                                        ignore_https_errors=ignore_https_errors,
                                        user_agent=user_agent)
    try:
        yield context
    finally:
        await context.close()


async def screenshot(page: Any, name: str) -> Path:
    """Save ``name``-desktop.png and ``name``-phone.png into tests/artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}-desktop.png"
    await page.set_viewport_size(DESKTOP)
    await page.screenshot(path=str(path), full_page=True)
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=str(ARTIFACTS / f"{name}-phone.png"), full_page=True)
    await page.set_viewport_size(DESKTOP)
    return path
