"""Archiving contacts and deals, and changing a deal's expected amount.

Nobody deletes a client, contact, deal or call: a supervisor (his team's) or an admin
archives them, and can restore them; a manager cannot make anything vanish. Every
change is an audit row, so the head of sales can see who hid what and when.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_UPDATE, write_audit
from crm_core.clients.models import Client, Contact
from crm_core.people.models import Role, User
from crm_core.sales.clients import SalesNotAllowedError, _check_may_manage
from crm_core.sales.deals import DealError, DealNotAllowedError
from crm_core.sales.models import Deal
from crm_core.sales.payments import PaymentError, parse_amount
from crm_core.timestamps import isoformat, utcnow


def _audit(session: AsyncSession, by: User | None, actor: str, entity: str, entity_id: int,
           changes: dict[str, Any]) -> None:
    write_audit(session, actor=actor if by is None else by.username,
                user_id=by.id if by else None, entity=entity, entity_id=entity_id,
                action=ACTION_UPDATE, changes=changes)


async def _may_manage(session: AsyncSession, by: User | None, client_id: int) -> None:
    client = await session.get(Client, client_id)
    if client is None:
        raise DealError("sales.client.not_found", f"There is no client with id {client_id}.",
                        client=client_id)
    try:
        await _check_may_manage(session, by, client)
    except SalesNotAllowedError as exc:  # the same refusal, as this service's error
        raise DealNotAllowedError(exc.code, str(exc), **exc.params) from None


async def _toggle_archive(session: AsyncSession, row: Contact | Deal, entity: str, *,
                          by: User | None, restore: bool, reason: str | None, actor: str,
                          extra: dict[str, Any]) -> None:
    """Archive ``row`` (or restore it), audited; both checks say which row in one sentence."""
    await _may_manage(session, by, row.client_id)
    contact = entity == "contact"
    if restore and row.archived_at is None:
        raise DealError("sales.contact.not_archived" if contact else "sales.deal.not_archived",
                        f"{entity.capitalize()} {row.id} is not archived.", id=row.id)
    if not restore and row.archived_at is not None:
        raise DealError("sales.contact.archived_already" if contact
                        else "sales.deal.archived_already",
                        f"{entity.capitalize()} {row.id} is archived already.", id=row.id)
    new = None if restore else utcnow()
    _audit(session, by, actor, entity, row.id,
           {"archived_at": [isoformat(row.archived_at), isoformat(new)], **extra,
            "reason": (reason or "").strip()[:300] or None})
    row.archived_at = new
    await session.flush()


async def archive_contact(session: AsyncSession, contact_id: int, *, by: User | None,
                          restore: bool = False, reason: str | None = None,
                          actor: str = "cli") -> Contact:
    """Archive a person at a client (or restore him); his calls and phones stay."""
    contact = await session.get(Contact, contact_id)
    if contact is None:
        raise DealError("sales.contact.not_found", f"There is no contact with id {contact_id}.",
                        contact=contact_id)
    await _toggle_archive(session, contact, "contact", by=by, restore=restore, reason=reason,
                          actor=actor, extra={"client_id": contact.client_id})
    return contact


async def archive_deal(session: AsyncSession, deal_id: int, *, by: User | None,
                       restore: bool = False, reason: str | None = None,
                       actor: str = "cli") -> Deal:
    """Archive a deal opened by mistake (or restore it); its stage history stays."""
    deal = await session.get(Deal, deal_id)
    if deal is None:
        raise DealError("sales.deal.not_found", f"There is no deal with id {deal_id}.",
                        deal=deal_id)
    await _toggle_archive(session, deal, "deal", by=by, restore=restore, reason=reason,
                          actor=actor, extra={})
    return deal


async def set_deal_amount(session: AsyncSession, deal: Deal, amount: Any, *, by: User | None,
                          actor: str = "cli") -> Deal:
    """Change an open deal's expected amount (the owner, his supervisor or an admin)."""
    if deal.archived_at is not None:
        raise DealError("sales.deal.archived", f"Deal {deal.id} is archived.", deal=deal.id)
    if deal.status != "open":
        raise DealError("sales.deal.amount_final",
                        f"Deal {deal.id} is {deal.status} already; its amount is final.",
                        deal=deal.id)
    if by is not None and by.role == Role.MANAGER:
        if deal.owner_id != by.id:
            raise DealNotAllowedError("sales.deal.others", "This deal is another manager's.")
    else:
        await _may_manage(session, by, deal.client_id)
    try:
        value = parse_amount(amount, "amount")
    except PaymentError as exc:
        raise DealError(exc.code, str(exc), **exc.params) from None
    if value != deal.amount:
        _audit(session, by, actor, "deal", deal.id,
               {"amount": [str(deal.amount) if deal.amount is not None else None, str(value)]})
        deal.amount = value
    await session.flush()
    return deal
