"""What the clients' pages and API do, in one place: who may, then the core and the features.

The card itself is the core's (:mod:`crm_core.clients.cards`, ``merge``); the annual
potential and its ABC group are the sales rules' (a supervisor's or an admin's to set);
renaming a lead closes its «Заполните карточку» task; a merge re-judges the kept
client's status. Refusals are :class:`~crm_core.errors.DomainError` codes whose Russian
sentences are in :mod:`telecrm.messages`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.clients.cards import DETAILS, add_contact, create_company, edit_company, edit_contact
from crm_core.clients.merge import MergeResult, merge_clients
from crm_core.clients.models import Client, Contact
from crm_core.clients.search import one_reindex
from crm_core.clients.services import has_placeholder_name
from crm_core.errors import DomainError, NotAllowedError, NotFoundError
from crm_core.people import access
from crm_core.people.models import Role, User
from crm_core.sales.client_status import recompute_client
from crm_core.sales.clients import SalesClientError, SalesNotAllowedError, set_potential
from crm_core.sales.payments import PaymentError, parse_amount
from crm_core.tasks.leads import close_card_tasks
from telecrm.settings import Settings

DETAIL_FIELDS = tuple(DETAILS)


@dataclass
class ContactInput:
    name: str
    position: str | None = None
    phones: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)


@dataclass
class CompanyInput:
    """The card as typed; None leaves a field as it is (an edit)."""

    name: str | None = None
    phones: list[str] | None = None
    emails: list[str] | None = None
    details: dict[str, str | None] = field(default_factory=dict)
    owner_id: int | None = None
    potential: str | None = None
    contacts: list[ContactInput] = field(default_factory=list)


async def editable(session: AsyncSession, user: User, client_id: int, *,
                   edit: bool = True) -> Client:
    """The client with his card loaded if ``user`` may open it (and change it, ``edit``)."""
    if not access.may_see_clients(user):
        raise NotAllowedError("clients.not_for_role", "your role has no access to clients")
    client = await access.visible_client(session, user, client_id)
    if client is None:
        raise NotFoundError("clients.not_found", f"no client {client_id} for {user.username}")
    if edit and not access.may_edit_client(user, client):
        raise NotAllowedError("clients.edit_not_allowed", "this client is not yours to change")
    return client


async def owners_for(session: AsyncSession, user: User) -> list[User]:
    """Whom ``user`` may make the owner of a new client (himself first)."""
    if user.role == Role.MANAGER:
        return [user]
    people = await access.visible_managers(session, user)
    if user.role == Role.SUPERVISOR:
        return [user, *[p for p in people if p.id != user.id]]
    return people


async def _owner(session: AsyncSession, user: User, owner_id: int | None) -> int | None:
    if owner_id is None:
        return None if user.role == Role.ADMIN else user.id
    if owner_id in {u.id for u in await owners_for(session, user)}:
        return owner_id
    if user.role == Role.ADMIN:
        owner = await session.get(User, owner_id)
        if owner is not None and owner.active and owner.role in (Role.MANAGER,
                                                                  Role.SUPERVISOR):
            return owner_id
    raise DomainError("clients.owner_invalid", f"user {owner_id} cannot own clients here")


async def _potential(session: AsyncSession, user: User, client: Client, raw: str) -> None:
    if not raw.strip():
        return
    try:
        amount = parse_amount(raw, "annual potential")
    except PaymentError:
        raise DomainError("clients.potential_invalid", f"{raw!r} is not an amount",
                          value=raw.strip()[:30]) from None
    if client.annual_potential is not None and Decimal(client.annual_potential) == amount:
        return
    try:
        await set_potential(session, client.id, amount, by=user, actor=user.username)
    except SalesNotAllowedError:
        raise NotAllowedError("clients.potential_not_allowed",
                              "the potential is a supervisor's to set") from None
    except SalesClientError as exc:
        raise DomainError("clients.potential_invalid", str(exc), value=raw.strip()[:30]) from None


async def create(session: AsyncSession, user: User, data: CompanyInput,
                 settings: Settings) -> Client:
    if not access.may_create_clients(user):
        raise NotAllowedError("clients.not_for_role", "your role does not create clients")
    owner_id = await _owner(session, user, data.owner_id)
    async with one_reindex(session):  # the contacts flush one by one
        client = await create_company(
            session, name=data.name or "", phones=data.phones or [], emails=data.emails or [],
            details=data.details, owner_id=owner_id, by=user, actor=user.username,
            region=settings.phone_region)
        for person in data.contacts:
            await add_person(session, user, client, person, settings.phone_region)
    if data.potential is not None:
        await _potential(session, user, client, data.potential)
    return client


async def edit(session: AsyncSession, user: User, client: Client, data: CompanyInput,
               settings: Settings) -> dict[str, object]:
    """Apply an edit; renaming a lead named after its number closes its card task."""
    was_lead = has_placeholder_name(client)
    changes = await edit_company(
        session, client, name=data.name, phones=data.phones, emails=data.emails,
        details=data.details, by=user, actor=user.username, region=settings.phone_region)
    if data.potential is not None:
        await _potential(session, user, client, data.potential)
    if was_lead and "name" in changes and not has_placeholder_name(client):
        await close_card_tasks(session, client.id, user_id=user.id, actor=user.username)
    return changes


async def add_person(session: AsyncSession, user: User, client: Client, data: ContactInput,
                     region: str = "RU") -> Contact:
    return await add_contact(session, client, name=data.name, position=data.position,
                             phones=data.phones, emails=data.emails, by=user,
                             actor=user.username, region=region)


async def edit_person(session: AsyncSession, user: User, client: Client, contact_id: int,
                      data: ContactInput, region: str = "RU") -> dict[str, object]:
    contact = await session.scalar(select(Contact).where(
        Contact.id == contact_id, Contact.client_id == client.id))
    if contact is None:
        raise NotFoundError("clients.contact_not_found", f"no contact {contact_id}")
    return await edit_contact(session, client, contact, name=data.name, position=data.position,
                              phones=data.phones, emails=data.emails, by=user,
                              actor=user.username, region=region)


async def merge(session: AsyncSession, user: User, kept_id: int, duplicate_id: int,
                settings: Settings) -> MergeResult:
    """Merge two clients ``user`` may open (a supervisor's team's, or an admin's)."""
    if not access.may_merge_clients(user):
        raise NotAllowedError("clients.merge_not_allowed", "only supervisors and admins merge")
    for client_id in (kept_id, duplicate_id):
        await editable(session, user, client_id, edit=False)
    result = await merge_clients(session, kept_id, duplicate_id, by=user, actor=user.username)
    await recompute_client(session, result.kept, actor=user.username,
                           cause=f"merged client {duplicate_id}", user_id=user.id,
                           tz_name=settings.timezone)
    return result
