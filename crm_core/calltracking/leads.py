"""Leads that are not calls: site forms and callback requests, with the visit's source.

A lead keeps the visit's attribution as it was when it came (source, medium, campaign,
keyword, landing page, yclid/gclid/_ym_uid), is matched to the client who owns its
phone (normalised as every number in the CRM) or creates one, and goes to a manager:
the client's owner, else the free manager with the fewest open tasks. A form, and a
callback nobody could take at once (outside working hours, nobody free, the phones of
up to three free managers not answering, :func:`next_callback_manager`), gets a call
task; a callback taken at once rings the manager,
then the visitor, and :func:`match_callback_calls` (a call hook) gives the resulting
call the visit's source, so it counts on the call-tracking report like a tracked call.

Every change is audited (entity ``ct_lead``); a lead is archived, never deleted.
The one place a new lead is announced is :func:`lead_created`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.calls.hooks import WrittenCall
from crm_core.calls.models import Call, CallLeg, CallStatus, Direction
from crm_core.calltracking.models import (
    AttributionKind,
    CtAttribution,
    CtLead,
    CtSite,
    CtVisit,
    LeadKind,
    LeadStatus,
)
from crm_core.clients.models import Client, Email
from crm_core.clients.phones import DEFAULT_REGION, format_phone, normalize_phone
from crm_core.clients.services import create_client, find_client_by_phone
from crm_core.errors import DomainError, NotAllowedError, NotFoundError
from crm_core.integrations.outbox import queue_event
from crm_core.people.models import Role, User
from crm_core.presence.services import current_states
from crm_core.talktime.metric import load_calendar
from crm_core.talktime.models import Holiday
from crm_core.tasks.models import Task, TaskKind, TaskStatus
from crm_core.tasks.services import CallbackPolicy, create_task
from crm_core.timestamps import ensure_utc, isoformat

AUDIT_ENTITY = "ct_lead"
ACTOR = "site"  # audit actor of what a site's visitor sends
MAX_NAME, MAX_EMAIL, MAX_MESSAGE = 200, 254, 2000
# a callback call is the lead's when it starts this soon after the request
CALLBACK_WINDOW = timedelta(minutes=3)
# a callback nobody answers is passed on to the next free manager, this many in all
MAX_CALLBACK_MANAGERS = 3
DUPLICATE_WINDOW = timedelta(minutes=10)  # the same lead sent again within it is one lead
_EMAIL = re.compile(r"[^@\s<>\"'(),;:\\\[\]]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+")
KIND_LABELS = {LeadKind.FORM.value: "Заявка с сайта", LeadKind.CALLBACK.value: "Обратный звонок"}
STATUS_LABELS = {LeadStatus.NEW.value: "ждёт звонка", LeadStatus.CALLING.value: "звоним",
                 LeadStatus.CONNECTED.value: "соединили"}
NOTE_OFF_HOURS = "вне рабочего времени"
NOTE_NOBODY_FREE = "нет свободных менеджеров"


class LeadError(DomainError):
    """Bad input for a lead (``leads.*``): nothing is stored."""


@dataclass(frozen=True)
class LeadInput:
    """What a visitor sent, already checked for type and length by the endpoint."""

    kind: str
    name: str | None = None
    phone: str | None = None  # as typed
    email: str | None = None
    message: str | None = None
    page: str | None = None


@dataclass(frozen=True)
class Cleaned:
    name: str | None
    phone: str | None  # E.164
    email: str | None
    message: str | None


def clean(data: LeadInput, region: str = DEFAULT_REGION) -> Cleaned:
    """The lead's fields checked as the domain wants them; a LeadError names the first fault."""
    if data.kind not in (LeadKind.FORM.value, LeadKind.CALLBACK.value):
        raise LeadError("leads.kind_unknown", f"unknown lead kind {data.kind!r}")
    name = (data.name or "").strip() or None
    if name is not None and (len(name) > MAX_NAME or not name.isprintable()):
        raise LeadError("leads.name_invalid", "the name must be printable text, 200 at most",
                        max=MAX_NAME)
    phone = None
    if data.phone and data.phone.strip():
        phone = normalize_phone(data.phone, region)
        if phone is None:
            raise LeadError("leads.phone_invalid", f"{data.phone!r} is not a phone number",
                            value=data.phone.strip()[:40])
    email = (data.email or "").strip().lower() or None
    if email is not None and (len(email) > MAX_EMAIL or not _EMAIL.fullmatch(email)):
        raise LeadError("leads.email_invalid", f"{data.email!r} is not an e-mail address",
                        value=email[:60])
    message = (data.message or "").strip() or None
    if message is not None:
        if len(message) > MAX_MESSAGE:
            raise LeadError("leads.message_too_long", "the message is too long", max=MAX_MESSAGE)
        if any(not ch.isprintable() and ch not in "\n\r\t" for ch in message):
            raise LeadError("leads.message_invalid", "the message holds control characters")
    if data.kind == LeadKind.CALLBACK.value and phone is None:
        raise LeadError("leads.phone_required", "a callback needs a phone number")
    if phone is None and email is None:
        raise LeadError("leads.contact_required", "a lead needs a phone or an e-mail")
    return Cleaned(name, phone, email, message)


