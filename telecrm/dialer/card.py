"""What the dialer shows of the next client: card essentials, last contacts, the script.

The script is the KKP version in force for the stage of the client's open deal (then
his team's, then the company's, as calls are checked). Scripts hold stages with phrases,
not prompt texts, so the prompts are the stages in order with what to say in each; a
script ``description`` is shown above them when it has one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from crm_core.activities.models import CallOutcome, CallResult, ClientActivity
from crm_core.calls.models import Call
from crm_core.clients.models import Client
from crm_core.sales.models import Deal, DealStatus
from crm_core.speech.scripts import version_in_force
from crm_core.timestamps import isoformat
from speech.script import KkpError, parse_script_text
from telecrm.web.present import CLIENT_STATUSES, money, phone

LAST_CONTACTS = 3
ACTIVITY_WORDS = {"note": "Заметка", "email_out": "Письмо клиенту", "email_in": "Письмо от клиента",
                  "meeting": "Встреча"}


async def open_deal(session: AsyncSession, client_id: int) -> Deal | None:
    """The client's newest open deal (its stage loaded)."""
    return await session.scalar(
        select(Deal).where(Deal.client_id == client_id, Deal.status == DealStatus.OPEN.value,
                           Deal.archived_at.is_(None))
        .options(selectinload(Deal.stage)).order_by(Deal.id.desc()).limit(1))


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


def script_prompts(text: str) -> dict[str, Any]:
    """A script's text as prompts in Russian: a description, then each stage and its phrases."""
    try:
        script = parse_script_text(text)
    except KkpError:
        return {"name": None, "description": None, "prompts": []}
    raw = yaml.safe_load(text)
    description = raw.get("description") if isinstance(raw, dict) else None
    prompts = []
    for stage in script.stages:
        phrases = ", ".join(f"«{p}»" for p in stage.phrases)
        hint = f"Скажите: {phrases}" if phrases else ""
        if stage.within_seconds:
            hint += f" — в первые {int(stage.within_seconds)} с разговора"
        prompts.append({"title": stage.title or stage.id, "required": stage.required,
                        "text": hint})
    return {"name": script.name, "description": description if isinstance(description, str)
            else None, "prompts": prompts}


async def client_card(session: AsyncSession, client: Client, *, team_id: int | None,
                      now: datetime) -> dict[str, Any]:
    """The dialer's card of ``client`` (phones and contacts loaded)."""
    deal = await open_deal(session, client.id)
    stage = deal.stage if deal is not None else None
    version = await version_in_force(session, now, team_id=team_id,
                                     stage=stage.code if stage is not None else None)
    script = script_prompts(version.text) if version is not None else None
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
        "script": None if script is None else {**script, "stage": stage.name if stage else None,
                                               "version": version.name if version else None},
    }
