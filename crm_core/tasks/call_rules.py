"""The call rules on a batch of written calls, one query per kind for the whole batch.

A missed inbound call from a client makes one callback task (unique per call, so a
replay changes nothing); reaching that client later by any answered call closes it,
with an audit row; an answered call that ended is a contact, which may change the
client's status (``crm_core.sales.client_status``). Times come from the calls, never
from the wall clock, so a replay is deterministic.

The writer flushes the batch's calls before its hooks run, so everything the rules
read is loaded up front: the open callbacks of the clients reached, the callbacks
already made, the missed calls' clients and their routing, the first call that
reached each of them, and the contacts' facts. The calls are then judged in memory,
in order, with the effects (and audit rows, in the same order) one call at a time
would have had; the batch's tasks go in with one flush. Calls with nothing to do
(internal, without a client, still ringing) cost nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.calls.hooks import WrittenCall
from crm_core.calls.models import Call, CallStatus, Direction, LegRole
from crm_core.clients.models import Client
from crm_core.people.models import Team, User
from crm_core.sales.client_status import CallContacts
from crm_core.tasks.changes import AUDIT_ENTITY, RULE_ACTOR, created_changes, finish, new_task
from crm_core.tasks.models import Task, TaskKind, TaskStatus
from crm_core.timestamps import isoformat

if TYPE_CHECKING:
    from crm_core.tasks.services import CallbackPolicy

_CLIENT_TASKS_LOCK_NAMESPACE = 0x7E1F  # advisory-lock class for "call rules of this client"
_IN_CHUNK = 500  # bound on bound parameters per IN (...) query


def _chunks(items: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start:start + _IN_CHUNK]


def _concerns(call: Call) -> bool:
    """The rules have something to judge: a customer call of a client, ended or answered."""
    return (call.client_id is not None and call.direction != Direction.INTERNAL
            and not (call.status == CallStatus.IN_PROGRESS and call.answered_at is None))


def _reaches(call: Call) -> bool:
    """An answered customer call of a client: it closes the callbacks it fulfils."""
    return (call.client_id is not None and call.answered_at is not None
            and call.direction != Direction.INTERNAL and call.id is not None)


def _missed(call: Call) -> bool:
    """A missed inbound call of a client: it makes a callback."""
    return (call.direction == Direction.INBOUND and call.status == CallStatus.MISSED
            and call.client_id is not None and call.id is not None)


async def lock_clients(session: AsyncSession, client_ids: Iterable[int]) -> None:
    """Serialize the call rules per client across PostgreSQL transactions.

    Without it a missed call and the answered call that reaches the client, written at
    once by two writers, would each miss the other's uncommitted row and leave the
    callback open. One statement takes the batch's locks in client id order, so two
    writers never deadlock on them. Held until commit; SQLite has one writer at a time.
    """
    ids = sorted(set(client_ids))
    if not ids or session.get_bind().dialect.name != "postgresql":
        return
    await session.execute(
        text("SELECT count(pg_advisory_xact_lock(:namespace, batch.id)) "
             "FROM (SELECT unnest(CAST(:clients AS integer[])) AS id ORDER BY 1) AS batch"),
        {"namespace": _CLIENT_TASKS_LOCK_NAMESPACE, "clients": ids},
    )


@dataclass
class _Open:
    """An open callback task and when its missed call started (None: made by hand)."""

    task: Task
    source_started_at: datetime | None

    def fulfilled_by(self, call: Call) -> bool:
        """``close_reached_callbacks``' condition: the task's miss came before ``call``,
        or (made by hand) the task was made before ``call`` was answered."""
        task = self.task
        if task.call_id is not None and task.call_id == call.id:
            return False
        if self.source_started_at is not None and self.source_started_at < call.started_at:
            return True
        return (task.call_id is None and call.answered_at is not None
                and task.created_at <= call.answered_at)


_SOURCE_CALL = aliased(Call)  # one alias for good: a new one per query rebuilds its columns


@functools.cache
def _open_callbacks_query() -> Select[Task, datetime]:
    """Built once (the call writer asks on every write of a call that reaches a client)."""
    source = _SOURCE_CALL
    return (select(Task, source.started_at)
            .outerjoin(source, Task.call_id == source.id)
            .where(Task.kind == TaskKind.CALLBACK.value, Task.status == TaskStatus.OPEN.value,
                   Task.client_id.in_(bindparam("ids", expanding=True)))
            .order_by(Task.id)
            .with_for_update(of=Task))


async def _open_callbacks(session: AsyncSession, client_ids: Sequence[int]
                          ) -> dict[int, list[_Open]]:
    """The clients' open callback tasks by client, oldest first, locked against other
    closers (a concurrent closer's row is waited for, then skipped once closed)."""
    found: dict[int, list[_Open]] = {}
    for part in _chunks(client_ids):
        for task, started_at in await session.execute(_open_callbacks_query(),
                                                      {"ids": list(part)}):
            assert task.client_id is not None
            found.setdefault(task.client_id, []).append(_Open(task, started_at))
    return found


async def _calls_with_callbacks(session: AsyncSession, call_ids: Sequence[int]) -> set[int]:
    """The calls whose callback exists already, whatever its status (a replay never
    reopens a closed task)."""
    made: set[int] = set()
    for part in _chunks(call_ids):
        made.update(cid for cid in await session.scalars(
            select(Task.call_id).where(Task.kind == TaskKind.CALLBACK.value,
                                       Task.call_id.in_(part))) if cid is not None)
    return made


@functools.cache
def _reaching_query() -> Select[Any]:
    """Built once: aliasing and correlating the statement took a third of a call write's
    processor time when it was built on every write."""
    missed, later = aliased(Call), aliased(Call)
    first = (
        select(later.id)
        .where(later.client_id == missed.client_id, later.id != missed.id,
               later.direction != Direction.INTERNAL.value, later.answered_at.is_not(None),
               later.started_at > missed.started_at)
        .order_by(later.started_at, later.id)
        .limit(1)
        .correlate(missed)
        .scalar_subquery()
    )
    return select(missed.id, first).where(missed.id.in_(bindparam("ids", expanding=True)))


async def _reaching_calls(session: AsyncSession, call_ids: Sequence[int]) -> dict[int, Call]:
    """For each missed call, the first answered customer call with its client started
    after it (calls written out of order, e.g. a backfill): one correlated query."""
    if not call_ids:
        return {}
    pairs: dict[int, int] = {}
    for part in _chunks(call_ids):
        rows = await session.execute(_reaching_query(), {"ids": list(part)})
        pairs.update((mid, rid) for mid, rid in rows if rid is not None)
    calls: dict[int, Call] = {}
    for part in _chunks(sorted(set(pairs.values()))):
        calls.update((c.id, c) for c in await session.scalars(
            select(Call).where(Call.id.in_(part))))
    return {mid: calls[rid] for mid, rid in pairs.items() if rid in calls}


@dataclass
class _Routes:
    """``client_task_routing`` answered from what it reads, loaded once for the batch."""

    owners: dict[int, User] = field(default_factory=dict)
    queue_teams: dict[str, int] = field(default_factory=dict)
    extension_teams: dict[str, int | None] = field(default_factory=dict)
    ringers: dict[int, list[str]] = field(default_factory=dict)  # by call id

    @classmethod
    async def load(cls, session: AsyncSession, missed: Sequence[tuple[Call, Sequence[str]]],
                   clients: dict[int, Client]) -> _Routes:
        routes = cls()
        owner_ids = sorted({c.owner_id for c in clients.values() if c.owner_id is not None})
        for part in _chunks(owner_ids):
            routes.owners.update((u.id, u) for u in await session.scalars(
                select(User).where(User.id.in_(part))))
        queues = sorted({call.queue for call, _ in missed if call.queue})
        if queues:
            for queue, queue_team in await session.execute(
                    select(Team.queue, Team.id).where(Team.queue.in_(queues))):
                if queue is not None:
                    routes.queue_teams[queue] = queue_team
        for call, rang in missed:
            legs = await call.awaitable_attrs.legs  # loaded already by the writer
            routes.ringers[call.id] = [*rang, *(leg.extension for leg in legs
                                                if leg.role == LegRole.MANAGER)]
        extensions = sorted({ext for ringers in routes.ringers.values() for ext in ringers if ext})
        for start in range(0, len(extensions), _IN_CHUNK):
            for extension, team_id in await session.execute(
                    select(User.extension, User.team_id)
                    .where(User.extension.in_(extensions[start:start + _IN_CHUNK]),
                           User.active.is_(True))):
                if extension is not None and extension not in routes.extension_teams:
                    routes.extension_teams[extension] = team_id
        return routes

    def route(self, call: Call, client: Client) -> tuple[int | None, int | None]:
        """(assignee, team): the client's owner, else the queue's or a ringer's team."""
        if client.owner_id is not None:
            owner = self.owners.get(client.owner_id)
            if owner is not None and owner.active:
                return owner.id, owner.team_id
        if call.queue:
            team_id = self.queue_teams.get(call.queue)
            if team_id is not None:
                return None, team_id
        for extension in self.ringers.get(call.id, ()):
            if not extension:
                continue
            team_id = self.extension_teams.get(extension)
            if team_id is not None:
                return None, team_id
        return None, None


async def _clients(session: AsyncSession, client_ids: Iterable[int]) -> dict[int, Client]:
    found: dict[int, Client] = {}
    for part in _chunks(sorted(set(client_ids))):
        found.update((c.id, c) for c in await session.scalars(
            select(Client).where(Client.id.in_(part))))
    return found


def _reached_note(call: Call) -> str:
    return (
        f"Client reached by {call.direction} call {call.linkedid} "
        f"at {isoformat(call.answered_at)}."
    )


def _close_reached(task: Task, call: Call) -> dict[str, Any]:
    """Close ``task`` as fulfilled by ``call``; the audit row's ``changes``."""
    return finish(task, TaskStatus.DONE, at=call.answered_at, note=_reached_note(call),
                  result_call_id=call.id, audit_extra={"linkedid": call.linkedid})


@dataclass
class _Trail:
    """The batch's audit rows in the order the rules decided them; a task's id is known
    only once the batch's tasks are flushed, so the rows are written after that."""

    rows: list[tuple[Task | None, dict[str, Any]]] = field(default_factory=list)

    def task(self, task: Task, action: str, changes: dict[str, Any]) -> None:
        self.rows.append((task, {"actor": RULE_ACTOR, "user_id": None, "entity": AUDIT_ENTITY,
                                 "action": action, "changes": changes}))

    def other(self, audit: dict[str, Any]) -> None:
        self.rows.append((None, audit))

    def write(self, session: AsyncSession) -> None:
        for task, audit in self.rows:
            if task is not None:
                audit = {**audit, "entity_id": task.id}
            write_audit(session, **audit)


async def apply_rules(session: AsyncSession, written: Sequence[WrittenCall],
                      policy: CallbackPolicy) -> None:
    """What the stored calls mean for tasks and client statuses, in order; idempotent.

    For each call, as one call at a time would: close the client's open callbacks it
    fulfils (answered), make the callback of a missed inbound call (created and closed
    at once when a later call reached the client already), then, the call ended, judge
    the client again (a contact may bring a lost client back).
    """
    items = [(item.call, item.rang) for item in written if _concerns(item.call)]
    if not items:
        return
    await lock_clients(session, (call.client_id for call, _ in items if call.client_id))
    open_by_client = await _open_callbacks(
        session, sorted({call.client_id for call, _ in items
                         if _reaches(call) and call.client_id is not None}))
    ended = [(call, rang) for call, rang in items if call.status != CallStatus.IN_PROGRESS]
    missed = [(call, rang) for call, rang in ended if _missed(call)]
    made = await _calls_with_callbacks(session, sorted({call.id for call, _ in missed}))
    missed = [(call, rang) for call, rang in missed if call.id not in made]
    clients = await _clients(session, (call.client_id for call, _ in missed
                                       if call.client_id is not None))
    routes = await _Routes.load(session, missed, clients)
    reaching = await _reaching_calls(session, sorted({call.id for call, _ in missed}))
    contacts = await CallContacts.load(session, (call for call, _ in ended))

    trail = _Trail()
    for call, _rang in items:
        if _reaches(call) and call.client_id is not None:
            still_open = []
            for entry in open_by_client.get(call.client_id, []):
                if entry.fulfilled_by(call):
                    trail.task(entry.task, ACTION_UPDATE, _close_reached(entry.task, call))
                else:
                    still_open.append(entry)
            open_by_client[call.client_id] = still_open
        if call.status == CallStatus.IN_PROGRESS:
            continue
        if _missed(call) and call.id not in made:
            made.add(call.id)
            client = clients.get(call.client_id) if call.client_id is not None else None
            if client is not None:
                task = _missed_call_callback(call, client, routes, policy)
                session.add(task)
                trail.task(task, ACTION_CREATE, created_changes(task, {"linkedid": call.linkedid}))
                reached = reaching.get(call.id)
                if reached is not None:
                    trail.task(task, ACTION_UPDATE, _close_reached(task, reached))
                else:
                    open_by_client.setdefault(client.id, []).append(
                        _Open(task, call.started_at))
        status_audit = contacts.call_ended(session, call)
        if status_audit is not None:
            trail.other(status_audit)
    if trail.rows:
        await session.flush()  # the batch's new tasks, one INSERT
        trail.write(session)
    await session.flush()


def _missed_call_callback(call: Call, client: Client, routes: _Routes,
                          policy: CallbackPolicy) -> Task:
    """The callback task of a missed inbound client call (not yet added)."""
    assignee_id, team_id = routes.route(call, client)
    return new_task(
        kind=TaskKind.CALLBACK.value, title=f"Пропущенный звонок: {client.name}".strip(),
        client_id=client.id, call_id=call.id, assignee_id=assignee_id, team_id=team_id,
        due_at=policy.due(call.ended_at or call.started_at), created_by_id=None)
