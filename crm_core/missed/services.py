"""Which calls are missed, who is told, and when a missed call counts as returned.

A missed call is an inbound customer call that no company phone answered (a phone
that rang on a call a colleague answered missed nothing: that call is answered). It
is *returned* by the first later call with the same number that is outbound (answered
or not: trying counts) or inbound and answered. Times come from the calls and from
the ``now`` the caller passes (``crm_core.clock`` in ``telecrm serve``), so the
escalation is testable with a pinned clock and idempotent: every decision is stored
in ``missed_call_alerts`` before anybody is told.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_UPDATE, write_audit
from crm_core.calls.models import Call, CallStatus, Direction
from crm_core.clients.models import Client
from crm_core.errors import DomainError, NotAllowedError
from crm_core.missed.models import (
    DEFAULT_ESCALATE_MINUTES,
    MailAddress,
    MissedCallAlert,
    MissedCallRule,
)
from crm_core.people.models import Role, Team, User
from crm_core.tasks.models import Task, TaskKind
from crm_core.tasks.services import client_task_routing
from crm_core.timestamps import ensure_utc

NOTIFY_WINDOW = timedelta(hours=1)  # older misses found at start-up are not announced
ESCALATION_HORIZON = timedelta(days=2)  # misses older than this are never escalated
MAX_ESCALATE_MINUTES = 1440
LONGEST_CALL = timedelta(hours=12)  # bounds the search by the indexed start time
_CHUNK = 500


def missed_filter() -> ColumnElement[bool]:
    """WHERE clause of missed calls: inbound, nobody answered, a number to call back."""
    return and_(Call.direction == Direction.INBOUND.value,
                Call.status == CallStatus.MISSED.value,
                Call.answered_at.is_(None),
                Call.client_number.is_not(None))


def _returning() -> ColumnElement[bool]:
    return or_(Call.direction == Direction.OUTBOUND.value,
               and_(Call.direction == Direction.INBOUND.value, Call.answered_at.is_not(None)))


def missed_at(call: Call) -> datetime:
    """When the call was missed: its end (the caller gave up), else its start."""
    return ensure_utc(call.ended_at or call.started_at)


async def callbacks_for(session: AsyncSession, missed: Sequence[Call]
                        ) -> dict[int, Call | None]:
    """The call that returned each missed call (by id), None when none did yet."""
    result: dict[int, Call | None] = {call.id: None for call in missed}
    if not missed:
        return result
    numbers = sorted({call.client_number for call in missed if call.client_number})
    earliest = min(ensure_utc(call.started_at) for call in missed)
    later: dict[str, list[Call]] = {}
    for i in range(0, len(numbers), _CHUNK):
        stmt = (select(Call)
                .where(Call.client_number.in_(numbers[i:i + _CHUNK]),
                       Call.started_at > earliest, _returning())
                .order_by(Call.started_at, Call.id))
        for call in await session.scalars(stmt):
            later.setdefault(call.client_number or "", []).append(call)
    for call in missed:
        start = ensure_utc(call.started_at)
        result[call.id] = next((c for c in later.get(call.client_number or "", [])
                                if c.id != call.id and ensure_utc(c.started_at) > start), None)
    return result


def callback_seconds(missed: Call, returned: Call) -> float:
    """Seconds from the miss to the call that returned it (never negative)."""
    return max(0.0, (ensure_utc(returned.started_at) - missed_at(missed)).total_seconds())


# -- who is responsible ------------------------------------------------------------------


@dataclass(frozen=True)
class Responsible:
    """Whose missed call it is: the client's owner, else a team (its queue's, or a ringer's)."""

    owner: User | None
    team_id: int | None


