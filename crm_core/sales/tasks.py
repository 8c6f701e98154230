"""Tasks that never end: no client silently drops out of the work.

Completing a client's task (``finish_task``) requires the next planned task for that
client: one already open, one given with the completion, or a supervisor's approval
to stop working with the client (``request_stop`` / ``approve_stop``); once the stop is
approved the managers' open tasks for that client are closed with its reason. Moving a
due date needs a reason, which goes into the audit log. A person never plans a contact,
nor moves one, into the past. Overdue tasks are those still open after their due time.

The low-level ``crm_core.tasks.complete_task`` stays as it was for the rules that
close tasks by themselves (a callback closed by the call that reached the client:
the client was reached, so the work goes on).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_UPDATE, write_audit
from crm_core.clients.models import Client
from crm_core.errors import DomainError, NotAllowedError
from crm_core.people.access import may_assign_to, may_open_client
from crm_core.people.models import Role, User
from crm_core.sales.models import ClientStop
from crm_core.tasks.models import Task, TaskKind, TaskStatus
from crm_core.tasks.services import AUDIT_ENTITY, cancel_task, complete_task, create_task
from crm_core.timestamps import ensure_utc, isoformat, utcnow

PLANNABLE_KINDS = (TaskKind.CALL, TaskKind.EMAIL, TaskKind.MEETING, TaskKind.OTHER)
KIND_TITLES = {"call": "Позвонить", "email": "Написать письмо", "meeting": "Встреча",
               "other": "Задача"}


class TaskRuleError(DomainError):
    """A task change the rules refuse (``sales.task.*``)."""


class TaskNotAllowedError(NotAllowedError, TaskRuleError):
    """The acting user may not do this (the web answers 403)."""


@dataclass(frozen=True)
class NextTask:
    """The next planned contact given when a task is completed."""

    kind: str
    due_at: datetime
    title: str | None = None
    assignee_id: int | None = None  # default: the client's owner, else whoever completes


def _is_boss(user: User | None) -> bool:
    return user is None or user.role in (Role.SUPERVISOR, Role.ADMIN)


async def open_client_tasks(session: AsyncSession, client_id: int,
                            exclude: int | None = None) -> list[Task]:
    """The client's open tasks that are work with him (not requests to stop it)."""
    requests = select(ClientStop.request_task_id).where(ClientStop.client_id == client_id,
                                                        ClientStop.request_task_id.is_not(None))
    stmt = select(Task).where(Task.client_id == client_id, Task.status == TaskStatus.OPEN.value,
                              Task.id.not_in(requests)).order_by(Task.due_at, Task.id)
    if exclude is not None:
        stmt = stmt.where(Task.id != exclude)
    return list(await session.scalars(stmt))


async def active_stop(session: AsyncSession, client_id: int) -> ClientStop | None:
    """The approved, unrevoked stop of work with the client, if any."""
    return await session.scalar(select(ClientStop).where(
        ClientStop.client_id == client_id, ClientStop.approved_at.is_not(None),
        ClientStop.revoked_at.is_(None)).order_by(ClientStop.id.desc()).limit(1))


def refuse_past(due: datetime) -> None:
    """A due time before the current minute is refused: a contact is planned ahead.

    The current minute itself is accepted (a ``datetime-local`` field has no seconds).
    """
    if ensure_utc(due) < utcnow().replace(second=0, microsecond=0):
        raise DomainError("tasks.due_in_past", f"due time {isoformat(due)} is in the past")


async def check_assignee(session: AsyncSession, by: User, assignee: User, client: Client, *,
                         error: type[NotAllowedError] = NotAllowedError) -> None:
    """The one rule for "``by`` gives ``assignee`` work with ``client``" (a task, a deal whose
    stages make tasks): ``may_assign_to``, and the assignee may open the client's card,
    whoever assigns (an admin too), so nobody is handed a client he cannot see."""
    if not may_assign_to(by, assignee):
        if assignee.role not in (Role.MANAGER, Role.SUPERVISOR):
            _refuse(error, "tasks.assignee_not_manager",
                    f"{assignee.name} is not a manager", name=assignee.name)
        _refuse(error, "tasks.assignee_not_in_team",
                f"{by.name} may not give tasks to {assignee.name}", name=assignee.name)
    if not await may_open_client(session, assignee, client.id):
        _refuse(error, "tasks.assignee_cannot_open_client",
                f"{assignee.name} may not open client {client.id}",
                name=assignee.name, client=client.name)


