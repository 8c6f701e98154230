"""Clients and their phones: lookup by any number, creation with an audit row."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.clients.models import Client, ClientStatus, Phone
from crm_core.clients.phones import (
    DEFAULT_REGION,
    format_phone,
    is_extension,
    normalize_phone,
    phone_kind,
)
from crm_core.errors import DomainError
from crm_core.timestamps import utcnow

AUDIT_ENTITY = "client"


def _phone_or_error(raw: str, region: str) -> str:
    e164 = normalize_phone(raw, region)
    if e164 is None:
        if is_extension(raw):
            raise DomainError("clients.phone_extension",
                              f"{raw.strip()!r} is an internal extension, not a client phone.",
                              phone=raw.strip())
        raise DomainError("clients.phone_invalid", f"{raw.strip()!r} is not a valid phone number.",
                          phone=raw.strip())
    return e164


def _preferred_first(stmt: Any) -> Any:
    # Active clients before archived ones, then the oldest: deterministic for shared numbers.
    return stmt.order_by(Client.archived_at.is_not(None), Client.id)


async def find_client_by_phone(
    session: AsyncSession, raw: str, region: str = DEFAULT_REGION
) -> Client | None:
    """The client owning the number ``raw`` (typed in any format), or None.

    If the number is shared, an active client wins over an archived one, then the oldest.
    """
    e164 = normalize_phone(raw, region)
    if e164 is None:
        return None
    owners = select(Phone.client_id).where(Phone.e164 == e164)
    stmt = _preferred_first(select(Client).where(Client.id.in_(owners))).limit(1)
    return await session.scalar(stmt)


async def find_clients_by_phones(session: AsyncSession, e164s: Iterable[str]) -> list[Client]:
    """Every client owning any of the E.164 numbers, phones loaded, preferred first."""
    numbers = set(e164s)
    if not numbers:
        return []
    owners = select(Phone.client_id).where(Phone.e164.in_(numbers))
    stmt = select(Client).where(Client.id.in_(owners)).options(selectinload(Client.phones))
    return list(await session.scalars(_preferred_first(stmt)))


async def find_clients_by_name(session: AsyncSession, name: str) -> list[Client]:
    """Clients whose name is exactly ``name`` (after trimming), phones loaded, preferred first."""
    stmt = select(Client).where(Client.name == name.strip()).options(selectinload(Client.phones))
    return list(await session.scalars(_preferred_first(stmt)))


def has_placeholder_name(client: Client) -> bool:
    """True for a lead still named after one of its numbers (as calls create them)."""
    return any(client.name == format_phone(phone.e164) for phone in client.phones)


def _new_phone(raw: str, e164: str) -> Phone:
    return Phone(e164=e164, raw=raw.strip()[:100], kind=phone_kind(e164))


async def create_client(
    session: AsyncSession,
    name: str,
    *,
    phones: Sequence[str] = (),
    owner_id: int | None = None,
    source: str = "manual",
    actor: str,
    audit_extra: dict[str, Any] | None = None,
    region: str = DEFAULT_REGION,
    user_id: int | None = None,
) -> Client:
    """A new client in status ``potential`` with its phones (raw strings), audited.

    Invalid phones raise a DomainError (a ValueError) before anything is written.
    """
    name = name.strip()
    if not name:
        raise DomainError("clients.name_empty", "Client name must not be empty.")
    normalized: dict[str, str] = {}
    for raw in phones:
        normalized.setdefault(_phone_or_error(raw, region), raw)
    client = Client(
        name=name,
        status=ClientStatus.POTENTIAL.value,
        owner_id=owner_id,
        source=source,
        phones=[_new_phone(raw, e164) for e164, raw in normalized.items()],
        contacts=[],
        emails=[],
    )
    session.add(client)
    await session.flush()
    write_audit(
        session,
        actor=actor,
        user_id=user_id,
        entity=AUDIT_ENTITY,
        entity_id=client.id,
        action=ACTION_CREATE,
        changes={
            "name": name,
            "status": client.status,
            "source": source,
            "owner_id": owner_id,
            "phones": list(normalized),
            **(audit_extra or {}),
        },
    )
    return client


async def update_client(
    session: AsyncSession,
    client: Client,
    *,
    actor: str,
    name: str | None = None,
    owner_id: int | None = None,
    add_phones: Sequence[str] = (),
    audit_extra: dict[str, Any] | None = None,
    region: str = DEFAULT_REGION,
) -> dict[str, Any]:
    """Rename, set a new owner (each when given) and add phones the client lacks; audited.

    ``client.phones`` must be loaded. Returns the changes (empty when nothing changed,
    and then nothing is written).
    """
    changes: dict[str, Any] = {}
    if name is not None and name.strip() and name.strip() != client.name:
        changes["name"] = [client.name, name.strip()]
        client.name = name.strip()
    if owner_id is not None and owner_id != client.owner_id:
        changes["owner_id"] = [client.owner_id, owner_id]
        client.owner_id = owner_id
    known = {phone.e164 for phone in client.phones}
    added: list[str] = []
    for raw in add_phones:
        e164 = _phone_or_error(raw, region)
        if e164 not in known:
            known.add(e164)
            added.append(e164)
            client.phones.append(_new_phone(raw, e164))
    if added:
        changes["phones_added"] = added
    if not changes:
        return changes
    client.updated_at = utcnow()
    await session.flush()
    write_audit(
        session,
        actor=actor,
        entity=AUDIT_ENTITY,
        entity_id=client.id,
        action=ACTION_UPDATE,
        changes={**changes, **(audit_extra or {})},
    )
    return changes
