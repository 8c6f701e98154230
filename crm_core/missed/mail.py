"""The SMTP server notices go through, and people's addresses: stored by an admin.

The password never leaves this module except to log in: ``describe`` and the audit
rows say only whether one is set.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_UPDATE, write_audit
from crm_core.errors import DomainError, NotAllowedError
from crm_core.missed.models import MailAddress, MailSecurity, MailSettings
from crm_core.people.models import Role, User

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
KEEP = object()  # "leave the password as it is" (a form left its field empty)


def check_email(value: str) -> str:
    value = value.strip()
    if not _EMAIL.match(value) or len(value) > 255:
        raise DomainError("missed.email_invalid", f"not an e-mail address: {value!r}",
                          email=value)
    return value


async def mail_settings(session: AsyncSession) -> MailSettings | None:
    """The configured SMTP server, None until an admin sets one."""
    return await session.get(MailSettings, 1)


def describe(row: MailSettings | None) -> dict[str, Any]:
    """The settings as shown to an admin: the password only as set or not."""
    if row is None:
        return {"configured": False}
    return {"configured": True, "host": row.host, "port": row.port, "security": row.security,
            "username": row.username, "password_set": bool(row.password), "sender": row.sender}


async def set_mail_settings(session: AsyncSession, *, host: str, port: int, security: str,
                            username: str | None, password: str | object | None,
                            sender: str, actor: User | None = None) -> MailSettings:
    """Store the SMTP server (admins only; the command line acts as the admin)."""
    if actor is not None and actor.role != Role.ADMIN:
        raise NotAllowedError("missed.mail_not_allowed", "only an admin sets the mail server")
    host = host.strip()
    if not host:
        raise DomainError("missed.mail_host_missing", "the SMTP host is required")
    if not 1 <= port <= 65535:
        raise DomainError("missed.mail_port_invalid", f"bad port {port}", port=port)
    if security not in {s.value for s in MailSecurity}:
        raise DomainError("missed.mail_security_invalid", f"bad security {security!r}",
                          security=security)
    sender = check_email(sender)
    row = await mail_settings(session)
    before = describe(row)
    if row is None:
        row = MailSettings(id=1, host=host, port=port, sender=sender)
        session.add(row)
    row.host, row.port, row.security, row.sender = host, port, security, sender
    row.username = (username or "").strip() or None
    if password is not KEEP:
        row.password = str(password) if password else None
    await session.flush()
    write_audit(session, actor="user" if actor else "cli", user_id=actor.id if actor else None,
                entity="mail_settings", entity_id=row.id, action=ACTION_UPDATE,
                changes={"before": before, "after": describe(row)})
    return row


async def set_address(session: AsyncSession, user: User, email: str | None,
                      actor: User | None = None) -> None:
    """Where ``user``'s notices go; empty removes the address (notices in the browser only)."""
    if actor is not None and actor.role != Role.ADMIN and actor.id != user.id:
        raise NotAllowedError("missed.mail_not_allowed", "only an admin sets others' addresses")
    row = await session.scalar(select(MailAddress).where(MailAddress.user_id == user.id))
    before = row.email if row else None
    if not email or not email.strip():
        if row is not None:
            await session.delete(row)
        after = None
    else:
        after = check_email(email)
        if row is None:
            session.add(MailAddress(user_id=user.id, email=after))
        else:
            row.email = after
    await session.flush()
    if before != after:
        write_audit(session, actor="user" if actor else "cli",
                    user_id=actor.id if actor else None, entity="user", entity_id=user.id,
                    action=ACTION_UPDATE, changes={"email": [before, after]})


async def all_addresses(session: AsyncSession) -> dict[int, str]:
    rows = await session.execute(select(MailAddress.user_id, MailAddress.email))
    return {row[0]: row[1] for row in rows}