def _refuse(error: type[NotAllowedError], code: str, message: str, **params: Any) -> NoReturn:
    """Raise ``error`` (a task's or a deal's refusal) with the code of the broken rule."""
    raise error(code, message, **params)


async def plan_task(session: AsyncSession, *, client_id: int, kind: str, due_at: datetime,
                    by: User | None, title: str | None = None, assignee_id: int | None = None,
                    actor: str = "user", future_only: bool = False) -> Task:
    """A planned contact with a client (call, email, meeting, other), due at a time.

    A manager plans for himself, a supervisor for a manager of his team. With
    ``future_only`` (a person planning: the API, the card, the next task) a due time in
    the past is refused. It revokes an approved stop: the client is worked on again.
    """
    if kind not in {k.value for k in PLANNABLE_KINDS}:
        raise TaskRuleError("sales.task.kind_invalid",
                            f"Unknown task kind {kind!r}; expected call, email, meeting or other.")
    try:
        due = ensure_utc(due_at)
    except ValueError:
        raise TaskRuleError("sales.task.due_needs_zone",
                            "The due time needs a time zone.") from None
    if future_only:
        refuse_past(due)
    client = await session.get(Client, client_id)
    if client is None:
        raise TaskRuleError("sales.client.not_found", f"There is no client with id {client_id}.",
                            client=client_id)
    if client.archived_at is not None:
        raise TaskRuleError("sales.client.archived",
                            f"Client {client_id} is archived; restore him first.", client=client_id)
    assignee_id = assignee_id or client.owner_id or (by.id if by else None)
    assignee = await session.get(User, assignee_id) if assignee_id else None
    if assignee_id and (assignee is None or not assignee.active):
        raise TaskRuleError("sales.user_not_found",
                            f"There is no active user with id {assignee_id}.", user=assignee_id)
    if by is not None and by.role == Role.MANAGER and assignee_id != by.id:
        raise TaskNotAllowedError("sales.task.manager_own_only",
                                  "A manager plans tasks for himself only.")
    if by is not None and assignee is not None:
        await check_assignee(session, by, assignee, client)
    task = await create_task(
        session, kind=kind, title=(title or "").strip() or f"{KIND_TITLES[kind]}: {client.name}",
        client_id=client_id, assignee_id=assignee_id,
        team_id=assignee.team_id if assignee else None, due_at=due,
        created_by_id=by.id if by else None, actor=actor)
    stop = await active_stop(session, client_id)
    if stop is not None:
        stop.revoked_at = utcnow()
        write_audit(session, actor=actor, user_id=by.id if by else None, entity="client",
                    entity_id=client_id, action=ACTION_UPDATE,
                    changes={"stop_revoked": stop.id, "by_task": task.id})
    return task


async def finish_task(session: AsyncSession, task: Task, *, by: User | None,
                      next_task: NextTask | None = None, note: str | None = None,
                      result_call_id: int | None = None, actor: str = "user",
                      at: datetime | None = None) -> tuple[Task, Task | None]:
    """Complete a task; returns (the task, the next task created with it, if any).

    A client's task completes only when his work goes on: another open task, the
    ``next_task`` given (never due in the past), or a supervisor's approved stop.
    Otherwise a TaskRuleError says what to do, and nothing is written.
    """
    if task.status != TaskStatus.OPEN:
        raise TaskRuleError("tasks.closed", f"Task {task.id} is already {task.status}.",
                            task=task.id)
    created = None
    if task.client_id is not None:
        if next_task is not None:
            created = await plan_task(session, client_id=task.client_id, kind=next_task.kind,
                                      due_at=next_task.due_at, title=next_task.title,
                                      assignee_id=next_task.assignee_id, by=by, actor=actor,
                                      future_only=True)
        elif not await open_client_tasks(session, task.client_id, exclude=task.id) \
                and await active_stop(session, task.client_id) is None:
            raise TaskRuleError("sales.task.next_needed",
                                "Plan the next contact with this client, or ask a supervisor "
                                "to approve stopping work with him.")
    done = await complete_task(session, task, note=note, result_call_id=result_call_id, at=at,
                               actor=actor, user_id=by.id if by else None)
    return done, created


