"""Tasks: the plain services, and the rule that no missed client call goes without a callback.

The rule runs inside the call writer (``record_call``/``record_calls``), so the live
listener, a replay and a backfill all apply it the same way: a missed inbound call from
a client makes one callback task (unique per call, so replays change nothing), and
reaching that client later by any answered call closes it, with an audit row. It works
on a whole written batch at once (:mod:`crm_core.tasks.call_rules`); here are its entry
points, the callback policy and the routing other features share.
Times come from the call, never from the wall clock, so a replay is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.calls.hooks import CallsWritten, WrittenCall
from crm_core.calls.models import Call, LegRole
from crm_core.clients.models import Client
from crm_core.errors import DomainError
from crm_core.people.models import Team, User
from crm_core.tasks.call_rules import apply_rules
from crm_core.tasks.changes import AUDIT_ENTITY, created_changes, finish, new_task
from crm_core.tasks.changes import RULE_ACTOR as RULE_ACTOR  # the call rules' audit actor
from crm_core.tasks.models import Task, TaskKind, TaskStatus
from crm_core.timestamps import ensure_utc, isoformat


@dataclass(frozen=True)
class CallbackPolicy:
    """When a missed call is due to be called back.

    Within ``within`` of the call's end when it ended in working hours; otherwise
    ``within`` after the next working day starts (a call at 23:00 is due at 09:15, not
    at 23:15 when nobody is there). A date in ``holidays`` (the work calendar's, when the
    policy was built from it) is not a working day.
    """

    within: timedelta = timedelta(minutes=15)
    timezone: str = "Europe/Moscow"
    day_start: time = time(9)
    day_end: time = time(18)
    workdays: frozenset[int] = field(default_factory=lambda: frozenset(range(5)))  # Mon–Fri
    holidays: frozenset[date] = field(default_factory=frozenset)

    def working_day(self, day: date) -> bool:
        return day.weekday() in self.workdays and day not in self.holidays

    def working(self, moment: datetime) -> bool:
        """True on a working day between the start and the end of the day."""
        local = ensure_utc(moment).astimezone(ZoneInfo(self.timezone))
        return self.working_day(local.date()) and self.day_start <= local.time() < self.day_end

    def due(self, ended_at: datetime) -> datetime:
        """The callback deadline for a call that ended at ``ended_at`` (aware, UTC out)."""
        zone = ZoneInfo(self.timezone)
        local = ensure_utc(ended_at).astimezone(zone)
        if self.working(ended_at):
            return ensure_utc(ended_at + self.within)
        day = local.date() if local.time() < self.day_start else local.date() + timedelta(days=1)
        for _ in range(60):  # a long holiday (the New Year's) is still crossed
            if self.working_day(day):
                break
            day += timedelta(days=1)
        start = datetime.combine(day, self.day_start, tzinfo=zone)
        return ensure_utc(start + self.within)


# -- plain task services --------------------------------------------------------------------


def _check_kind(kind: str) -> None:
    if kind not in {k.value for k in TaskKind}:
        expected = ", ".join(k.value for k in TaskKind)
        raise DomainError("tasks.kind_unknown",
                          f"Unknown task kind {kind!r}; expected one of: {expected}.", kind=kind)


async def create_task(
    session: AsyncSession,
    *,
    kind: str,
    title: str,
    client_id: int | None = None,
    call_id: int | None = None,
    assignee_id: int | None = None,
    team_id: int | None = None,
    due_at: datetime | None = None,
    created_by_id: int | None = None,
    actor: str = "user",
    audit_extra: dict[str, Any] | None = None,
) -> Task:
    """Add an open task and its audit row; bad input is a DomainError (``tasks.*``)."""
    _check_kind(kind)
    title = title.strip()
    if not title:
        raise DomainError("tasks.no_title", "A task needs a title.")
    task = new_task(kind=kind, title=title, client_id=client_id, call_id=call_id,
                    assignee_id=assignee_id, team_id=team_id, due_at=due_at,
                    created_by_id=created_by_id)
    session.add(task)
    await session.flush()
    write_audit(session, actor=actor, user_id=created_by_id, entity=AUDIT_ENTITY,
                entity_id=task.id, action=ACTION_CREATE,
                changes=created_changes(task, audit_extra))
    return task


async def _finish(
    session: AsyncSession,
    task: Task,
    status: TaskStatus,
    *,
    at: datetime | None,
    note: str | None,
    result_call_id: int | None,
    actor: str,
    user_id: int | None,
    audit_extra: dict[str, Any] | None = None,
) -> Task:
    if task.status != TaskStatus.OPEN:
        raise DomainError("tasks.closed", f"Task {task.id} is already {task.status}.",
                          task=task.id)
    changes = finish(task, status, at=at, note=note, result_call_id=result_call_id,
                     audit_extra=audit_extra)
    write_audit(session, actor=actor, user_id=user_id, entity=AUDIT_ENTITY, entity_id=task.id,
                action=ACTION_UPDATE, changes=changes)
    await session.flush()
    return task


async def complete_task(
    session: AsyncSession,
    task: Task,
    *,
    note: str | None = None,
    result_call_id: int | None = None,
    at: datetime | None = None,
    actor: str = "user",
    user_id: int | None = None,
) -> Task:
    """Mark an open task done (audited); a task already closed is a ValueError."""
    return await _finish(
        session, task, TaskStatus.DONE, at=at, note=note, result_call_id=result_call_id,
        actor=actor, user_id=user_id,
    )  # fmt: skip


async def cancel_task(
    session: AsyncSession,
    task: Task,
    *,
    note: str | None = None,
    actor: str = "user",
    user_id: int | None = None,
) -> Task:
    """Cancel an open task (audited); a task already closed is a ValueError."""
    return await _finish(
        session, task, TaskStatus.CANCELLED, at=None, note=note, result_call_id=None,
        actor=actor, user_id=user_id,
    )  # fmt: skip


async def open_tasks(
    session: AsyncSession,
    *,
    assignee_id: int | None = None,
    team_id: int | None = None,
    client_id: int | None = None,
    kind: str | None = None,
) -> list[Task]:
    """Open tasks matching every filter given, most urgent first (no due date last)."""
    stmt = select(Task).where(Task.status == TaskStatus.OPEN.value)
    if assignee_id is not None:
        stmt = stmt.where(Task.assignee_id == assignee_id)
    if team_id is not None:
        stmt = stmt.where(Task.team_id == team_id)
    if client_id is not None:
        stmt = stmt.where(Task.client_id == client_id)
    if kind is not None:
        stmt = stmt.where(Task.kind == kind)
    stmt = stmt.order_by(Task.due_at.is_(None), Task.due_at, Task.id)
    return list(await session.scalars(stmt))


def task_to_dict(task: Task) -> dict[str, Any]:
    """A task as JSON-safe data (API, live events)."""
    return {
        "id": task.id,
        "kind": task.kind,
        "title": task.title,
        "status": task.status,
        "client_id": task.client_id,
        "call_id": task.call_id,
        "assignee_id": task.assignee_id,
        "team_id": task.team_id,
        "due_at": isoformat(task.due_at),
        "created_at": isoformat(task.created_at),
        "done_at": isoformat(task.done_at),
        "result_call_id": task.result_call_id,
        "note": task.note,
    }


# -- the call rules -------------------------------------------------------------------------


async def client_task_routing(
    session: AsyncSession, call: Call, client: Client, rang: Sequence[str]
) -> tuple[int | None, int | None]:
    """(assignee, team) of a callback: the client's owner, else the queue's or ringer's team."""
    if client.owner_id is not None:
        owner = await session.get(User, client.owner_id)
        if owner is not None and owner.active:
            return owner.id, owner.team_id
    if call.queue:
        team_id = await session.scalar(select(Team.id).where(Team.queue == call.queue))
        if team_id is not None:
            return None, team_id
    legs = await call.awaitable_attrs.legs  # loaded already when called by record_call
    ringers = [*rang, *(leg.extension for leg in legs if leg.role == LegRole.MANAGER)]
    for extension in ringers:
        if not extension:
            continue
        team_id = await session.scalar(
            select(User.team_id).where(User.extension == extension, User.active.is_(True))
        )
        if team_id is not None:
            return None, team_id
    return None, None


async def apply_call_rules(
    session: AsyncSession,
    call: Call,
    rang: Sequence[str] = (),
    policy: CallbackPolicy | None = None,
) -> None:
    """What a stored call means for tasks and the client's status; idempotent.

    The call rules for one call (a batch of one, see :mod:`crm_core.tasks.call_rules`).
    """
    await apply_rules(session, [WrittenCall(call, tuple(rang))], policy or CallbackPolicy())


def call_rules(policy: CallbackPolicy | None = None) -> CallsWritten:
    """The task rules as a call hook (``CallHooks.written``), for the composition root:
    the whole batch of written calls at once, one query per kind."""
    rule = policy or CallbackPolicy()

    async def apply(session: AsyncSession, written: Sequence[WrittenCall]) -> None:
        await apply_rules(session, written, rule)

    return apply
