"""The call rules on a whole written batch leave exactly what they leave call by call.

Twin databases on SQLite and PostgreSQL get the same replay: several calls per client
(missed then answered, a hand-made callback, a call written out of order, an answer
while the call is still in progress, the same snapshot twice, a lost client brought
back by a contact, a new caller become a lead).

- One twin writes it call by call, one transaction each; the other in one batch, then
  the same batch again (a replay of the same capture changes nothing). The tasks, the
  clients' statuses and their transitions and the audit rows must be equal.
- Both write one batch; one twin applies the call rules to its calls one at a time (as
  the rules were applied before they took the batch at once). Then the audit rows must
  also come in the same order.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import AuditLog
from crm_core.calls.hooks import CallHooks, CallsWritten, WrittenCall
from crm_core.calls.models import Call
from crm_core.calls.services import record_call, record_calls
from crm_core.calls.snapshot import CallData
from crm_core.clients.models import Client, ClientStatus
from crm_core.clients.services import create_client
from crm_core.clock import utcnow
from crm_core.db import create_engine, session_factory
from crm_core.people.users import add_user
from crm_core.sales.client_status import today_in
from crm_core.sales.models import ClientStatusChange
from crm_core.sales.payments import record_payment
from crm_core.tasks.models import Task, TaskKind
from crm_core.tasks.services import create_task
from telecrm.wiring import call_hooks
from tests.calls.test_bulk_write import twin_urls_fixture  # noqa: F401
from tests.sales.test_tasks import NUMBER, T0, answered, in_progress, missed
from tests.support.db_fixtures import _admin, db_url_fixture  # noqa: F401

pytestmark = pytest.mark.calendar  # a lost client: his payment is dated from today

HOOKS = call_hooks()


def _one_at_a_time(hook: CallsWritten) -> CallsWritten:
    async def apply(session: AsyncSession, written: Sequence[WrittenCall]) -> None:
        for item in written:
            await hook(session, [item])

    return apply


# The product's hooks with the call rules (the first) run call by call.
RULES_CALL_BY_CALL = CallHooks(written=(_one_at_a_time(HOOKS.written[0]), *HOOKS.written[1:]),
                               describers=HOOKS.describers)
LOST_NUMBER = "+79167770011"
NEW_NUMBER = "+79035550177"


def _moved(data: CallData, delta: timedelta) -> CallData:
    """The snapshot ``delta`` later (its legs too)."""
    def shift(obj: Any) -> dict[str, Any]:
        return {name: getattr(obj, name) + delta for name in
                ("started_at", "answered_at", "ended_at", "bridged_at")
                if hasattr(obj, name) and getattr(obj, name) is not None}
    legs = tuple(dataclasses.replace(leg, **shift(leg)) for leg in data.legs)
    return dataclasses.replace(data, legs=legs, **shift(data))


def _capture() -> list[CallData]:
    """Yesterday's calls, in the order the tracker would hand them over."""
    delta = (utcnow() - timedelta(days=1)) - T0
    snapshots = [
        missed("M1", 0),  # the known client: a callback for his owner
        missed("M2", 100),  # a second one
        in_progress(missed("R1", 150)),  # still ringing: nothing to do
        answered("A1", 200),  # reaches him: closes M1, M2 and the hand-made callback
        missed("OLD", -500),  # written late: made and closed at once (A1 reached him)
        missed("M3", 300),  # a third miss, open for now
        in_progress(answered("A2", 400, direction="inbound")),  # answered: closes M3
        answered("A2", 400, direction="inbound"),  # ended: a contact
        missed("M1", 0),  # the same snapshot again: nothing new
        missed("L1", 50, number=LOST_NUMBER, rang=("102",)),  # the lost client calls
        answered("L2", 500, ext="102", client_number=LOST_NUMBER),  # reached: he is back
        missed("N1", 600, number=NEW_NUMBER, rang=("102",)),  # a lead, callback and card
        answered("N2", 700, ext="102", client_number=NEW_NUMBER),  # reaches the lead
        answered("I1", 800, direction="internal", client_number=None),  # internal
        missed("R1", 150),  # the ringing call ended unanswered: a callback, A2 reached
    ]
    return [_moved(data, delta) for data in snapshots]


async def _prepare(session: AsyncSession) -> None:
    """Staff, a known client with a hand-made callback, and a lost client."""
    ivanov = await add_user(session, "ivanov", "Ivan", extension="101", team="Sales")
    petrov = await add_user(session, "petrov", "Petr", extension="102", team="Support")
    known = await create_client(session, "Known", phones=[NUMBER], owner_id=ivanov.id,
                                actor="test")
    lost = await create_client(session, "Lost", phones=[LOST_NUMBER], owner_id=petrov.id,
                               actor="test")
    today = today_in()
    await record_payment(session, client=lost.id, amount="1000",
                         paid_on=today - timedelta(days=400), actor="test")
    assert lost.status == ClientStatus.LOST
    hand_made = await create_task(session, kind=TaskKind.CALLBACK.value, title="Перезвонить",
                                  client_id=known.id, assignee_id=ivanov.id,
                                  created_by_id=ivanov.id)
    hand_made.created_at = utcnow() - timedelta(days=2)  # before the calls
    await session.commit()