async def recent_duplicate(session: AsyncSession, site_id: int, data: LeadInput, *,
                           now: datetime, region: str = DEFAULT_REGION) -> CtLead | None:
    """The same lead sent again (a double click, a page re-sent): same site and kind, same
    phone (else e-mail), within :data:`DUPLICATE_WINDOW`; None for a new one."""
    cleaned = clean(data, region)
    same = CtLead.phone == cleaned.phone if cleaned.phone else CtLead.email == cleaned.email
    return await session.scalar(
        select(CtLead).where(CtLead.site_id == site_id, CtLead.kind == data.kind, same,
                             CtLead.created_at >= now - DUPLICATE_WINDOW,
                             CtLead.archived_at.is_(None))
        .order_by(CtLead.created_at.desc(), CtLead.id.desc()).limit(1))


def in_working_hours(policy: CallbackPolicy, at: datetime) -> bool:
    """True on a working day (not a holiday) between the policy's start and end of the day."""
    return policy.working(at)


def _clock(minute: int) -> time:
    """Minutes after midnight as a clock time; 24:00 is the very end of the day."""
    return time.max if minute >= 24 * 60 else time(minute // 60, minute % 60)


# How far ahead the work calendar's holidays are read for a callback's deadline.
CALENDAR_DAYS = 60


async def callback_policy(session: AsyncSession, timezone: str, now: datetime, *,
                          hours: tuple[time, time] | None = None,
                          days: frozenset[int] | None = None) -> CallbackPolicy:
    """When callbacks are placed at once and when a lead's callback task is due, from the
    company's work calendar (the one talk time and routing keep, ``/talktime/settings``):
    the company-wide rule in force today gives the working weekdays and the day's hours,
    and the company's holidays of the next :data:`CALENDAR_DAYS` are not working days.
    ``hours`` and ``days`` (Monday is 0) override the rule's hours and weekdays; holidays
    stay the calendar's."""
    zone = ZoneInfo(timezone)
    today = ensure_utc(now).astimezone(zone).date()
    last = today + timedelta(days=CALENDAR_DAYS)
    rules = (await load_calendar(session, [], today, last, tz=zone)).rules(None, today)
    holidays = frozenset(await session.scalars(select(Holiday.day).where(
        Holiday.day >= today, Holiday.day <= last, Holiday.team_id.is_(None),
        Holiday.archived_at.is_(None))))
    start, end = hours or (_clock(rules.day_start_minute), _clock(rules.day_end_minute))
    workdays = days if days is not None else frozenset(
        int(d) - 1 for d in rules.working_weekdays if d.isdigit() and 1 <= int(d) <= 7)
    return CallbackPolicy(timezone=timezone, day_start=start, day_end=end, workdays=workdays,
                          holidays=holidays)


# -- who takes the lead -------------------------------------------------------------------------


async def _busy_users(session: AsyncSession) -> set[int]:
    """Managers with a live leg (ringing or talking) on a call in progress."""
    stmt = (select(CallLeg.user_id).join(Call, Call.id == CallLeg.call_id)
            .where(Call.status == CallStatus.IN_PROGRESS.value, CallLeg.ended_at.is_(None),
                   CallLeg.user_id.is_not(None)))
    return {uid for uid in await session.scalars(stmt) if uid is not None}


async def free_managers(session: AsyncSession, prefer: int | None = None) -> list[User]:
    """Active managers with a phone, «на месте» and not on a call: ``prefer`` (the client's
    owner) first if he is among them, then the fewest open tasks, then the oldest account."""
    managers = list(await session.scalars(
        select(User).where(User.role == Role.MANAGER.value, User.active.is_(True),
                           User.extension.is_not(None)).order_by(User.id)))
    if not managers:
        return []
    states = await current_states(session, [m.id for m in managers])
    busy = await _busy_users(session)
    free = [m for m in managers if states[m.id].present and m.id not in busy]
    load = dict((await session.execute(
        select(Task.assignee_id, func.count()).where(
            Task.status == TaskStatus.OPEN.value,
            Task.assignee_id.in_([m.id for m in free] or [-1]))
        .group_by(Task.assignee_id))).all())
    free.sort(key=lambda m: (m.id != prefer, load.get(m.id, 0), m.id))
    return free


async def _owner(session: AsyncSession, client: Client | None) -> User | None:
    if client is None or client.owner_id is None:
        return None
    owner = await session.get(User, client.owner_id)
    return owner if owner is not None and owner.active else None


async def _match_client(session: AsyncSession, data: Cleaned, site: CtSite
                        ) -> tuple[Client, bool]:
    """The client owning the phone (else the e-mail), or a new one named after the lead."""
    client = await find_client_by_phone(session, data.phone) if data.phone else None
    if client is None and data.email:
        client = await session.scalar(
            select(Client).join(Email, Email.client_id == Client.id)
            .where(func.lower(Email.address) == data.email)
            .order_by(Client.archived_at.is_not(None), Client.id).limit(1))
    if client is not None:
        return client, False
    name = data.name or (format_phone(data.phone) if data.phone else data.email) or site.host
    client = await create_client(session, name, phones=[data.phone] if data.phone else [],
                                 source="site", actor=ACTOR,
                                 audit_extra={"site": site.host})
    if data.email:
        session.add(Email(client_id=client.id, address=data.email))
    return client, True


def _attribution(site: CtSite, visit: CtVisit | None) -> dict[str, Any]:
    if visit is None:
        return {"channel": site.channel}
    ids = visit.client_ids or {}
    return {"visit_id": visit.id, "channel": site.channel, "source": visit.utm_source,
            "medium": visit.utm_medium, "campaign": visit.utm_campaign,
            "utm_term": visit.utm_term, "landing": visit.landing, "yclid": visit.yclid,
            "gclid": visit.gclid, "ym_uid": ids.get("ym_uid")}


def task_title(lead: CtLead) -> str:
    who = lead.name or (format_phone(lead.phone) if lead.phone else lead.email) or ""
    what = "Перезвонить: обратный звонок с сайта" if lead.kind == LeadKind.CALLBACK.value \
        else "Позвонить: заявка с сайта"
    return f"{what}, {who}" if who else what


async def _give_task(session: AsyncSession, lead: CtLead, assignee: User | None,
                     policy: CallbackPolicy, now: datetime) -> Task:
    task = await create_task(
        session, kind=TaskKind.CALLBACK.value if lead.kind == LeadKind.CALLBACK.value
        else TaskKind.CALL.value,
        title=task_title(lead), client_id=lead.client_id,
        assignee_id=assignee.id if assignee is not None else None,
        team_id=assignee.team_id if assignee is not None else None,
        due_at=policy.due(now), actor=ACTOR, audit_extra={"lead_id": lead.id})
    lead.task_id = task.id
    return task


async def create_lead(session: AsyncSession, site: CtSite, visit: CtVisit | None,
                      data: LeadInput, *, now: datetime, policy: CallbackPolicy | None = None,
                      region: str = DEFAULT_REGION, callback_to: User | None = None,
                      note: str | None = None) -> CtLead:
    """Store a lead with the visit's attribution, its client and who takes it.

    ``callback_to``: the free manager a callback is placed through at once (status
    «calling», no task yet); otherwise the lead gets a call task for the client's owner,
    else a free manager, else nobody (the task waits in the list), with ``note`` saying
    why a callback was not placed at once.
    """
    policy = policy or CallbackPolicy()
    cleaned = clean(data, region)
    client, created = await _match_client(session, cleaned, site)
    lead = CtLead(kind=data.kind, site_id=site.id, name=cleaned.name, phone=cleaned.phone,
                  email=cleaned.email, message=cleaned.message, page=data.page,
                  client_id=client.id, created_client=created, note=note, created_at=now,
                  **_attribution(site, visit))
    session.add(lead)
    await session.flush()
    if callback_to is not None:
        lead.status = LeadStatus.CALLING.value
        lead.assignee_id = callback_to.id
    else:
        assignee = await _owner(session, client)
        if assignee is None:
            free = await free_managers(session)
            assignee = free[0] if free else None
        lead.assignee_id = assignee.id if assignee is not None else None
        await _give_task(session, lead, assignee, policy, now)
    if created and lead.assignee_id is not None and client.owner_id is None:
        client.owner_id = lead.assignee_id
    write_audit(session, actor=ACTOR, entity=AUDIT_ENTITY, entity_id=lead.id,
                action=ACTION_CREATE,
                changes={"kind": lead.kind, "site": site.host, "visit_id": lead.visit_id,
                         "client_id": client.id, "created_client": created,
                         "assignee_id": lead.assignee_id, "task_id": lead.task_id,
                         "status": lead.status, "source": lead.source,
                         "channel": lead.channel, "note": note})
    await lead_created(session, lead)
    return lead


async def lead_created(session: AsyncSession, lead: CtLead) -> None:
    """Lead created: the one place a new lead is announced, inside its transaction, so
    the ``lead.created`` webhook is queued exactly when the lead is stored."""
    await session.flush()  # the lead's id is the webhook's key
    await queue_event(session, "lead.created", lead_to_dict(lead), key=str(lead.id))


async def callback_not_placed(session: AsyncSession, lead_id: int, note: str, *,
                              now: datetime, policy: CallbackPolicy | None = None,
                              assignee_id: int | None = None) -> CtLead | None:
    """A callback no manager's phone took (or AMI refused): a lead with a callback task,
    for ``assignee_id`` when given (the first manager chosen), else the one rung last."""
    lead = await session.get(CtLead, lead_id)
    if lead is None or lead.status != LeadStatus.CALLING.value:
        return lead
    previous = lead.assignee_id
    if assignee_id is not None:
        lead.assignee_id = assignee_id
    assignee = await session.get(User, lead.assignee_id) if lead.assignee_id else None
    lead.status = LeadStatus.NEW.value
    lead.note = note[:300]
    await _give_task(session, lead, assignee, policy or CallbackPolicy(), now)
    changes: dict[str, Any] = {"status": [LeadStatus.CALLING.value, lead.status],
                               "note": lead.note, "task_id": lead.task_id}
    if previous != lead.assignee_id:
        changes["assignee_id"] = [previous, lead.assignee_id]
    write_audit(session, actor=ACTOR, entity=AUDIT_ENTITY, entity_id=lead.id,
                action=ACTION_UPDATE, changes=changes)
    return lead


async def next_callback_manager(session: AsyncSession, lead_id: int, tried: Sequence[int],
                                note: str, *, now: datetime,
                                policy: CallbackPolicy | None = None) -> User | None:
    """The manager whose phone did not take a callback passes it on: the next free manager
    (the client's owner first, then the fewest open tasks) not rung for it yet, while fewer
    than :data:`MAX_CALLBACK_MANAGERS` were; the lead is his from now on (audited). When
    there is none, the callback was not placed: the lead gets its callback task for the
    first manager chosen (:func:`callback_not_placed`) and None is returned."""
    lead = await session.get(CtLead, lead_id)
    if lead is None or lead.status != LeadStatus.CALLING.value:
        return None
    chosen = None
    if len(tried) < MAX_CALLBACK_MANAGERS:
        client = await session.get(Client, lead.client_id) if lead.client_id else None
        owner = await _owner(session, client)
        free = await free_managers(session, prefer=owner.id if owner is not None else None)
        chosen = next((m for m in free if m.id not in tried), None)
    if chosen is None:
        many = len(tried) > 1
        await callback_not_placed(
            session, lead_id, f"звонили {len(tried)} менеджерам, никто не ответил" if many
            else note,
            now=now, policy=policy, assignee_id=tried[0] if tried else None)
        return None
    previous = lead.assignee_id
    lead.assignee_id = chosen.id
    write_audit(session, actor=ACTOR, entity=AUDIT_ENTITY, entity_id=lead.id,
                action=ACTION_UPDATE,
                changes={"assignee_id": [previous, chosen.id], "tried": list(tried),
                         "why": note[:300]})
    return chosen


async def match_callback_calls(session: AsyncSession, written: Sequence[WrittenCall]) -> None:
    """A call hook: the call a callback placed is the lead's and carries the visit's source.

    The call is outbound to the lead's phone, started within :data:`CALLBACK_WINDOW` of
    the request while the lead was «calling». Idempotent: a call is matched once. The
    batch's candidate leads and existing attributions are read in one query each, then
    the calls are matched in order, as one at a time would match them.
    """
    calls = [item.call for item in written
             if item.call.direction == Direction.OUTBOUND.value and item.call.client_number]
    if not calls:
        return
    leads = await _callback_leads(session, calls)
    if not leads:
        return
    attributed = await _attributed(session, [call.id for call in calls])
    added: list[tuple[Call, CtAttribution]] = []
    for call in calls:
        lead = _lead_of(leads, call)
        if lead is None:
            continue
        if lead.call_id is None:
            lead.call_id = call.id
            lead.status = LeadStatus.CONNECTED.value
            write_audit(session, actor=ACTOR, entity=AUDIT_ENTITY, entity_id=lead.id,
                        action=ACTION_UPDATE,
                        changes={"status": [LeadStatus.CALLING.value, lead.status],
                                 "call_id": call.id, "linkedid": call.linkedid})
        if call.id not in attributed:
            attributed.add(call.id)
            row = CtAttribution(
                call_id=call.id, kind=AttributionKind.DYNAMIC.value, visit_id=lead.visit_id,
                channel=lead.channel, source=lead.source, medium=lead.medium,
                campaign=lead.campaign, landing=lead.landing)
            session.add(row)
            added.append((call, row))
    if added:
        await session.flush()
        for call, row in added:
            set_committed_value(call, "ct_attribution", row)  # the call JSON shows it now


_IN_CHUNK = 500  # bound on bound parameters per IN (...) query


@functools.cache
def _callback_leads_query() -> Select[CtLead]:
    """Built once: the call writer asks on every write of a call with a number."""
    return (select(CtLead)
            .where(CtLead.kind == LeadKind.CALLBACK.value,
                   CtLead.phone.in_(bindparam("phones", expanding=True)),
                   or_(CtLead.call_id.in_(bindparam("ids", expanding=True)),
                       (CtLead.status == LeadStatus.CALLING.value) & CtLead.call_id.is_(None)),
                   CtLead.created_at >= bindparam("earliest"),
                   CtLead.created_at <= bindparam("latest")))


async def _callback_leads(session: AsyncSession, calls: Sequence[Call]) -> list[CtLead]:
    """Callback leads some call of ``calls`` may be the lead's, newest first."""
    phones = sorted({call.client_number for call in calls if call.client_number})
    ids = [call.id for call in calls]
    earliest = min(call.started_at for call in calls) - CALLBACK_WINDOW
    latest = max(call.started_at for call in calls) + timedelta(seconds=5)
    found: dict[int, CtLead] = {}
    for start in range(0, len(phones), _IN_CHUNK):
        found.update((lead.id, lead) for lead in await session.scalars(_callback_leads_query(), {
            "phones": phones[start:start + _IN_CHUNK], "ids": ids, "earliest": earliest,
            "latest": latest}))
    return sorted(found.values(), key=lambda lead: (lead.created_at, lead.id), reverse=True)


def _lead_of(leads: Sequence[CtLead], call: Call) -> CtLead | None:
    """The newest lead ``call`` is for, as the leads stand now (an earlier call of the
    batch may have taken one)."""
    for lead in leads:
        if (lead.phone == call.client_number
                and (lead.call_id == call.id
                     or (lead.status == LeadStatus.CALLING.value and lead.call_id is None))
                and call.started_at - CALLBACK_WINDOW <= lead.created_at
                <= call.started_at + timedelta(seconds=5)):
            return lead
    return None


async def _attributed(session: AsyncSession, call_ids: Sequence[int]) -> set[int]:
    """The calls of ``call_ids`` with an attribution already."""
    found: set[int] = set()
    for start in range(0, len(call_ids), _IN_CHUNK):
        found.update(await session.scalars(select(CtAttribution.call_id).where(
            CtAttribution.call_id.in_(call_ids[start:start + _IN_CHUNK]))))
    return found


# -- reading and archiving ---------------------------------------------------------------------


def may_see_all_leads(user: User) -> bool:
    return user.role in (Role.MARKETER.value, Role.ADMIN.value)


def may_see_leads(user: User) -> bool:
    return user.role in (Role.MARKETER.value, Role.ADMIN.value, Role.MANAGER.value,
                         Role.SUPERVISOR.value)


async def visible_leads(session: AsyncSession, user: User, start: datetime, end: datetime, *,
                        kind: str | None = None, archived: bool = False,
                        limit: int = 500) -> list[CtLead]:
    """Leads of the period this user may see: marketers and admins all, a supervisor his
    team's, a manager those given to him or of his own clients."""
    if not may_see_leads(user):
        raise NotAllowedError("leads.not_allowed", "leads are not for this role")
    stmt = (select(CtLead).options(selectinload(CtLead.visit))
            .where(CtLead.created_at >= start, CtLead.created_at < end)
            .order_by(CtLead.created_at.desc(), CtLead.id.desc()).limit(limit))
    if not archived:
        stmt = stmt.where(CtLead.archived_at.is_(None))
    if kind:
        stmt = stmt.where(CtLead.kind == kind)
    if user.role == Role.MANAGER.value:
        own_clients = select(Client.id).where(Client.owner_id == user.id)
        stmt = stmt.where(or_(CtLead.assignee_id == user.id, CtLead.client_id.in_(own_clients)))
    elif user.role == Role.SUPERVISOR.value:
        team = select(User.id).where(User.team_id == user.team_id) \
            if user.team_id is not None else select(User.id).where(User.id == user.id)
        stmt = stmt.where(CtLead.assignee_id.in_(team))
    return list(await session.scalars(stmt))


async def archive_lead(session: AsyncSession, user: User, lead_id: int, *, now: datetime
                       ) -> CtLead:
    """Archive a lead (spam, a test): marketers and admins; it stays in the audit log."""
    if not may_see_all_leads(user):
        raise NotAllowedError("leads.archive_not_allowed", "only marketers archive leads")
    lead = await session.get(CtLead, lead_id)
    if lead is None:
        raise NotFoundError("leads.not_found", "no such lead")
    if lead.archived_at is None:
        lead.archived_at = now
        write_audit(session, actor=user.username, user_id=user.id, entity=AUDIT_ENTITY,
                    entity_id=lead.id, action=ACTION_UPDATE,
                    changes={"archived_at": [None, isoformat(now)]})
    return lead


def lead_to_dict(lead: CtLead) -> dict[str, Any]:
    return {"id": lead.id, "kind": lead.kind, "status": lead.status,
            "created_at": isoformat(lead.created_at), "name": lead.name, "phone": lead.phone,
            "email": lead.email, "message": lead.message, "page": lead.page,
            "channel": lead.channel, "source": lead.source, "medium": lead.medium,
            "campaign": lead.campaign, "utm_term": lead.utm_term, "landing": lead.landing,
            "yclid": lead.yclid, "gclid": lead.gclid, "ym_uid": lead.ym_uid,
            "visit": lead.visit.session if lead.visit is not None else None,
            "client_id": lead.client_id, "created_client": lead.created_client,
            "assignee_id": lead.assignee_id, "task_id": lead.task_id,
            "call_id": lead.call_id, "note": lead.note,
            "archived": lead.archived_at is not None}