async def reschedule_task(session: AsyncSession, task: Task, due_at: datetime, reason: str, *,
                          by: User | None, actor: str = "user") -> Task:
    """Move an open task's due time (never into the past); the reason is required and
    audited."""
    reason = (reason or "").strip()
    if not reason:
        raise TaskRuleError("sales.task.reschedule_needs_reason",
                            "Moving a due date needs a reason.")
    if task.status != TaskStatus.OPEN:
        raise TaskRuleError("tasks.closed", f"Task {task.id} is already {task.status}.",
                            task=task.id)
    try:
        due = ensure_utc(due_at)
    except ValueError:
        raise TaskRuleError("sales.task.due_needs_zone",
                            "The due time needs a time zone.") from None
    refuse_past(due)
    write_audit(session, actor=actor, user_id=by.id if by else None, entity=AUDIT_ENTITY,
                entity_id=task.id, action=ACTION_UPDATE,
                changes={"due_at": [isoformat(task.due_at), isoformat(due)],
                         "reason": reason[:500]})
    task.due_at = due
    task.due_moves = (task.due_moves or 0) + 1
    task.updated_at = utcnow()
    await session.flush()
    return task


async def _supervisor_of(session: AsyncSession, client: Client) -> User | None:
    if client.owner_id is None:
        return None
    team_id = await session.scalar(select(User.team_id).where(User.id == client.owner_id))
    if team_id is None:
        return None
    return await session.scalar(select(User).where(
        User.team_id == team_id, User.role == Role.SUPERVISOR.value, User.active.is_(True))
        .order_by(User.id).limit(1))


async def request_stop(session: AsyncSession, client_id: int, reason: str, *,
                       by: User | None, actor: str = "user") -> ClientStop:
    """A manager asks to stop working with a client: a task for his supervisor to decide."""
    reason = (reason or "").strip()
    if not reason:
        raise TaskRuleError("sales.task.stop_needs_reason",
                            "Say why work with the client should stop.")
    client = await session.get(Client, client_id)
    if client is None:
        raise TaskRuleError("sales.client.not_found", f"There is no client with id {client_id}.",
                            client=client_id)
    supervisor = await _supervisor_of(session, client)
    task = await create_task(
        session, kind=TaskKind.OTHER.value,
        title=f"Согласовать прекращение работы: {client.name}", client_id=client_id,
        assignee_id=supervisor.id if supervisor else None,
        team_id=supervisor.team_id if supervisor else None, due_at=utcnow(),
        created_by_id=by.id if by else None, actor=actor, audit_extra={"reason": reason})
    stop = ClientStop(client_id=client_id, reason=reason[:500],
                      requested_by_id=by.id if by else None, request_task_id=task.id)
    session.add(stop)
    await session.flush()
    return stop


async def approve_stop(session: AsyncSession, client_id: int, reason: str, *,
                       by: User | None, actor: str = "user",
                       keep_task_id: int | None = None) -> ClientStop:
    """A supervisor (or admin) approves stopping work with a client; audited.

    Closes the pending request, if any, or records the supervisor's own decision. The
    managers' open tasks for the client are closed (cancelled) with the reason as their
    result: nobody is left calling a client the company stopped working with. Tasks of
    supervisors (a lost deal's re-check) stay open, and so does ``keep_task_id`` (the
    task the supervisor completes himself with the stop).
    """
    if not _is_boss(by):
        raise TaskNotAllowedError("sales.task.approve_bosses_only",
                                  "Only a supervisor or an admin may approve stopping work "
                                  "with a client.")
    client = await session.get(Client, client_id)
    if client is None:
        raise TaskRuleError("sales.client.not_found", f"There is no client with id {client_id}.",
                            client=client_id)
    if by is not None and by.role == Role.SUPERVISOR:
        owner_team = await session.scalar(select(User.team_id).where(User.id == client.owner_id))
        if owner_team is None or owner_team != by.team_id:
            raise TaskNotAllowedError("sales.client.not_in_team",
                                      f"Client {client_id} is not in your team.", client=client_id)
    stop = await session.scalar(select(ClientStop).where(
        ClientStop.client_id == client_id, ClientStop.approved_at.is_(None),
        ClientStop.revoked_at.is_(None)).order_by(ClientStop.id.desc()).limit(1))
    if stop is None:
        stop = ClientStop(client_id=client_id, reason=(reason or "").strip()[:500] or "—")
        session.add(stop)
    stop.approved_by_id = by.id if by else None
    stop.approved_at = utcnow()
    await session.flush()
    write_audit(session, actor=actor, user_id=by.id if by else None, entity="client",
                entity_id=client_id, action=ACTION_UPDATE,
                changes={"stop_approved": stop.id, "reason": (reason or stop.reason)[:500]})
    said = (reason or "").strip() or stop.reason
    if stop.request_task_id is not None:
        request = await session.get(Task, stop.request_task_id)
        if request is not None and request.status == TaskStatus.OPEN:
            await complete_task(session, request, note=f"Согласовано: {said}"[:1000],
                                actor=actor, user_id=by.id if by else None)
    bosses = set(await session.scalars(select(User.id).where(
        User.role.in_([Role.SUPERVISOR.value, Role.ADMIN.value]))))
    for task in await open_client_tasks(session, client_id, exclude=keep_task_id):
        if task.assignee_id not in bosses:
            await cancel_task(session, task, actor=actor, user_id=by.id if by else None,
                              note=f"Работа с клиентом прекращена по согласованию "
                                   f"руководителя: {said}"[:1000])
    return stop


