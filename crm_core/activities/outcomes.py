"""Call outcomes: the list the head of sales keeps, each call's outcome, the calls without one.

After a call the manager picks what came of it («Договорились о встрече», «Отказ»,
«Перезвонить», «Не дозвонился», ...) and may add a note. The list is the company's:
a supervisor or an admin adds, renames and archives entries (an archived outcome is no
longer offered; calls that got it keep it). A call *needs* an outcome when a manager
worked it: an ended customer call with a client, outbound (answered or not) or answered
inbound; a missed inbound call gets a callback task instead. Its managers are the
manager legs that placed it (outbound) or talked on it (inbound).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.activities.models import CallOutcome, CallResult
from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.calls.models import Call, CallLeg, CallStatus, Direction, LegRole
from crm_core.clients.models import Client
from crm_core.errors import ConflictError, DomainError, NotAllowedError, NotFoundError
from crm_core.people.models import Role, User
from crm_core.timestamps import ensure_utc, isoformat, utcnow

NAME_MAX = 100
NOTE_MAX = 1000


# -- the list -------------------------------------------------------------------------------


def _boss(by: User | None) -> None:
    if by is not None and by.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotAllowedError("outcomes.not_allowed", "only a supervisor or an admin")


def _name(value: str | None) -> str:
    name = " ".join((value or "").split())
    if not name:
        raise DomainError("outcomes.empty_name", "an outcome needs a name")
    if len(name) > NAME_MAX:
        raise DomainError("outcomes.too_long", f"longer than {NAME_MAX} characters",
                          limit=NAME_MAX)
    return name


def _audit(session: AsyncSession, by: User | None, actor: str, entity: str, entity_id: int,
           action: str, changes: dict[str, Any]) -> None:
    write_audit(session, actor=by.username if by else actor, user_id=by.id if by else None,
                entity=entity, entity_id=entity_id, action=action, changes=changes)


async def outcome_list(session: AsyncSession, *, with_archived: bool = False
                       ) -> list[CallOutcome]:
    """The outcomes in the order they are offered (archived ones last, when asked)."""
    stmt = select(CallOutcome)
    if not with_archived:
        stmt = stmt.where(CallOutcome.active.is_(True))
    stmt = stmt.order_by(CallOutcome.active.desc(), CallOutcome.position, CallOutcome.id)
    return list(await session.scalars(stmt))


async def _taken(session: AsyncSession, name: str, other_than: int | None = None) -> None:
    """Refuse a name the list has already, whatever its case (compared here: SQLite's
    lower() knows no Cyrillic; the list is short)."""
    for outcome_id, known in await session.execute(select(CallOutcome.id, CallOutcome.name)):
        if outcome_id != other_than and known.casefold() == name.casefold():
            raise ConflictError("outcomes.name_taken", f"outcome {name!r} exists", name=name)


async def add_outcome(session: AsyncSession, name: str, *, by: User | None,
                      actor: str = "user") -> CallOutcome:
    """A new outcome at the end of the list; audited."""
    _boss(by)
    name = _name(name)
    await _taken(session, name)
    last = await session.scalar(select(func.max(CallOutcome.position)))
    outcome = CallOutcome(name=name, position=(last or 0) + 1, active=True)
    session.add(outcome)
    await session.flush()
    _audit(session, by, actor, "call_outcome", outcome.id, ACTION_CREATE, {"name": name})
    return outcome


async def get_outcome(session: AsyncSession, outcome_id: int) -> CallOutcome:
    outcome = await session.get(CallOutcome, outcome_id)
    if outcome is None:
        raise NotFoundError("outcomes.not_found", f"there is no outcome {outcome_id}")
    return outcome


async def rename_outcome(session: AsyncSession, outcome_id: int, name: str, *,
                         by: User | None, actor: str = "user") -> CallOutcome:
    """A new name for an outcome (calls that got it read the new name); audited."""
    _boss(by)
    outcome = await get_outcome(session, outcome_id)
    name = _name(name)
    if name == outcome.name:
        return outcome
    await _taken(session, name, other_than=outcome.id)
    _audit(session, by, actor, "call_outcome", outcome.id, ACTION_UPDATE,
           {"name": [outcome.name, name]})
    outcome.name = name
    await session.flush()
    return outcome


async def archive_outcome(session: AsyncSession, outcome_id: int, *, by: User | None,
                          restore: bool = False, actor: str = "user") -> CallOutcome:
    """Take an outcome off the list (no longer offered), or put it back; audited."""
    _boss(by)
    outcome = await get_outcome(session, outcome_id)
    if outcome.active != restore:
        _audit(session, by, actor, "call_outcome", outcome.id, ACTION_UPDATE,
               {"active": [outcome.active, restore]})
        outcome.active = restore
        await session.flush()
    return outcome


def outcome_to_dict(outcome: CallOutcome) -> dict[str, Any]:
    return {"id": outcome.id, "name": outcome.name, "position": outcome.position,
            "active": outcome.active}


# -- a call's outcome -----------------------------------------------------------------------


def needs_outcome() -> ColumnElement[bool]:
    """WHERE on ``Call``: a customer call with a client that a manager worked, ended."""
    return and_(Call.client_id.is_not(None), Call.direction != Direction.INTERNAL.value,
                Call.status != CallStatus.IN_PROGRESS.value,
                or_(Call.direction == Direction.OUTBOUND.value, Call.answered_at.is_not(None)))


def worked_by() -> ColumnElement[bool]:
    """WHERE on ``CallLeg`` (joined to its ``Call``): a manager who worked the call."""
    return and_(CallLeg.role == LegRole.MANAGER.value, CallLeg.user_id.is_not(None),
                or_(Call.direction == Direction.OUTBOUND.value, CallLeg.talk_seconds > 0))


async def set_call_outcome(session: AsyncSession, call: Call, outcome_id: int,
                           note: str | None, *, by: User) -> CallResult:
    """Give ``call`` its outcome (a listed, active one) and a note; a second answer
    replaces the first. Audited. Who may see the call is checked by the caller."""
    if call.client_id is None or call.direction == Direction.INTERNAL:
        raise DomainError("outcomes.not_a_client_call", "an internal call has no outcome")
    if call.status == CallStatus.IN_PROGRESS:
        raise ConflictError("outcomes.call_in_progress", "the call is still going on")
    outcome = await get_outcome(session, outcome_id)
    text = (note or "").strip() or None
    if text is not None and len(text) > NOTE_MAX:
        raise DomainError("activities.too_long", f"longer than {NOTE_MAX} characters",
                          limit=NOTE_MAX)
    result = await session.scalar(select(CallResult).where(CallResult.call_id == call.id))
    if not outcome.active and (result is None or result.outcome_id != outcome.id):
        raise DomainError("outcomes.archived", f"outcome {outcome.name!r} is archived",
                          name=outcome.name)
    now = utcnow()
    if result is None:
        result = CallResult(call_id=call.id, outcome_id=outcome.id, note=text, user_id=by.id,
                            created_at=now, updated_at=now)
        session.add(result)
        await session.flush()
        action, changes = ACTION_CREATE, {"call_id": call.id, "outcome": outcome.name,
                                          "note": text}
    else:
        old = await session.get(CallOutcome, result.outcome_id)
        action, changes = ACTION_UPDATE, {
            "call_id": call.id, "outcome": [old.name if old else None, outcome.name],
            "note": [result.note, text]}
        result.outcome_id, result.note, result.user_id, result.updated_at = (
            outcome.id, text, by.id, now)
        await session.flush()
    write_audit(session, actor=by.username, user_id=by.id, entity="call_result",
                entity_id=result.id, action=action, changes=changes)
    return result


async def result_to_dict(session: AsyncSession, result: CallResult) -> dict[str, Any]:
    outcome = await session.get(CallOutcome, result.outcome_id)
    return {"call_id": result.call_id, "outcome_id": result.outcome_id,
            "outcome": outcome.name if outcome else None, "note": result.note,
            "user_id": result.user_id, "updated_at": isoformat(result.updated_at)}


# -- the calls still without an outcome -------------------------------------------------------


@dataclass(frozen=True)
class ManagerCount:
    """One manager's calls that needed an outcome in a period, and how many still lack one."""

    user: User
    calls: int
    missing: int


