"""Making a backup and restoring one: the steps in the order that keeps them safe.

A backup writes the dump, then the recordings, then the manifest (so a directory
without a manifest never passes for a backup). A restore reads the manifest,
refuses a database that holds anything, checks every checksum, and only then
writes: the database, the migrations up to this version's head, the recordings
where the settings say, and one audit row saying the database was restored.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from crm_core.audit import write_audit
from crm_core.clock import utcnow
from crm_core.db import create_engine, head_revision, session_factory
from crm_core.errors import DomainError
from crm_core.recordings.models import AudioStatus, CallAudio
from recordings.store import Store, open_store
from telecrm.cli_support import UsageError, upgrade_schema
from telecrm.settings import Settings

from . import files
from . import manifest as manifests
from .database import DUMP_FILES, Database, dumped, ensure_empty, load

LATE_FIELDS = ("backend", "key", "content_type", "size_bytes", "duration_seconds", "channels",
               "sha256", "activity", "team_id", "attempts")


@dataclass
class BackupReport:
    directory: Path
    backend: str
    tables: dict[str, int]
    recordings: int
    problems: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RestoreReport:
    tables: dict[str, int]
    created_at: str
    revision: str | None
    head: str | None
    stored: int
    originals: int
    in_bucket: int


def recordings_store(settings: Settings) -> Store:
    from telecrm.app import recordings_config

    try:
        return open_store(recordings_config(settings))
    except ValueError as exc:
        raise UsageError("cli.recordings_store", f"TELECRM_RECORDINGS_STORE: {exc}",
                         reason=str(exc)) from None


async def make_backup(settings: Settings, directory: Path) -> BackupReport:
    """Dump the database and its recordings into ``directory`` (new or empty)."""
    database = Database.of(settings.resolved_database_url)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise DomainError("backup.dir_not_empty", f"{directory} is not an empty directory",
                          path=str(directory))
    store = recordings_store(settings)
    created = not directory.exists()
    # The dump holds password hashes and AMI secrets: a directory of its owner's only.
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    live = create_engine(database.url)

    async def late_audio(call_id: int) -> dict[str, Any] | None:
        async with session_factory(live)() as session:
            row = await session.scalar(select(CallAudio).where(
                CallAudio.call_id == call_id, CallAudio.status == AudioStatus.STORED.value))
        if row is None or not row.key:
            return None
        values = {name: getattr(row, name) for name in LATE_FIELDS}
        values["finalized_at"] = row.finalized_at.isoformat() if row.finalized_at else None
        return values

    try:
        async with dumped(database, directory) as connection:
            revision = await manifests.schema_revision(connection)
            tables = await manifests.table_counts(connection)
            roots = await files.pbx_roots(connection, settings.recordings_source)
            recordings = await files.collect(connection, directory, store, roots, late_audio)
        dump = DUMP_FILES[database.backend]
        size, sha = await asyncio.to_thread(manifests.sha256_of, directory / dump)
        manifests.write(directory, {
            "format": manifests.FORMAT,
            "telecrm_version": manifests.telecrm_version(),
            "created_at": utcnow().isoformat(),
            "schema_revision": revision,
            "database": {"backend": database.backend, "source": database.shown, "file": dump,
                         "size": size, "sha256": sha},
            "tables": tables,
            "recordings": recordings,
        })
    except BaseException:
        with contextlib.suppress(OSError):  # no half backup left to be mistaken for one
            if created:
                shutil.rmtree(directory)
            else:
                for child in directory.iterdir():
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise
    finally:
        await live.dispose()
    return BackupReport(directory, database.backend, tables, len(recordings["files"]),
                        recordings["problems"])


async def restore_backup(settings: Settings, directory: Path) -> RestoreReport:
    """Restore ``directory`` into the empty database the settings name; checks come first."""
    manifest = manifests.read(directory)
    database = Database.of(settings.resolved_database_url)
    dumped_from = str(manifest["database"].get("backend"))
    if dumped_from != database.backend:
        raise DomainError("backup.other_backend",
                          f"the backup is of {dumped_from}, the database is {database.backend}",
                          backup=dumped_from, database=database.backend)
    await ensure_empty(database)
    db = manifest["database"]
    dump = await asyncio.to_thread(files.verify_file, directory, db.get("file"), db.get("size"),
                                   db.get("sha256"))
    store = recordings_store(settings)
    section = manifest["recordings"]
    await asyncio.to_thread(files.verify_recordings, directory, section, store)

    await load(database, dump)
    await upgrade_schema(settings)  # a backup of an older version: its migrations run now
    engine = create_engine(database.url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            connection = await session.connection()
            roots = await files.pbx_roots(connection, settings.recordings_source)
            await _after_load(session, manifest, store.name, directory)
        stored, originals = await asyncio.to_thread(files.put_back, directory, section, store,
                                                    roots)
        async with engine.connect() as connection:
            tables = await manifests.table_counts(connection)
    finally:
        await engine.dispose()
    in_bucket = sum(1 for entry in section.get("files", []) if not entry.get("file"))
    return RestoreReport(tables, str(manifest.get("created_at")),
                         manifest.get("schema_revision"), head_revision(), stored, originals,
                         in_bucket)


async def _after_load(session: Any, manifest: dict[str, Any], store_name: str,
                      directory: Path) -> None:
    """What the dump cannot say: calls finalized after its snapshot, a new store, the audit."""
    for entry in manifest["recordings"].get("files", []):
        late = entry.get("finalized_after_snapshot")
        if not late:
            continue
        row = await session.scalar(select(CallAudio).where(CallAudio.call_id == entry["call_id"]))
        if row is None:
            row = CallAudio(call_id=entry["call_id"])
            session.add(row)
        for name in LATE_FIELDS:
            setattr(row, name, late.get(name))
        row.status, row.error, row.next_attempt_at = AudioStatus.STORED.value, None, None
        row.finalized_at = (datetime.fromisoformat(late["finalized_at"])
                            if late.get("finalized_at") else utcnow())
    backup_store = manifest["recordings"].get("store", {}).get("backend")
    if backup_store and backup_store != store_name \
            and manifest["recordings"].get("store", {}).get("files_in_backup"):
        await session.execute(update(CallAudio).where(CallAudio.backend == backup_store)
                              .values(backend=store_name))
    write_audit(session, actor="restore", entity="database", entity_id=0, action="restore",
                changes={"backup": str(directory.resolve()),
                         "created_at": manifest.get("created_at"),
                         "schema_revision": [manifest.get("schema_revision"), head_revision()],
                         "telecrm_version": manifest.get("telecrm_version")})