async def refuse_stop(session: AsyncSession, stop_id: int, reason: str, *,
                      by: User | None, actor: str = "user") -> ClientStop:
    """A supervisor refuses a pending request to stop work: the work with the client goes on.

    The request is closed (``revoked_at``), its task completed with the reason; audited.
    """
    if not _is_boss(by):
        raise TaskNotAllowedError("sales.task.refuse_bosses_only",
                                  "Only a supervisor or an admin may refuse stopping work "
                                  "with a client.")
    reason = (reason or "").strip()
    if not reason:
        raise TaskRuleError("sales.task.refuse_needs_reason",
                            "Say why work with the client goes on.")
    stop = await session.get(ClientStop, stop_id)
    if stop is None or stop.approved_at is not None or stop.revoked_at is not None:
        raise TaskRuleError("sales.task.no_pending_stop",
                            f"There is no pending request {stop_id} to stop work.", stop=stop_id)
    client = await session.get(Client, stop.client_id)
    if by is not None and by.role == Role.SUPERVISOR and client is not None:
        owner_team = await session.scalar(select(User.team_id).where(User.id == client.owner_id))
        if owner_team is None or owner_team != by.team_id:
            raise TaskNotAllowedError("sales.client.not_in_team",
                                      f"Client {stop.client_id} is not in your team.",
                                      client=stop.client_id)
    stop.revoked_at = utcnow()
    write_audit(session, actor=actor, user_id=by.id if by else None, entity="client",
                entity_id=stop.client_id, action=ACTION_UPDATE,
                changes={"stop_refused": stop.id, "reason": reason[:500]})
    if stop.request_task_id is not None:
        request = await session.get(Task, stop.request_task_id)
        if request is not None and request.status == TaskStatus.OPEN:
            await complete_task(session, request, note=f"Отклонено: {reason}"[:1000],
                                actor=actor, user_id=by.id if by else None)
    await session.flush()
    return stop


async def pending_stops(session: AsyncSession, client_where: Any = None) -> list[ClientStop]:
    """Requests to stop work not yet decided, oldest first (``client_where``: on ``Client``)."""
    stmt = (select(ClientStop).join(Client, Client.id == ClientStop.client_id)
            .where(ClientStop.approved_at.is_(None), ClientStop.revoked_at.is_(None)))
    if client_where is not None:
        stmt = stmt.where(client_where)
    return list(await session.scalars(stmt.order_by(ClientStop.requested_at, ClientStop.id)))


async def overdue_tasks(session: AsyncSession, *, now: datetime | None = None,
                        where: Any = None) -> list[Task]:
    """Open tasks past their due time, oldest first (``where``: an access filter)."""
    stmt = select(Task).where(Task.status == TaskStatus.OPEN.value, Task.due_at.is_not(None),
                              Task.due_at < ensure_utc(now or utcnow()))
    if where is not None:
        stmt = stmt.where(where)
    return list(await session.scalars(stmt.order_by(Task.due_at, Task.id)))


__all__ = ["NextTask", "TaskNotAllowedError", "TaskRuleError", "approve_stop",
           "finish_task", "overdue_tasks", "pending_stops", "plan_task", "refuse_past",
           "refuse_stop", "request_stop", "reschedule_task"]
