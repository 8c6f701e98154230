"""Three rules of the tasks, fixed: a deal-stage task is due inside working hours, nobody
plans a contact in the past, and an approved stop closes the managers' open tasks.

Services on SQLite and PostgreSQL; the dates are pinned (Moscow, UTC+3).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.clients.services import create_client
from crm_core.errors import DomainError, NotAllowedError
from crm_core.people.users import add_user
from crm_core.sales.deals import StageSpec, add_lose_reason, create_deal, create_pipeline, move_deal
from crm_core.sales.tasks import (
    NextTask,
    approve_stop,
    finish_task,
    plan_task,
    request_stop,
    reschedule_task,
)
from crm_core.talktime.rules import RuleChange, add_holiday, set_rule
from crm_core.talktime.workhours import next_working_moment
from crm_core.tasks.models import Task
from tests.support.db_fixtures import db_session_fixture, db_url_fixture  # noqa: F401

MSK = ZoneInfo("Europe/Moscow")
STAGES = ["Квалификация:call:1", "КП:email:2", "Встреча:meeting:3", "Выиграна:won",
          "Проиграна:lost"]


def msk(*args: int) -> datetime:
    return datetime(*args, tzinfo=MSK)


async def _floor(session: AsyncSession) -> dict:
    boss = await add_user(session, "boss", name="Мария", role="supervisor", extension="201",
                          team="Продажи")
    ivan = await add_user(session, "ivan", name="Иван", role="manager", extension="101",
                          team="Продажи")
    kuz = await add_user(session, "kuz", name="Кузьма", role="manager", extension="103",
                         team="Второй")
    client = await create_client(session, "ООО Ромашка", owner_id=ivan.id, actor="test")
    return {"boss": boss, "ivan": ivan, "kuz": kuz, "client": client}


# -- working hours ----------------------------------------------------------------------------


async def test_a_moment_outside_working_hours_moves_to_the_next_working_time(
        db_session: AsyncSession) -> None:
    async def move(moment: datetime, team_id: int | None = None) -> datetime:
        return (await next_working_moment(db_session, moment, team_id=team_id,
                                          tz_name="Europe/Moscow")).astimezone(MSK)

    assert await move(msk(2026, 11, 24, 12, 0)) == msk(2026, 11, 24, 12, 0)  # Tuesday noon
    assert await move(msk(2026, 11, 28, 23, 33)) == msk(2026, 11, 30, 9, 0)  # Saturday night
    assert await move(msk(2026, 11, 29, 23, 42)) == msk(2026, 11, 30, 9, 0)  # Sunday night
    assert await move(msk(2026, 11, 28, 14, 0)) == msk(2026, 11, 30, 14, 0)  # Saturday day
    assert await move(msk(2026, 11, 27, 18, 0)) == msk(2026, 11, 30, 9, 0)  # Friday, closed
    assert await move(msk(2026, 11, 24, 3, 0)) == msk(2026, 11, 24, 9, 0)  # before opening
    # the talk-time calendar: a company holiday, and a team that starts at 10:00
    await add_holiday(db_session, None, date(2026, 11, 30), "Праздник")
    assert await move(msk(2026, 11, 28, 23, 33)) == msk(2026, 12, 1, 9, 0)
    team = (await _floor(db_session))["ivan"].team_id
    await set_rule(db_session, None, team, date(2026, 11, 1),
                   RuleChange(day_start=time(10), day_end=time(19)), today=date(2026, 11, 1))
    assert await move(msk(2026, 11, 28, 23, 33), team) == msk(2026, 12, 1, 10, 0)
    assert await move(msk(2026, 12, 1, 18, 30), team) == msk(2026, 12, 1, 18, 30)
    assert await move(msk(2026, 12, 1, 18, 30)) == msk(2026, 12, 2, 9, 0)


@pytest.mark.clock("2026-11-26T23:33:00+03:00")  # Thursday night, when the deal moves
async def test_deal_stage_tasks_are_due_in_working_hours(db_session: AsyncSession) -> None:
    w = await _floor(db_session)
    pipeline = await create_pipeline(db_session, "B2B", [StageSpec.parse(s) for s in STAGES],
                                     by=w["boss"])
    price = await add_lose_reason(db_session, "Дорого", by=w["boss"])
    stages = {s.position: s for s in await pipeline.awaitable_attrs.stages}
    deal = await create_deal(db_session, client_id=w["client"].id, pipeline_id=pipeline.id,
                             title="Поставка", by=w["ivan"], tz_name="Europe/Moscow")
    due = {}
    for position in (2, 3):
        change = await move_deal(db_session, deal, stages[position].id, by=w["ivan"])
        due[position] = (await db_session.get(Task, change.task_id)).due_at.astimezone(MSK)
    first = await db_session.scalar(select(Task).where(Task.title.startswith("Квалификация")))
    # +1 day: Friday 23:33; +2: Saturday 23:33; +3: Sunday 23:33 — all Monday 09:00
    assert first.due_at.astimezone(MSK) == msk(2026, 11, 30, 9, 0)
    assert due == {2: msk(2026, 11, 30, 9, 0), 3: msk(2026, 11, 30, 9, 0)}
    change = await move_deal(db_session, deal, stages[5].id, by=w["ivan"],
                             lose_reason_id=price.id)
    recheck = await db_session.get(Task, change.task_id)
    assert recheck.assignee_id == w["boss"].id
    assert recheck.due_at.astimezone(MSK) == msk(2026, 11, 30, 9, 0)  # +2 days: Saturday


# -- no contact planned in the past -------------------------------------------------------------


@pytest.mark.clock("2026-11-24T12:00:30+03:00")
async def test_a_due_time_in_the_past_is_refused(db_session: AsyncSession) -> None:
    w = await _floor(db_session)
    ivan, client = w["ivan"], w["client"]
    task = await plan_task(db_session, client_id=client.id, kind="call", by=ivan,
                           due_at=msk(2026, 11, 24, 11, 0))  # a rule or an import may
    with pytest.raises(DomainError) as refused:
        await finish_task(db_session, task, by=ivan, note="Поговорили",
                          next_task=NextTask("call", msk(2026, 11, 24, 11, 59)))
    assert refused.value.code == "tasks.due_in_past"
    assert task.status == "open" and task.note is None, "nothing written"
    assert await db_session.scalar(select(Task.id).where(Task.id != task.id)) is None
    with pytest.raises(DomainError):
        await plan_task(db_session, client_id=client.id, kind="call", by=ivan,
                        due_at=msk(2026, 11, 23, 12, 0), future_only=True)
    with pytest.raises(DomainError):
        await reschedule_task(db_session, task, msk(2026, 11, 20, 10, 0), "забыл", by=ivan)
    # this very minute is fine (a datetime-local field has no seconds)
    done, following = await finish_task(db_session, task, by=ivan, note="Поговорили",
                                        next_task=NextTask("call", msk(2026, 11, 24, 12, 0)))
    assert done.status == "done" and following is not None
    await reschedule_task(db_session, following, msk(2026, 11, 25, 10, 0), "попросил завтра",
                          by=ivan)


@pytest.mark.clock("2026-11-24T12:00:00+03:00")
async def test_a_supervisor_plans_for_his_own_team(db_session: AsyncSession) -> None:
    w = await _floor(db_session)
    tomorrow = msk(2026, 11, 25, 10, 0)
    with pytest.raises(NotAllowedError) as other:
        await plan_task(db_session, client_id=w["client"].id, kind="call", by=w["boss"],
                        due_at=tomorrow, assignee_id=w["kuz"].id, future_only=True)
    assert other.value.params == {"name": "Кузьма"}
    task = await plan_task(db_session, client_id=w["client"].id, kind="call", by=w["boss"],
                           due_at=tomorrow, assignee_id=w["ivan"].id, future_only=True)
    assert task.assignee_id == w["ivan"].id


# -- an approved stop closes the managers' tasks ---------------------------------------------------


@pytest.mark.clock("2026-11-24T12:00:00+03:00")
async def test_an_approved_stop_closes_the_managers_open_tasks(db_session: AsyncSession) -> None:
    w = await _floor(db_session)
    ivan, boss, client = w["ivan"], w["boss"], w["client"]
    call = await plan_task(db_session, client_id=client.id, kind="call", by=ivan,
                           due_at=msk(2026, 11, 25, 10, 0))
    mail = await plan_task(db_session, client_id=client.id, kind="email", by=ivan,
                           due_at=msk(2026, 11, 26, 10, 0))
    recheck = await plan_task(db_session, client_id=client.id, kind="other", by=boss,
                              assignee_id=boss.id, due_at=msk(2026, 11, 26, 10, 0),
                              title="Перепроверить сделку")
    stop = await request_stop(db_session, client.id, "Компания закрылась", by=ivan)
    assert (call.status, mail.status) == ("open", "open"), "asking closes nothing"
    await approve_stop(db_session, client.id, "Подтверждаю: ликвидация", by=boss)
    for task in (call, mail):
        assert task.status == "cancelled" and task.done_at is not None
        assert task.note == ("Работа с клиентом прекращена по согласованию руководителя: "
                             "Подтверждаю: ликвидация")
    assert recheck.status == "open", "the supervisor's own task stays"
    request = await db_session.get(Task, stop.request_task_id)
    assert (request.status, request.note) == ("done", "Согласовано: Подтверждаю: ликвидация")
    assert datetime.now(UTC) - call.done_at < timedelta(minutes=1)
