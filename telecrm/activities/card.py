"""What the client card shows beyond the client's own facts: the timeline, the open
deals, the next planned contact with the form to plan one, and what the forms offer.

The card page (:func:`telecrm.web.pages.client_card`) and its timeline fragment
(``/clients/{id}/history``, refreshed live) both take their context from here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.activities.outcomes import outcome_list
from crm_core.activities.timeline import client_timeline
from crm_core.clients.models import Client
from crm_core.clock import local_now
from crm_core.people import access
from crm_core.people.models import Role, User
from crm_core.sales.models import Deal, DealStatus, Pipeline, PipelineStage
from crm_core.sales.tasks import PLANNABLE_KINDS, open_client_tasks
from crm_core.timestamps import ensure_utc

FILTERS = [("all", "Всё"), ("calls", "Звонки"), ("notes", "Заметки"),
           ("contacts", "Письма и встречи"), ("tasks", "Задачи"), ("deals", "Сделки"),
           ("money", "Счета и оплаты"), ("changes", "Статус и ответственный")]


def _field_time(moment: datetime) -> str:
    """A ``datetime-local`` field's value."""
    return moment.strftime("%Y-%m-%dT%H:%M")


async def open_deals(session: AsyncSession, client_id: int, tz: ZoneInfo
                     ) -> list[dict[str, Any]]:
    """The client's open deals, newest stage entry first, with pipeline, stage and owner."""
    now = local_now(tz)
    rows = (await session.execute(
        select(Deal, Pipeline.name, PipelineStage.name, User.name)
        .join(Pipeline, Pipeline.id == Deal.pipeline_id)
        .join(PipelineStage, PipelineStage.id == Deal.stage_id)
        .outerjoin(User, User.id == Deal.owner_id)
        .where(Deal.client_id == client_id, Deal.status == DealStatus.OPEN.value,
               Deal.archived_at.is_(None))
        .order_by(Deal.stage_entered_at.desc(), Deal.id.desc()))).all()
    return [{"id": deal.id, "title": deal.title, "pipeline": pipeline,
             "pipeline_id": deal.pipeline_id, "stage": stage, "amount": deal.amount,
             "owner": owner, "days": (now - ensure_utc(deal.stage_entered_at)).days}
            for deal, pipeline, stage, owner in rows]


async def timeline_context(session: AsyncSession, user: User, client: Client
                           ) -> dict[str, Any]:
    """The timeline as ``user`` may see it (his calls filter), and what he may do on it."""
    entries = await client_timeline(session, client.id,
                                    calls_where=await access.calls_filter(session, user))
    boss = user.role in (Role.SUPERVISOR, Role.ADMIN)
    for entry in entries:
        if entry["kind"] in ("note", "email", "meeting"):
            entry["may_archive"] = entry["by"] == user.id or boss
    return {"timeline": entries, "may_listen": access.may_hear_recordings(user)}


async def card_context(session: AsyncSession, user: User, client: Client, tz: ZoneInfo
                       ) -> dict[str, Any]:
    """Everything the card's own blocks need (see the module doc)."""
    now = local_now(tz)
    work = await open_client_tasks(session, client.id)
    visible = {t.id for t in await access.visible_tasks(session, user, client_id=client.id)}
    mine = [t for t in work if t.id in visible]
    names = {u.id: u.name for u in await session.scalars(
        select(User).where(User.id.in_([t.assignee_id for t in mine if t.assignee_id])))}
    # only those the rule of crm_core.sales.tasks.check_assignee lets one pick
    planners = ([m for m in await access.visible_managers(session, user)
                 if access.may_assign_to(user, m)
                 and await access.may_open_client(session, m, client.id)]
                if user.role in (Role.SUPERVISOR, Role.ADMIN) else [])
    default_due = (now + timedelta(days=1)).replace(hour=10, minute=0, second=0,
                                                    microsecond=0)
    return {
        **await timeline_context(session, user, client),
        "filters": FILTERS,
        "deals": await open_deals(session, client.id, tz),
        "next_contact": mine[0] if mine else None,
        "next_contact_assignee": names.get(mine[0].assignee_id or 0) if mine else None,
        "next_contact_overdue": bool(mine and mine[0].due_at
                                     and ensure_utc(mine[0].due_at) < now),
        "plan_kinds": [k.value for k in PLANNABLE_KINDS],
        "planners": planners,
        "default_planner": client.owner_id if any(p.id == client.owner_id for p in planners)
        else (planners[0].id if planners else None),
        "default_due": _field_time(default_due),
        "now_field": _field_time(now),
        "outcomes": await outcome_list(session),
        "contact_people": [c for c in client.contacts if c.archived_at is None],
    }
