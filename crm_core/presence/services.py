"""Presence services: set a manager's state, read it back, and add up time per state.

The state is a manager's own word about where he is; nothing here talks to Asterisk.
The application pauses his queue membership after :func:`set_presence` commits
(``telecrm.presence``), so a PBX that is down never loses the change.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.clock import utcnow
from crm_core.errors import ConflictError, DomainError, NotAllowedError, NotFoundError
from crm_core.people.models import Role, User
from crm_core.presence.models import PresenceChange, PresenceReason
from crm_core.timestamps import ensure_utc, isoformat

PRESENT = "На месте"  # the state without a reason, as pages name it
PRESENT_KEY = "present"  # its key in JSON (a reason's key is its id, as a string)
DEFAULT_REASONS = ("Перерыв", "Обед", "Встреча", "Обучение", "Нет на месте")
MAX_NAME = 60


@dataclass(frozen=True)
class State:
    """A manager's state now: ``reason_id`` None means «на месте»."""

    user_id: int
    reason_id: int | None
    name: str
    since: datetime | None  # None: never changed (present since ever)
    pauses_queue: bool

    @property
    def present(self) -> bool:
        return self.reason_id is None

    def as_dict(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "state": self.key, "reason_id": self.reason_id,
                "name": self.name, "present": self.present, "since": isoformat(self.since),
                "queue_paused": self.pauses_queue}

    @property
    def key(self) -> str:
        return PRESENT_KEY if self.reason_id is None else str(self.reason_id)


# -- reasons ---------------------------------------------------------------------------------


async def list_reasons(session: AsyncSession, *, archived: bool = False
                       ) -> list[PresenceReason]:
    """The reasons in the order the switch shows them (the archived ones only if asked)."""
    stmt = select(PresenceReason).order_by(PresenceReason.position, PresenceReason.id)
    if not archived:
        stmt = stmt.where(PresenceReason.archived_at.is_(None))
    return list(await session.scalars(stmt))


def _may_configure(actor: User) -> None:
    if actor.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotAllowedError("presence.reasons_for_bosses",
                              "pause reasons are kept by the head of sales or an admin")


def _clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise DomainError("presence.reason_name_empty", "a reason needs a name")
    if len(cleaned) > MAX_NAME:
        raise DomainError("presence.reason_name_long", "the name is too long", limit=MAX_NAME)
    if cleaned.casefold() == PRESENT.casefold():
        raise ConflictError("presence.reason_name_taken", "that name is taken", name=cleaned)
    return cleaned


async def _check_unique(session: AsyncSession, name: str, skip: int | None = None) -> None:
    """Case-insensitively, in Python: SQLite's lower() knows no Cyrillic (a short list)."""
    rows = await session.execute(select(PresenceReason.id, PresenceReason.name))
    if any(rid != skip and other.casefold() == name.casefold() for rid, other in rows):
        raise ConflictError("presence.reason_name_taken", "that name is taken", name=name)


async def add_reason(session: AsyncSession, actor: User, name: str, *,
                     pauses_queue: bool = True) -> PresenceReason:
    """A new reason at the end of the list (audited)."""
    _may_configure(actor)
    cleaned = _clean_name(name)
    await _check_unique(session, cleaned)
    last = await session.scalar(select(func.max(PresenceReason.position)))
    reason = PresenceReason(name=cleaned, pauses_queue=pauses_queue, position=(last or 0) + 1)
    session.add(reason)
    await session.flush()
    write_audit(session, actor=actor.username, user_id=actor.id, entity="presence_reason",
                entity_id=reason.id, action=ACTION_CREATE,
                changes={"name": [None, cleaned], "pauses_queue": [None, pauses_queue]})
    return reason


async def update_reason(session: AsyncSession, actor: User, reason_id: int, *,
                        name: str | None = None, pauses_queue: bool | None = None,
                        archived: bool | None = None) -> PresenceReason:
    """Rename, change whether it pauses the queue, archive or bring back (audited)."""
    _may_configure(actor)
    reason = await session.get(PresenceReason, reason_id)
    if reason is None:
        raise NotFoundError("presence.reason_not_found", "no such reason")
    changes: dict[str, Any] = {}
    if name is not None:
        cleaned = _clean_name(name)
        if cleaned != reason.name:
            await _check_unique(session, cleaned, skip=reason.id)
            changes["name"] = [reason.name, cleaned]
            reason.name = cleaned
    if pauses_queue is not None and pauses_queue != reason.pauses_queue:
        changes["pauses_queue"] = [reason.pauses_queue, pauses_queue]
        reason.pauses_queue = pauses_queue
    if archived is not None and archived != (reason.archived_at is not None):
        changes["archived"] = [not archived, archived]
        reason.archived_at = utcnow() if archived else None
    if changes:
        write_audit(session, actor=actor.username, user_id=actor.id, entity="presence_reason",
                    entity_id=reason.id, action=ACTION_UPDATE, changes=changes)
    return reason


# -- states ----------------------------------------------------------------------------------


