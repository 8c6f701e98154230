"""What the client card shows beyond the client's own facts: the timeline, the open
deals, the next planned contact with the form to plan one, and what the forms offer.

The card page (:func:`telecrm.web.pages.client_card`) and its timeline fragment
(``/clients/{id}/history``, refreshed live) both take their context from here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.activities.outcomes import outcome_list
from crm_core.activities.timeline import PAGE, client_timeline, timeline_page
from crm_core.calls.models import Call, Recording
from crm_core.clients.models import Client
from crm_core.clock import local_now
from crm_core.people import access
from crm_core.people.models import Role, User
from crm_core.sales.models import Deal, DealStatus, Pipeline, PipelineStage
from crm_core.sales.tasks import PLANNABLE_KINDS, open_client_tasks
from crm_core.tasks.models import Task
from crm_core.timestamps import ensure_utc, isoformat

FILTERS = [("all", "Всё"), ("calls", "Звонки"), ("notes", "Заметки"),
           ("contacts", "Письма и встречи"), ("tasks", "Задачи"), ("deals", "Сделки"),
           ("money", "Счета и оплаты"), ("changes", "Статус и ответственный")]
RECENT_CALLS = 500  # the player offers the recorded ones among the client's newest calls
PLAYER_CALLS = 50  # of which it lists this many


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


async def timeline_context(session: AsyncSession, user: User, client: Client, *,
                           calls_where: ColumnElement[bool] | None = None,
                           group: str | None = None, shown: int | None = PAGE
                           ) -> dict[str, Any]:
    """The timeline as ``user`` may see it (his calls filter, unless the caller has it
    already), who is on its calls, and what he may do on it: the newest ``shown``
    entries of the filter's ``group`` (all groups if None) and whether older ones are
    left, or, with ``shown`` None, every kind's newest entries (the API's answer)."""
    if calls_where is None:
        calls_where = await access.calls_filter(session, user)
    more = False
    if shown is None:
        entries = await client_timeline(session, client.id, calls_where=calls_where,
                                        group=group)
    else:
        entries, more = await timeline_page(session, client.id, calls_where=calls_where,
                                            group=group, shown=shown)
    boss = user.role in (Role.SUPERVISOR, Role.ADMIN)
    for entry in entries:
        if entry["kind"] in ("note", "email", "meeting"):
            entry["may_archive"] = entry["by"] == user.id or boss
    return {"timeline": entries, "may_listen": access.may_hear_recordings(user),
            "timeline_group": group or "all", "timeline_more": more,
            "timeline_next": (shown or 0) + PAGE}


async def recorded_calls(session: AsyncSession, client_id: int,
                         calls_where: ColumnElement[bool]) -> list[dict[str, Any]]:
    """The card's player list: the recorded ones among the client's newest calls the viewer
    may see (``calls_where``), newest first; plain columns, as the player shows them."""
    newest = (select(Call.id).where(Call.client_id == client_id, calls_where)
              .order_by(Call.started_at.desc(), Call.id.desc()).limit(RECENT_CALLS))
    rows = await session.execute(
        select(Call.id, Call.started_at, Call.direction, Call.talk_seconds)
        .where(Call.id.in_(newest), exists().where(Recording.call_id == Call.id))
        .order_by(Call.started_at.desc(), Call.id.desc()).limit(PLAYER_CALLS))
    return [{"id": call_id, "started_at": isoformat(started_at), "direction": direction,
             "talk_seconds": round(talk, 3), "recordings": True}
            for call_id, started_at, direction, talk in rows]


async def card_context(session: AsyncSession, user: User, client: Client, tz: ZoneInfo, *,
                       tasks: list[Task] | None = None,
                       calls_where: ColumnElement[bool] | None = None) -> dict[str, Any]:
    """Everything the card's own blocks need (see the module doc). The page passes what
    it has loaded already: the client's open tasks ``user`` may see, his calls filter."""
    now = local_now(tz)
    if calls_where is None:
        calls_where = await access.calls_filter(session, user)
    if tasks is None:
        tasks = await access.visible_tasks(session, user, client_id=client.id)
    visible = {t.id: t for t in tasks}
    mine = [visible[t.id] for t in await open_client_tasks(session, client.id)
            if t.id in visible]
    # only those the rule of crm_core.sales.tasks.check_assignee lets one pick, in one query
    planners: list[User] = []
    if user.role in (Role.SUPERVISOR, Role.ADMIN):
        candidates = [m for m in await access.visible_managers(session, user)
                      if access.may_assign_to(user, m)]
        may_open = await access.who_may_open_client(session, candidates, client.id)
        planners = [m for m in candidates if m.id in may_open]
    default_due = (now + timedelta(days=1)).replace(hour=10, minute=0, second=0,
                                                    microsecond=0)
    assignee = mine[0].assignee if mine else None
    return {
        **await timeline_context(session, user, client, calls_where=calls_where),
        "calls": await recorded_calls(session, client.id, calls_where),
        "filters": FILTERS,
        "deals": await open_deals(session, client.id, tz),
        "next_contact": mine[0] if mine else None,
        "next_contact_assignee": assignee.name if assignee is not None else None,
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
