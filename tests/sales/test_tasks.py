"""Callback tasks for missed calls, on SQLite and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import AuditLog
from crm_core.calls.models import Call
from crm_core.calls.services import record_call
from crm_core.calls.snapshot import CallData, LegData
from crm_core.clients.models import Client
from crm_core.clients.services import create_client
from crm_core.db import create_engine, session_factory
from crm_core.db.base import Base
from crm_core.people.models import User
from crm_core.people.users import add_user, set_team_queue, team_for_queue
from crm_core.tasks.models import Task
from crm_core.tasks.services import (
    CallbackPolicy,
    apply_call_rules,
    cancel_task,
    complete_task,
    create_task,
    open_tasks,
    task_to_dict,
)
from telecrm.wiring import call_hooks
from tests.support.db_fixtures import db_session_fixture, db_url_fixture  # noqa: F401

pytestmark = pytest.mark.calendar  # dates relative to today: make test-calendar

HOOKS = call_hooks()  # what the product does with each written call

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday, 13:00 in Moscow
NUMBER = "+79161234567"


def at(seconds: float | None) -> datetime | None:
    return None if seconds is None else T0 + timedelta(seconds=seconds)


def leg(uid: str, role: str, ext: str | None, start: float, answer: float | None = None,
        end: float | None = None, talk: float = 0.0) -> LegData:  # fmt: skip
    return LegData(
        uniqueid=uid, channel=f"PJSIP/{ext or 'trunk'}-{uid}", role=role, extension=ext,
        started_at=T0 + timedelta(seconds=start), answered_at=at(answer), ended_at=at(end),
        talk_seconds=talk, hangup_cause=16 if end is not None else None,
    )  # fmt: skip


def missed(linkedid: str, offset: float = 0.0, rang: tuple[str, ...] = ("101", "102"),
           number: str = NUMBER, **changes: Any) -> CallData:  # fmt: skip
    """An inbound call that rang ``rang`` for 20 s and was never answered."""
    legs = (
        leg(f"{linkedid}-c", "client", None, offset, None, offset + 20),
        *(leg(f"{linkedid}-{ext}", "manager", ext, offset + 1, None, offset + 20) for ext in rang),
    )
    data = CallData(
        linkedid=linkedid, direction="inbound", status="missed", client_number=number,
        did="+74951110001", started_at=at(offset), answered_at=None, ended_at=at(offset + 20),
        ring_seconds=20.0, talk_seconds=0.0, transferred=False, managers=(), recordings=(),
        legs=legs, rang=rang,
    )  # fmt: skip
    return dataclasses.replace(data, **changes)


def answered(linkedid: str, offset: float, direction: str = "outbound", ext: str = "101",
             **changes: Any) -> CallData:  # fmt: skip
    data = CallData(
        linkedid=linkedid, direction=direction, status="answered", client_number=NUMBER,
        did=None, started_at=at(offset), answered_at=at(offset + 5), ended_at=at(offset + 65),
        ring_seconds=5.0, talk_seconds=60.0, transferred=False, managers=(ext,), recordings=(),
        legs=(
            leg(f"{linkedid}-m", "manager", ext, offset, offset, offset + 65, 60.0),
            leg(f"{linkedid}-c", "client", None, offset, offset + 5, offset + 65, 60.0),
        ),
    )  # fmt: skip
    return dataclasses.replace(data, **changes)


def in_progress(data: CallData) -> CallData:
    """The same call while its phones still ring."""
    return dataclasses.replace(data, status="in_progress", ended_at=None, legs=tuple(
        dataclasses.replace(x, ended_at=None, hangup_cause=None) for x in data.legs))


async def count(session: AsyncSession, model: type[Base], *where: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def write(session: AsyncSession, *snapshots: CallData) -> Call:
    call = None
    for data in snapshots:
        call = await record_call(session, data, hooks=HOOKS)
        await session.commit()
    assert call is not None
    return call


async def tasks(session: AsyncSession) -> list[Task]:
    session.expunge_all()
    return list(await session.scalars(select(Task).order_by(Task.id)))


@pytest.fixture
async def staff(db_session: AsyncSession) -> dict[str, User]:
    users = {
        "101": await add_user(db_session, "ivanov", "Ivan", extension="101", team="Sales"),
        "102": await add_user(db_session, "petrov", "Petr", extension="102", team="Support"),
    }
    await db_session.commit()
    return users


async def known_client(session: AsyncSession, owner: User | None) -> Client:
    client = await create_client(
        session, "ООО Ромашка", phones=[NUMBER], owner_id=owner.id if owner else None, actor="test"
    )
    await session.commit()
    return client


# -- creation -------------------------------------------------------------------------------


async def test_missed_call_makes_one_callback_for_the_owner(
    db_session: AsyncSession, staff: dict[str, User]
) -> None:
    client = await known_client(db_session, staff["102"])
    data = missed("m.1")
    call = await write(db_session, in_progress(data), data, data, in_progress(data))
    [task] = await tasks(db_session)
    assert (task.kind, task.status, task.client_id, task.call_id) == (
        "callback", "open", client.id, call.id)  # fmt: skip
    assert task.assignee_id == staff["102"].id and task.team_id == staff["102"].team_id
    assert task.due_at == T0 + timedelta(seconds=20, minutes=15)
    assert task.title == "Пропущенный звонок: ООО Ромашка" and task.created_by_id is None
    assert await count(db_session, AuditLog, AuditLog.entity == "task") == 1
    assert task_to_dict(task)["due_at"] == "2026-11-23T10:15:20+00:00"


async def test_unowned_client_goes_to_the_queue_team(
    db_session: AsyncSession, staff: dict[str, User]
) -> None:
    await known_client(db_session, None)
    team = await set_team_queue(db_session, "Support", "support-q")
    await db_session.commit()
    assert (await team_for_queue(db_session, " support-q ")) is team
    await write(db_session, missed("m.1", queue="support-q"))
    [task] = await tasks(db_session)
    assert task.assignee_id is None and task.team_id == team.id


async def test_unowned_client_without_queue_goes_to_the_first_ringer_team(
    db_session: AsyncSession, staff: dict[str, User]
) -> None:
    await known_client(db_session, None)
    await write(db_session, missed("m.1", rang=("102", "101"), queue="unmapped"))
    [task] = await tasks(db_session)
    assert task.assignee_id is None and task.team_id == staff["102"].team_id


async def test_inactive_owner_falls_back_to_the_team(
    db_session: AsyncSession, staff: dict[str, User]
) -> None:
    await known_client(db_session, staff["102"])
    staff["102"].active = False
    await db_session.commit()
    await write(db_session, missed("m.1", rang=("101",)))
    [task] = await tasks(db_session)
    assert task.assignee_id is None and task.team_id == staff["101"].team_id


async def test_unknown_caller_becomes_a_lead_with_a_callback(
    db_session: AsyncSession, staff: dict[str, User]
) -> None:
    await write(db_session, missed("m.1", rang=("102", "101")))
    callback, fill_card = sorted(await tasks(db_session), key=lambda t: t.kind != "callback")
    assert callback.kind == "callback"
    assert callback.assignee_id == staff["102"].id  # the lead's owner: the first who rang
    assert callback.client_id is not None
    # and the lead's card is to be filled in, by the same person
    assert fill_card.title.startswith("Заполните карточку")
    assert (fill_card.assignee_id, fill_card.client_id) == (staff["102"].id, callback.client_id)


@pytest.mark.parametrize(
    "data",
    [
        answered("a.1", 0, direction="inbound"),
        missed("o.1", direction="outbound", status="no_answer"),
        missed("i.1", direction="internal", number="102"),
        missed("anon.1", number=""),
    ],
    ids=["answered", "outbound-no-answer", "internal", "anonymous"],
)
async def test_calls_that_need_no_callback(
    db_session: AsyncSession, staff: dict[str, User], data: CallData
) -> None:
    await known_client(db_session, staff["101"])
    await write(db_session, data)
    assert await tasks(db_session) == []


# -- closing --------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["outbound", "inbound"])
async def test_reaching_the_client_closes_the_callback_once(
    db_session: AsyncSession, staff: dict[str, User], direction: str
) -> None:
    await known_client(db_session, staff["101"])
    await write(db_session, missed("m.1"))
    reach = answered("a.1", 600, direction=direction)
    reach_call = await write(db_session, in_progress(reach), reach)
    [task] = await tasks(db_session)
    assert task.status == "done" and task.result_call_id == reach_call.id
    assert task.done_at == T0 + timedelta(seconds=605)
    assert task.note is not None and "a.1" in task.note and direction in task.note
    audit = list(await db_session.scalars(
        select(AuditLog).where(AuditLog.entity == "task", AuditLog.action == "update")))
    assert len(audit) == 1 and audit[0].changes["status"] == ["open", "done"]
    assert audit[0].changes["linkedid"] == "a.1" and audit[0].actor == "call"
    # Replaying everything changes nothing: no new task, no reopening, no second audit.
    await write(db_session, missed("m.1"), reach, missed("m.1"))
    assert [(t.id, t.status) for t in await tasks(db_session)] == [(task.id, "done")]
    assert await count(db_session, AuditLog, AuditLog.entity == "task") == 2


async def test_answer_closes_while_the_call_is_still_in_progress(
    db_session: AsyncSession, staff: dict[str, User]
) -> None:
    await known_client(db_session, staff["101"])
    await write(db_session, missed("m.1"))
    talking = dataclasses.replace(answered("a.1", 600), status="in_progress", ended_at=None)
    await write(db_session, talking)
    [task] = await tasks(db_session)
    assert task.status == "done"


async def test_calls_written_out_of_order_still_close_the_callback(
    db_session: AsyncSession, staff: dict[str, User]
) -> None:
    """A backfill may store the answering call before the miss it answers."""
    await known_client(db_session, staff["101"])
    reach_call = await write(db_session, answered("a.1", 600))
    await write(db_session, missed("m.1"))
    [task] = await tasks(db_session)
    assert task.status == "done" and task.result_call_id == reach_call.id


async def test_an_earlier_call_does_not_close_a_later_callback(
    db_session: AsyncSession, staff: dict[str, User]
) -> None:
    await known_client(db_session, staff["101"])
    await write(db_session, missed("m.1", offset=600))
    await write(db_session, answered("a.0", 0))  # replayed late, but before the miss
    [task] = await tasks(db_session)
    assert task.status == "open"


async def test_two_misses_make_two_callbacks_and_one_answer_closes_both(
    db_session: AsyncSession, staff: dict[str, User]
) -> None:
    await known_client(db_session, staff["101"])
    await write(db_session, missed("m.1"), missed("m.2", offset=100))
    assert len(await open_tasks(db_session, assignee_id=staff["101"].id)) == 2
    await write(db_session, answered("a.1", 600))
    assert {t.status for t in await tasks(db_session)} == {"done"}


# -- services and policy --------------------------------------------------------------------


async def test_manual_tasks(db_session: AsyncSession, staff: dict[str, User]) -> None:
    client = await known_client(db_session, staff["101"])
    meeting = await create_task(db_session, kind="meeting", title=" Demo ", client_id=client.id,
                                assignee_id=staff["101"].id, created_by_id=staff["102"].id,
                                due_at=T0 + timedelta(days=1))  # fmt: skip
    later = await create_task(db_session, kind="call", title="Follow up", client_id=client.id)
    assert [t.id for t in await open_tasks(db_session, client_id=client.id)] == [
        meeting.id, later.id]  # fmt: skip
    await complete_task(db_session, meeting, note="went well", user_id=staff["101"].id)
    await cancel_task(db_session, later, note="not needed")
    assert (meeting.status, later.status) == ("done", "cancelled")
    with pytest.raises(ValueError, match="already done"):
        await complete_task(db_session, meeting)
    with pytest.raises(ValueError, match="Unknown task kind"):
        await create_task(db_session, kind="party", title="x")
    with pytest.raises(ValueError, match="title"):
        await create_task(db_session, kind="call", title="  ")


async def test_a_queue_belongs_to_one_team(db_session: AsyncSession) -> None:
    await set_team_queue(db_session, "Sales", "sales")
    await set_team_queue(db_session, "Sales", "sales")  # again: fine
    with pytest.raises(ValueError, match="already belongs to team 'Sales'"):
        await set_team_queue(db_session, "Support", "sales")
    with pytest.raises(ValueError, match="Queue name"):
        await set_team_queue(db_session, "Support", "two words")
    await set_team_queue(db_session, "Sales", None)
    assert await team_for_queue(db_session, "sales") is None


@pytest.mark.parametrize(
    ("ended", "due"),
    [
        ("2026-11-23T13:00:00+03:00", "2026-11-23T13:15:00+03:00"),  # Monday, working hours
        ("2026-11-23T07:30:00+03:00", "2026-11-23T09:15:00+03:00"),  # before the day starts
        ("2026-11-23T18:30:00+03:00", "2026-11-24T09:15:00+03:00"),  # evening
        ("2026-11-27T23:00:00+03:00", "2026-11-30T09:15:00+03:00"),  # Friday night -> Monday
        ("2026-11-29T12:00:00+03:00", "2026-11-30T09:15:00+03:00"),  # Sunday
    ],
)
def test_callback_due_time(ended: str, due: str) -> None:
    policy = CallbackPolicy()
    assert policy.due(datetime.fromisoformat(ended)) == datetime.fromisoformat(due)


# -- concurrency ----------------------------------------------------------------------------


async def test_concurrent_writers_make_one_callback_and_close_it(db_url: str) -> None:
    """The live listener and a replay may write the miss and the answer at the same time."""
    engine = create_engine(db_url)
    sessions = session_factory(engine, writer=True)
    try:
        async with sessions() as session, session.begin():
            owner = await add_user(session, "ivanov", extension="101")
            await create_client(session, "ООО Ромашка", phones=[NUMBER], owner_id=owner.id,
                                actor="test")

        async def store(data: CallData) -> None:
            async with sessions() as session, session.begin():
                await record_call(session, data, hooks=HOOKS)

        for _round in range(2):
            await asyncio.gather(*(store(d) for d in [missed("m.1"), answered("a.1", 600)] * 3))
        async with sessions() as session:
            [task] = await tasks(session)
            assert task.status == "done"
            assert await count(session, AuditLog, AuditLog.entity == "task") == 2
    finally:
        await engine.dispose()


async def test_rules_work_on_a_call_loaded_without_its_legs(
    db_session: AsyncSession, staff: dict[str, User]
) -> None:
    """As when an unobserved end is closed later (the listener's orphan closer)."""
    await known_client(db_session, None)
    await write(db_session, in_progress(missed("m.1", rang=("102",))))
    db_session.expunge_all()
    call = await db_session.scalar(select(Call).where(Call.linkedid == "m.1"))
    assert call is not None
    call.status, call.ended_at = "missed", T0 + timedelta(minutes=5)
    await apply_call_rules(db_session, call)  # no ``rang``: the manager legs stand in
    await db_session.commit()
    [task] = await tasks(db_session)
    assert task.team_id == staff["102"].team_id and task.status == "open"
