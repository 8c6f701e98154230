"""Adding, editing and switching PBXs off and on: validated, audited, never deleted."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.errors import ConflictError, DomainError, NotFoundError
from crm_core.pbxes.models import Pbx
from crm_core.timestamps import utcnow

AUDIT_ENTITY = "pbx"
# A PBX name labels its calls and names its capture folder: short, Latin, no spaces.
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def _check_name(name: str) -> str:
    name = name.strip().lower()
    if not _NAME.match(name):
        raise DomainError("pbx.bad_name", f"bad PBX name {name!r}", name=name)
    return name


def _check_fields(host: str | None, port: int | None, username: str | None) -> None:
    if host is not None and (not host.strip() or any(c.isspace() for c in host.strip())):
        raise DomainError("pbx.bad_host", f"bad AMI host {host!r}", host=host)
    if port is not None and not 1 <= port <= 65535:
        raise DomainError("pbx.bad_port", f"bad AMI port {port}", port=port)
    if username is not None and not username.strip():
        raise DomainError("pbx.bad_user", "the AMI user is empty")


def describe_pbx(pbx: Pbx) -> dict[str, Any]:
    """A PBX as ``pbx list`` shows it: everything but the secret."""
    return {"name": pbx.name, "host": pbx.host, "port": pbx.port, "user": pbx.username,
            "recordings_source": pbx.recordings_source, "enabled": pbx.disabled_at is None}


async def list_pbxes(session: AsyncSession, *, enabled_only: bool = False) -> list[Pbx]:
    stmt = select(Pbx).order_by(Pbx.name)
    if enabled_only:
        stmt = stmt.where(Pbx.disabled_at.is_(None))
    return list(await session.scalars(stmt))


async def get_pbx(session: AsyncSession, name: str) -> Pbx:
    pbx = await session.scalar(select(Pbx).where(Pbx.name == name.strip().lower()))
    if pbx is None:
        raise NotFoundError("pbx.not_found", f"no PBX {name!r}", name=name)
    return pbx


async def add_pbx(session: AsyncSession, name: str, *, host: str, port: int, username: str,
                  secret: str, recordings_source: str | None = None,
                  actor: str = "cli") -> Pbx:
    """A new PBX to listen to; a name in use is refused (names label calls forever)."""
    name = _check_name(name)
    _check_fields(host, port, username)
    if await session.scalar(select(Pbx.id).where(Pbx.name == name)) is not None:
        raise ConflictError("pbx.name_taken", f"PBX {name!r} exists", name=name)
    pbx = Pbx(name=name, host=host.strip(), port=port, username=username.strip(),
              secret=secret, recordings_source=recordings_source or None)
    session.add(pbx)
    await session.flush()
    changes = {key: [None, value] for key, value in describe_pbx(pbx).items()}
    write_audit(session, actor=actor, entity=AUDIT_ENTITY, entity_id=pbx.id,
                action=ACTION_CREATE, changes=changes)
    return pbx


async def edit_pbx(session: AsyncSession, name: str, *, host: str | None = None,
                   port: int | None = None, username: str | None = None,
                   secret: str | None = None, recordings_source: str | None = None,
                   actor: str = "cli") -> Pbx:
    """Change what is given; the audit notes that the secret changed, never its value."""
    pbx = await get_pbx(session, name)
    _check_fields(host, port, username)
    before = describe_pbx(pbx)
    if host is not None:
        pbx.host = host.strip()
    if port is not None:
        pbx.port = port
    if username is not None:
        pbx.username = username.strip()
    if recordings_source is not None:
        pbx.recordings_source = recordings_source or None
    changes = {key: [before[key], value] for key, value in describe_pbx(pbx).items()
               if before[key] != value}
    if secret is not None and secret != pbx.secret:
        pbx.secret = secret
        changes["secret"] = ["***", "***"]
    if changes:
        pbx.updated_at = utcnow()
        write_audit(session, actor=actor, entity=AUDIT_ENTITY, entity_id=pbx.id,
                    action=ACTION_UPDATE, changes=changes)
    return pbx


async def set_pbx_enabled(session: AsyncSession, name: str, enabled: bool,
                          actor: str = "cli") -> Pbx:
    """Switch a PBX's listener off or back on; its calls stay as they are."""
    pbx = await get_pbx(session, name)
    if (pbx.disabled_at is None) == enabled:
        return pbx
    pbx.disabled_at = None if enabled else utcnow()
    pbx.updated_at = utcnow()
    write_audit(session, actor=actor, entity=AUDIT_ENTITY, entity_id=pbx.id,
                action="enable" if enabled else "disable",
                changes={"enabled": [not enabled, enabled]})
    return pbx
