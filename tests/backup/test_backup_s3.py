"""Backups of a floor whose recordings live in S3 (a real radosgw, tests/support/s3_server.py).

The objects stay in their bucket: the manifest says so and holds each one's size
and SHA-256, read from the bucket at backup time. A restore reads them again before
writing anything, and refuses, naming the object, when one changed or vanished.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import uuid
from pathlib import Path

import pytest

from crm_core.db import create_engine, session_factory
from crm_core.recordings.models import AudioStatus, CallAudio
from recordings.s3store import S3Location, S3Store
from telecrm.settings import Settings
from tests.backup.test_backup_restore import STORED_AUDIO, fetch, refused
from tests.support.browser import seed_world, serve_app
from tests.support.live import exported_calls, telecrm
from tests.support.s3_server import RADOSGW_RANGED_GET_BROKEN, RadosGW

pytestmark = pytest.mark.s3

KEY = "2026/11/20/102/2-t-2.0.ogg"


def s3_env(server: RadosGW, prefix: str, root: Path) -> dict[str, str]:
    return {"TELECRM_DATA_DIR": str(root / "data"),
            "TELECRM_RECORDINGS_SOURCE": str(root / "monitor"),
            "TELECRM_RECORDINGS_STORE": f"s3://{server.bucket}/{prefix}",
            "TELECRM_RECORDINGS_S3_ENDPOINT": server.endpoint_url,
            "TELECRM_RECORDINGS_S3_ACCESS_KEY": server.access_key,
            "TELECRM_RECORDINGS_S3_SECRET_KEY": server.secret_key,
            "TELECRM_RECORDINGS_S3_RANGED_GET": "false" if RADOSGW_RANGED_GET_BROKEN else "true"}


def put(store: S3Store, key: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "object"
        path.write_bytes(data)
        store.put(key, path)


async def test_recordings_in_s3_stay_in_the_bucket_and_are_checked_on_restore(
    s3_server: RadosGW, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("TELECRM_RECORDINGS_STORE", "TELECRM_DATABASE_URL", "TELECRM_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    prefix = f"backup-{uuid.uuid4().hex[:8]}"
    store = S3Store(S3Location(s3_server.bucket, prefix, s3_server.endpoint_url,
                               s3_server.access_key, s3_server.secret_key,
                               ranged_get=not RADOSGW_RANGED_GET_BROKEN))
    put(store, KEY, STORED_AUDIO)
    live_url = f"sqlite+aiosqlite:///{tmp_path / 'live' / 'data' / 'telecrm.db'}"
    world = await seed_world(live_url, tmp_path / "live" / "monitor")
    engine = create_engine(live_url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            session.add(CallAudio(
                call_id=world.calls["sidorov_102"], status=AudioStatus.STORED.value,
                backend="s3", key=KEY, content_type="audio/ogg", size_bytes=len(STORED_AUDIO),
                sha256=hashlib.sha256(STORED_AUDIO).hexdigest()))
    finally:
        await engine.dispose()

    backup = tmp_path / "backup"
    telecrm("backup", str(backup), "--db", live_url, env=s3_env(s3_server, prefix,
                                                                tmp_path / "live"))
    manifest = json.loads((backup / "manifest.json").read_text("utf-8"))
    section = manifest["recordings"]
    assert section["store"] == {"backend": "s3", "location": f"s3://{s3_server.bucket}/{prefix}",
                                "files_in_backup": False}
    (in_bucket,) = [f for f in section["files"] if f["kind"] == "stored"]
    assert in_bucket["file"] is None and in_bucket["path"] == KEY
    assert in_bucket["sha256"] == hashlib.sha256(STORED_AUDIO).hexdigest()
    assert not (backup / "recordings" / "store").exists()  # the audio stayed in the bucket

    # -- restored on a new machine that reads the same bucket: served from there
    new_url = f"sqlite+aiosqlite:///{tmp_path / 'new' / 'data' / 'telecrm.db'}"
    env = s3_env(s3_server, prefix, tmp_path / "new")
    restored = telecrm("restore", str(backup), "--db", new_url, env=env)
    assert "остались в облачном хранилище и проверены — 1" in restored.stdout
    assert exported_calls(new_url) == exported_calls(live_url)
    settings = Settings(data_dir=tmp_path / "new" / "data", database_url=new_url,
                        recordings_source=tmp_path / "new" / "monitor",
                        recordings_store=env["TELECRM_RECORDINGS_STORE"],
                        recordings_s3_endpoint=s3_server.endpoint_url,
                        recordings_s3_access_key=s3_server.access_key,
                        recordings_s3_secret_key=s3_server.secret_key,
                        recordings_s3_ranged_get=not RADOSGW_RANGED_GET_BROKEN)
    async with serve_app(settings) as (_, base):
        status, body = await fetch(base, "smirnova",
                                   f"/api/calls/{world.calls['sidorov_102']}/recording")
    assert status == 200 and body == STORED_AUDIO

    # -- the object changed in the bucket since: refused by name, nothing written
    put(store, KEY, STORED_AUDIO[::-1])
    other_url = f"sqlite+aiosqlite:///{tmp_path / 'other' / 'data' / 'telecrm.db'}"
    result = telecrm("restore", str(backup), "--db", other_url, check=False,
                     env=s3_env(s3_server, prefix, tmp_path / "other"))
    refused(result, sentence=f"Запись разговора {KEY} в хранилище отличается от той, что была "
                             "при копировании. Ничего не восстановлено.")
    assert not (tmp_path / "other" / "data" / "telecrm.db").exists()
    store.delete(KEY)
    result = telecrm("restore", str(backup), "--db", other_url, check=False,
                     env=s3_env(s3_server, prefix, tmp_path / "other"))
    refused(result, sentence=f"Записи разговора {KEY} нет в хранилище записей.")
