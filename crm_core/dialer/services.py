"""Dialer sessions: start, pause, end; the next client; a hang-up and its retry task.

A session belongs to one manager and walks his open call tasks of today in the order of
:mod:`crm_core.dialer.queue`. The browser reports the hang-up of the call it placed
(``record_hangup``); the server judges it from the stored call, never from what the
browser says: a busy, unanswered or failed call closes the task with a retry task due
``retry_minutes`` later, as long as the head of sales' rules allow another try; an
answered call (or the last try) opens the outcome-and-next-task form instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.calls.models import Call, CallLeg, CallStatus, Direction, LegRole
from crm_core.clients.models import Client
from crm_core.dialer.models import (
    DialerAttempt,
    DialerRules,
    DialerSession,
    SessionPhase,
    SessionState,
)
from crm_core.dialer.queue import QueueItem, Retry, Rules, callable_now, ordered, retry_for
from crm_core.errors import ConflictError, DomainError, NotAllowedError, NotFoundError
from crm_core.people.models import Role, User
from crm_core.sales.tasks import plan_task
from crm_core.tasks.models import Task, TaskKind, TaskStatus
from crm_core.tasks.services import complete_task
from crm_core.timestamps import ensure_utc, utcnow

CALL_KINDS = (TaskKind.CALL.value, TaskKind.CALLBACK.value)
STATUS_WORDS = {"busy": "занято", "no_answer": "не ответил", "failed": "вызов не прошёл",
                "answered": "разговор состоялся", "missed": "не ответил"}


# -- the head of sales' rules -----------------------------------------------------------------


async def rules_for_team(session: AsyncSession, team_id: int | None) -> Rules:
    """The team's rules, else the company's, else the defaults (3 tries, 30 minutes apart)."""
    for key in ([team_id] if team_id is not None else []) + [None]:
        row = await session.scalar(select(DialerRules).where(
            DialerRules.team_id.is_(None) if key is None else DialerRules.team_id == key))
        if row is not None:
            return Rules(max_attempts=row.max_attempts, retry_minutes=row.retry_minutes)
    return Rules()


def _whole(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise DomainError("dialer.rules_out_of_range", f"{name} must be {low}..{high}",
                          field=name, low=low, high=high)
    return value


async def save_rules(session: AsyncSession, team_id: int | None, *, max_attempts: Any,
                     retry_minutes: Any, by: User) -> Rules:
    """Set a team's (or, for an admin, the company's) retry rules; audited.

    A supervisor sets his own team's only; a manager none.
    """
    if by.role == Role.SUPERVISOR:
        if team_id is None or team_id != by.team_id:
            raise NotAllowedError("dialer.rules_own_team", "a supervisor sets his team's rules")
    elif by.role != Role.ADMIN:
        raise NotAllowedError("dialer.rules_bosses_only", "only a supervisor or an admin")
    tries = _whole(max_attempts, "max_attempts", 1, 20)
    minutes = _whole(retry_minutes, "retry_minutes", 1, 7 * 24 * 60)
    row = await session.scalar(select(DialerRules).where(
        DialerRules.team_id.is_(None) if team_id is None else DialerRules.team_id == team_id))
    old = None if row is None else [row.max_attempts, row.retry_minutes]
    if row is None:
        row = DialerRules(team_id=team_id)
        session.add(row)
    row.max_attempts, row.retry_minutes, row.updated_by_id = tries, minutes, by.id
    row.updated_at = utcnow()
    await session.flush()
    write_audit(session, actor=by.username, user_id=by.id, entity="dialer_rules",
                entity_id=row.id, action=ACTION_CREATE if old is None else ACTION_UPDATE,
                changes={"team_id": team_id, "max_attempts": [old and old[0], tries],
                         "retry_minutes": [old and old[1], minutes]})
    return Rules(max_attempts=tries, retry_minutes=minutes)


# -- the list ---------------------------------------------------------------------------------


def day_end(now: datetime, tz: ZoneInfo) -> datetime:
    """The end of ``now``'s local day (the list is today's tasks, overdue ones included)."""
    local = now.astimezone(tz)
    return datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=tz)


async def retry_task_ids(session: AsyncSession, task_ids: list[int]) -> dict[int, int]:
    """Of ``task_ids``, the retry tasks and the attempt number each one is."""
    if not task_ids:
        return {}
    rows = await session.execute(select(DialerAttempt.retry_task_id, DialerAttempt.attempt)
                                 .where(DialerAttempt.retry_task_id.in_(task_ids)))
    return {task_id: attempt + 1 for task_id, attempt in rows if task_id is not None}


async def call_list(session: AsyncSession, user: User, now: datetime,
                    tz: ZoneInfo) -> list[QueueItem]:
    """The manager's open call tasks with a client, due by the end of today, in order."""
    stmt = (select(Task.id, Task.due_at, Client.abc_group)
            .join(Client, Client.id == Task.client_id)
            .where(Task.assignee_id == user.id, Task.status == TaskStatus.OPEN.value,
                   Task.kind.in_(CALL_KINDS), Task.due_at.is_not(None),
                   Task.due_at < day_end(now, tz), Client.archived_at.is_(None)))
    rows = (await session.execute(stmt)).all()
    retries = await retry_task_ids(session, [row[0] for row in rows])
    return ordered([QueueItem(task_id=task_id, due_at=ensure_utc(due), abc_group=group,
                              is_retry=task_id in retries)
                    for task_id, due, group in rows if due is not None], now)