async def _write(url: str, batches: Sequence[Sequence[CallData]], bulk: bool,
                 hooks: CallHooks = HOOKS) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        sessions = session_factory(engine, writer=True)
        async with sessions() as session:
            await _prepare(session)
        for batch in batches:
            if bulk:
                async with sessions() as session, session.begin():
                    await record_calls(session, batch, hooks=hooks)
            else:
                for data in batch:
                    async with sessions() as session, session.begin():
                        await record_call(session, data, hooks=hooks)
        async with sessions() as session:
            return await _dump(session)
    finally:
        await engine.dispose()


def _rule_audit(row: tuple[Any, ...]) -> bool:
    """An audit row the call rules write (not the writer's, nor the card rule's)."""
    actor, entity, action, _name, changes = row
    if actor != "call":
        return False
    values = json.loads(changes)
    if entity == "task":
        return values.get("rule") != "fill_card"
    return entity == "client" and action == "update" and "status" in values


async def _dump(session: AsyncSession) -> dict[str, Any]:
    """Tasks, statuses and audit rows, ids replaced by names, moments of writing left out."""
    calls = {c.id: c.linkedid for c in await session.scalars(select(Call))}
    clients = {c.id: c.name for c in await session.scalars(select(Client))}
    tasks = {t.id: (t.kind, calls.get(t.call_id), t.title)
             for t in await session.scalars(select(Task))}
    names: dict[str, dict[int, Any]] = {"call": calls, "client": clients, "task": tasks}
    refs = {"call_id": calls, "result_call_id": calls, "client_id": clients}

    def named(row: dict[str, Any]) -> dict[str, Any]:
        for key, table in refs.items():
            value = row.get(key)
            if isinstance(value, int):
                row[key] = table.get(value, value)
            elif isinstance(value, list):
                row[key] = [table.get(v, v) if isinstance(v, int) else v for v in value]
        return row

    def columns(obj: Any, skip: set[str]) -> dict[str, Any]:
        return named({c.key: getattr(obj, c.key) for c in obj.__table__.columns
                      if c.key not in skip})

    audit = [(a.actor, a.entity, a.action, str(names.get(a.entity, {}).get(a.entity_id)),
              json.dumps(named(dict(a.changes)), sort_keys=True, default=str))
             for a in await session.scalars(select(AuditLog).order_by(AuditLog.id))]
    moments = {"id", "created_at", "updated_at", "at", "status_since", "owner_since"}
    return {
        "tasks": sorted((repr(sorted(columns(t, moments).items()))
                         for t in await session.scalars(select(Task))), key=str),
        "clients": sorted(repr(sorted(columns(c, moments).items()))
                          for c in await session.scalars(select(Client))),
        "status_changes": [repr(sorted(columns(c, moments).items()))
                           for c in await session.scalars(
                               select(ClientStatusChange).order_by(ClientStatusChange.id))],
        "audit": audit,
    }


async def test_call_rules_on_a_batch_equal_call_by_call(twin_urls: tuple[str, str]) -> None:
    capture = _capture()
    one_by_one = await _write(twin_urls[0], [capture], bulk=False)
    batch = await _write(twin_urls[1], [capture, capture], bulk=True)  # replayed twice
    for key in ("tasks", "clients", "status_changes"):
        assert batch[key] == one_by_one[key], key
    # A call at a time, a miss reached later is closed by the later call; in a batch the
    # later call is already written, so the miss's callback is made and closed at once.
    assert sorted(batch["audit"]) == sorted(one_by_one["audit"])
    tasks = one_by_one["tasks"]
    assert sum("('status', 'open')" in t for t in tasks) == 1, tasks  # the lead's card task
    assert len(tasks) == 9, tasks  # M1 M2 OLD M3 L1 N1 R1, the card, the hand-made one
    assert any("('new_status', 'regular')" in c for c in one_by_one["status_changes"])


async def test_call_rules_on_a_batch_equal_the_rules_call_by_call_in_order(
    twin_urls: tuple[str, str],
) -> None:
    capture = _capture()
    halves = [capture[:7], capture[7:]]
    rules_one_by_one = await _write(twin_urls[0], halves, bulk=True, hooks=RULES_CALL_BY_CALL)
    batch = await _write(twin_urls[1], halves, bulk=True)
    for key in rules_one_by_one:
        assert batch[key] == rules_one_by_one[key], key
    assert len([row for row in batch["audit"] if _rule_audit(row)]) > 10