async def responsible_for(session: AsyncSession, call: Call) -> Responsible:
    """The callback task's routing when it exists (decided when the call was written),
    else the same rule applied now."""
    task = await session.scalar(select(Task).where(Task.kind == TaskKind.CALLBACK.value,
                                                   Task.call_id == call.id))
    if task is not None:
        owner = await session.get(User, task.assignee_id) if task.assignee_id else None
        return Responsible(owner, task.team_id if task.team_id is not None
                           else (owner.team_id if owner else None))
    client = await session.get(Client, call.client_id) if call.client_id else None
    if client is not None:
        owner_id, team_id = await client_task_routing(session, call, client, ())
        owner = await session.get(User, owner_id) if owner_id else None
        return Responsible(owner, team_id)
    team_id = (await session.scalar(select(Team.id).where(Team.queue == call.queue))
               if call.queue else None)
    return Responsible(None, team_id)


async def _active(session: AsyncSession, *where: ColumnElement[bool]) -> list[User]:
    stmt = select(User).where(User.active.is_(True), *where).order_by(User.id)
    return list(await session.scalars(stmt))


async def told_at_once(session: AsyncSession, who: Responsible) -> list[User]:
    """The owner when he works here, else the team's managers."""
    if who.owner is not None and who.owner.active:
        return [who.owner]
    if who.team_id is None:
        return []
    return await _active(session, User.team_id == who.team_id, User.role == Role.MANAGER.value)


async def supervisors_of(session: AsyncSession, team_id: int | None) -> list[User]:
    """The head of the team (its supervisors when no head is marked); admins without a team."""
    if team_id is not None:
        people = await _active(session, User.team_id == team_id,
                               User.role == Role.SUPERVISOR.value)
        heads = [p for p in people if p.heads_team]
        if heads or people:
            return heads or people
    return await _active(session, User.role == Role.ADMIN.value)


async def addresses(session: AsyncSession, users: Iterable[User]) -> dict[int, str]:
    """User id -> e-mail address, for those who gave one."""
    ids = [u.id for u in users]
    if not ids:
        return {}
    rows = await session.execute(select(MailAddress.user_id, MailAddress.email)
                                 .where(MailAddress.user_id.in_(ids)))
    return {row[0]: row[1] for row in rows}


# -- notices ------------------------------------------------------------------------------


@dataclass
class Notice:
    """One thing to tell: a missed call (to its owner) or an escalation (to the supervisor)."""

    kind: str  # "missed" | "escalation"
    call_id: int
    client_id: int | None
    client_name: str | None
    number: str
    missed_at: datetime
    owner_name: str | None
    minutes: int | None = None  # escalation: the team's limit
    recipients: list[User] = field(default_factory=list)
    emails: dict[int, str] = field(default_factory=dict)


async def _notice(session: AsyncSession, kind: str, call: Call, who: Responsible,
                  recipients: list[User], minutes: int | None = None) -> Notice:
    client = await session.get(Client, call.client_id) if call.client_id else None
    return Notice(kind=kind, call_id=call.id, client_id=client.id if client else None,
                  client_name=client.name if client else None, number=call.client_number or "",
                  missed_at=missed_at(call), owner_name=who.owner.name if who.owner else None,
                  minutes=minutes, recipients=recipients,
                  emails=await addresses(session, recipients))


async def take_new_missed(session: AsyncSession, now: datetime) -> list[Notice]:
    """Missed calls nobody was told of yet: record them, and return the notices of the
    recent ones (a miss found long after, e.g. after a backfill or while ``serve`` was
    down, is recorded silently and never escalated: its news is stale)."""
    now = ensure_utc(now)
    stmt = (select(Call)
            .outerjoin(MissedCallAlert, MissedCallAlert.call_id == Call.id)
            .where(missed_filter(), MissedCallAlert.id.is_(None), Call.ended_at.is_not(None),
                   # started_at is indexed: this round reads the last days, not the log
                   Call.started_at >= now - ESCALATION_HORIZON - LONGEST_CALL,
                   Call.ended_at >= now - ESCALATION_HORIZON, Call.ended_at <= now)
            .order_by(Call.ended_at, Call.id))
    notices = []
    for call in await session.scalars(stmt):
        if missed_at(call) < now - NOTIFY_WINDOW:  # found too late to tell or escalate
            session.add(MissedCallAlert(call_id=call.id, notified_at=now, settled_at=now))
            continue
        session.add(MissedCallAlert(call_id=call.id, notified_at=now))
        who = await responsible_for(session, call)
        notices.append(await _notice(session, "missed", call, who,
                                     await told_at_once(session, who)))
    await session.flush()
    return notices


