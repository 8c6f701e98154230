"""What the head of sales does to clients: potential (and so ABC), contact frequency,
owner changes one by one or in bulk, and archiving. Never deleting.

Each service takes the acting user (``by``; None is the server operator on the
command line) and refuses what his role may not do with a ``SalesNotAllowedError``:
managers may change none of this; a supervisor works on his team's clients and
gives them to his team's managers; an admin may do anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_UPDATE, AuditLog, write_audit
from crm_core.clients.models import Client
from crm_core.errors import DomainError, NotAllowedError
from crm_core.people.models import Role, User
from crm_core.sales.client_status import abc_group
from crm_core.sales.models import ClientOwnerChange, Deal, DealStatus
from crm_core.sales.payments import PaymentError, parse_amount
from crm_core.sales.settings import rules_for_team
from crm_core.timestamps import isoformat, utcnow

AUDIT_ENTITY = "client"
MAX_BULK = 1000  # clients changed by one request (a page of the list holds far fewer)


class SalesClientError(DomainError):
    """A change to a client's sales data that the rules refuse (``sales.client.*``)."""


class SalesNotAllowedError(NotAllowedError, SalesClientError):
    """The acting user's role or team may not do this (the web answers 403)."""


async def _team_of(session: AsyncSession, user_id: int | None) -> int | None:
    if user_id is None:
        return None
    return await session.scalar(select(User.team_id).where(User.id == user_id))


async def _check_may_manage(session: AsyncSession, by: User | None, client: Client) -> None:
    if by is None or by.role == Role.ADMIN:
        return
    if by.role != Role.SUPERVISOR:
        raise SalesNotAllowedError("sales.bosses_only",
                                   "Only a supervisor or an admin may change this.")
    if by.team_id is None or await _team_of(session, client.owner_id) != by.team_id:
        raise SalesNotAllowedError("sales.client.not_in_team",
                                   f"Client {client.id} is not in your team.", client=client.id)


async def _client(session: AsyncSession, client_id: int) -> Client:
    client = await session.get(Client, client_id)
    if client is None:
        raise SalesClientError("sales.client.not_found",
                               f"There is no client with id {client_id}.",
                               client=client_id)
    return client


def _audit(session: AsyncSession, by: User | None, client: Client, changes: dict[str, Any],
           actor: str) -> None:
    write_audit(session, actor=actor if by is None else by.username,
                user_id=by.id if by else None, entity=AUDIT_ENTITY, entity_id=client.id,
                action=ACTION_UPDATE, changes=changes)


async def set_potential(session: AsyncSession, client_id: int, amount: Any, *,
                        items: int | None = None, by: User | None,
                        actor: str = "cli") -> Client:
    """Set the annual potential (money, optionally items); the ABC group follows.

    The first potential marks the client as qualified (``qualified_at``).
    """
    client = await _client(session, client_id)
    await _check_may_manage(session, by, client)
    try:
        money = parse_amount(amount, "annual_potential")
    except PaymentError as exc:  # the same refusal, as this service's error
        raise SalesClientError(exc.code, str(exc), **exc.params) from None
    if items is not None and not 0 <= items < 10**9:
        raise SalesClientError("sales.client.items_invalid",
                               "items must be a non-negative whole number.")
    rules = await rules_for_team(session, await _team_of(session, client.owner_id))
    group = abc_group(money, rules)
    changes: dict[str, Any] = {
        "annual_potential": [str(client.annual_potential) if client.annual_potential is not None
                             else None, str(money)],
        "abc_group": [client.abc_group, group]}
    if items is not None:
        changes["annual_potential_items"] = [client.annual_potential_items, items]
        client.annual_potential_items = items
    client.annual_potential = money
    client.abc_group = group
    if client.qualified_at is None:
        client.qualified_at = utcnow()
        changes["qualified_at"] = isoformat(client.qualified_at)
    client.updated_at = utcnow()
    _audit(session, by, client, changes, actor)
    await session.flush()
    return client


