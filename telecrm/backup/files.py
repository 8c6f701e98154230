"""The recordings half of a backup: which files the dumped rows name, copied and checksummed.

Two kinds of file: *stored* recordings (the finalized stereo file, by its store key)
and *originals* (Asterisk's WAVs of calls not finalized yet, by the path relative to
their PBX's recordings folder, as the CRM stores it). Files of the directory store
and originals are copied into the backup, since a sales floor's quality control
depends on the audio; objects of an S3 store stay in their bucket and are read once
to check their checksums. A call finalized between the snapshot and the copy lost
its originals meanwhile: its stored file is taken instead, with the finalize
outcome the restore writes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from crm_core.errors import DomainError
from recordings.store import DirectoryStore, Store, check_key

from .manifest import column_names, sha256_of, table_names

STORED_DIR = "recordings/store"
ORIGINALS_DIR = "recordings/originals"
DEFAULT_PBX = "main"

LateAudio = Callable[[int], Awaitable[dict[str, Any] | None]]


def under(root: Path, relative: str) -> Path | None:
    """``root / relative`` if it stays under ``root`` (paths come from rows and manifests)."""
    if not relative or relative.startswith(("/", "\\")) or "\x00" in relative:
        return None
    base = root.resolve()
    candidate = (base / relative).resolve()
    return candidate if candidate.is_relative_to(base) and candidate != base else None


def _copy_hashing(source: Path, target: Path) -> tuple[int, str]:
    """Copy and checksum the bytes actually copied (a file may still be growing)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with source.open("rb") as src, target.open("wb") as dst:
        for block in iter(lambda: src.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
            dst.write(block)
    return size, digest.hexdigest()


def _hash_object(store: Store, key: str) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    for block in store.read(key):
        digest.update(block)
        size += len(block)
    return size, digest.hexdigest()


async def pbx_roots(connection: AsyncConnection, default: Path) -> dict[str, Path]:
    """Where each PBX's Asterisk writes recordings (a PBX without its own: the settings')."""
    roots = {DEFAULT_PBX: default}
    if "pbxes" in await table_names(connection) \
            and "recordings_source" in await column_names(connection, "pbxes"):
        for name, source in (await connection.execute(
                text("SELECT name, recordings_source FROM pbxes"))).all():
            roots[name] = Path(source) if source else default
    return roots


async def _listed(connection: AsyncConnection) -> tuple[list[Any], list[Any]]:
    """(stored rows, original rows) as the snapshot names them."""
    tables = set(await table_names(connection))
    stored: list[Any] = []
    originals: list[Any] = []
    if "call_audio" in tables:
        stored = list((await connection.execute(text(
            "SELECT call_id, backend, key, sha256 FROM call_audio "
            "WHERE status = 'stored' AND key IS NOT NULL ORDER BY call_id"))).all())
    if "recordings" in tables:
        pbx = "c.pbx" if "pbx" in await column_names(connection, "calls") else f"'{DEFAULT_PBX}'"
        finished = ("LEFT JOIN call_audio a ON a.call_id = r.call_id "
                    "WHERE a.status IS NULL OR a.status NOT IN ('stored', 'expired')"
                    if "call_audio" in tables else "")
        originals = list((await connection.execute(text(
            f"SELECT r.call_id, r.path, {pbx} FROM recordings r "
            f"JOIN calls c ON c.id = r.call_id {finished} ORDER BY r.call_id, r.id"))).all())
    return stored, originals


async def collect(connection: AsyncConnection, out_dir: Path, store: Store,
                  roots: dict[str, Path], late_audio: LateAudio) -> dict[str, Any]:
    """Copy (or, on S3, check) every recording the snapshot names: the manifest's section."""
    stored, originals = await _listed(connection)
    entries: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    in_backup = isinstance(store, DirectoryStore)

    async def take_stored(call_id: int, backend: str | None, key: str,
                          sha: str | None) -> dict[str, Any] | None:
        entry: dict[str, Any] = {"kind": "stored", "call_id": call_id, "path": key,
                                 "backend": backend or store.name}
        if backend and backend != store.name:
            problems.append({**entry, "problem": "other_store"})
            return None
        try:
            check_key(key)
            if in_backup:
                source = store.path(key)
                if source is None:
                    raise FileNotFoundError(key)
                file = f"{STORED_DIR}/{key}"
                size, digest = await asyncio.to_thread(_copy_hashing, source, out_dir / file)
            else:
                file = None
                size, digest = await asyncio.to_thread(_hash_object, store, key)
        except (OSError, ValueError):
            problems.append({**entry, "problem": "missing"})
            return None
        entry.update(size=size, sha256=digest, file=file)
        if sha and sha != digest:
            problems.append({**entry, "problem": "checksum", "expected": sha})
        entries.append(entry)
        return entry

    for call_id, backend, key, sha in stored:
        await take_stored(call_id, backend, key, sha)
    late_done: set[int] = set()
    for call_id, path, pbx in originals:
        entry = {"kind": "original", "call_id": call_id, "pbx": pbx or DEFAULT_PBX,
                 "path": path}
        root = roots.get(pbx or DEFAULT_PBX, roots[DEFAULT_PBX])
        source = under(root, path)
        try:
            check_key(entry["pbx"])
            if source is None:
                raise FileNotFoundError(path)
            file = f"{ORIGINALS_DIR}/{entry['pbx']}/{PurePosixPath(path)}"
            size, digest = await asyncio.to_thread(_copy_hashing, source, out_dir / file)
        except (OSError, ValueError):
            if call_id in late_done:
                continue
            audio = await late_audio(call_id)  # finalized after the snapshot?
            if audio is not None:
                late_done.add(call_id)
                taken = await take_stored(call_id, audio["backend"], audio["key"],
                                          audio["sha256"])
                if taken is not None:
                    taken["finalized_after_snapshot"] = audio
                    continue
            problems.append({**entry, "problem": "missing"})
            continue
        entries.append({**entry, "size": size, "sha256": digest, "file": file})
    location = getattr(store, "location", None)  # an S3 store's bucket and prefix
    where = (str(store.root) if isinstance(store, DirectoryStore)
             else f"s3://{location.bucket}/{location.prefix}" if location else store.name)
    return {"store": {"backend": store.name, "location": where, "files_in_backup": in_backup},
            "files": entries, "problems": problems}


# -- restoring ------------------------------------------------------------------------------

def damaged(reason: str, file: str) -> DomainError:
    return DomainError("backup.file_damaged", f"{file} is damaged: {reason}", file=file)


def verify_file(directory: Path, file: Any, size: Any, sha: Any) -> Path:
    """The backup's copy of a file, if it is there whole; else one sentence naming it."""
    path = under(directory, file) if isinstance(file, str) else None
    if path is None or not path.is_file():
        raise damaged("missing", str(file))
    found_size, found_sha = sha256_of(path)
    if found_size != size or found_sha != sha:
        raise damaged("checksum", str(file))
    return path


def verify_recordings(directory: Path, section: dict[str, Any], store: Store) -> None:
    """Every recording of the manifest is in the backup (or the bucket) with its checksum."""
    for entry in section.get("files", []):
        if not isinstance(entry, dict):
            raise damaged("entry", "manifest.json")
        if entry.get("file"):
            verify_file(directory, entry["file"], entry.get("size"), entry.get("sha256"))
            continue
        key = str(entry.get("path"))
        try:
            size, digest = _hash_object(store, key)
        except (OSError, ValueError):
            raise DomainError("backup.recording_not_in_store",
                              f"{key} is not in the store {store.name}", path=key) from None
        if size != entry.get("size") or digest != entry.get("sha256"):
            raise DomainError("backup.recording_changed_in_store",
                              f"{key} in the store differs from the backup", path=key)


def _place(source: Path, target: Path) -> None:
    """Copy under a temporary name, then rename: a reader never meets half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.restoring")
    try:
        with source.open("rb") as src, partial.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(partial, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()


def put_back(directory: Path, section: dict[str, Any], store: Store,
             roots: dict[str, Path]) -> tuple[int, int]:
    """Recordings where the settings say: (stored files put, originals put).

    An original already in its PBX's folder is left alone: Asterisk's own copy is at
    least as long as the one taken during the call.
    """
    stored = originals = 0
    for entry in section.get("files", []):
        if not entry.get("file"):
            continue  # stays in its bucket (checked already)
        source = directory / entry["file"]
        if entry["kind"] == "stored":
            store.put(entry["path"], source)
            stored += 1
            continue
        root = roots.get(entry.get("pbx") or DEFAULT_PBX, roots[DEFAULT_PBX])
        target = under(root, entry["path"])
        if target is None:
            raise damaged("path", str(entry["file"]))
        if not target.exists():
            _place(source, target)
            originals += 1
    return stored, originals
