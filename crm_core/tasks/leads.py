"""A lead an unknown caller created gets a «Заполните карточку» task for its owner.

The call writer (core) creates the lead, named after the number; this rule, handed to
it as a call hook by the composition root, asks the lead's owner to put the real
name and the rest on the card. The task is the call's own (``kind`` other, the call's
id: unique per call), made once the call has ended, when its owner is settled, so a
replay or a later snapshot never makes a second one. Renaming the lead closes it
(:func:`close_card_tasks`, called by the card's editors).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.hooks import CallsWritten, WrittenCall
from crm_core.calls.models import Call, CallStatus, Direction
from crm_core.clients.models import Client
from crm_core.clients.phones import format_phone
from crm_core.clients.services import has_placeholder_name
from crm_core.people.models import User
from crm_core.tasks.models import Task, TaskKind, TaskStatus
from crm_core.tasks.services import (
    RULE_ACTOR,
    CallbackPolicy,
    client_task_routing,
    complete_task,
    create_task,
)

CARD_TASK_TITLE = "Заполните карточку"
FILL_WITHIN = timedelta(hours=1)


async def create_card_task(session: AsyncSession, written: WrittenCall,
                           policy: CallbackPolicy | None = None) -> Task | None:
    """The lead's «Заполните карточку» task, once per lead-creating inbound call."""
    call = written.call
    if (not call.created_client or call.direction != Direction.INBOUND
            or call.status == CallStatus.IN_PROGRESS or call.client_id is None
            or call.id is None):
        return None
    done = await session.scalar(select(Task.id).where(
        Task.kind == TaskKind.OTHER.value, Task.call_id == call.id))
    if done is not None:
        return None
    client = await session.get(Client, call.client_id)
    if client is None or client.archived_at is not None:
        return None
    await client.awaitable_attrs.phones
    if not has_placeholder_name(client):
        return None  # named already (by the manager during the call, or an import)
    assignee_id, team_id = await client_task_routing(session, call, client, written.rang)
    if assignee_id is not None and team_id is None:
        team_id = await session.scalar(select(User.team_id).where(User.id == assignee_id))
    rule = dataclasses.replace(policy or CallbackPolicy(), within=FILL_WITHIN)
    return await create_task(
        session, kind=TaskKind.OTHER.value,
        title=f"{CARD_TASK_TITLE}: {format_phone(call.client_number or '') or client.name}",
        client_id=client.id, call_id=call.id, assignee_id=assignee_id, team_id=team_id,
        due_at=rule.due(call.ended_at or call.started_at), actor=RULE_ACTOR,
        audit_extra={"linkedid": call.linkedid, "rule": "fill_card"})


def card_task_rule(policy: CallbackPolicy | None = None) -> CallsWritten:
    """The rule as a call hook (``CallHooks.written``), for the composition root."""

    async def apply(session: AsyncSession, written: Sequence[WrittenCall]) -> None:
        for item in written:
            await create_card_task(session, item, policy)

    return apply


async def close_card_tasks(session: AsyncSession, client_id: int, *, user_id: int | None,
                           actor: str) -> list[Task]:
    """Close the lead's open «Заполните карточку» tasks: the card has been filled in."""
    stmt = (select(Task).join(Call, Call.id == Task.call_id)
            .where(Task.client_id == client_id, Task.kind == TaskKind.OTHER.value,
                   Task.status == TaskStatus.OPEN.value, Call.created_client.is_(True))
            .order_by(Task.id))
    closed = []
    for task in await session.scalars(stmt):
        closed.append(await complete_task(session, task, note="Карточка заполнена",
                                          actor=actor, user_id=user_id))
    return closed