async def missing_outcomes(session: AsyncSession, managers: list[User], start: datetime,
                           end: datetime, *, manager_id: int | None = None, limit: int = 500
                           ) -> tuple[list[ManagerCount], list[dict[str, Any]]]:
    """Per manager of ``managers``: the calls of ``[start, end)`` that needed an outcome and
    those still without one; and those calls (newest first, with the client and who
    worked them; of ``manager_id`` only, when given)."""
    start, end = ensure_utc(start), ensure_utc(end)
    ids = [m.id for m in managers] or [-1]
    missing = ~select(CallResult.id).where(CallResult.call_id == Call.id).exists()
    base = [needs_outcome(), worked_by(), CallLeg.user_id.in_(ids),
            Call.started_at >= start, Call.started_at < end]
    counts = {uid: (int(total), int(open_ or 0)) for uid, total, open_ in await session.execute(
        select(CallLeg.user_id, func.count(func.distinct(Call.id)),
               func.count(func.distinct(case((missing, Call.id)))))
        .join(Call, Call.id == CallLeg.call_id).where(*base).group_by(CallLeg.user_id))}
    rows = [ManagerCount(m, *counts.get(m.id, (0, 0))) for m in managers]
    wanted = ids if manager_id is None else [manager_id] if manager_id in ids else [-1]
    stmt = (select(Call, Client.name, CallLeg.user_id).join(CallLeg, CallLeg.call_id == Call.id)
            .join(Client, Client.id == Call.client_id)
            .where(*base[:2], CallLeg.user_id.in_(wanted), *base[3:], missing)
            .order_by(Call.started_at.desc(), Call.id.desc()).limit(limit))
    names = {m.id: m.name for m in managers}
    calls: dict[int, dict[str, Any]] = {}
    for call, client_name, user_id in await session.execute(stmt):
        row = calls.setdefault(call.id, {
            "id": call.id, "started_at": isoformat(call.started_at),
            "direction": call.direction, "status": call.status,
            "talk_seconds": round(call.talk_seconds, 3), "client_id": call.client_id,
            "client_name": client_name, "client_number": call.client_number, "managers": []})
        name = names.get(user_id) if user_id is not None else None
        if name and name not in row["managers"]:
            row["managers"].append(name)
    return rows, list(calls.values())
