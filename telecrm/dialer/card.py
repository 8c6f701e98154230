"""What the dialer shows of the next client: card essentials, last contacts, the script.

The script is the one the «Сценарий» panel shows everywhere
(:func:`telecrm.speech.scenario.client_scenario`): the version in force for the stage of
the client's deal, then his team's, then the company's, exactly as his calls are checked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from crm_core.activities.models import CallOutcome, CallResult, ClientActivity
from crm_core.calls.models import Call
from crm_core.clients.models import Client
from crm_core.people.models import User
from crm_core.sales.models import Deal, DealStatus
from crm_core.timestamps import isoformat
from telecrm.speech.scenario import client_scenario
from telecrm.web.present import CLIENT_STATUSES, money, phone

LAST_CONTACTS = 3
ACTIVITY_WORDS = {"note": "Заметка", "email_out": "Письмо клиенту", "email_in": "Письмо от клиента",
                  "meeting": "Встреча"}


async def open_deal(session: AsyncSession, client_id: int) -> Deal | None:
    """The client's open deal last moved (its stage loaded): the one whose stage picks the
    script (``crm_core.sales.deals.client_stage``)."""
    return await session.scalar(
        select(Deal).where(Deal.client_id == client_id, Deal.status == DealStatus.OPEN.value,
                           Deal.archived_at.is_(None))
        .options(selectinload(Deal.stage))
        .order_by(Deal.stage_entered_at.desc(), Deal.id.desc()).limit(1))


async def last_contacts(session: AsyncSession, client_id: int) -> list[dict[str, Any]]:
    """The newest notes and call results with a note or an outcome, newest first."""
    activities = await session.scalars(
        select(ClientActivity).where(ClientActivity.client_id == client_id,
                                     ClientActivity.archived_at.is_(None))
        .order_by(ClientActivity.happened_at.desc()).limit(LAST_CONTACTS))
    rows: list[dict[str, Any]] = [
        {"at": isoformat(a.happened_at), "what": ACTIVITY_WORDS.get(a.kind, "Контакт"),
         "text": a.text} for a in activities]
    results = await session.execute(
        select(Call.started_at, CallOutcome.name, CallResult.note)
        .join(CallResult, CallResult.call_id == Call.id)
        .join(CallOutcome, CallOutcome.id == CallResult.outcome_id)
        .where(Call.client_id == client_id).order_by(Call.started_at.desc())
        .limit(LAST_CONTACTS))
    rows += [{"at": isoformat(at), "what": f"Звонок: {name}", "text": note or ""}
             for at, name, note in results]
    rows.sort(key=lambda row: row["at"] or "", reverse=True)
    return rows[:LAST_CONTACTS]


async def client_card(session: AsyncSession, client: Client, *, user: User,
                      now: datetime) -> dict[str, Any]:
    """The dialer's card of ``client`` (phones and contacts loaded) as ``user`` sees it."""
    deal = await open_deal(session, client.id)
    stage = deal.stage if deal is not None else None
    script = await client_scenario(session, user, client, now)
    contacts = [c for c in client.contacts if c.archived_at is None]
    return {
        "id": client.id, "name": client.name,
        "contact": (None if not contacts else
                    ", ".join(x for x in (contacts[0].name, contacts[0].position) if x)),
        "phones": [{"e164": p.e164, "display": phone(p.e164)} for p in client.phones],
        "status": CLIENT_STATUSES.get(client.status, client.status),
        "abc_group": client.abc_group,
        "deal": None if deal is None else {
            "id": deal.id, "title": deal.title, "stage": stage.name if stage else None,
            "amount": money(deal.amount, whole=True) if deal.amount is not None else None},
        "last_contacts": await last_contacts(session, client.id),
        "script": script,
    }
