"""Tasks, and the rule that no missed client call goes without a callback.

The rule runs inside the call writer (``record_call``), so the live listener, a
replay and a backfill all apply it the same way: a missed inbound call from a
client makes one callback task (unique per call, so replays change nothing), and
reaching that client later by any answered call closes it, with an audit row.
Times come from the call, never from the wall clock, so a replay is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.calls.hooks import CallsWritten, WrittenCall
from crm_core.calls.models import Call, CallStatus, Direction, LegRole
from crm_core.clients.models import Client
from crm_core.errors import DomainError
from crm_core.people.models import Team, User
from crm_core.sales.client_status import on_call_ended
from crm_core.tasks.models import Task, TaskKind, TaskStatus
from crm_core.timestamps import ensure_utc, isoformat, utcnow

AUDIT_ENTITY = "task"
RULE_ACTOR = "call"  # audit actor of what the call rules do
_CLIENT_TASKS_LOCK_NAMESPACE = 0x7E1F  # advisory-lock class for "call rules of this client"


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
    task = Task(
        kind=kind,
        title=title[:300],
        status=TaskStatus.OPEN.value,
        client_id=client_id,
        call_id=call_id,
        assignee_id=assignee_id,
        team_id=team_id,
        due_at=ensure_utc(due_at) if due_at is not None else None,
        created_by_id=created_by_id,
    )
    session.add(task)
    await session.flush()
    write_audit(
        session,
        actor=actor,
        user_id=created_by_id,
        entity=AUDIT_ENTITY,
        entity_id=task.id,
        action=ACTION_CREATE,
        changes={
            "kind": kind,
            "client_id": client_id,
            "call_id": call_id,
            "assignee_id": assignee_id,
            "team_id": team_id,
            "due_at": isoformat(task.due_at),
            **(audit_extra or {}),
        },
    )
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
    done_at = ensure_utc(at) if at is not None else utcnow()
    write_audit(
        session,
        actor=actor,
        user_id=user_id,
        entity=AUDIT_ENTITY,
        entity_id=task.id,
        action=ACTION_UPDATE,
        changes={
            "status": [task.status, status.value],
            "done_at": [None, isoformat(done_at)],
            "result_call_id": [task.result_call_id, result_call_id],
            "note": note,
            **(audit_extra or {}),
        },
    )
    task.status = status.value
    task.done_at = done_at
    task.note = note[:1000] if note else None
    task.result_call_id = result_call_id
    task.updated_at = utcnow()
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


async def _lock_client(session: AsyncSession, client_id: int) -> None:
    """Serialize the call rules per client across PostgreSQL transactions.

    Without it a missed call and the answered call that reaches the client, written at
    once by two writers, would each miss the other's uncommitted row and leave the
    callback open. Held until commit; SQLite has one writer at a time anyway.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, :client)"),
            {"namespace": _CLIENT_TASKS_LOCK_NAMESPACE, "client": client_id},
        )


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


async def _reaching_call(session: AsyncSession, client_id: int, after: Call) -> Call | None:
    """The first answered customer call with the client started after ``after``."""
    stmt = (
        select(Call)
        .where(
            Call.client_id == client_id,
            Call.id != after.id,
            Call.direction != Direction.INTERNAL.value,
            Call.answered_at.is_not(None),
            Call.started_at > after.started_at,
        )
        .order_by(Call.started_at, Call.id)
        .limit(1)
    )
    return await session.scalar(stmt)


def _reached_note(call: Call) -> str:
    return (
        f"Client reached by {call.direction} call {call.linkedid} "
        f"at {isoformat(call.answered_at)}."
    )


async def _close_reached(session: AsyncSession, task: Task, call: Call) -> Task:
    return await _finish(
        session, task, TaskStatus.DONE, at=call.answered_at, note=_reached_note(call),
        result_call_id=call.id, actor=RULE_ACTOR, user_id=None,
        audit_extra={"linkedid": call.linkedid},
    )  # fmt: skip


