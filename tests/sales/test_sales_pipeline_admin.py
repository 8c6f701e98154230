"""Reshaping pipelines as a head of sales would: rename, reorder, stage tasks, archive.

Nothing is deleted: stages, pipelines and lose reasons are archived; a stage with open
deals cannot be archived until they are moved; every change is in the audit log.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import AuditLog
from crm_core.db import create_engine, session_factory
from crm_core.sales.deals import (
    DealError,
    DealNotAllowedError,
    StageSpec,
    add_lose_reason,
    create_deal,
    create_pipeline,
    move_deal,
)
from crm_core.sales.models import LoseReason, Pipeline, PipelineStage
from crm_core.sales.pipelines import (
    add_stage,
    archive_lose_reason,
    archive_pipeline,
    archive_stage,
    rename_pipeline,
    update_stage,
)
from crm_core.tasks.models import Task
from crm_core.timestamps import utcnow
from tests.sales.test_sales_api import Api, api  # noqa: F401
from tests.sales.test_sales_deals import STAGES, _floor
from tests.support.db_fixtures import db_session_fixture, db_url_fixture  # noqa: F401

pytestmark = pytest.mark.calendar  # dates relative to today: make test-calendar


async def _audit(session: AsyncSession, entity: str, entity_id: int) -> list[dict]:
    return list((await session.scalars(select(AuditLog.changes).where(
        AuditLog.entity == entity, AuditLog.entity_id == entity_id)
        .order_by(AuditLog.id))).all())


async def _names(session: AsyncSession, pipeline_id: int) -> list[str]:
    return list((await session.scalars(select(PipelineStage.name).where(
        PipelineStage.pipeline_id == pipeline_id).order_by(PipelineStage.position))).all())


@pytest.mark.clock("2026-11-24T12:00:00+03:00")  # a Tuesday noon: +2 days is a working time
async def test_rename_reorder_and_stage_task(db_session: AsyncSession) -> None:
    w = await _floor(db_session)
    boss, ivan, pipeline, stages = w["boss"], w["ivan"], w["pipeline"], w["stages"]
    with pytest.raises(DealNotAllowedError):
        await rename_pipeline(db_session, pipeline.id, "Новые", by=ivan)
    await rename_pipeline(db_session, pipeline.id, "B2B новые клиенты", by=boss)
    assert (await db_session.get(Pipeline, pipeline.id)).name == "B2B новые клиенты"
    # the meeting (3rd) goes before the offer (2nd)
    await update_stage(db_session, stages[3].id, {"position": 2}, by=boss)
    assert await _names(db_session, pipeline.id) == [
        "Квалификация", "Встреча", "Коммерческое предложение", "Выиграна", "Проиграна"]
    with pytest.raises(DealError, match="first stage must be a working stage"):
        await update_stage(db_session, stages[4].id, {"position": 1}, by=boss)
    with pytest.raises(DealError, match="from 1 to 5"):
        await update_stage(db_session, stages[1].id, {"position": 6}, by=boss)
    # the offer's task becomes a call in 2 days for the supervisor, renamed
    await update_stage(db_session, stages[2].id, {
        "name": "КП", "task_kind": "call", "task_due_days": 2, "task_assignee": "supervisor"},
        by=boss)
    with pytest.raises(DealError, match="call, email, meeting or other"):
        await update_stage(db_session, stages[2].id, {"task_kind": "fax"}, by=boss)
    with pytest.raises(DealError, match="from 0 to 365"):
        await update_stage(db_session, stages[2].id, {"task_due_days": 400}, by=boss)
    with pytest.raises(DealError, match="no task of its own"):
        await update_stage(db_session, stages[4].id, {"task_kind": "call"}, by=boss)
    deal = await create_deal(db_session, client_id=w["client"].id, pipeline_id=pipeline.id,
                             title="Поставка", by=ivan)
    before = utcnow()
    change = await move_deal(db_session, deal, stages[2].id, by=ivan)
    task = await db_session.get(Task, change.task_id)
    assert (task.kind, task.assignee_id, task.title) == ("call", boss.id, "КП: Поставка")
    assert before + timedelta(days=2) - timedelta(seconds=5) <= task.due_at
    assert task.due_at <= utcnow() + timedelta(days=2)
    assert await _audit(db_session, "pipeline", pipeline.id) == [
        {"name": "B2B новые", "stages": [s.split(":")[0] for s in STAGES]},
        {"name": ["B2B новые", "B2B новые клиенты"]}]
    stage_audit = await _audit(db_session, "pipeline_stage", stages[2].id)
    assert stage_audit == [{"name": ["Коммерческое предложение", "КП"],
                            "task_kind": ["email", "call"], "task_due_days": [3, 2],
                            "task_assignee": ["owner", "supervisor"],
                            "pipeline_id": pipeline.id}]
    assert (await _audit(db_session, "pipeline_stage", stages[3].id))[0]["position"] == [3, 2]


async def test_add_a_stage_with_its_task(db_session: AsyncSession) -> None:
    w = await _floor(db_session)
    boss, ivan, pipeline = w["boss"], w["ivan"], w["pipeline"]
    values = {"name": "Договор", "task_kind": "email", "task_title": "Отправить договор",
              "task_due_days": "2", "task_assignee": "owner"}
    with pytest.raises(DealNotAllowedError):
        await add_stage(db_session, pipeline.id, values, by=ivan)
    with pytest.raises(DealError, match="needs a name"):
        await add_stage(db_session, pipeline.id, {**values, "name": " "}, by=boss)
    with pytest.raises(DealError, match="from 0 to 365"):
        await add_stage(db_session, pipeline.id, {**values, "task_due_days": "-1"}, by=boss)
    stage = await add_stage(db_session, pipeline.id, values, by=boss)
    # it goes after the working stages, before won and lost
    assert await _names(db_session, pipeline.id) == [
        "Квалификация", "Коммерческое предложение", "Встреча", "Договор", "Выиграна",
        "Проиграна"]
    deal = await create_deal(db_session, client_id=w["client"].id, pipeline_id=pipeline.id,
                             title="Поставка", by=ivan)
    change = await move_deal(db_session, deal, stage.id, by=ivan)
    task = await db_session.get(Task, change.task_id)
    assert (task.kind, task.assignee_id, task.title) == ("email", ivan.id,
                                                         "Отправить договор: Поставка")
    assert await _audit(db_session, "pipeline_stage", stage.id) == [{
        "pipeline_id": pipeline.id, "name": "Договор", "position": 4, "task_kind": "email",
        "task_title": "Отправить договор", "task_due_days": 2, "task_assignee": "owner"}]


async def test_archive_stage_pipeline_and_reason(db_session: AsyncSession) -> None:
    w = await _floor(db_session)
    boss, ivan, pipeline, stages = w["boss"], w["ivan"], w["pipeline"], w["stages"]
    deal = await create_deal(db_session, client_id=w["client"].id, pipeline_id=pipeline.id,
                             title="Поставка", by=ivan)
    await move_deal(db_session, deal, stages[2].id, by=ivan)
    with pytest.raises(DealError, match="still has 1 open deal"):
        await archive_stage(db_session, stages[2].id, by=boss)
    with pytest.raises(DealError, match="cannot be archived"):
        await archive_stage(db_session, stages[4].id, by=boss)
    with pytest.raises(DealNotAllowedError):
        await archive_stage(db_session, stages[1].id, by=ivan)
    await move_deal(db_session, deal, stages[3].id, by=ivan)
    await archive_stage(db_session, stages[2].id, by=boss)
    await archive_stage(db_session, stages[1].id, by=boss)  # the first stage too
    with pytest.raises(DealError, match="at least one working stage"):
        await archive_stage(db_session, stages[3].id, by=boss)
    with pytest.raises(DealError, match="is archived"):
        await move_deal(db_session, deal, stages[2].id, by=ivan)
    # a new deal starts on the first stage that is not archived
    other = await create_deal(db_session, client_id=w["client"].id, pipeline_id=pipeline.id,
                              title="Вторая", by=ivan)
    assert other.stage_id == stages[3].id
    # nothing was deleted
    assert await db_session.scalar(select(func.count(PipelineStage.id)).where(
        PipelineStage.pipeline_id == pipeline.id)) == 5
    with pytest.raises(DealError, match="still has 2 open deal"):
        await archive_pipeline(db_session, pipeline.id, by=boss)
    await add_lose_reason(db_session, "Ушли к конкуренту", by=boss)
    await move_deal(db_session, deal, stages[5].id, by=ivan, lose_reason_id=w["price"].id)
    await archive_lose_reason(db_session, w["price"].id, by=boss)
    assert (await db_session.get(LoseReason, w["price"].id)).active is False
    with pytest.raises(DealError, match="reason from the list: Ушли к конкуренту"):
        await move_deal(db_session, other, stages[5].id, by=ivan, lose_reason_id=w["price"].id)
    assert deal.lose_reason_id == w["price"].id  # deals lost with it keep it
    await move_deal(db_session, other, stages[4].id, by=ivan, amount="100")
    await archive_pipeline(db_session, pipeline.id, by=boss)
    assert (await db_session.get(Pipeline, pipeline.id)).archived_at is not None
    with pytest.raises(DealError, match="no pipeline"):
        await create_deal(db_session, client_id=w["client"].id, pipeline_id=pipeline.id,
                          title="Третья", by=ivan)
    await archive_pipeline(db_session, pipeline.id, by=boss, restore=True)
    await archive_stage(db_session, stages[2].id, by=boss, restore=True)
    assert (await db_session.get(PipelineStage, stages[2].id)).archived_at is None
    archived = [c["archived_at"] for c in await _audit(db_session, "pipeline_stage",
                                                       stages[2].id)]
    assert archived[0][0] is None and archived[0][1] and archived[1][1] is None
    assert [c["active"] for c in await _audit(db_session, "lose_reason", w["price"].id)
            if "active" in c] == [[True, False]]
    assert len(await _audit(db_session, "pipeline", pipeline.id)) == 3


async def test_pipelines_through_the_api_and_page(api: tuple[Api, object],  # noqa: F811
                                                  db_url: str) -> None:
    crm, _world = api
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            pipeline = await create_pipeline(session, "B2B новые",
                                             [StageSpec.parse(s) for s in STAGES], by=None)
            reason = await add_lose_reason(session, "Дорого", by=None)
            ids = [s.id for s in await pipeline.awaitable_attrs.stages]
            pipeline_id, reason_id = pipeline.id, reason.id
    finally:
        await engine.dispose()
    status, err = await crm.call("petrov", "PATCH", f"/api/pipelines/{pipeline_id}",
                                 {"name": "Моя"})
    assert status == 403 and err["error"] == "Воронки меняет руководитель или администратор."
    status, row = await crm.call("sokolova", "PATCH", f"/api/pipelines/{pipeline_id}",
                                 {"name": "B2B новые клиенты"})
    assert status == 200 and row["name"] == "B2B новые клиенты"
    status, row = await crm.call("sokolova", "PATCH", f"/api/pipeline-stages/{ids[2]}", {
        "position": 2, "task_kind": "meeting", "task_due_days": 4,
        "task_assignee": "supervisor"})
    assert status == 200 and (row["position"], row["task_kind"], row["task_due_days"],
                              row["task_assignee"]) == (2, "meeting", 4, "supervisor")
    status, err = await crm.call("sokolova", "PATCH", f"/api/pipeline-stages/{ids[2]}",
                                 {"task_due_days": "много"})
    assert status == 400 and err["error"] == "Срок задачи — целое число дней от 0 до 365."
    status, err = await crm.call("sokolova", "PATCH", f"/api/pipeline-stages/{ids[2]}",
                                 {"colour": "red"})
    assert status == 400 and err["error"] == "Неизвестное поле colour."
    status, row = await crm.call("sokolova", "PATCH", f"/api/pipeline-stages/{ids[1]}",
                                 {"archived": True})
    assert status == 200 and row["archived_at"]
    status, body = await crm.call("petrov", "GET", "/api/pipelines")
    assert [s["name"] for s in body["pipelines"][0]["stages"]] == [
        "Квалификация", "Встреча", "Выиграна", "Проиграна"]
    status, row = await crm.call("admin", "PATCH", f"/api/lose-reasons/{reason_id}",
                                 {"archived": True})
    assert status == 200 and row["active"] is False
    status, body = await crm.call("petrov", "GET", "/api/pipelines")
    assert body["lose_reasons"] == []
    status, err = await crm.call("sokolova", "PATCH", "/api/pipeline-stages/999999",
                                 {"archived": True})
    assert status == 400 and err["error"] == "Этапа №999999 нет."
    # the settings page lists the archived stage with a restore button
    async with crm.http["sokolova"].get(crm.base + "/sales/settings") as response:
        page = await response.text()
    assert response.status == 200
    assert f'action="/sales/settings/stage/{ids[1]}"' in page and "Вернуть" in page
    async with crm.http["sokolova"].post(
            crm.base + f"/sales/settings/stage/{ids[1]}",
            data={"csrf_token": crm.csrf["sokolova"], "action": "restore"}) as response:
        assert response.status == 200 and "Изменения сохранены" in await response.text()
    status, body = await crm.call("petrov", "GET", "/api/pipelines")
    stages = body["pipelines"][0]["stages"]
    assert [s["name"] for s in stages] == [  # restored, order kept
        "Квалификация", "Встреча", "Коммерческое предложение", "Выиграна", "Проиграна"]
    # the arrows move a stage one place
    async with crm.http["sokolova"].post(
            crm.base + f"/sales/settings/stage/{stages[1]['id']}",
            data={"csrf_token": crm.csrf["sokolova"], "name": "Встреча", "move": "down"}
    ) as response:
        assert response.status == 200 and "Изменения сохранены" in await response.text()
    async with crm.http["sokolova"].post(
            crm.base + f"/sales/settings/stage/{stages[0]['id']}",
            data={"csrf_token": crm.csrf["sokolova"], "name": "Квалификация", "move": "down"}
    ) as response:
        assert response.status == 200
    status, body = await crm.call("petrov", "GET", "/api/pipelines")
    assert [s["name"] for s in body["pipelines"][0]["stages"]] == [
        "Коммерческое предложение", "Квалификация", "Встреча", "Выиграна", "Проиграна"]
