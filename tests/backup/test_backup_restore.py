"""``telecrm backup`` and ``telecrm restore`` on SQLite and PostgreSQL, through the real CLI.

The seeded sales floor (users, clients, calls) plus one call whose recording is
stored (the directory store) and one whose Asterisk original waits for finalize.
After a restore into an empty database on a fresh data directory, the command line
and the web app find every call, both recordings byte for byte, and every audit row.
The refusals are one Russian sentence each, with nothing written.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import sqlite3
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from sqlalchemy import func, select, text

from crm_core.audit import AuditLog
from crm_core.db import create_engine, head_revision, session_factory, upgrade
from crm_core.people.users import add_user
from crm_core.recordings.models import AudioStatus, CallAudio
from telecrm.settings import Settings
from tests.support.browser import PASSWORD, seed_world, serve_app
from tests.support.db_fixtures import empty_db_url_fixture, migrated  # noqa: F401
from tests.support.live import exported_calls, telecrm
from tests.support.pg_server import PostgresServer

STORED_AUDIO = b"OggS" + bytes(range(256)) * 40  # the finalized file's bytes (not decoded here)


@dataclass
class Site:
    """One installation: its database, data directory and where recordings live."""

    db_url: str
    data_dir: Path
    source: Path  # Asterisk's MixMonitor folder
    store: Path  # the directory store

    @property
    def env(self) -> dict[str, str]:
        return {"TELECRM_DATA_DIR": str(self.data_dir),
                "TELECRM_RECORDINGS_SOURCE": str(self.source),
                "TELECRM_RECORDINGS_STORE": str(self.store)}

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return telecrm(*args, "--db", self.db_url, env=self.env, check=check)

    @property
    def settings(self) -> Settings:
        return Settings(data_dir=self.data_dir, database_url=self.db_url,
                        recordings_source=self.source, recordings_store=str(self.store))


def site(db_url: str, root: Path) -> Site:
    return Site(db_url, root / "data", root / "monitor", root / "store")


@pytest.fixture(autouse=True)
def _no_store_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TELECRM_RECORDINGS_STORE", "TELECRM_DATABASE_URL", "TELECRM_CONFIG"):
        monkeypatch.delenv(name, raising=False)


@contextlib.asynccontextmanager
async def empty_like(url: str, tmp_path: Path, request: pytest.FixtureRequest
                     ) -> AsyncIterator[str]:
    """An empty database of the same kind as ``url``, never created before: a new machine's."""
    if url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'restored' / 'data' / 'telecrm.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"restored_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server.dsn("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        yield server.url(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def fresh_url(db_url: str, tmp_path: Path, request: pytest.FixtureRequest
                    ) -> AsyncIterator[str]:
    """An empty database of the same kind as ``db_url``: where a restore goes."""
    async with empty_like(db_url, tmp_path, request) as url:
        yield url


async def seed(live: Site) -> dict[str, int]:
    """The floor, one stored recording and one original; the call ids by name."""
    world = await seed_world(live.db_url, live.source)
    engine = create_engine(live.db_url)
    key = "2026/11/20/102/2-t-2.0.ogg"
    (live.store / key).parent.mkdir(parents=True, exist_ok=True)
    (live.store / key).write_bytes(STORED_AUDIO)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            session.add(CallAudio(
                call_id=world.calls["sidorov_102"], status=AudioStatus.STORED.value,
                backend="directory", key=key, content_type="audio/ogg",
                size_bytes=len(STORED_AUDIO), channels=2, duration_seconds=40.0,
                sha256=hashlib.sha256(STORED_AUDIO).hexdigest()))
    finally:
        await engine.dispose()
    return world.calls


async def audit_rows(db_url: str) -> list[tuple[object, ...]]:
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            rows = (await session.execute(select(
                AuditLog.id, AuditLog.actor, AuditLog.entity, AuditLog.entity_id,
                AuditLog.action, AuditLog.changes).order_by(AuditLog.id))).all()
            return [tuple(row) for row in rows]
    finally:
        await engine.dispose()


async def tables_of(db_url: str) -> int:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            if db_url.startswith("sqlite"):
                query = "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
            else:
                query = ("SELECT count(*) FROM information_schema.tables "
                         "WHERE table_schema = 'public'")
            return int((await connection.execute(text(query))).scalar_one())
    finally:
        await engine.dispose()


