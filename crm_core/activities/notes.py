"""Notes and logged contacts: what a manager writes on the client card.

A note is a remark for whoever opens the card next. An e-mail sent or received and a
meeting held are *contacts*: logging one keeps the client's last contact and judges
his status again (:func:`crm_core.sales.client_status.on_contact`), exactly as an
answered call does, so the contact frequency (ЧЧК), the status rules and the activity
report count them too. Who may open the client is checked by the caller
(:mod:`crm_core.people.access`); here only who may take an entry back. Nothing is
deleted: an entry is archived (it leaves the card) and every change is audited.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.activities.models import CONTACT_KINDS, ActivityKind, ClientActivity
from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.clients.models import Client
from crm_core.errors import DomainError, NotAllowedError, NotFoundError
from crm_core.people.models import Role, User
from crm_core.sales.client_status import DEFAULT_TIMEZONE, contact_withdrawn, on_contact
from crm_core.timestamps import ensure_utc, isoformat, utcnow

AUDIT_ENTITY = "client_activity"
TEXT_MAX = 4000
PEOPLE_MAX = 300
# A contact logged "now" from a phone whose clock runs a little fast is not in the future.
FUTURE_SLACK = timedelta(minutes=5)
LOGGABLE = {ActivityKind.EMAIL_OUT.value, ActivityKind.EMAIL_IN.value,
            ActivityKind.MEETING.value}


def _text(value: str | None, empty: DomainError, limit: int = TEXT_MAX) -> str:
    """The stripped text; ``empty`` is raised when there is none."""
    text = (value or "").strip()
    if not text:
        raise empty
    if len(text) > limit:
        raise DomainError("activities.too_long", f"longer than {limit} characters",
                          limit=limit)
    return text


async def _client(session: AsyncSession, client_id: int) -> Client:
    client = await session.get(Client, client_id)
    if client is None:
        raise NotFoundError("activities.no_client", f"there is no client {client_id}")
    return client


def _audit(session: AsyncSession, by: User, entry: ClientActivity, action: str,
           changes: dict[str, Any]) -> None:
    write_audit(session, actor=by.username, user_id=by.id, entity=AUDIT_ENTITY,
                entity_id=entry.id, action=action, changes=changes)


async def add_note(session: AsyncSession, client_id: int, text: str, *, by: User
                   ) -> ClientActivity:
    """A note on the client's card, written now by ``by``; audited."""
    body = _text(text, DomainError("activities.empty_note", "the note is empty"))
    client = await _client(session, client_id)
    entry = ClientActivity(client_id=client.id, kind=ActivityKind.NOTE.value,
                           happened_at=utcnow(), text=body, user_id=by.id)
    session.add(entry)
    await session.flush()
    _audit(session, by, entry, ACTION_CREATE,
           {"client_id": client.id, "kind": entry.kind, "text": body})
    return entry


async def log_contact(session: AsyncSession, client_id: int, kind: str, text: str, *,
                      by: User, at: datetime | None = None, people: str | None = None,
                      tz_name: str = DEFAULT_TIMEZONE) -> ClientActivity:
    """An e-mail sent (``email_out``) or received (``email_in``), or a meeting held, at
    ``at`` (default now; not in the future); audited. It is a contact: the client's last
    contact and status follow."""
    if kind not in LOGGABLE:
        raise DomainError("activities.unknown_kind", f"unknown contact kind {kind!r}")
    body = _text(text, DomainError("activities.empty_result", "no result given"))
    who = (people or "").strip() or None
    if who is not None and len(who) > PEOPLE_MAX:
        raise DomainError("activities.too_long", f"longer than {PEOPLE_MAX} characters",
                          limit=PEOPLE_MAX)
    try:
        when = ensure_utc(at) if at is not None else utcnow()
    except ValueError:
        raise DomainError("activities.bad_time", "the time needs a time zone") from None
    if when > utcnow() + FUTURE_SLACK:
        raise DomainError("activities.in_future", f"{isoformat(when)} is in the future")
    client = await _client(session, client_id)
    entry = ClientActivity(client_id=client.id, kind=kind, happened_at=when, text=body,
                           people=who, user_id=by.id)
    session.add(entry)
    await session.flush()
    _audit(session, by, entry, ACTION_CREATE,
           {"client_id": client.id, "kind": kind, "happened_at": isoformat(when),
            "people": who, "text": body})
    await on_contact(session, client.id, when, actor=by.username,
                     cause=f"{kind} {entry.id}", user_id=by.id, tz_name=tz_name)
    return entry


def may_archive(entry: ClientActivity, user: User) -> bool:
    """Its author takes an entry back; a supervisor or an admin any they can see."""
    return entry.user_id == user.id or user.role in (Role.SUPERVISOR, Role.ADMIN)


async def archive_activity(session: AsyncSession, entry: ClientActivity, *, by: User,
                           reason: str | None = None,
                           tz_name: str = DEFAULT_TIMEZONE) -> ClientActivity:
    """Take a note or a logged contact off the card (archived, audited, never deleted).

    An archived contact no longer counts: the client's last contact is looked up again.
    """
    if not may_archive(entry, by):
        raise NotAllowedError("activities.not_yours", "only the author or a supervisor")
    if entry.archived_at is not None:
        return entry
    entry.archived_at = utcnow()
    entry.archived_by_id = by.id
    await session.flush()
    _audit(session, by, entry, ACTION_UPDATE,
           {"archived_at": [None, isoformat(entry.archived_at)],
            "reason": (reason or "").strip()[:500] or None})
    if entry.kind in CONTACT_KINDS:
        await contact_withdrawn(session, entry.client_id, actor=by.username,
                                cause=f"{entry.kind} {entry.id} archived", user_id=by.id,
                                tz_name=tz_name)
    return entry


def activity_to_dict(entry: ClientActivity) -> dict[str, Any]:
    """An entry as JSON (the API's answer)."""
    return {"id": entry.id, "client_id": entry.client_id, "kind": entry.kind,
            "happened_at": isoformat(entry.happened_at), "text": entry.text,
            "people": entry.people, "user_id": entry.user_id,
            "archived_at": isoformat(entry.archived_at)}