async def set_contact_frequency(session: AsyncSession, client_id: int, days: int | None, *,
                                by: User | None, actor: str = "cli") -> Client:
    """The client's own planned contact frequency in days (None: his ABC group's)."""
    client = await _client(session, client_id)
    await _check_may_manage(session, by, client)
    if days is not None and not 1 <= days <= 3650:
        raise SalesClientError("sales.client.contact_days_invalid",
                               "The contact frequency must be between 1 and 3650 days.")
    _audit(session, by, client, {"contact_every_days": [client.contact_every_days, days]}, actor)
    client.contact_every_days = days
    client.updated_at = utcnow()
    await session.flush()
    return client


def bulk_client_ids(raw: Sequence[int]) -> list[int]:
    """The distinct ids of a bulk request, refused before any query when there are too many
    or none: the caller chooses the list, so its length must not choose the work."""
    if len(raw) > MAX_BULK:
        raise SalesClientError("sales.client.reassign_too_many",
                               f"Reassign at most {MAX_BULK} clients at a time.", max=MAX_BULK)
    ids = list(dict.fromkeys(raw))
    wrong = next((i for i in ids if not 0 < i < 2**31), None)
    if wrong is not None:
        raise SalesClientError("sales.client.not_found",
                               f"There is no client with id {wrong}.", client=wrong)
    if not ids:
        raise SalesClientError("sales.client.reassign_none", "Give at least one client.")
    return ids


def check_may_reassign(by: User | None) -> None:
    """The role half of "may manage these clients", checked before any transaction."""
    if by is not None and by.role not in (Role.ADMIN, Role.SUPERVISOR):
        raise SalesNotAllowedError("sales.bosses_only",
                                   "Only a supervisor or an admin may change this.")