async def create_missed_call_callback(
    session: AsyncSession,
    call: Call,
    rang: Sequence[str] = (),
    policy: CallbackPolicy | None = None,
) -> Task | None:
    """The callback task for a missed inbound client call, made once per call.

    Returns None when the call does not qualify or its task exists already (whatever
    its status: a replay never reopens a closed task). When the client was already
    reached by a later call (calls written out of order, e.g. a backfill), the task is
    created and closed at once, so the miss stays on record.
    """
    if (
        call.direction != Direction.INBOUND
        or call.status != CallStatus.MISSED
        or call.client_id is None
        or call.id is None
    ):
        return None
    exists = await session.scalar(
        select(Task.id).where(Task.kind == TaskKind.CALLBACK.value, Task.call_id == call.id)
    )
    if exists is not None:
        return None
    client = await session.get(Client, call.client_id)
    if client is None:
        return None
    assignee_id, team_id = await client_task_routing(session, call, client, rang)
    ended = call.ended_at or call.started_at
    task = await create_task(
        session,
        kind=TaskKind.CALLBACK.value,
        title=f"Пропущенный звонок: {client.name}",
        client_id=client.id,
        call_id=call.id,
        assignee_id=assignee_id,
        team_id=team_id,
        due_at=(policy or CallbackPolicy()).due(ended),
        actor=RULE_ACTOR,
        audit_extra={"linkedid": call.linkedid},
    )
    reached = await _reaching_call(session, client.id, call)
    if reached is not None:
        await _close_reached(session, task, reached)
    return task


_SOURCE_CALL = aliased(Call)  # one alias for good: a new one per call rebuilds its columns


async def close_reached_callbacks(session: AsyncSession, call: Call) -> list[Task]:
    """Close the client's open callback tasks that ``call`` (answered) fulfils.

    Only tasks whose missed call started before this call, or hand-made callbacks
    created before it was answered, so an old call replayed late closes nothing new.
    """
    if (
        call.client_id is None
        or call.answered_at is None
        or call.direction == Direction.INTERNAL
        or call.id is None
    ):
        return []
    source = _SOURCE_CALL
    stmt = (
        select(Task)
        .outerjoin(source, Task.call_id == source.id)
        .where(
            Task.kind == TaskKind.CALLBACK.value,
            Task.status == TaskStatus.OPEN.value,
            Task.client_id == call.client_id,
            or_(Task.call_id.is_(None), Task.call_id != call.id),
            or_(
                source.started_at < call.started_at,
                and_(Task.call_id.is_(None), Task.created_at <= call.answered_at),
            ),
        )
        .order_by(Task.id)
        .with_for_update(of=Task)  # a concurrent closer waits, then skips the closed row
    )
    closed = []
    for task in await session.scalars(stmt):
        closed.append(await _close_reached(session, task, call))
    return closed


async def apply_call_rules(
    session: AsyncSession,
    call: Call,
    rang: Sequence[str] = (),
    policy: CallbackPolicy | None = None,
) -> None:
    """What a stored call means for tasks; idempotent, called by ``record_call``."""
    if call.client_id is None or call.direction == Direction.INTERNAL:
        return
    if call.status == CallStatus.IN_PROGRESS and call.answered_at is None:
        return
    await _lock_client(session, call.client_id)
    await close_reached_callbacks(session, call)
    if call.status != CallStatus.IN_PROGRESS:
        await create_missed_call_callback(session, call, rang, policy)
        await on_call_ended(session, call)  # a contact may bring a lost client back


def call_rules(policy: CallbackPolicy | None = None) -> CallsWritten:
    """The task rules as a call hook (``CallHooks.written``), for the composition root."""

    async def apply(session: AsyncSession, written: Sequence[WrittenCall]) -> None:
        for item in written:
            await apply_call_rules(session, item.call, item.rang, policy)

    return apply
