"""The backup drill on real parts: back up a running floor mid-call, restore on a new machine.

``telecrm serve`` (web app, listener on the sandbox PBX, the recordings finalizer)
runs while a first call is finalized into the store and a second one is still
being talked. ``telecrm backup`` runs then, as cron would run it: a process of its
own beside the live writers. The restore goes to an empty database, a fresh data
directory and an empty recordings folder (the old machine is gone), and there the
command line and the web app find every call, both recordings byte for byte, and
every audit row.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from asterisk_conf.sandbox import Sandbox
from crm_core.clients.services import create_client
from crm_core.db import create_engine, session_factory
from crm_core.people.models import User
from crm_core.recordings.models import AudioStatus, CallAudio
from pbx_bridge.pipeline import Listener
from telecrm.settings import Settings
from telecrm.web.keys import LISTENER
from tests.backup.test_backup_restore import audit_rows, empty_like
from tests.recordings.test_recordings_e2e import login, seed_users
from tests.support.browser import serve_app
from tests.support.live import exported_calls, telecrm
from tests.support.scenarios import CLIENT, DID_101

pytestmark = [pytest.mark.asterisk]


@pytest.fixture
async def clean_phones(sandbox: Sandbox) -> AsyncIterator[None]:
    yield
    async with sandbox.phones() as phones:
        for target in ("101", CLIENT):
            await phones.set_behaviour(target)
        await phones.reset_behaviours()


async def seed(db_url: str) -> None:
    """Petrov's team and his client (the client's creation is audited)."""
    await seed_users(db_url)
    engine = create_engine(db_url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            petrov = await session.scalar(select(User).where(User.username == "petrov"))
            assert petrov is not None
            await create_client(session, "ООО Ромашка", phones=["+" + CLIENT],
                                owner_id=petrov.id, actor="petrov")
    finally:
        await engine.dispose()


async def stored_audio(db_url: str, timeout: float = 40) -> CallAudio:
    """The first call's audio once the running finalizer stored it."""
    engine = create_engine(db_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            async with session_factory(engine)() as session:
                audio = await session.scalar(select(CallAudio))
            if audio is not None and audio.status == AudioStatus.STORED.value:
                return audio
            assert time.monotonic() < deadline, audio and (audio.status, audio.error)
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()


async def talking(listener: Listener, timeout: float = 20) -> str:
    """The linkedid of the call in progress, once 101 is talking in it."""
    deadline = time.monotonic() + timeout
    while True:
        calls = [c for c in listener.tracker.live_calls(at=time.time()) if c.managers]
        if calls:
            return calls[0].linkedid
        assert time.monotonic() < deadline, "101 never answered"
        await asyncio.sleep(0.1)


async def test_a_running_floor_backed_up_mid_call_restores_on_a_new_machine(
    sandbox: Sandbox, db_url: str, tmp_path: Path, clean_phones: None,
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
) -> None:
    pbx = sandbox.pbx
    assert pbx is not None
    for name in ("TELECRM_RECORDINGS_STORE", "TELECRM_DATABASE_URL", "TELECRM_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    await seed(db_url)
    live = Settings(data_dir=tmp_path / "live", database_url=db_url,
                    recordings_source=sandbox.monitor_dir, ami_host=pbx.ami_host,
                    ami_port=pbx.ami_port, ami_user=pbx.ami_user, ami_secret=pbx.ami_secret)
    backup = tmp_path / "backup"
    async with serve_app(live, with_listener=True) as (app, _), sandbox.phones() as phones:
        listener = app[LISTENER]
        await asyncio.wait_for(listener.session.connected.wait(), 15)
        await phones.wait_idle(timeout=10)
        await phones.set_behaviour("101", answer_after=0.5)

        # -- a first call, ended and finalized into the store by the running server
        await phones.client_calls(CLIENT, DID_101, talk=3)
        await phones.wait_idle(timeout=20)
        audio = await stored_audio(db_url)
        stored_file = live.recordings_store_dir / str(audio.key)
        assert stored_file.is_file()

        # -- a second call in progress: the backup runs while it is talked and recorded
        await phones.client_calls(CLIENT, DID_101, talk=12)
        in_progress = await talking(listener)
        await asyncio.sleep(2)  # MixMonitor has written some seconds of it
        made = await asyncio.to_thread(
            telecrm, "backup", str(backup), "--db", db_url, process=True,
            env={"TELECRM_DATA_DIR": str(live.data_dir),
                 "TELECRM_RECORDINGS_SOURCE": str(live.recordings_source)})
        assert "Резервная копия готова" in made.stdout, made.stderr
        assert [c.linkedid for c in listener.tracker.live_calls(at=time.time())] == \
            [in_progress]  # the call really was still going when the backup finished
        live_calls = exported_calls(db_url, "--include-in-progress")
        await phones.wait_idle(timeout=30)

    manifest = json.loads((backup / "manifest.json").read_text("utf-8"))
    assert manifest["recordings"]["problems"] == []
    files = manifest["recordings"]["files"]
    stored_entry = next(f for f in files if f["kind"] == "stored")
    assert stored_entry["path"] == audio.key and stored_entry["sha256"] == audio.sha256
    talked = [f for f in files if f["kind"] == "original"]
    talked_id = next(c["id"] for c in live_calls if c["linkedid"] == in_progress)
    # the call in progress: its recordings as far as MixMonitor had written them
    assert talked and {f["call_id"] for f in talked} == {talked_id}, talked
    assert manifest["tables"]["calls"] == 2

    # -- a new machine: empty database, fresh data directory, empty recordings folder
    async with empty_like(db_url, tmp_path, request) as new_url:
        new = Settings(data_dir=tmp_path / "new", database_url=new_url,
                       recordings_source=tmp_path / "new-monitor")
        restored = await asyncio.to_thread(
            telecrm, "restore", str(backup), "--db", new_url, process=True,
            env={"TELECRM_DATA_DIR": str(new.data_dir),
                 "TELECRM_RECORDINGS_SOURCE": str(new.recordings_source)})
        assert "База данных восстановлена" in restored.stdout, restored.stderr

        calls = {c["linkedid"]: c for c in exported_calls(new_url, "--include-in-progress")}
        first = next(c for c in live_calls if c["linkedid"] != in_progress)
        assert calls[first["linkedid"]] == first  # ended before the backup: exactly as it was
        assert calls[in_progress]["status"] == "in_progress"
        paths = calls[in_progress]["recordings"]
        assert sorted(paths) == sorted(f["path"] for f in talked)
        audit = await audit_rows(new_url)
        assert audit[:-1] == (await audit_rows(db_url))[:manifest["tables"]["audit_log"]]
        assert audit[-1][1:5] == ("restore", "database", 0, "restore")
        assert len(audit) == manifest["tables"]["audit_log"] + 1 >= 2

        # -- the web app of the new machine plays both recordings as they were backed up
        async with serve_app(new) as (_, base):
            petrov, sokolova = await login(base, "petrov"), await login(base, "sokolova")
            try:
                for call in calls.values():
                    async with sokolova.get(f"{base}/calls/{call['id']}") as page:
                        assert page.status == 200
                        assert f"Звонок №{call['id']}" in await page.text()
                async with petrov.get(f"{base}/api/calls/{first['id']}/recording") as response:
                    body = await response.read()
                    assert response.status == 200 and response.content_type == "audio/ogg"
                    assert hashlib.sha256(body).hexdigest() == audio.sha256
                    assert body == stored_file.read_bytes()
                for entry in talked:
                    async with petrov.get(f"{base}/api/calls/{talked_id}/recording?index="
                                          f"{paths.index(entry['path'])}") as response:
                        body = await response.read()
                        assert response.status == 200, entry
                        assert hashlib.sha256(body).hexdigest() == entry["sha256"]
            finally:
                await petrov.close()
                await sokolova.close()
