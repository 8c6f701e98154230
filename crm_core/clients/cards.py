"""The company card: create and edit a client, his requisites, phones, e-mails and people.

What the people who work with a client type: the name, INN/KPP (the INN's check
digits are verified), addresses, site, industry, region, how the client found us, a
comment; the company's phones and e-mails; contact persons with their position,
phones and e-mails. A number another working client already has is refused with
that client's name (:class:`ConflictError` ``clients.phone_taken``): one number, one
client, so a call lands on the right card. Every change is one audit row saying
what changed from what. Contact persons are archived, never deleted
(``crm_core.sales.archive``); numbers and addresses taken off a card are gone from
it, and the audit row keeps them.

Who may do this is the caller's to check (:func:`crm_core.people.access.may_edit_client`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.clients.models import Client, Contact, Email, Phone
from crm_core.clients.phones import (
    DEFAULT_REGION,
    format_phone,
    is_extension,
    normalize_phone,
    phone_kind,
)
from crm_core.clients.services import AUDIT_ENTITY, create_client
from crm_core.errors import ConflictError, DomainError
from crm_core.people.models import User
from crm_core.timestamps import utcnow

CONTACT_ENTITY = "contact"
# The card's free-text fields and their longest value.
DETAILS: dict[str, int] = {
    "inn": 12, "kpp": 9, "legal_address": 500, "actual_address": 500, "site": 300,
    "industry": 200, "region": 200, "found_via": 200, "comment": 2000,
}
NAME_MAX = 300
_INN10 = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN11 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_KPP = re.compile(r"[0-9]{4}[0-9A-Z]{2}[0-9]{3}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


# -- checks -----------------------------------------------------------------------------------


def _check_digit(digits: str, weights: Sequence[int]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 11 % 10


def check_inn(raw: str | None) -> str | None:
    """The INN as digits (None when empty); 10 digits (a company) or 12 (a person), with
    their check digits right, else ``clients.inn_invalid``."""
    inn = re.sub(r"\s", "", raw or "")
    if not inn:
        return None
    valid = inn.isascii() and inn.isdigit() and (
        (len(inn) == 10 and _check_digit(inn, _INN10) == int(inn[9]))
        or (len(inn) == 12 and _check_digit(inn, _INN11) == int(inn[10])
            and _check_digit(inn, _INN12) == int(inn[11])))
    if not valid:
        raise DomainError("clients.inn_invalid", f"INN {inn!r} is not valid", inn=inn)
    return inn


def check_kpp(raw: str | None) -> str | None:
    """The KPP (9 characters: 4 digits, 2 digits or capital letters, 3 digits) or None."""
    kpp = re.sub(r"\s", "", raw or "").upper()
    if not kpp:
        return None
    if not _KPP.fullmatch(kpp):
        raise DomainError("clients.kpp_invalid", f"KPP {kpp!r} is not valid", kpp=kpp)
    return kpp


def check_email(raw: str) -> str:
    address = raw.strip().lower()
    if len(address) > 320 or not _EMAIL.fullmatch(address):
        raise DomainError("clients.email_invalid", f"{raw!r} is not an e-mail address",
                          email=raw.strip()[:100])
    return address


def check_name(raw: str | None, missing: DomainError | None = None) -> str:
    """The name with its spaces tidied; ``missing`` (default: a client's) if empty."""
    name = " ".join((raw or "").split())
    if not name:
        raise missing or DomainError("clients.name_required", "a name is required")
    if len(name) > NAME_MAX:
        raise DomainError("clients.too_long", "the name is too long", field="name")
    return name


def clean_details(values: dict[str, Any]) -> dict[str, str | None]:
    """The card's text fields as stored: trimmed, empty as None, INN and KPP checked."""
    out: dict[str, str | None] = {}
    for field, value in values.items():
        if field not in DETAILS:
            raise DomainError("clients.unknown_field", f"unknown field {field!r}", field=field)
        if value is not None and not isinstance(value, str):
            raise DomainError("clients.not_text", f"{field} must be text", field=field)
        text = (value or "").strip()
        if field == "inn":
            out[field] = check_inn(text)
        elif field == "kpp":
            out[field] = check_kpp(text)
        elif len(text) > DETAILS[field]:
            raise DomainError("clients.too_long", f"{field} is too long", field=field)
        else:
            out[field] = text or None
    return out


def normalize_phones(raws: Sequence[str], region: str = DEFAULT_REGION) -> dict[str, str]:
    """E.164 -> the number as typed, for every non-empty entry; a bad one is refused."""
    numbers: dict[str, str] = {}
    for raw in raws:
        if not isinstance(raw, str) or not raw.strip():
            continue
        e164 = normalize_phone(raw, region)
        if e164 is None:
            code = "clients.phone_extension" if is_extension(raw) else "clients.phone_invalid"
            raise DomainError(code, f"{raw.strip()!r} is not a client phone number",
                              phone=raw.strip()[:50])
        numbers.setdefault(e164, raw.strip()[:100])
    return numbers


def normalize_emails(raws: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(check_email(r) for r in raws if isinstance(r, str) and r.strip()))


async def check_phones_free(session: AsyncSession, e164s: Sequence[str],
                            client_id: int | None) -> None:
    """Refuse a number another working (not archived) client has, naming that client."""
    if not e164s:
        return
    stmt = (select(Phone.e164, Client.name).join(Client, Client.id == Phone.client_id)
            .where(Phone.e164.in_(list(e164s)), Client.archived_at.is_(None))
            .order_by(Client.id))
    if client_id is not None:
        stmt = stmt.where(Client.id != client_id)
    taken = (await session.execute(stmt.limit(1))).first()
    if taken is not None:
        e164, name = taken
        raise ConflictError("clients.phone_taken",
                            f"phone {e164} belongs to client {name!r}",
                            client=name, phone=format_phone(e164))


def _audit(session: AsyncSession, by: User | None, actor: str, entity: str, entity_id: int,
           action: str, changes: dict[str, Any]) -> None:
    write_audit(session, actor=actor, user_id=by.id if by else None, entity=entity,
                entity_id=entity_id, action=action, changes=changes)


# -- the company ------------------------------------------------------------------------------


async def create_company(session: AsyncSession, *, name: str, phones: Sequence[str] = (),
                         emails: Sequence[str] = (), details: dict[str, Any] | None = None,
                         owner_id: int | None, by: User | None, actor: str,
                         source: str = "manual", region: str = DEFAULT_REGION) -> Client:
    """A new client with his card, phones and e-mails; one audit row. Nothing is written
    when anything is refused."""
    name = check_name(name)
    numbers = normalize_phones(phones, region)
    addresses = normalize_emails(emails)
    fields = clean_details(details or {})
    await check_phones_free(session, list(numbers), None)
    client = await create_client(
        session, name, phones=list(numbers.values()), owner_id=owner_id, source=source,
        actor=actor, region=region, user_id=by.id if by else None,
        audit_extra={**{k: v for k, v in fields.items() if v is not None},
                     **({"emails": addresses} if addresses else {})})
    for field, value in fields.items():
        setattr(client, field, value)
    for address in addresses:
        client.emails.append(Email(address=address))
    await session.flush()
    return client


async def edit_company(session: AsyncSession, client: Client, *, name: str | None = None,
                       phones: Sequence[str] | None = None, emails: Sequence[str] | None = None,
                       details: dict[str, Any] | None = None, by: User | None, actor: str,
                       region: str = DEFAULT_REGION) -> dict[str, Any]:
    """Change what is given: the name, card fields, and the company's own phones and e-mails
    (a list replaces the current one; numbers of contact persons stay theirs).

    ``client.phones`` and ``client.emails`` must be loaded. Returns the changes (empty: nothing
    written).
    """
    changes: dict[str, Any] = {}
    if name is not None:
        new_name = check_name(name)
        if new_name != client.name:
            changes["name"] = [client.name, new_name]
            client.name = new_name
    for field, value in clean_details(details or {}).items():
        if getattr(client, field) != value:
            changes[field] = [getattr(client, field), value]
            setattr(client, field, value)
    if phones is not None:
        numbers = normalize_phones(phones, region)
        known = {p.e164 for p in client.phones}
        await check_phones_free(session, [e for e in numbers if e not in known], client.id)
        removed = [p for p in client.phones if p.contact_id is None and p.e164 not in numbers]
        for phone in removed:
            client.phones.remove(phone)
        added = [e for e in numbers if e not in known]
        for e164 in added:
            client.phones.append(Phone(e164=e164, raw=numbers[e164], kind=phone_kind(e164)))
        if added:
            changes["phones_added"] = added
        if removed:
            changes["phones_removed"] = [p.e164 for p in removed]
    if emails is not None:
        addresses = normalize_emails(emails)
        known_mail = {m.address for m in client.emails}
        gone = [m for m in client.emails if m.contact_id is None and m.address not in addresses]
        for mail in gone:
            client.emails.remove(mail)
        new = [a for a in addresses if a not in known_mail]
        for address in new:
            client.emails.append(Email(address=address))
        if new:
            changes["emails_added"] = new
        if gone:
            changes["emails_removed"] = [m.address for m in gone]
    if not changes:
        return changes
    client.updated_at = utcnow()
    await session.flush()
    _audit(session, by, actor, AUDIT_ENTITY, client.id, ACTION_UPDATE, changes)
    return changes


# -- contact persons --------------------------------------------------------------------------


async def _set_contact_numbers(session: AsyncSession, client: Client, contact: Contact,
                               phones: Sequence[str], emails: Sequence[str], region: str
                               ) -> dict[str, Any]:
    """Make ``phones`` and ``emails`` the person's own (``contact`` is flushed: it has an id)."""
    numbers = normalize_phones(phones, region)
    addresses = normalize_emails(emails)
    by_number = {p.e164: p for p in client.phones}
    await check_phones_free(session, [e for e in numbers if e not in by_number], client.id)
    changes: dict[str, Any] = {}
    gone = [p for p in client.phones if p.contact_id == contact.id and p.e164 not in numbers]
    for phone in gone:
        client.phones.remove(phone)
    added = []
    for e164, raw in numbers.items():
        held = by_number.get(e164)
        if held is None:
            client.phones.append(Phone(e164=e164, raw=raw, kind=phone_kind(e164),
                                       contact_id=contact.id))
        elif held.contact_id != contact.id:
            held.contact_id = contact.id  # a company number may become the person's own
        else:
            continue
        added.append(e164)
    if added:
        changes["phones_added"] = added
    if gone:
        changes["phones_removed"] = [p.e164 for p in gone]
    by_address = {m.address: m for m in client.emails}
    dropped = [m for m in client.emails
               if m.contact_id == contact.id and m.address not in addresses]
    for mail in dropped:
        client.emails.remove(mail)
    new = []
    for address in addresses:
        known = by_address.get(address)
        if known is None:
            client.emails.append(Email(address=address, contact_id=contact.id))
        elif known.contact_id != contact.id:
            known.contact_id = contact.id
        else:
            continue
        new.append(address)
    if new:
        changes["emails_added"] = new
    if dropped:
        changes["emails_removed"] = [m.address for m in dropped]
    return changes


async def add_contact(session: AsyncSession, client: Client, *, name: str,
                      position: str | None = None, phones: Sequence[str] = (),
                      emails: Sequence[str] = (), by: User | None, actor: str,
                      region: str = DEFAULT_REGION) -> Contact:
    """A person at the client with his position, phones and e-mails; audited.

    ``client.phones`` and ``client.emails`` must be loaded.
    """
    person = check_name(name, DomainError("clients.contact_name_required", "a name is required"))
    title = (position or "").strip() or None
    if title is not None and len(title) > 200:
        raise DomainError("clients.too_long", "the position is too long", field="position")
    contact = Contact(client_id=client.id, name=person[:200], position=title, phones=[],
                      emails=[])
    if "contacts" in inspect(client).unloaded:
        session.add(contact)
    else:
        client.contacts.append(contact)
    await session.flush()
    changes = await _set_contact_numbers(session, client, contact, phones, emails, region)
    client.updated_at = utcnow()
    await session.flush()
    _audit(session, by, actor, CONTACT_ENTITY, contact.id, ACTION_CREATE,
           {"client_id": client.id, "name": contact.name, "position": title, **changes})
    return contact


async def edit_contact(session: AsyncSession, client: Client, contact: Contact, *,
                       name: str, position: str | None, phones: Sequence[str],
                       emails: Sequence[str], by: User | None, actor: str,
                       region: str = DEFAULT_REGION) -> dict[str, Any]:
    """Change a person's name, position, phones and e-mails (the lists replace his own)."""
    if contact.client_id != client.id:
        raise DomainError("clients.contact_not_found", "no such contact at this client")
    changes: dict[str, Any] = {}
    person = check_name(name, DomainError("clients.contact_name_required",
                                          "a name is required"))[:200]
    if person != contact.name:
        changes["name"] = [contact.name, person]
        contact.name = person
    title = (position or "").strip() or None
    if title is not None and len(title) > 200:
        raise DomainError("clients.too_long", "the position is too long", field="position")
    if title != contact.position:
        changes["position"] = [contact.position, title]
        contact.position = title
    changes.update(await _set_contact_numbers(session, client, contact, phones, emails, region))
    if not changes:
        return changes
    client.updated_at = utcnow()
    await session.flush()
    _audit(session, by, actor, CONTACT_ENTITY, contact.id, ACTION_UPDATE,
           {"client_id": client.id, **changes})
    return changes