async def current_states(session: AsyncSession, user_ids: Sequence[int]
                         ) -> dict[int, State]:
    """Each user's state now (everyone without a change is «на месте»)."""
    if not user_ids:
        return {}
    latest = (select(PresenceChange.user_id, func.max(PresenceChange.id).label("id"))
              .where(PresenceChange.user_id.in_(list(user_ids)))
              .group_by(PresenceChange.user_id).subquery())
    stmt = (select(PresenceChange, PresenceReason)
            .join(latest, latest.c.id == PresenceChange.id)
            .outerjoin(PresenceReason, PresenceReason.id == PresenceChange.reason_id))
    states = {uid: State(uid, None, PRESENT, None, False) for uid in user_ids}
    for change, reason in await session.execute(stmt):
        if reason is None:
            states[change.user_id] = State(change.user_id, None, PRESENT, change.at, False)
        else:
            states[change.user_id] = State(change.user_id, reason.id, reason.name, change.at,
                                           reason.pauses_queue)
    return states


def _may_change(actor: User, manager: User) -> None:
    if actor.id == manager.id:
        return
    if actor.role == Role.ADMIN:
        return
    if (actor.role == Role.SUPERVISOR and actor.team_id is not None
            and actor.team_id == manager.team_id):
        return
    raise NotAllowedError("presence.not_yours", "only he, his supervisor or an admin may")


async def set_presence(session: AsyncSession, actor: User, manager: User,
                       reason_id: int | None) -> tuple[State, bool]:
    """Put ``manager`` in a state (None: «на месте»); returns it and whether it changed.

    Choosing the state he is already in writes nothing (a double click is not a change).
    """
    _may_change(actor, manager)
    if not manager.extension:
        raise DomainError("presence.no_phone", "he has no phone to take calls on",
                          name=manager.name)
    reason: PresenceReason | None = None
    if reason_id is not None:
        reason = await session.get(PresenceReason, reason_id)
        if reason is None or reason.archived_at is not None:
            raise NotFoundError("presence.reason_not_found", "no such reason")
    before = (await current_states(session, [manager.id]))[manager.id]
    if before.reason_id == reason_id:
        return before, False
    now = utcnow()
    change = PresenceChange(user_id=manager.id, reason_id=reason_id, at=now,
                            changed_by=actor.username)
    session.add(change)
    await session.flush()
    write_audit(session, actor=actor.username, user_id=actor.id, entity="presence",
                entity_id=manager.id, action=ACTION_UPDATE,
                changes={"state": [before.name, reason.name if reason else PRESENT]})
    if reason is None:
        return State(manager.id, None, PRESENT, now, False), True
    return State(manager.id, reason.id, reason.name, now, reason.pauses_queue), True


async def history(session: AsyncSession, user_id: int, since: datetime, until: datetime
                  ) -> list[dict[str, Any]]:
    """A manager's changes in a stretch of time, oldest first (who changed it, to what)."""
    stmt = (select(PresenceChange, PresenceReason)
            .outerjoin(PresenceReason, PresenceReason.id == PresenceChange.reason_id)
            .where(PresenceChange.user_id == user_id, PresenceChange.at >= since,
                   PresenceChange.at < until)
            .order_by(PresenceChange.at, PresenceChange.id))
    return [{"at": isoformat(change.at), "state": PRESENT_KEY if reason is None
             else str(reason.id), "name": reason.name if reason else PRESENT,
             "changed_by": change.changed_by}
            for change, reason in await session.execute(stmt)]


async def seconds_by_state(session: AsyncSession, spans: dict[int, tuple[datetime, datetime]]
                           ) -> dict[int, dict[str, float]]:
    """Per user, seconds in each state within his span (``{"present": s, "<reason id>": s}``).

    The span is the caller's (the working hours of his day so far): presence knows no
    calendar. The state at the span's start is the last change before it.
    """
    if not spans:
        return {}
    user_ids = list(spans)
    last = max(end for _, end in spans.values())
    rows = await session.execute(
        select(PresenceChange.user_id, PresenceChange.at, PresenceChange.reason_id)
        .where(PresenceChange.user_id.in_(user_ids), PresenceChange.at < last)
        .order_by(PresenceChange.user_id, PresenceChange.at, PresenceChange.id))
    changes: dict[int, list[tuple[datetime, int | None]]] = defaultdict(list)
    for uid, at, reason_id in rows:
        changes[uid].append((ensure_utc(at), reason_id))
    result: dict[int, dict[str, float]] = {}
    for uid, (begin, end) in spans.items():
        totals: dict[str, float] = defaultdict(float)
        result[uid] = totals
        if end <= begin:
            continue
        state: int | None = None
        cursor = begin
        for at, reason_id in changes.get(uid, ()):
            if at <= begin:
                state = reason_id
                continue
            if at >= end:
                break
            totals[PRESENT_KEY if state is None else str(state)] += (at - cursor).total_seconds()
            cursor, state = at, reason_id
        totals[PRESENT_KEY if state is None else str(state)] += (end - cursor).total_seconds()
        result[uid] = {key: round(value, 3) for key, value in totals.items()}
    return result


def paused_seconds(totals: dict[str, float]) -> float:
    """The part of ``seconds_by_state`` that was not working time."""
    return sum(v for k, v in totals.items() if k != PRESENT_KEY)