async def attempt_number(session: AsyncSession, task_id: int) -> int:
    """Which try calling this task is: 1, or one more than the attempt that made it."""
    return (await retry_task_ids(session, [task_id])).get(task_id, 1)


# -- sessions ---------------------------------------------------------------------------------


def _audit(session: AsyncSession, by: User, dsession: DialerSession, action: str,
           changes: dict[str, Any]) -> None:
    write_audit(session, actor=by.username, user_id=by.id, entity="dialer_session",
                entity_id=dsession.id, action=action, changes=changes)


async def open_session(session: AsyncSession, user_id: int) -> DialerSession | None:
    """The manager's session not ended yet, if any."""
    return await session.scalar(
        select(DialerSession).where(DialerSession.user_id == user_id,
                                    DialerSession.state != SessionState.ENDED.value)
        .order_by(DialerSession.id.desc()).limit(1))


async def own_session(session: AsyncSession, user: User) -> DialerSession:
    """His open session, or ``dialer.no_session``."""
    dsession = await open_session(session, user.id)
    if dsession is None:
        raise NotFoundError("dialer.no_session", "start a dialer session first")
    return dsession


async def start_session(session: AsyncSession, user: User, now: datetime,
                        tz: ZoneInfo) -> DialerSession:
    """Start (or go back to) his session, on the first client of the list."""
    if user.role != Role.MANAGER or not user.extension:
        raise NotAllowedError("dialer.managers_only",
                              "the dialer is for managers with a phone of their own")
    dsession = await open_session(session, user.id)
    if dsession is not None:
        if dsession.state == SessionState.PAUSED:
            await set_paused(session, dsession, user, paused=False)
        return dsession
    dsession = DialerSession(user_id=user.id, state=SessionState.ACTIVE.value,
                             phase=SessionPhase.IDLE.value, skipped=[], started_at=utcnow())
    session.add(dsession)
    await session.flush()
    _audit(session, user, dsession, ACTION_CREATE, {"started_at": now.isoformat()})
    await advance(session, dsession, user, now, tz)
    return dsession


async def set_paused(session: AsyncSession, dsession: DialerSession, user: User, *,
                     paused: bool) -> DialerSession:
    """Pause (no next call comes by itself) or go on; audited."""
    new = SessionState.PAUSED if paused else SessionState.ACTIVE
    if dsession.state != new.value:
        _audit(session, user, dsession, ACTION_UPDATE, {"state": [dsession.state, new.value]})
        dsession.state = new.value
        dsession.paused_at = utcnow() if paused else None
        await session.flush()
    return dsession


async def end_session(session: AsyncSession, dsession: DialerSession,
                      user: User) -> DialerSession:
    """«Завершить обзвон»: the session is history (its attempts stay); audited."""
    _audit(session, user, dsession, ACTION_UPDATE,
           {"state": [dsession.state, SessionState.ENDED.value]})
    dsession.state = SessionState.ENDED.value
    dsession.phase = SessionPhase.IDLE.value
    dsession.ended_at = utcnow()
    await session.flush()
    return dsession


