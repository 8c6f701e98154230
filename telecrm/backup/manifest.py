"""``manifest.json``: what a backup holds, and the checksums that prove it is whole.

Written last, so a backup directory without it is one that never finished. The
figures it holds (schema revision, rows per table, recordings) are read from the
same snapshot as the dump, never from the live database.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection

from crm_core.errors import DomainError

NAME = "manifest.json"
FORMAT = "telecrm-backup/1"


def telecrm_version() -> str:
    try:
        return metadata.version("telecrm")
    except metadata.PackageNotFoundError:
        return "unknown"


def sha256_of(path: Path) -> tuple[int, str]:
    """(size, SHA-256 hex) of a file, read in blocks."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


async def table_names(connection: AsyncConnection) -> list[str]:
    return sorted(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))


async def column_names(connection: AsyncConnection, table: str) -> set[str]:
    columns = await connection.run_sync(lambda sync: inspect(sync).get_columns(table))
    return {column["name"] for column in columns}


async def table_counts(connection: AsyncConnection) -> dict[str, int]:
    """Rows per table (the schema's own tables, whatever revision it is at)."""
    counts = {}
    for name in await table_names(connection):
        counts[name] = int((await connection.execute(
            text(f'SELECT count(*) FROM "{name}"'))).scalar_one())
    return counts


async def schema_revision(connection: AsyncConnection) -> str | None:
    """The Alembic revision the dumped database is at (None: never migrated)."""
    if "alembic_version" not in await table_names(connection):
        return None
    rows = (await connection.execute(text("SELECT version_num FROM alembic_version"))).all()
    return rows[0][0] if len(rows) == 1 else None


def write(directory: Path, manifest: dict[str, Any]) -> Path:
    """Write the manifest (temporary name, then rename: it appears whole or not at all)."""
    path = directory / NAME
    partial = directory / f".{NAME}.partial"
    partial.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", "utf-8")
    partial.replace(path)
    return path


def read(directory: Path) -> dict[str, Any]:
    """The manifest of a backup directory, or one sentence on why there is none."""
    if not directory.is_dir():
        raise DomainError("backup.no_such_dir", f"no such directory: {directory}",
                          path=str(directory))
    path = directory / NAME
    if not path.is_file():
        raise DomainError("backup.no_manifest", f"{directory} has no {NAME}",
                          path=str(directory))
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DomainError("backup.manifest_unreadable", f"{path} is unreadable: {exc}",
                          path=str(path)) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT \
            or not isinstance(manifest.get("database"), dict) \
            or not isinstance(manifest.get("recordings"), dict):
        raise DomainError("backup.manifest_unreadable", f"{path} is not a Telecrm manifest",
                          path=str(path))
    return manifest


def created_at(manifest: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(manifest.get("created_at")))
    except ValueError:
        return None
