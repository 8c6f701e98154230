"""The sales floor's pages in a real browser: a manager completes a task with the next
one, moves a due date with a reason and moves a deal on the board.

Screenshots (desktop and phone) go to tests/artifacts/sales-pages-*.png.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from crm_core.db import create_engine, session_factory
from crm_core.people.models import User
from crm_core.sales.deals import StageSpec, add_lose_reason, create_deal, create_pipeline
from crm_core.sales.models import Deal, Pipeline, PipelineStage
from crm_core.sales.tasks import plan_task, request_stop
from crm_core.tasks.models import Task, TaskStatus
from crm_core.timestamps import utcnow
from telecrm.settings import Settings
from tests.support.browser import PASSWORD, World, chromium, screenshot, seed_world, serve_app

STAGES = ["Квалификация:call:1", "Коммерческое предложение:email:3",
          "Встреча:meeting:5:supervisor", "Выиграна:won", "Проиграна:lost"]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, str, World]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    world = await seed_world(url, tmp_path / "recordings")
    engine = create_engine(url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            petrov = await session.get(User, world.users["petrov"])
            pipeline = await create_pipeline(session, "B2B новые",
                                             [StageSpec.parse(s) for s in STAGES], by=None)
            await add_lose_reason(session, "Дорого", by=None)
            await create_deal(session, client_id=world.clients["101"], pipeline_id=pipeline.id,
                              title="Поставка 2027", amount="1200000", by=petrov)
            await create_deal(session, client_id=world.clients["102"], pipeline_id=pipeline.id,
                              title="Сервис на год", amount="300000",
                              owner_id=world.users["smirnova"], by=None)
            await plan_task(session, client_id=world.clients["101"], kind="call",
                            due_at=utcnow() - timedelta(hours=3), title="Перезвонить по КП",
                            by=petrov)
            await request_stop(session, world.clients["102"], "Компания закрылась",
                               by=await session.get(User, world.users["smirnova"]))
    finally:
        await engine.dispose()
    settings = Settings(data_dir=tmp_path, database_url=url,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (_, base):
        yield base, url, world


async def _read(url: str, stmt: object) -> list[object]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            return list((await session.execute(stmt)).all())  # type: ignore[call-overload]
    finally:
        await engine.dispose()


async def test_complete_reschedule_and_move_a_deal(served: tuple[str, str, World]) -> None:
    base, url, _world = served
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(base + "/login")
        await page.fill("input[name=username]", "petrov")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_load_state()
        await page.click("nav.nav >> text=Задачи")
        await page.wait_for_url("**/tasks")
        late = page.locator("li.sp-task", has_text="Перезвонить по КП")
        assert "overdue" in (await late.get_attribute("class") or "")
        colour = await late.locator(".sp-due").evaluate("e => getComputedStyle(e).color")
        assert colour == "rgb(198, 40, 40)"
        # the deal's first-stage task is there too, due tomorrow
        assert await page.locator("li.sp-task", has_text="Квалификация: Поставка 2027").count()
        await screenshot(page, "sales-pages-tasks")

        # reschedule with a reason
        await late.locator("summary", has_text="Перенести срок").click()
        form = late.locator("form.reschedule-form")
        await form.locator("input[name=reason]").fill("Клиент просил позже")
        async with page.expect_navigation():
            await form.locator("button[type=submit]").click()
        assert "Срок перенесён" in await page.inner_text("#sp-done")
        late = page.locator("li.sp-task", has_text="Перезвонить по КП")
        assert "overdue" not in (await late.get_attribute("class") or "")

        # complete with the next task
        await late.locator("summary", has_text="Выполнить").click()
        form = late.locator("form.complete-form")
        await form.locator("input[name=note]").fill("Обсудили КП")
        await form.locator("select[name=kind]").select_option("meeting")
        await form.locator("input[name=title]").fill("Встреча у клиента")
        await screenshot(page, "sales-pages-complete-form")
        async with page.expect_navigation():
            await form.locator("button[type=submit]").click()
        assert "следующая запланирована" in await page.inner_text("#sp-done")
        assert await page.locator("li.sp-task", has_text="Перезвонить по КП").count() == 0
        assert await page.locator("li.sp-task", has_text="Встреча у клиента").count() == 1
        [(state, moves)] = await _read(url, select(Task.status, Task.due_moves).where(
            Task.title == "Перезвонить по КП"))
        assert state == TaskStatus.DONE and moves == 1

        # the deals board: the manager sees his deal only, and moves it
        await page.click("nav.nav >> text=Сделки")
        await page.wait_for_url("**/deals")
        column = page.locator(".sp-col", has_text="Квалификация")
        card = column.locator(".sp-deal", has_text="Поставка 2027")
        assert "1 200 000 ₽" in (await card.inner_text()).replace("\u00a0", " ")
        assert await page.locator(".sp-deal", has_text="Сервис на год").count() == 0
        await card.locator("summary", has_text="Перенести").click()
        await card.locator("select[name=stage_id]").select_option(
            label="Коммерческое предложение")
        assert await card.locator("select[name=lose_reason_id]").is_hidden()
        await screenshot(page, "sales-pages-board-move")
        async with page.expect_navigation():
            await card.locator("button[type=submit]").click()
        assert "Сделка перенесена" in await page.inner_text("#sp-done")
        moved = page.locator(".sp-col", has_text="Коммерческое предложение").locator(
            ".sp-deal", has_text="Поставка 2027")
        assert await moved.count() == 1
        await screenshot(page, "sales-pages-board")
        [(stage_name,)] = await _read(url, select(PipelineStage.name).join(
            Deal, Deal.stage_id == PipelineStage.id).where(Deal.title == "Поставка 2027"))
        assert stage_name == "Коммерческое предложение"

        # the supervisor's plan page and rules
        await browser.clear_cookies()
        await page.goto(base + "/login")
        await page.fill("input[name=username]", "sokolova")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_load_state()
        await page.goto(base + "/tasks")
        stop = page.locator("#stops li", has_text="Компания закрылась")
        assert "Ольга Смирнова" in await stop.inner_text()
        await screenshot(page, "sales-pages-supervisor-tasks")
        async with page.expect_navigation():
            await stop.locator("button", has_text="Согласовать").click()
        assert "согласовано" in await page.inner_text("#sp-done")
        assert await page.locator("#stops").count() == 0
        await page.goto(base + "/plan")
        row = page.locator("#plan-managers tr", has_text="Иван Петров")
        await row.locator("input[name=target]").fill("1000000")
        async with page.expect_navigation():
            await row.locator("button[type=submit]").click()
        assert "План сохранён" in await page.inner_text("#sp-done")
        await screenshot(page, "sales-pages-plan")
        await page.goto(base + "/sales/settings")
        await screenshot(page, "sales-pages-settings")
        assert await page.locator("#rules-form input[name=new_period_days]").input_value() == "90"
        # the head of sales cannot archive the stage the deal sits on; he archives the
        # meeting stage (empty) and makes the offer stage's task a call in 2 days
        stages = page.locator("#pipelines li[data-stage]")
        await stages.nth(1).locator("button", has_text="В архив").click()
        await page.wait_for_load_state()
        refusal = await page.inner_text("#sp-error")
        assert "остаются открытые сделки (1): сначала перенесите их на другой этап." in refusal
        await page.goto(base + "/sales/settings")
        async with page.expect_navigation():
            await stages.nth(2).locator("button", has_text="В архив").click()
        assert "Изменения сохранены" in await page.inner_text("#sp-done")
        assert "в архиве" in await stages.nth(2).inner_text()
        offer = stages.nth(1)
        await offer.locator("select[name=task_kind]").select_option("call")
        await offer.locator("input[name=task_due_days]").fill("2")
        async with page.expect_navigation():
            await offer.locator("button", has_text="Сохранить").click()
        assert await stages.nth(1).locator("select[name=task_kind]").input_value() == "call"
        assert await stages.nth(1).locator("input[name=task_due_days]").input_value() == "2"
        await screenshot(page, "sales-pages-settings-edited")


async def _stage_names(page: Any, pipeline: Any) -> list[str]:
    return [await s.locator("input[name=name]").input_value()
            for s in await pipeline.locator("li[data-stage]").all()]


async def test_supervisor_builds_a_pipeline_with_the_form(
        served: tuple[str, str, World]) -> None:
    """The head of sales lays out a new direction stage by stage, then reshapes it."""
    base, url, _world = served
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(base + "/login")
        await page.fill("input[name=username]", "sokolova")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_load_state()
        await page.goto(base + "/sales/settings")
        form = page.locator("#new-pipeline")
        rows = form.locator("li.sp-new-stage")
        assert await rows.count() == 4  # two working stages to fill, then won and lost
        await form.locator("input[name=name]").fill("B2B постоянные")
        await rows.nth(0).locator("input[name=stage_name]").fill("Звонок-знакомство")
        await rows.nth(1).locator("input[name=stage_name]").fill("Счёт")
        await rows.nth(1).locator("select[name=stage_task_kind]").select_option("email")
        await rows.nth(1).locator("input[name=stage_task_title]").fill("Выставить счёт")
        await rows.nth(1).locator("input[name=stage_days]").fill("2")
        # a third working stage: it appears before the closing ones
        await form.locator("#add-new-stage").click()
        assert await rows.count() == 5
        meeting = rows.nth(2)
        await meeting.locator("input[name=stage_name]").fill("Встреча")
        await meeting.locator("select[name=stage_task_kind]").select_option("meeting")
        await meeting.locator("input[name=stage_days]").fill("5")
        await meeting.locator("select[name=stage_assignee]").select_option("supervisor")
        await meeting.locator("button.sp-up").click()  # the meeting before the invoice
        # one row too many: added, then taken away
        await form.locator("#add-new-stage").click()
        await rows.nth(3).locator("button.sp-remove").click()
        assert await rows.count() == 5
        # closing stages have no task fields; the won one is renamed
        assert not await rows.nth(3).locator(".sp-task").is_visible()
        await rows.nth(3).locator("input[name=stage_name]").fill("Оплачено")
        await page.evaluate("window.scrollTo(0, 0)")
        await screenshot(page, "sales-pipeline-new-form")
        async with page.expect_navigation():
            await form.locator("button[type=submit]", has_text="Создать воронку").click()
        assert "Воронка создана" in await page.inner_text("#sp-done")
        built = page.locator(".sp-pipeline", has=page.locator(
            "input[name=name][value='B2B постоянные']"))
        assert await _stage_names(page, built) == [
            "Звонок-знакомство", "Встреча", "Счёт", "Оплачено", "Проиграна"]

        # the pipeline lives on: a stage added, moved up, renamed, one archived
        await built.locator(".sp-add-stage summary").click()
        add = built.locator(".sp-add-stage form")
        await add.locator("input[name=name]").fill("Договор")
        await add.locator("select[name=task_kind]").select_option("email")
        await add.locator("input[name=task_title]").fill("Отправить договор")
        async with page.expect_navigation():
            await add.locator("button", has_text="Добавить этап").click()
        assert "Этап добавлен" in await page.inner_text("#sp-done")
        assert await _stage_names(page, built) == [
            "Звонок-знакомство", "Встреча", "Счёт", "Договор", "Оплачено", "Проиграна"]
        async with page.expect_navigation():
            await built.locator("li[data-stage]").nth(3).locator("button[value=up]").click()
        invoice = built.locator("li[data-stage]").nth(3)
        await invoice.locator("input[name=name]").fill("Счёт и оплата")
        async with page.expect_navigation():
            await invoice.locator("button", has_text="Сохранить").click()
        async with page.expect_navigation():
            await built.locator("li[data-stage]").nth(1).locator(
                "button", has_text="В архив").click()
        assert await _stage_names(page, built) == [
            "Звонок-знакомство", "Встреча", "Договор", "Счёт и оплата", "Оплачено",
            "Проиграна"]
        assert "в архиве" in await built.locator("li[data-stage]").nth(1).inner_text()
        await page.evaluate("window.scrollTo(0, 0)")
        await screenshot(page, "sales-pipeline-edited")
    stages = await _read(url, select(PipelineStage.name, PipelineStage.outcome,
                                     PipelineStage.task_kind, PipelineStage.task_title,
                                     PipelineStage.task_due_days, PipelineStage.task_assignee,
                                     PipelineStage.archived_at.is_not(None))
                         .join(Pipeline).where(Pipeline.name == "B2B постоянные")
                         .order_by(PipelineStage.position))
    assert [tuple(s) for s in stages] == [
        ("Звонок-знакомство", "open", "call", None, 1, "owner", False),
        ("Встреча", "open", "meeting", None, 5, "supervisor", True),
        ("Договор", "open", "email", "Отправить договор", 1, "owner", False),
        ("Счёт и оплата", "open", "email", "Выставить счёт", 2, "owner", False),
        ("Оплачено", "won", None, None, 1, "owner", False),
        ("Проиграна", "lost", None, None, 1, "owner", False)]
