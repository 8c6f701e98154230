"""API tokens: created by an admin for a user, shown once, kept as a hash, revocable.

A token acts as its user (every per-role rule of ``crm_core.people.access`` applies to
what it sees) within its scopes. Creating and revoking are audited; the token itself
never reaches the audit log, a log line or the database.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from crm_core.audit import ACTION_CREATE, write_audit
from crm_core.errors import DomainError, NotFoundError
from crm_core.integrations.admin import admin_only, clean_name
from crm_core.integrations.models import ApiToken
from crm_core.integrations.scopes import normalize_scopes
from crm_core.people.models import User
from crm_core.timestamps import utcnow

TOKEN_PREFIX = "tcrm_"
SHOWN_CHARS = 12  # what the page shows of a token afterwards: "tcrm_AbCdEfG"
ACTION_REVOKE = "revoke"
# last_used_at is written at most this often per token, so reads stay reads
TOUCH_EVERY = timedelta(minutes=1)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


async def create_token(session: AsyncSession, *, name: str, user_id: int,
                       scopes: list[str], actor: User | None) -> tuple[ApiToken, str]:
    """A new token for ``user_id``; returns the row and the token, which only this caller
    ever sees. The caller commits."""
    admin_only(actor)
    name = clean_name(name)
    user = await session.get(User, user_id)
    if user is None or not user.active:
        raise DomainError("integrations.token_user_unknown", "no such active user")
    stored = normalize_scopes(scopes)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name, prefix=token[:SHOWN_CHARS], token_hash=hash_token(token),
                   user_id=user.id, scopes=stored, created_by=actor.id if actor else None,
                   created_at=utcnow())
    session.add(row)
    await session.flush()
    write_audit(session, actor=actor.username if actor else "cli",
                user_id=actor.id if actor else None, entity="api_token", entity_id=row.id,
                action=ACTION_CREATE,
                changes={"name": name, "prefix": row.prefix, "user": user.username,
                         "scopes": stored})
    return row, token


async def revoke_token(session: AsyncSession, token_id: int, *, actor: User | None) -> ApiToken:
    """Revoke a token for good (a revoked one stays listed, as revoked). Audited."""
    admin_only(actor)
    row = await session.get(ApiToken, token_id)
    if row is None:
        raise NotFoundError("integrations.token_not_found", "no such token")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        row.revoked_by = actor.id if actor else None
        write_audit(session, actor=actor.username if actor else "cli",
                    user_id=actor.id if actor else None, entity="api_token",
                    entity_id=row.id, action=ACTION_REVOKE,
                    changes={"name": row.name, "prefix": row.prefix})
    return row


async def resolve_token(session: AsyncSession, token: str) -> ApiToken | None:
    """The live token (not revoked, its user active) with its user loaded, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token))
                               .options(joinedload(ApiToken.user)))
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    return row


def needs_touch(row: ApiToken, now: datetime) -> bool:
    return row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY


async def touch_token(session: AsyncSession, token_id: int, now: datetime) -> None:
    await session.execute(update(ApiToken).where(ApiToken.id == token_id)
                          .values(last_used_at=now))


async def list_tokens(session: AsyncSession) -> list[ApiToken]:
    """Every token, live ones first, newest first."""
    rows = await session.scalars(select(ApiToken).options(joinedload(ApiToken.user))
                                 .order_by(ApiToken.revoked_at.is_not(None),
                                           ApiToken.id.desc()))
    return list(rows)
