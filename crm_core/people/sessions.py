"""Server-side web sessions: create, resolve, end.

The browser holds a random token; the database holds its SHA-256, the user and the
CSRF token of that session. Resolving a token is one indexed query, and ending a
session (sign-out, a disabled user) takes effect on the next request everywhere.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import delete, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from crm_core.people.models import User, WebSession
from crm_core.timestamps import utcnow

# Refresh ``last_seen_at``/``expires_at`` at most this often, so reads stay reads.
TOUCH_EVERY = timedelta(minutes=5)


@dataclass(frozen=True)
class NewSession:
    """What the caller hands to the client: the cookie token and the CSRF token."""

    token: str
    csrf_token: str
    expires_at: datetime


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


async def create_session(
    session: AsyncSession,
    user: User,
    lifetime: timedelta,
    *,
    ip: str | None = None,
    user_agent: str | None = None,
) -> NewSession:
    """A new session for ``user``; the caller commits."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = WebSession(
        token_hash=hash_token(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
        ip=(ip or None) and ip[:64],
        user_agent=(user_agent or None) and user_agent[:300],
    )
    session.add(row)
    await session.flush()
    return NewSession(token=token, csrf_token=row.csrf_token, expires_at=row.expires_at)


async def resolve_session(session: AsyncSession, token: str) -> WebSession | None:
    """The live session for ``token`` with its active user loaded, or None. Read-only."""
    if not token or len(token) > 200:
        return None
    row = await session.scalar(
        select(WebSession)
        .where(WebSession.token_hash == hash_token(token))
        .options(joinedload(WebSession.user))
    )
    if row is None or row.expires_at <= utcnow() or not row.user.active:
        return None
    return row


def needs_touch(row: WebSession) -> bool:
    """True when a session in use should be extended (at most every ``TOUCH_EVERY``)."""
    return utcnow() - row.last_seen_at >= TOUCH_EVERY


async def touch_session(session: AsyncSession, session_id: int, lifetime: timedelta) -> None:
    """Sliding expiry: a session in use lives ``lifetime`` past its last use."""
    now = utcnow()
    await session.execute(
        update(WebSession)
        .where(WebSession.id == session_id)
        .values(last_seen_at=now, expires_at=now + lifetime)
    )


async def end_session(session: AsyncSession, token: str) -> bool:
    """Delete the session for ``token``; True when there was one. The caller commits."""
    result = await session.execute(
        delete(WebSession).where(WebSession.token_hash == hash_token(token))
    )
    return bool(cast("CursorResult[Any]", result).rowcount)


async def end_user_sessions(session: AsyncSession, user_id: int) -> int:
    """Sign a user out everywhere (disabled user, changed password)."""
    result = await session.execute(delete(WebSession).where(WebSession.user_id == user_id))
    return int(cast("CursorResult[Any]", result).rowcount or 0)


async def purge_expired(session: AsyncSession) -> int:
    """Delete expired sessions; run now and then so the table stays small."""
    result = await session.execute(delete(WebSession).where(WebSession.expires_at <= utcnow()))
    return int(cast("CursorResult[Any]", result).rowcount or 0)


async def end_other_sessions(session: AsyncSession, user_id: int, keep_id: int | None) -> int:
    """Sign a user out everywhere but the session ``keep_id`` (his own password change)."""
    stmt = delete(WebSession).where(WebSession.user_id == user_id)
    if keep_id is not None:
        stmt = stmt.where(WebSession.id != keep_id)
    result = await session.execute(stmt)
    return int(cast("CursorResult[Any]", result).rowcount or 0)