async def fetch(base: str, username: str, path: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(f"{base}/api/login",
                             json={"username": username, "password": PASSWORD}) as response:
            assert response.status == 200
        async with http.get(base + path) as response:
            return response.status, await response.read()


def refused(result: subprocess.CompletedProcess[str], *, sentence: str) -> None:
    """Exit status 2 and exactly one line on stderr: the sentence."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and sentence in lines[0], lines
    assert "Traceback" not in result.stderr


async def test_a_restored_backup_has_every_call_recording_and_audit_row(
    db_url: str, fresh_url: str, tmp_path: Path,
) -> None:
    live = site(db_url, tmp_path / "live")
    calls = await seed(live)
    before = exported_calls(db_url)
    audit_before = await audit_rows(db_url)
    assert len(before) == 4 and audit_before  # clients created by the seed are audited
    relative = next(c for c in before if c["id"] == calls["romashka_101"])["recordings"][0]
    original = live.source / relative

    made = live.run("backup", str(tmp_path / "backup"))
    assert "Резервная копия готова" in made.stdout and "4 звонка" in made.stdout
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text("utf-8"))
    assert manifest["schema_revision"] == head_revision()
    assert manifest["telecrm_version"] and manifest["created_at"]
    assert manifest["tables"]["calls"] == 4
    assert manifest["tables"]["audit_log"] == len(audit_before)
    by_kind = {f["kind"]: f for f in manifest["recordings"]["files"]}
    assert by_kind["stored"]["path"] == "2026/11/20/102/2-t-2.0.ogg"
    assert by_kind["stored"]["sha256"] == hashlib.sha256(STORED_AUDIO).hexdigest()
    assert by_kind["original"]["sha256"] == hashlib.sha256(original.read_bytes()).hexdigest()
    assert by_kind["original"]["path"] == relative
    assert manifest["recordings"]["problems"] == []

    # -- a new machine: empty database, empty data directory, no recordings anywhere
    new = site(fresh_url, tmp_path / "restored")
    restored = new.run("restore", str(tmp_path / "backup"))
    out = restored.stdout
    assert "База данных восстановлена" in out and "4 звонка" in out, out
    assert "в хранилище возвращено — 1, исходных файлов АТС — 1" in out, out

    assert exported_calls(fresh_url) == before
    audit_after = await audit_rows(fresh_url)
    assert audit_after[:-1] == audit_before  # every row, ids and all
    assert audit_after[-1][1:5] == ("restore", "database", 0, "restore")
    assert (new.store / "2026/11/20/102/2-t-2.0.ogg").read_bytes() == STORED_AUDIO
    assert (new.source / original.relative_to(live.source)).read_bytes() == \
        original.read_bytes()

    # -- the web app of the new machine serves every call and both recordings
    async with serve_app(new.settings) as (_, base):
        for call_id in calls.values():
            status, page = await fetch(base, "admin", f"/calls/{call_id}")
            assert status == 200 and f"Звонок №{call_id}".encode() in page
        status, body = await fetch(base, "smirnova", f"/api/calls/{calls['sidorov_102']}/recording")
        assert status == 200 and body == STORED_AUDIO
        status, body = await fetch(base, "petrov", f"/api/calls/{calls['romashka_101']}/recording")
        assert status == 200 and body == original.read_bytes()
        status, page = await fetch(base, "admin", "/calls")
        assert status == 200 and "ООО Ромашка" in page.decode()


async def test_a_database_that_holds_anything_is_refused(db_url: str, tmp_path: Path) -> None:
    live = site(db_url, tmp_path / "live")
    await seed(live)
    live.run("backup", str(tmp_path / "backup"))
    audit_before = await audit_rows(db_url)
    result = live.run("restore", str(tmp_path / "backup"), check=False)
    refused(result, sentence="не пустая: копию восстанавливают только в пустую базу. "
                             "Ничего не записано.")
    assert await audit_rows(db_url) == audit_before


@pytest.mark.parametrize("damage", ["recording", "original", "database"])
async def test_a_damaged_backup_is_refused_naming_the_file(
    db_url: str, fresh_url: str, tmp_path: Path, damage: str,
) -> None:
    live = site(db_url, tmp_path / "live")
    await seed(live)
    backup = tmp_path / "backup"
    live.run("backup", str(backup))
    manifest = json.loads((backup / "manifest.json").read_text("utf-8"))
    files = {f["kind"]: f["file"] for f in manifest["recordings"]["files"]}
    file = {"recording": files["stored"], "original": files["original"],
            "database": manifest["database"]["file"]}[damage]
    data = bytearray((backup / file).read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    (backup / file).write_bytes(bytes(data))

    new = site(fresh_url, tmp_path / "restored")
    result = new.run("restore", str(backup), check=False)
    refused(result, sentence=f"Резервная копия повреждена: файл {file} отсутствует или не "
                             "совпадает контрольная сумма. Ничего не восстановлено.")
    assert await tables_of(fresh_url) == 0 if not fresh_url.startswith("sqlite") else \
        not (tmp_path / "restored" / "data" / "telecrm.db").exists()
    assert not new.store.exists() and not new.source.exists()


async def test_a_backup_without_its_manifest_is_refused(db_url: str, fresh_url: str,
                                                        tmp_path: Path) -> None:
    live = site(db_url, tmp_path / "live")
    await seed(live)
    live.run("backup", str(tmp_path / "backup"))
    (tmp_path / "backup" / "manifest.json").unlink()
    result = site(fresh_url, tmp_path / "restored").run("restore", str(tmp_path / "backup"),
                                                        check=False)
    refused(result, sentence="нет описи manifest.json: это не резервная копия Telecrm или её "
                             "создание не завершилось.")


async def test_a_backup_goes_into_a_new_or_empty_directory(db_url: str, tmp_path: Path) -> None:
    live = site(db_url, tmp_path / "live")
    await seed(live)
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "notes.txt").write_text("not ours")
    result = live.run("backup", str(tmp_path / "backup"), check=False)
    refused(result, sentence="не пустая: резервная копия пишется в новую или пустую папку.")
    assert sorted(p.name for p in (tmp_path / "backup").iterdir()) == ["notes.txt"]


async def test_a_backup_of_an_older_schema_is_migrated_up_after_restore(
    empty_db_url: str, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    older = "0021_dialer"
    await upgrade(empty_db_url, older)
    engine = create_engine(empty_db_url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            await session.execute(text(
                "INSERT INTO teams (name, created_at) VALUES ('Отдел продаж', CURRENT_TIMESTAMP)"))
            await session.execute(text(
                "INSERT INTO audit_log (at, actor, entity, entity_id, action, changes) VALUES "
                "(CURRENT_TIMESTAMP, 'admin', 'team', 1, 'create', '{}')"))
    finally:
        await engine.dispose()
    live = Site(empty_db_url, tmp_path / "live" / "data", tmp_path / "live" / "monitor",
                tmp_path / "live" / "store")
    live.run("backup", str(tmp_path / "backup"))
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text("utf-8"))
    assert manifest["schema_revision"] == older

    async with empty_like(empty_db_url, tmp_path, request) as fresh:
        await restore_older(fresh, tmp_path, older)


async def restore_older(fresh: str, tmp_path: Path, older: str) -> None:
    restored = site(fresh, tmp_path / "restored").run("restore", str(tmp_path / "backup"))
    assert f"Схема базы обновлена с версии {older} до {head_revision()}." in \
        restored.stdout
    engine = create_engine(fresh)
    try:
        async with engine.connect() as connection:
            version = (await connection.execute(text(
                "SELECT version_num FROM alembic_version"))).scalar_one()
            teams = (await connection.execute(text("SELECT name FROM teams"))).scalars().all()
            audit = (await connection.execute(select(func.count()).select_from(
                AuditLog.__table__))).scalar_one()
    finally:
        await engine.dispose()
    assert version == head_revision() and teams == ["Отдел продаж"] and audit == 2
    # the newest tables are there too: the restored database works as any other
    engine = create_engine(fresh)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            await add_user(session, f"u{uuid.uuid4().hex[:6]}", name="Новый", role="manager",
                           extension="150", team="Отдел продаж")
    finally:
        await engine.dispose()


async def test_sqlite_backup_of_a_database_being_written_is_whole(tmp_path: Path) -> None:
    """The online backup API copies one consistent state even with an open writer (WAL)."""
    path = tmp_path / "live" / "data" / "telecrm.db"
    url = f"sqlite+aiosqlite:///{path}"
    path.parent.mkdir(parents=True)
    await migrated(url)
    writer = sqlite3.connect(path)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("INSERT INTO teams (name, created_at) VALUES ('committed', CURRENT_TIMESTAMP)")
    writer.commit()
    writer.execute("BEGIN")
    writer.execute("INSERT INTO teams (name, created_at) "
                   "VALUES ('not committed yet', CURRENT_TIMESTAMP)")
    try:
        live = Site(url, path.parent, tmp_path / "monitor", tmp_path / "store")
        live.run("backup", str(tmp_path / "backup"))
    finally:
        writer.rollback()
        writer.close()
    copy = sqlite3.connect(tmp_path / "backup" / "database.sqlite3")
    try:
        assert [r[0] for r in copy.execute("SELECT name FROM teams")] == ["committed"]
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        copy.close()


async def test_a_call_finalized_while_the_backup_runs_comes_back_stored(
    db_url: str, fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Between the snapshot and the copy the finalizer stores a call and removes its
    originals: the backup takes the stored file instead, and the restore says it is stored."""
    from telecrm.backup import files

    live = site(db_url, tmp_path / "live")
    calls = await seed(live)
    key = "2026/11/20/101/1-t-1.0.ogg"
    audio = b"OggS" + b"finalized meanwhile" * 100
    copy = files._copy_hashing

    async def finalize() -> None:
        (live.store / key).parent.mkdir(parents=True, exist_ok=True)
        (live.store / key).write_bytes(audio)
        engine = create_engine(db_url)
        try:
            async with session_factory(engine, writer=True)() as session, session.begin():
                session.add(CallAudio(
                    call_id=calls["romashka_101"], status=AudioStatus.STORED.value,
                    backend="directory", key=key, content_type="audio/ogg",
                    size_bytes=len(audio), channels=1, duration_seconds=65.0, attempts=1,
                    sha256=hashlib.sha256(audio).hexdigest(), activity={"mixed": [[0, 1]]}))
        finally:
            await engine.dispose()

    def finalizer_wins_the_race(source: Path, target: Path) -> tuple[int, str]:
        if source.suffix == ".wav" and source.is_file():
            asyncio.run(finalize())  # on the copying thread: the snapshot is already taken
            source.unlink()
        return copy(source, target)

    monkeypatch.setattr(files, "_copy_hashing", finalizer_wins_the_race)
    made = live.run("backup", str(tmp_path / "backup"))
    assert made.stderr == ""
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text("utf-8"))
    late = [f for f in manifest["recordings"]["files"] if f.get("finalized_after_snapshot")]
    assert [(f["call_id"], f["path"]) for f in late] == [(calls["romashka_101"], key)]
    assert manifest["recordings"]["problems"] == []

    new = site(fresh_url, tmp_path / "restored")
    new.run("restore", str(tmp_path / "backup"))
    engine = create_engine(fresh_url)
    try:
        async with session_factory(engine)() as session:
            row = await session.scalar(select(CallAudio).where(
                CallAudio.call_id == calls["romashka_101"]))
    finally:
        await engine.dispose()
    assert row is not None and (row.status, row.key, row.size_bytes) == ("stored", key, len(audio))
    assert row.activity == {"mixed": [[0, 1]]} and row.finalized_at is not None
    async with serve_app(new.settings) as (_, base):
        status, body = await fetch(base, "petrov", f"/api/calls/{calls['romashka_101']}/recording")
    assert status == 200 and body == audio


async def test_a_recording_missing_from_the_store_is_said_and_the_rest_backed_up(
    db_url: str, tmp_path: Path,
) -> None:
    live = site(db_url, tmp_path / "live")
    calls = await seed(live)
    (live.store / "2026/11/20/102/2-t-2.0.ogg").unlink()
    made = live.run("backup", str(tmp_path / "backup"), check=False)
    assert made.returncode == 1
    assert made.stderr.strip() == (
        f"Звонок №{calls['sidorov_102']}: файла записи 2026/11/20/102/2-t-2.0.ogg нет, в копию "
        "он не попал.")
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text("utf-8"))
    assert [p["problem"] for p in manifest["recordings"]["problems"]] == ["missing"]
    assert [f["kind"] for f in manifest["recordings"]["files"]] == ["original"]