async def advance(session: AsyncSession, dsession: DialerSession, user: User, now: datetime,
                  tz: ZoneInfo, *, skip: bool = False) -> Task | None:
    """Go to the next client of the list (``skip``: put the current task aside first).

    The current task stays current while it is open and not skipped: the manager
    finishes what he started. None when the list is done for now.
    """
    if dsession.phase == SessionPhase.CALLING and not skip:
        raise ConflictError("dialer.call_in_progress", "the call is still going on")
    current = await session.get(Task, dsession.task_id) if dsession.task_id else None
    skipped = [int(i) for i in dsession.skipped or []]
    if skip and current is not None:
        skipped.append(current.id)
        dsession.skipped = [str(i) for i in skipped]
    elif current is not None and current.status == TaskStatus.OPEN.value and \
            dsession.phase != SessionPhase.COUNTDOWN:
        return current
    items = callable_now(await call_list(session, user, now, tz), now, skipped)
    dsession.task_id = items[0].task_id if items else None
    dsession.phase = SessionPhase.IDLE.value
    dsession.number = None
    await session.flush()
    return await session.get(Task, dsession.task_id) if dsession.task_id else None


async def current_task(session: AsyncSession, dsession: DialerSession) -> Task:
    task = await session.get(Task, dsession.task_id) if dsession.task_id else None
    if task is None or task.status != TaskStatus.OPEN.value or task.client_id is None:
        raise ConflictError("dialer.no_current_task", "there is no client to call now")
    return task


async def mark_calling(session: AsyncSession, dsession: DialerSession, number: str) -> None:
    """The call to ``number`` for the current task is being placed."""
    if dsession.state != SessionState.ACTIVE.value:
        raise ConflictError("dialer.paused", "the session is paused")
    dsession.phase = SessionPhase.CALLING.value
    dsession.number = number
    await session.flush()


def set_phase(dsession: DialerSession, phase: SessionPhase) -> None:
    dsession.phase = phase.value


# -- the hang-up --------------------------------------------------------------------------

PLACED_SLACK = timedelta(seconds=5)  # the PBX stamps a call's start with its own clock


async def ended_call(session: AsyncSession, dsession: DialerSession) -> int | None:
    """The ended outbound call with the current client placed since the session began
    calling, not judged yet: the hang-up, found when no live event brought it (a busy
    client's call names no manager who talked, so the live stream may not admit it)."""
    if dsession.phase != SessionPhase.CALLING.value or dsession.task_id is None:
        return None
    task = await session.get(Task, dsession.task_id)
    if task is None or task.client_id is None:
        return None
    judged = select(DialerAttempt.call_id).where(DialerAttempt.call_id.is_not(None))
    return await session.scalar(
        select(Call.id).where(Call.client_id == task.client_id,
                              Call.direction == Direction.OUTBOUND.value,
                              Call.status != CallStatus.IN_PROGRESS.value,
                              Call.started_at >= ensure_utc(dsession.updated_at) - PLACED_SLACK,
                              Call.id.not_in(judged))
        .order_by(Call.started_at.desc(), Call.id.desc()).limit(1))



@dataclass(frozen=True)
class Hangup:
    """What a finished call means for the session."""

    attempt: DialerAttempt
    status: str
    retry: Task | None  # the retry task made (the current task is then closed)
    form: bool  # open the outcome-and-next-task form
    exhausted: bool  # a failed call on the last try the rules allow
    note: str  # what the task's result says (prefills the form)


async def record_hangup(session: AsyncSession, dsession: DialerSession, user: User,
                        call: Call) -> Hangup:
    """Judge the stored ``call`` placed for the current task; idempotent per call."""
    if call.status == CallStatus.IN_PROGRESS.value:
        raise ConflictError("dialer.call_in_progress", "the call is still going on")
    if call.direction != Direction.OUTBOUND.value:
        raise DomainError("dialer.not_a_dialer_call", "not an outbound call")
    known = await session.scalar(select(DialerAttempt).where(DialerAttempt.call_id == call.id))
    task = await session.get(Task, known.task_id if known else dsession.task_id or 0)
    if task is None or task.client_id is None:
        raise ConflictError("dialer.no_current_task", "there is no client to call now")
    if call.client_id != task.client_id:
        raise DomainError("dialer.not_a_dialer_call", "the call is not with this client")
    client = await session.get(Client, task.client_id)
    rules = await rules_for_team(session, user.team_id)
    if known is not None:
        retry_task = await session.get(Task, known.retry_task_id) if known.retry_task_id else None
        exhausted = known.status != "answered" and retry_task is None
        return Hangup(known, known.status, retry_task, retry_task is None, exhausted,
                      _note(known.status, known.attempt, rules, None))
    number = await attempt_number(session, task.id)
    status = call.status
    attempt = DialerAttempt(session_id=dsession.id, task_id=task.id, client_id=task.client_id,
                            call_id=call.id, status=status, attempt=number,
                            talk_seconds=call.talk_seconds or 0.0, created_at=utcnow())
    session.add(attempt)
    retry = retry_for(rules, status, number, call.ended_at or utcnow())
    note = _note(status, number, rules, retry)
    made = None
    if retry is not None and task.status == TaskStatus.OPEN.value:
        made = await plan_task(session, client_id=task.client_id, kind=TaskKind.CALL.value,
                               due_at=max(retry.due_at, utcnow()), by=user,
                               title=retry.title(client.name if client else "",
                                                 rules.max_attempts),
                               assignee_id=user.id, actor=user.username)
        await complete_task(session, task, note=note, result_call_id=call.id,
                            actor=user.username, user_id=user.id)
        attempt.retry_task_id = made.id
        dsession.phase = SessionPhase.COUNTDOWN.value
    else:
        dsession.phase = SessionPhase.WRAP_UP.value
    await session.flush()
    exhausted = status != "answered" and retry is None
    return Hangup(attempt, status, made, made is None, exhausted, note)