async def reassign_clients(session: AsyncSession, client_ids: Sequence[int],
                           owner_id: int | None, *, by: User | None, reason: str | None = None,
                           actor: str = "cli") -> list[int]:
    """Give clients to another manager (``owner_id`` None: take them away); all or none.
    Returns the ids of the clients that changed hands.

    Clients already with that owner are left alone. Each change is a
    ``ClientOwnerChange`` row and an audit row; the client's stay restarts. The writes are
    set-based (one UPDATE per table, one multi-row INSERT per table), so however many
    clients a request lists, the write lock is held for a few statements.
    """
    ids = bulk_client_ids(client_ids)
    check_may_reassign(by)
    if owner_id is not None:
        owner = await session.get(User, owner_id)
        if owner is None or not owner.active:
            raise SalesClientError("sales.user_not_found",
                                   f"There is no active user with id {owner_id}.", user=owner_id)
        if owner.role not in (Role.MANAGER, Role.SUPERVISOR):
            raise SalesClientError("sales.client.owner_not_manager",
                                   f"{owner.name} is not a manager.", name=owner.name)
        if by is not None and by.role == Role.SUPERVISOR and owner.team_id != by.team_id:
            raise SalesNotAllowedError("sales.user_not_in_team",
                                       f"{owner.name} is not in your team.", name=owner.name)
    rows = (await session.execute(select(Client.id, Client.owner_id, Client.archived_at)
                                  .where(Client.id.in_(ids)))).all()
    owners = {cid: old for cid, old, _ in rows}
    missing = [i for i in ids if i not in owners]
    if missing:
        raise SalesClientError("sales.client.not_found",
                               f"There is no client with id {missing[0]}.", client=missing[0])
    archived = next((cid for cid, _, gone in rows if gone is not None), None)
    if archived is not None:
        raise SalesClientError("sales.client.archived",
                               f"Client {archived} is archived; restore it first.",
                               client=archived)
    if by is not None and by.role == Role.SUPERVISOR:  # one query for the owners' teams
        teams = dict((await session.execute(select(User.id, User.team_id).where(
            User.id.in_({o for o in owners.values() if o is not None})))).all())
        outside = next((cid for cid in ids if by.team_id is None
                        or teams.get(owners[cid] or 0) != by.team_id), None)
        if outside is not None:
            raise SalesNotAllowedError("sales.client.not_in_team",
                                       f"Client {outside} is not in your team.", client=outside)
    moving = [cid for cid in ids if owners[cid] != owner_id]
    if not moving:
        return []
    now = utcnow()
    reason = (reason or "").strip()[:300] or None
    by_id, who = (by.id if by else None), (actor if by is None else by.username)
    # His open deals go with him (the old manager's deals only, not a colleague's).
    open_deals = (await session.execute(select(Deal.id, Deal.client_id, Deal.owner_id).where(
        Deal.client_id.in_(moving), Deal.status == DealStatus.OPEN.value,
        Deal.archived_at.is_(None)))).all()
    deals = [(deal, old) for deal, cid, old in open_deals if old == owners[cid]]
    await session.execute(insert(ClientOwnerChange), [
        {"client_id": cid, "old_owner_id": owners[cid], "new_owner_id": owner_id, "at": now,
         "by_id": by_id, "reason": reason} for cid in moving])
    await session.execute(insert(AuditLog), [
        {"at": now, "actor": who, "user_id": by_id, "entity": AUDIT_ENTITY, "entity_id": cid,
         "action": ACTION_UPDATE, "changes": {"owner_id": [owners[cid], owner_id],
                                              "reason": reason}} for cid in moving] + [
        {"at": now, "actor": who, "user_id": by_id, "entity": "deal", "entity_id": deal,
         "action": ACTION_UPDATE, "changes": {"owner_id": [old, owner_id], "reason": reason}}
        for deal, old in deals])
    if deals:  # the same deals as audited: open, and the client's owner's
        await session.execute(
            update(Deal).where(Deal.client_id.in_(moving), Deal.status == DealStatus.OPEN.value,
                               Deal.archived_at.is_(None),
                               Deal.owner_id.is_not_distinct_from(
                                   select(Client.owner_id).where(Client.id == Deal.client_id)
                                   .scalar_subquery()))
            .values(owner_id=owner_id).execution_options(synchronize_session="fetch"))
    await session.execute(
        update(Client).where(Client.id.in_(moving))
        .values(owner_id=owner_id, owner_since=now, updated_at=now)
        .execution_options(synchronize_session="evaluate"))
    return moving


async def archive_client(session: AsyncSession, client_id: int, *, by: User | None,
                         reason: str | None = None, restore: bool = False,
                         actor: str = "cli") -> Client:
    """Archive a client (or restore him): the only way a client leaves the base."""
    client = await _client(session, client_id)
    await _check_may_manage(session, by, client)
    if restore and client.archived_at is None:
        raise SalesClientError("sales.client.not_archived", f"Client {client_id} is not archived.",
                               client=client_id)
    if not restore and client.archived_at is not None:
        raise SalesClientError("sales.client.archived_already",
                               f"Client {client_id} is archived already.", client=client_id)
    new: datetime | None = None if restore else utcnow()
    _audit(session, by, client, {"archived_at": [isoformat(client.archived_at), isoformat(new)],
                                 "reason": (reason or "").strip()[:300] or None}, actor)
    client.archived_at = new
    client.updated_at = utcnow()
    await session.flush()
    return client


async def owner_history(session: AsyncSession, client_id: int) -> list[dict[str, Any]]:
    rows = await session.scalars(select(ClientOwnerChange)
                                 .where(ClientOwnerChange.client_id == client_id)
                                 .order_by(ClientOwnerChange.at, ClientOwnerChange.id))
    return [{"at": isoformat(r.at), "from": r.old_owner_id, "to": r.new_owner_id,
             "by": r.by_id, "reason": r.reason} for r in rows]


def money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
