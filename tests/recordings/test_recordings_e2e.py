"""Issue 6 end to end: a real call on the sandbox, finalized, stored stereo, served by the app.

Each side of the call plays known Russian speech (espeak-ng) at a known time, so
the stored file can be checked for who is where: the manager on the left, the
client on the right, each only while they spoke.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from asterisk_conf.sandbox import Sandbox
from crm_core.db import create_engine, session_factory, upgrade
from crm_core.people.users import add_user
from crm_core.recordings.models import AudioStatus, CallAudio
from recordings.config import RecordingsConfig
from recordings.store import DirectoryStore
from recordings.worker import FinalizeWorker
from telecrm.settings import Settings
from tests.recordings.test_recordings_support import dbfs_between, prompt
from tests.support.browser import PASSWORD, seeded_password_hash, serve_app
from tests.support.live import live_listener, wait_for_ended_calls
from tests.support.scenarios import CLIENT, DID_101

pytestmark = [pytest.mark.asterisk, pytest.mark.postgres]

TALK = 7.0  # the client hangs up this long after the PBX answered
MANAGER_SAYS = "Добрый день, компания Ромашка."
CLIENT_SAYS = "Здравствуйте, нужно десять тонн."
SLACK = 0.4  # the two sides start playing within this of the recording's start
# username, role, extension: one team, so the supervisor may hear 101's calls
USERS = [("petrov", "manager", "101"), ("smirnova", "manager", "102"),
         ("sokolova", "supervisor", "201")]


async def seed_users(db_url: str) -> None:
    """The team of tests/support/browser.py's world: two managers and their supervisor."""
    await upgrade(db_url)
    engine = create_engine(db_url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            hashed = seeded_password_hash()
            for username, role, ext in USERS:
                await add_user(session, username, name=username, role=role, extension=ext,
                               team="Отдел продаж", password_hash=hashed)
    finally:
        await engine.dispose()


def install_prompts(sandbox: Sandbox, total: float) -> dict[str, tuple[str, float, float]]:
    """Speech prompts in the phones instance's own directory: {side: (sound, start, end)}."""
    phones = sandbox.phones_instance
    assert phones is not None
    sounds = phones.dir / "sounds"
    sounds.mkdir(exist_ok=True)
    spoken = {"manager": prompt(sounds / "e2e-manager.wav", MANAGER_SAYS, at=0.5, total=total),
              "client": prompt(sounds / "e2e-client.wav", CLIENT_SAYS, at=3.8, total=total,
                               pitch=80)}
    return {side: (f"{phones.inner_dir}/sounds/e2e-{side}", start, end)
            for side, (start, end) in spoken.items()}


class WitnessStore(DirectoryStore):
    """The real directory store, noting whether the originals still existed at each put.

    Not a mock: it stores for real; it only lets the test see the order of steps.
    """

    def __init__(self, root: Path, originals: list[Path]) -> None:
        super().__init__(root)
        self.originals = originals
        self.originals_at_put: list[bool] = []

    def put(self, key: str, source: Path) -> None:
        self.originals_at_put.append(all(p.is_file() for p in self.originals))
        super().put(key, source)


async def login(base: str, username: str) -> aiohttp.ClientSession:
    """A signed-in browser-like session; its CSRF token rides on every request."""
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.post(f"{base}/api/login",
                         json={"username": username, "password": PASSWORD}) as response:
        assert response.status == 200, await response.text()
        token = (await response.json())["csrf_token"]
    http.headers["X-CSRF-Token"] = token
    return http


@pytest.fixture
async def clean_phones(sandbox: Sandbox) -> AsyncIterator[None]:
    """Behaviours set by the test never leak into the next test of the session."""
    yield
    async with sandbox.phones() as phones:
        for target in ("101", CLIENT):
            await phones.set_behaviour(target)
        await phones.reset_behaviours()


def probe(path: Path) -> tuple[int, float]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                          "stream=channels:format=duration", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), float(out[1])