async def escalate_minutes(session: AsyncSession, team_id: int | None) -> int:
    """The team's limit in minutes before its supervisor is told (default 30)."""
    if team_id is None:
        return DEFAULT_ESCALATE_MINUTES
    minutes = await session.scalar(select(MissedCallRule.escalate_after_minutes)
                                   .where(MissedCallRule.team_id == team_id))
    return minutes if minutes is not None else DEFAULT_ESCALATE_MINUTES


async def take_due_escalations(session: AsyncSession, now: datetime) -> list[Notice]:
    """Missed calls not returned within their team's limit: mark each escalated (once, for
    good) and return the notices for the supervisors. A call returned in time is settled."""
    now = ensure_utc(now)
    stmt = (select(MissedCallAlert, Call)
            .join(Call, Call.id == MissedCallAlert.call_id)
            .where(MissedCallAlert.escalated_at.is_(None), MissedCallAlert.settled_at.is_(None),
                   Call.ended_at >= now - ESCALATION_HORIZON)
            .order_by(Call.ended_at, Call.id)
            # two serve processes never escalate the same call twice (PostgreSQL)
            .with_for_update(of=MissedCallAlert, skip_locked=True))
    pending = [(row[0], row[1]) for row in await session.execute(stmt)]
    returned = await callbacks_for(session, [call for _, call in pending])
    notices = []
    for alert, call in pending:
        who = await responsible_for(session, call)
        team_id = who.owner.team_id if who.owner and who.owner.team_id else who.team_id
        minutes = await escalate_minutes(session, team_id)
        deadline = missed_at(call) + timedelta(minutes=minutes)
        back = returned.get(call.id)
        if back is not None and ensure_utc(back.started_at) <= deadline:
            alert.settled_at = now
            continue
        if now < deadline:
            continue
        alert.escalated_at = now
        notices.append(await _notice(session, "escalation", call, who,
                                     await supervisors_of(session, team_id), minutes))
    await session.flush()
    return notices


# -- the team's rule ----------------------------------------------------------------------


async def set_escalate_minutes(session: AsyncSession, actor: User | None, team_id: int,
                               minutes: int) -> MissedCallRule:
    """The head of sales sets his team's limit (an admin, or the command line: None, any
    team's); audited."""
    if actor is None or actor.role == Role.ADMIN:
        pass
    elif actor.role == Role.SUPERVISOR and actor.team_id == team_id:
        pass
    else:
        raise NotAllowedError("missed.rules_not_allowed",
                              "only the team's supervisor or an admin sets its limit")
    if not 1 <= minutes <= MAX_ESCALATE_MINUTES:
        raise DomainError("missed.minutes_out_of_range", "minutes must be 1..1440",
                          low=1, high=MAX_ESCALATE_MINUTES)
    rule = await session.scalar(select(MissedCallRule).where(MissedCallRule.team_id == team_id))
    before = rule.escalate_after_minutes if rule is not None else DEFAULT_ESCALATE_MINUTES
    if rule is None:
        rule = MissedCallRule(team_id=team_id, escalate_after_minutes=minutes)
        session.add(rule)
    rule.escalate_after_minutes = minutes
    await session.flush()
    write_audit(session, actor=actor.username if actor else "cli",
                user_id=actor.id if actor else None, entity="missed_call_rule",
                entity_id=rule.id, action=ACTION_UPDATE,
                changes={"team_id": team_id, "escalate_after_minutes": [before, minutes]})
    return rule


async def rules_of(session: AsyncSession, teams: Sequence[Team]) -> dict[int, int]:
    """Team id -> limit in minutes (the default where none is set)."""
    rows = await session.execute(select(MissedCallRule.team_id,
                                        MissedCallRule.escalate_after_minutes))
    set_ = {row[0]: row[1] for row in rows}
    return {team.id: set_.get(team.id, DEFAULT_ESCALATE_MINUTES) for team in teams}
