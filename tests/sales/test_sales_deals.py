"""Deals: stage tasks, won amounts, lost reasons with a re-check task, the monthly plan."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import AuditLog
from crm_core.clients.services import create_client
from crm_core.db import create_engine, session_factory
from crm_core.people.users import add_user
from crm_core.sales.deals import (
    DealError,
    DealNotAllowedError,
    StageSpec,
    add_lose_reason,
    client_stage,
    create_deal,
    create_pipeline,
    move_deal,
    plan_progress,
    set_plan,
)
from crm_core.sales.models import DealStageChange
from crm_core.tasks.models import Task
from crm_core.timestamps import utcnow
from tests.sales.test_sales_api import Api, api  # noqa: F401
from tests.support.db_fixtures import db_session_fixture, db_url_fixture  # noqa: F401

pytestmark = pytest.mark.calendar  # dates relative to today: make test-calendar

STAGES = ["Квалификация:call:1", "Коммерческое предложение:email:3", "Встреча:meeting:5:supervisor",
          "Выиграна:won", "Проиграна:lost"]
TZ = ZoneInfo("Europe/Moscow")


async def _floor(session: AsyncSession) -> dict:
    boss = await add_user(session, "boss", name="Мария", role="supervisor", extension="201",
                          team="Продажи")
    ivan = await add_user(session, "ivan", name="Иван", role="manager", extension="101",
                          team="Продажи")
    olga = await add_user(session, "olga", name="Ольга", role="manager", extension="102",
                          team="Продажи")
    client = await create_client(session, "ООО Ромашка", owner_id=ivan.id, actor="test")
    pipeline = await create_pipeline(session, "B2B новые", [StageSpec.parse(s) for s in STAGES],
                                     by=boss)
    stages = {s.position: s for s in await pipeline.awaitable_attrs.stages}
    price = await add_lose_reason(session, "Дорого", by=boss)
    return {"boss": boss, "ivan": ivan, "olga": olga, "client": client, "pipeline": pipeline,
            "stages": stages, "price": price}


@pytest.mark.clock("2026-11-24T12:00:00+03:00")  # a Tuesday noon: +1 and +5 days are worked
async def test_stage_entry_creates_its_task(db_session: AsyncSession) -> None:
    w = await _floor(db_session)
    before = utcnow()
    deal = await create_deal(db_session, client_id=w["client"].id, pipeline_id=w["pipeline"].id,
                             title="Поставка 2027", amount="1 200 000", by=w["ivan"])
    first = await db_session.scalar(select(Task).where(Task.client_id == w["client"].id))
    assert (first.kind, first.assignee_id) == ("call", w["ivan"].id)
    assert first.title == "Квалификация: Поставка 2027"
    assert before + timedelta(days=1) <= first.due_at <= utcnow() + timedelta(days=1)
    assert (await client_stage(db_session, w["client"].id)).code == "квалификация"
    change = await move_deal(db_session, deal, w["stages"][3].id, by=w["ivan"])
    task = await db_session.get(Task, change.task_id)
    assert (task.kind, task.assignee_id) == ("meeting", w["boss"].id)  # stage says supervisor
    assert before + timedelta(days=5) <= task.due_at
    with pytest.raises(DealError, match="needs the amount"):
        await move_deal(db_session, deal, w["stages"][4].id, by=w["ivan"])
    await move_deal(db_session, deal, w["stages"][4].id, by=w["ivan"], amount="1 150 000")
    assert (deal.status, deal.won_amount) == ("won", Decimal("1150000.00"))
    assert await client_stage(db_session, w["client"].id) is None
    with pytest.raises(DealError, match="won already"):
        await move_deal(db_session, deal, w["stages"][2].id, by=w["ivan"])
    moves = (await db_session.scalars(select(DealStageChange.to_stage_id).where(
        DealStageChange.deal_id == deal.id).order_by(DealStageChange.id))).all()
    assert moves == [w["stages"][1].id, w["stages"][3].id, w["stages"][4].id]
    audit = (await db_session.scalars(select(AuditLog.changes).where(
        AuditLog.entity == "deal", AuditLog.entity_id == deal.id))).all()
    assert audit[-1]["won_amount"] == [None, "1150000.00"]


async def test_a_lost_deal_needs_a_listed_reason_and_makes_a_recheck_task(
        db_session: AsyncSession) -> None:
    w = await _floor(db_session)
    deal = await create_deal(db_session, client_id=w["client"].id, pipeline_id=w["pipeline"].id,
                             title="Пилот", by=w["ivan"])
    with pytest.raises(DealError, match="reason from the list: Дорого"):
        await move_deal(db_session, deal, w["stages"][5].id, by=w["ivan"])
    change = await move_deal(db_session, deal, w["stages"][5].id, by=w["ivan"],
                             lose_reason_id=w["price"].id, note="ушли к конкуренту")
    assert deal.status == "lost" and deal.lose_reason_id == w["price"].id
    recheck = await db_session.get(Task, change.task_id)
    assert recheck.assignee_id == w["boss"].id and "прослушать звонки" in recheck.title


async def test_rights_and_bad_pipelines(db_session: AsyncSession) -> None:
    w = await _floor(db_session)
    with pytest.raises(DealNotAllowedError):
        await create_pipeline(db_session, "Моя", [StageSpec("A")], by=w["ivan"])
    with pytest.raises(DealError, match="one won stage"):
        await create_pipeline(db_session, "Без исхода", [StageSpec("A")], by=w["boss"])
    with pytest.raises(DealError, match="task kind"):
        StageSpec.parse("Звонок:ring:2")
    with pytest.raises(DealNotAllowedError, match="for himself"):
        await create_deal(db_session, client_id=w["client"].id, pipeline_id=w["pipeline"].id,
                          title="Чужая", owner_id=w["olga"].id, by=w["ivan"])


async def test_plan_progress_by_manager_team_and_company(db_session: AsyncSession) -> None:
    w = await _floor(db_session)
    ivan, olga, boss = w["ivan"], w["olga"], w["boss"]
    today = utcnow().astimezone(TZ).date()
    month = today.replace(day=1)
    await set_plan(db_session, ivan.id, month, "amount", "2 000 000", by=boss)
    await set_plan(db_session, olga.id, month, "count", 4, by=boss)
    with pytest.raises(DealNotAllowedError):
        await set_plan(db_session, olga.id, month, "count", 5, by=ivan)
    other = await create_client(db_session, "ИП Сидоров", owner_id=olga.id, actor="test")
    for client, owner, amount in ((w["client"], ivan, "500000"), (w["client"], ivan, "1000000"),
                                  (other, olga, "10")):
        deal = await create_deal(db_session, client_id=client.id, pipeline_id=w["pipeline"].id,
                                 title="Сделка", owner_id=owner.id, by=boss)
        await move_deal(db_session, deal, w["stages"][4].id, by=boss, amount=amount)
    progress = await plan_progress(db_session, today, [ivan, olga], TZ)
    rows = {r["name"]: r for r in progress["managers"]}
    # Иван: 1 500 000 of 2 000 000 = 75 %; Ольга: 1 deal of 4 = 25 %
    assert (rows["Иван"]["done"], rows["Иван"]["pct"]) == ("1500000.00", 75.0)
    assert (rows["Ольга"]["done"], rows["Ольга"]["pct"], rows["Ольга"]["won_deals"]) == (
        "1", 25.0, 1)
    assert progress["company"]["amount"]["pct"] == 75.0
    assert progress["company"]["count"] == {"target": "4.00", "done": "1", "pct": 25.0}
    assert progress["teams"][0]["amount"]["target"] == "2000000.00"
    # the previous month: nothing won, plans not set
    previous = await plan_progress(db_session, month - timedelta(days=1), [ivan], TZ)
    assert previous["managers"][0]["pct"] is None
    assert previous["month"] == (month - timedelta(days=1)).replace(day=1).isoformat()
    assert isinstance(date.fromisoformat(progress["month"]), date)


async def test_deals_through_the_api(api: tuple[Api, object], db_url: str) -> None:  # noqa: F811
    crm, world = api
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            await create_pipeline(session, "B2B новые", [StageSpec.parse(s) for s in STAGES],
                                  by=None)
            await add_lose_reason(session, "Дорого", by=None)
    finally:
        await engine.dispose()
    status, body = await crm.call("petrov", "GET", "/api/pipelines")
    assert status == 200 and [s["name"] for s in body["pipelines"][0]["stages"]][-2:] == [
        "Выиграна", "Проиграна"]
    stages = {s["name"]: s["id"] for s in body["pipelines"][0]["stages"]}
    reason = body["lose_reasons"][0]["id"]
    mine = world.clients["101"]  # type: ignore[attr-defined]
    status, deal = await crm.call("petrov", "POST", "/api/deals", {
        "client_id": mine, "pipeline_id": body["pipelines"][0]["id"], "title": "Поставка"})
    assert status == 201 and deal["stage_id"] == stages["Квалификация"]
    status, err = await crm.call("smirnova", "POST", f"/api/deals/{deal['id']}/move",
                                 {"stage_id": stages["Выиграна"], "amount": 5})
    assert status == 404
    status, err = await crm.call("petrov", "POST", f"/api/deals/{deal['id']}/move",
                                 {"stage_id": stages["Проиграна"]})
    assert status == 400 and err["code"] == "sales.deal.lost_needs_reason"
    assert err["error"] == "Для проигранной сделки выберите причину из списка: Дорого."
    status, moved = await crm.call("petrov", "POST", f"/api/deals/{deal['id']}/move",
                                   {"stage_id": stages["Проиграна"], "lose_reason_id": reason})
    assert status == 200 and moved["status"] == "lost" and moved["task_id"]
    status, plan = await crm.call("sokolova", "GET", "/api/plan")
    assert status == 200 and {r["name"] for r in plan["managers"]} == {"Иван Петров",
                                                                        "Ольга Смирнова"}