def _note(status: str, attempt: int, rules: Rules, retry: Retry | None) -> str:
    said = STATUS_WORDS.get(status, status)
    if status == "answered":
        return ""
    if retry is not None:
        return (f"Не дозвонились ({said}), попытка {attempt} из {rules.max_attempts}; "
                f"повторный звонок через {rules.retry_minutes} мин.")
    return (f"Не дозвонились ({said}): попытка {attempt} из {rules.max_attempts} была "
            f"последней, повторов больше не будет.")


# -- figures ------------------------------------------------------------------------------


async def session_figures(session: AsyncSession, dsession: DialerSession,
                          now: datetime) -> dict[str, Any]:
    """Calls placed in the session, talk in them, and calls per hour since it started."""
    calls, talk = (await session.execute(
        select(func.count(DialerAttempt.id), func.coalesce(func.sum(DialerAttempt.talk_seconds), 0))
        .where(DialerAttempt.session_id == dsession.id))).one()
    # In the first hour the pace is the calls so far: a minute's two calls are not 120 an hour.
    hours = max((ensure_utc(now) - ensure_utc(dsession.started_at)).total_seconds() / 3600, 1.0)
    return {"calls": int(calls), "talk_seconds": round(float(talk), 1),
            "calls_per_hour": round(int(calls) / hours, 1)}


async def talking_now(session: AsyncSession, user_ids: list[int]) -> set[int]:
    """Of ``user_ids``, who has a live bridged call leg right now."""
    if not user_ids:
        return set()
    stmt = (select(CallLeg.user_id).join(Call, Call.id == CallLeg.call_id)
            .where(CallLeg.user_id.in_(user_ids), CallLeg.role == LegRole.MANAGER.value,
                   CallLeg.ended_at.is_(None), CallLeg.bridged_at.is_not(None),
                   Call.status == CallStatus.IN_PROGRESS.value))
    return {uid for uid in await session.scalars(stmt) if uid is not None}


async def team_board(session: AsyncSession, managers: list[User],
                     now: datetime) -> list[dict[str, Any]]:
    """Per manager: in a session or not, and there on a call, paused, or between calls."""
    ids = [m.id for m in managers]
    open_sessions = {s.user_id: s for s in await session.scalars(
        select(DialerSession).where(DialerSession.user_id.in_(ids or [-1]),
                                    DialerSession.state != SessionState.ENDED.value))}
    talking = await talking_now(session, ids)
    rows = []
    for m in managers:
        dsession = open_sessions.get(m.id)
        row: dict[str, Any] = {"user_id": m.id, "name": m.name, "extension": m.extension,
                               "in_session": dsession is not None, "state": "off",
                               "since": None, "client": None, "calls": 0,
                               "calls_per_hour": 0.0, "talk_seconds": 0.0}
        if dsession is not None:
            if m.id in talking or dsession.phase == SessionPhase.CALLING:
                state = "call"
            elif dsession.state == SessionState.PAUSED:
                state = "paused"
            elif dsession.phase == SessionPhase.WRAP_UP:
                state = "wrap_up"
            else:
                state = "idle"
            task = await session.get(Task, dsession.task_id) if dsession.task_id else None
            client = await session.get(Client, task.client_id) if task and task.client_id \
                else None
            row.update(state=state, since=ensure_utc(dsession.started_at).isoformat(),
                       client=client.name if client else None,
                       **await session_figures(session, dsession, now))
        rows.append(row)
    return rows
