"""Tasks that never end: completion needs the next task or an approved stop; moves need reasons.

Services on SQLite and PostgreSQL, then the same rules through the API.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import AuditLog
from crm_core.clients.services import create_client
from crm_core.people.users import add_user
from crm_core.sales.tasks import (
    NextTask,
    TaskNotAllowedError,
    TaskRuleError,
    approve_stop,
    finish_task,
    overdue_tasks,
    plan_task,
    request_stop,
    reschedule_task,
)
from crm_core.tasks.models import Task
from tests.sales.test_sales_api import Api, api  # noqa: F401
from tests.support.db_fixtures import db_session_fixture, db_url_fixture  # noqa: F401

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
# Before NOW: a person may plan for NOW, the next tasks are ahead (past ones are refused).
pytestmark = pytest.mark.clock("2026-11-23T08:00:00+03:00")


async def _floor(session: AsyncSession) -> dict:
    boss = await add_user(session, "boss", name="Мария", role="supervisor", extension="201",
                          team="Продажи")
    ivan = await add_user(session, "ivan", name="Иван", role="manager", extension="101",
                          team="Продажи")
    olga = await add_user(session, "olga", name="Ольга", role="manager", extension="102",
                          team="Продажи")
    client = await create_client(session, "ООО Ромашка", owner_id=ivan.id, actor="test")
    return {"boss": boss, "ivan": ivan, "olga": olga, "client": client}


async def test_completion_needs_the_next_task(db_session: AsyncSession) -> None:
    w = await _floor(db_session)
    ivan, client = w["ivan"], w["client"]
    first = await plan_task(db_session, client_id=client.id, kind="call", due_at=NOW, by=ivan)
    assert (first.assignee_id, first.title) == (ivan.id, "Позвонить: ООО Ромашка")
    with pytest.raises(TaskRuleError, match="Plan the next contact"):
        await finish_task(db_session, first, by=ivan)
    assert first.status == "open"
    done, following = await finish_task(
        db_session, first, by=ivan, note="договорились о встрече",
        next_task=NextTask("meeting", NOW + timedelta(days=3)))
    assert done.status == "done" and following is not None
    assert (following.kind, following.status, following.assignee_id) == ("meeting", "open",
                                                                         ivan.id)
    # another open task of the client is enough
    email = await plan_task(db_session, client_id=client.id, kind="email",
                            due_at=NOW + timedelta(days=1), by=ivan)
    await finish_task(db_session, email, by=ivan)
    # a task without a client completes freely
    await db_session.flush()
    with pytest.raises(TaskRuleError, match="Unknown task kind"):
        await plan_task(db_session, client_id=client.id, kind="lunch", due_at=NOW, by=ivan)
    with pytest.raises(TaskNotAllowedError, match="for himself"):
        await plan_task(db_session, client_id=client.id, kind="call", due_at=NOW, by=ivan,
                        assignee_id=w["olga"].id)


async def test_stop_needs_a_supervisor_and_new_work_revokes_it(db_session: AsyncSession) -> None:
    w = await _floor(db_session)
    ivan, boss, client = w["ivan"], w["boss"], w["client"]
    last = await plan_task(db_session, client_id=client.id, kind="call", due_at=NOW, by=ivan)
    stop = await request_stop(db_session, client.id, "закрылись", by=ivan)
    request = await db_session.get(Task, stop.request_task_id)
    assert request.assignee_id == boss.id and "прекращение" in request.title
    with pytest.raises(TaskRuleError, match="Plan the next contact"):
        await finish_task(db_session, last, by=ivan)  # asking is not approval
    with pytest.raises(TaskNotAllowedError, match="Only a supervisor"):
        await approve_stop(db_session, client.id, "да", by=ivan)
    await approve_stop(db_session, client.id, "согласовано", by=boss)
    assert request.status == "done" and request.note == "Согласовано: согласовано"
    # the manager's open task is closed with the reason: nobody calls him any more
    assert last.status == "cancelled" and "согласовано" in last.note
    with pytest.raises(TaskRuleError, match="already cancelled"):
        await finish_task(db_session, last, by=ivan)
    # planning a task again revokes the stop: the next completion needs a next task again
    again = await plan_task(db_session, client_id=client.id, kind="call", due_at=NOW, by=ivan)
    with pytest.raises(TaskRuleError, match="Plan the next contact"):
        await finish_task(db_session, again, by=ivan)


async def test_moving_a_due_date_needs_a_reason_and_is_audited(db_session: AsyncSession) -> None:
    w = await _floor(db_session)
    ivan, client = w["ivan"], w["client"]
    task = await plan_task(db_session, client_id=client.id, kind="call", due_at=NOW, by=ivan)
    with pytest.raises(TaskRuleError, match="needs a reason"):
        await reschedule_task(db_session, task, NOW + timedelta(days=1), "  ", by=ivan)
    assert task.due_at == NOW and task.due_moves == 0
    await reschedule_task(db_session, task, NOW + timedelta(days=1), "клиент в отпуске",
                          by=ivan)
    assert task.due_at == NOW + timedelta(days=1) and task.due_moves == 1
    audit = await db_session.scalar(select(AuditLog).where(
        AuditLog.entity == "task", AuditLog.entity_id == task.id, AuditLog.action == "update"))
    assert audit.changes == {"due_at": [NOW.isoformat(), (NOW + timedelta(days=1)).isoformat()],
                             "reason": "клиент в отпуске"}
    assert audit.user_id == ivan.id


async def test_overdue_is_open_and_past_due(db_session: AsyncSession) -> None:
    w = await _floor(db_session)
    ivan, client = w["ivan"], w["client"]
    late = await plan_task(db_session, client_id=client.id, kind="call",
                           due_at=NOW - timedelta(minutes=1), by=ivan)
    await plan_task(db_session, client_id=client.id, kind="call", due_at=NOW, by=ivan)
    done = await plan_task(db_session, client_id=client.id, kind="email",
                           due_at=NOW - timedelta(days=2), by=ivan)
    await finish_task(db_session, done, by=ivan)
    assert [t.id for t in await overdue_tasks(db_session, now=NOW)] == [late.id]


async def test_task_rules_through_the_api(api: tuple[Api, object]) -> None:  # noqa: F811
    crm, world = api  # smirnova (102) owns a client with no open task; petrov does not
    mine = world.clients["102"]  # type: ignore[attr-defined]
    theirs = world.clients["101"]  # type: ignore[attr-defined]
    status, task = await crm.call("smirnova", "POST", f"/api/clients/{mine}/tasks",
                                  {"kind": "call", "due_at": "2026-11-23T10:00:00+03:00"})
    assert status == 201 and task["due_at"] == "2026-11-23T07:00:00+00:00"
    status, body = await crm.call("smirnova", "POST", f"/api/clients/{theirs}/tasks",
                                  {"kind": "call", "due_at": "2026-11-23"})
    assert status == 404
    status, body = await crm.call("smirnova", "POST", f"/api/tasks/{task['id']}/complete", {})
    assert status == 400 and body["code"] == "sales.task.next_needed"
    assert body["error"].startswith("Запланируйте следующий контакт с клиентом")
    status, body = await crm.call("smirnova", "POST", f"/api/tasks/{task['id']}/reschedule",
                                  {"due_at": "2026-11-24"})
    assert status == 400 and body["error"] == "Для переноса срока укажите причину."
    status, body = await crm.call("smirnova", "POST", f"/api/tasks/{task['id']}/reschedule",
                                  {"due_at": "2026-11-24", "reason": "перенёс клиент"})
    assert status == 200 and body["due_moves"] == 1
    status, body = await crm.call("petrov", "POST", f"/api/tasks/{task['id']}/complete", {})
    assert status == 404  # not hers
    status, body = await crm.call("smirnova", "POST", f"/api/tasks/{task['id']}/complete", {
        "note": "ок", "next": {"kind": "meeting", "due_at": "2026-11-30T12:00:00+03:00"}})
    assert status == 200 and body["task"]["status"] == "done"
    assert body["next"]["kind"] == "meeting" and body["next"]["status"] == "open"
    # stop: the manager asks, the supervisor approves, then the last task completes alone
    status, body = await crm.call("smirnova", "POST", f"/api/clients/{mine}/stop",
                                  {"reason": "ликвидирован"})
    assert status == 201 and body["approved"] is False
    status, body = await crm.call("sokolova", "POST", f"/api/clients/{mine}/stop",
                                  {"reason": "согласовано"})
    assert status == 201 and body["approved"] is True
    status, body = await crm.call("smirnova", "POST",
                                  f"/api/tasks/{body['request_task_id'] or 0}/complete", {})
    assert status in (400, 404)  # the request task was closed by the approval
    # ... and so was her meeting with the client, with the supervisor's reason
    open_tasks = (await crm.call("smirnova", "GET", "/api/tasks?date=2026-12-31"))[1]
    assert not [t for t in open_tasks if t["client_id"] == mine]
