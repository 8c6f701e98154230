"""Who may be given a task (issue 17, item 7): a supervisor plans for managers of his own
team only, never for another team's manager or a marketer, on every path; and whoever
assigns (an admin too), the assignee must be able to open the task's client."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm_core.db import create_engine, session_factory
from crm_core.sales.deals import StageSpec, create_pipeline
from crm_core.tasks.models import Task
from telecrm.settings import Settings
from tests.support.browser import seed_world, serve_app
from tests.support.db_fixtures import db_url_fixture  # noqa: F401
from tests.support.hostile import call, login

pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")
DUE = "2026-11-23T10:00:00+03:00"


async def tasks_of(db_url: str, user_id: int) -> int:
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            return int(await session.scalar(
                select(func.count()).select_from(Task).where(Task.assignee_id == user_id)) or 0)
    finally:
        await engine.dispose()


async def test_tasks_go_only_to_whom_the_planner_may_assign(db_url: str, tmp_path: Path) -> None:
    world = await seed_world(db_url, tmp_path / "monitor")
    engine = create_engine(db_url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            await create_pipeline(session, "B2B", [StageSpec.parse("Квалификация:call:1"),
                                                   StageSpec.parse("Выиграна:won"),
                                                   StageSpec.parse("Проиграна:lost")], by=None)
    finally:
        await engine.dispose()
    settings = Settings(data_dir=tmp_path, database_url=db_url,
                        recordings_source=tmp_path / "monitor")
    users, client = world.users, world.clients["101"]
    async with serve_app(settings) as (_, base):
        boss, admin = await login(base, "sokolova"), await login(base, "admin")
        url = f"{base}/api/clients/{client}/tasks"
        try:
            # the review's requests: another team's manager, then a marketer
            status, body = await call(boss, "POST", url, {
                "kind": "call", "due_at": DUE, "assignee_id": users["kuznetsov"]})
            assert status == 403 and body["error"] == (
                "Алексей Кузнецов не из вашего отдела: выберите менеджера своего отдела.")
            status, body = await call(boss, "POST", url, {
                "kind": "call", "due_at": DUE, "assignee_id": users["marketer"]})
            assert status == 403 and body["error"] == (
                "Анна Маркетова не менеджер: задачи ставятся менеджерам.")
            status, body = await call(admin, "POST", url, {
                "kind": "call", "due_at": DUE, "assignee_id": users["marketer"]})
            assert status == 403 and body["code"] == "tasks.assignee_not_manager"
            assert await tasks_of(db_url, users["kuznetsov"]) == 0
            assert await tasks_of(db_url, users["marketer"]) == 0

            # his own team's manager who cannot open this client (Петров's) is refused too
            status, body = await call(boss, "POST", url, {
                "kind": "call", "due_at": DUE, "assignee_id": users["smirnova"]})
            assert status == 403 and body["error"] == (
                "Ольга Смирнова не может открыть карточку клиента «ООО Ромашка»: выберите "
                "того, кто с ним работает.")
            assert await tasks_of(db_url, users["smirnova"]) == 0

            # the same rule when the next task is planned while completing one
            status, task = await call(boss, "POST", url, {
                "kind": "call", "due_at": DUE, "assignee_id": users["petrov"]})
            assert status == 201 and task["assignee_id"] == users["petrov"]
            status, body = await call(boss, "POST", f"{base}/api/tasks/{task['id']}/complete", {
                "next": {"kind": "call", "due_at": DUE, "assignee_id": users["kuznetsov"]}})
            assert status == 403 and body["code"] == "tasks.assignee_not_in_team"
            assert await tasks_of(db_url, users["kuznetsov"]) == 0

            # a deal's stages give its owner tasks: the same rule for the deal's owner
            status, pipelines = await call(boss, "GET", f"{base}/api/pipelines")
            assert status == 200
            pipeline = pipelines["pipelines"][0]["id"]
            for who, code in (("kuznetsov", "tasks.assignee_not_in_team"),
                              ("marketer", "tasks.assignee_not_manager"),
                              ("smirnova", "tasks.assignee_cannot_open_client")):
                status, body = await call(boss, "POST", f"{base}/api/deals", {
                    "client_id": client, "pipeline_id": pipeline, "title": "Поставка",
                    "owner_id": users[who]})
                assert status == 403 and body["code"] == code
                assert await tasks_of(db_url, users[who]) == 0
            status, _ = await call(boss, "POST", f"{base}/api/deals", {
                "client_id": client, "pipeline_id": pipeline, "title": "Поставка",
                "owner_id": users["petrov"]})
            assert status == 201

            # an admin gives a task on a Sales client to Sales' manager who works with it,
            # never to another team's manager (he could not open the client)
            status, body = await call(admin, "POST", url, {
                "kind": "call", "due_at": DUE, "assignee_id": users["kuznetsov"]})
            assert status == 403 and body["error"] == (
                "Алексей Кузнецов не может открыть карточку клиента «ООО Ромашка»: выберите "
                "того, кто с ним работает.")
            assert await tasks_of(db_url, users["kuznetsov"]) == 0
            status, body = await call(admin, "POST", f"{base}/api/deals", {
                "client_id": client, "pipeline_id": pipeline, "title": "Поставка",
                "owner_id": users["kuznetsov"]})
            assert status == 403 and body["code"] == "tasks.assignee_cannot_open_client"
            assert await tasks_of(db_url, users["kuznetsov"]) == 0
            status, task = await call(admin, "POST", url, {
                "kind": "call", "due_at": DUE, "assignee_id": users["petrov"]})
            assert status == 201 and task["assignee_id"] == users["petrov"]
            # the card offers only those the rule accepts
            async with admin.get(f"{base}/clients/{client}") as response:
                page = await response.text()
            assert "Иван Петров" in page and "Алексей Кузнецов" not in page
        finally:
            await boss.close()
            await admin.close()