async def test_real_call_is_finalized_to_stereo_and_served(
    sandbox: Sandbox, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    clean_phones: None,
) -> None:
    began = time.monotonic()
    for name in ("TELECRM_RECORDINGS_STORE", "TELECRM_RECORDINGS_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    prompts = install_prompts(sandbox, total=TALK + 2)
    await seed_users(pg_url)

    # -- the call: the client (inbound, DID of 101) and 101 speak in turn
    async with live_listener(sandbox, pg_url), sandbox.phones() as phones:
        await phones.wait_idle(timeout=10)
        await phones.set_behaviour("101", answer_after=0.5, prompt=prompts["manager"][0])
        await phones.client_calls(CLIENT, DID_101, talk=TALK, prompt=prompts["client"][0])
        await asyncio.sleep(TALK)
        await phones.wait_idle(timeout=15)
        (call,) = await wait_for_ended_calls(pg_url, 1)
    assert call["status"] == "answered" and call["managers"] == ["101"]
    assert abs(call["talk_seconds"] - TALK) < 1.0
    monitor = sandbox.monitor_dir
    originals = [monitor / p for p in call["recordings"]]
    assert len(originals) == 3 and all(p.is_file() for p in originals)

    # -- the real finalize, on the PBX's own monitor directory
    cfg = RecordingsConfig(store_dir=tmp_path / "recordings", settle_seconds=0.5,
                           max_attempts=40, retry_base_seconds=0.0, workers=1)
    store = WitnessStore(cfg.store_dir, originals)
    engine = create_engine(pg_url)
    sessions = session_factory(engine, writer=True)
    try:
        worker = FinalizeWorker(sessions, monitor, store, cfg)
        deadline = time.monotonic() + 15
        while True:  # pending until Asterisk closed the files and they settled
            outcomes = await worker.run_once()
            if outcomes.get(AudioStatus.STORED.value) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        async with sessions() as session:
            audio = await session.scalar(select(CallAudio)
                                         .where(CallAudio.call_id == call["id"]))
    finally:
        await engine.dispose()
    assert audio is not None and audio.status == AudioStatus.STORED.value, audio and audio.error

    # -- stored where the layout says, as stereo Ogg Opus as long as the talk
    started = datetime.fromisoformat(call["started_at"])
    assert audio.key == f"{started:%Y/%m/%d}/101/{call['id']}-{call['linkedid']}.ogg"
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/101/\d+-[0-9.]+\.ogg", audio.key)
    stored = cfg.store_dir / audio.key
    assert stored.is_file() and audio.content_type == "audio/ogg"
    channels, duration = probe(stored)
    assert channels == 2 == audio.channels
    # MixMonitor starts a moment after the answer: later still on a loaded machine
    assert abs(duration - call["talk_seconds"]) <= 1.0, (duration, call["talk_seconds"])

    # -- the manager is heard on the left only while he spoke, the client on the right
    for side, (left, right) in (("manager", (0, 1)), ("client", (1, 0))):
        _, start, end = prompts[side]
        window = (start + SLACK, end - SLACK)
        loud = dbfs_between(stored, *window, channel=left)
        quiet = dbfs_between(stored, *window, channel=right)
        # speech at least -30 dBFS; the other side silent (Opus noise floor aside)
        assert loud > -30 and quiet < -60, (side, loud, quiet)
    spans = audio.activity or {}
    assert spans["manager"] and spans["client"]
    assert spans["manager"][0][0] < spans["client"][0][0]  # he spoke first, she answered

    # -- originals: present when the stored copy was written, removed afterwards
    assert store.originals_at_put == [True]
    assert not any(p.exists() for p in originals)

    # -- served by the real app to the manager and his supervisor, not to another manager
    settings = Settings(data_dir=tmp_path, database_url=pg_url, recordings_source=monitor)
    url = f"/api/calls/{call['id']}/recording"
    async with serve_app(settings) as (_, base):
        for username, expected in (("petrov", 200), ("sokolova", 200), ("smirnova", 404)):
            http = await login(base, username)
            try:
                async with http.get(base + url) as response:
                    body = await response.read()
                    assert response.status == expected, (username, response.status)
                    if expected == 200:
                        assert response.content_type == "audio/ogg"
                        assert body == stored.read_bytes()
                if username == "petrov":
                    async with http.get(base + url, headers={"Range": "bytes=0-99"}) as part:
                        assert part.status == 206 and await part.read() == body[:100]
            finally:
                await http.close()
    assert time.monotonic() - began < 30
