"""The sales floor's pages as each role uses them: tasks, stops, deals, plan and rules.

Forms are posted as a browser would (urlencoded, with the CSRF field); each action's
effect is read back from the database. The seeded floor (tests/support/browser.py): managers
petrov and smirnova with supervisor sokolova in «Отдел продаж», kuznetsov in «Второй
отдел». Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from crm_core.audit import AuditLog
from crm_core.clock import local_today
from crm_core.db import create_engine, session_factory
from crm_core.people.models import User
from crm_core.sales.models import ClientStop, Deal, LoseReason, Pipeline, SalesPlan, SalesSettings
from crm_core.sales.tasks import plan_task
from crm_core.tasks.models import Task, TaskStatus
from crm_core.tasks.services import task_to_dict
from tests.support.db_fixtures import db_url_fixture  # noqa: F401
from tests.support.floor import Floor as BaseFloor
from tests.support.floor import served_floor

pytestmark = pytest.mark.calendar  # dates relative to today: make test-calendar


def stage_rows(*rows: tuple[str, str, str, str, str, str]) -> dict[str, list[str]]:
    """A new pipeline's stage rows as the form posts them: each field once per row."""
    names = ("stage_name", "stage_outcome", "stage_task_kind", "stage_task_title",
             "stage_days", "stage_assignee")
    return {name: [row[i] for row in rows] for i, name in enumerate(names)}


STAGES = stage_rows(("Квалификация", "open", "call", "", "1", "owner"),
                    ("КП", "open", "email", "Отправить КП", "3", "owner"),
                    ("", "open", "call", "", "1", "owner"),  # a row left empty
                    ("Выиграна", "won", "", "", "1", "owner"),
                    ("Проиграна", "lost", "", "", "1", "owner"))


class Floor(BaseFloor):
    """The sales pages' requests, and tasks planned as the service would."""

    async def get(self, who: str, path: str) -> tuple[int, str]:
        http = await self.login(who)
        async with http.get(self.base + path) as response:
            return response.status, await response.text()

    async def post(self, who: str, path: str, form: dict[str, Any]) -> tuple[int, str]:
        http = await self.login(who)
        data = [("csrf_token", self.csrf[who])]
        for key, value in form.items():  # a list posts the field once per item
            data += [(key, str(v)) for v in (value if isinstance(value, list) else [value])]
        async with http.post(self.base + path, data=data) as response:
            return response.status, await response.text()

    async def api(self, who: str, method: str, path: str, body: Any) -> Any:
        http = await self.login(who)
        async with http.request(method, self.base + path, json=body,
                                headers={"X-CSRF-Token": self.csrf[who]}) as response:
            assert response.status < 300, await response.text()
            return await response.json()

    async def plan(self, who: str, client_id: int, delta: timedelta, **fields: Any) -> Any:
        """A task planned by ``who`` as the service would (an overdue one too: the API
        refuses a due time in the past)."""
        engine = create_engine(self.db_url)
        try:
            async with session_factory(engine, writer=True)() as session, session.begin():
                user = await session.get(User, self.world.users[who])
                task = await plan_task(session, client_id=client_id, by=user,
                                       due_at=datetime.now(UTC) + delta, **fields)
                return task_to_dict(task)
        finally:
            await engine.dispose()


@pytest.fixture
async def floor(db_url: str, tmp_path: Path) -> AsyncIterator[Floor]:
    async with served_floor(Floor, db_url, tmp_path) as crm:
        yield crm


def _iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def _local(delta: timedelta) -> str:
    """A ``datetime-local`` field value in the workday timezone (Moscow, UTC+3)."""
    return (datetime.now(UTC) + timedelta(hours=3) + delta).strftime("%Y-%m-%dT%H:%M")


async def test_tasks_complete_reschedule_and_roles(floor: Floor) -> None:
    mine, theirs = floor.world.clients["101"], floor.world.clients["102"]
    late = await floor.plan("petrov", mine, -timedelta(hours=2), kind="call",
                            title="Позвонить по счёту")
    other = await floor.api("smirnova", "POST", f"/api/clients/{theirs}/tasks",
                            {"kind": "email", "due_at": _iso(timedelta(days=2)),
                             "title": "Письмо Сидорову"})

    # a manager sees his own tasks, the overdue one flagged; not another manager's
    status, page = await floor.get("petrov", "/tasks")
    assert status == 200 and "Позвонить по счёту" in page and "Письмо Сидорову" not in page
    assert re.search(rf'class="sp-task overdue" data-task="{late["id"]}"', page)
    assert "Запросы на прекращение работы" not in page
    status, page = await floor.post("petrov", f"/tasks/{other['id']}/complete",
                                    {"next": "plan", "kind": "call", "due_at": _local(
                                        timedelta(days=1))})
    assert status == 404
    # the supervisor sees his team's, filtered by manager
    status, page = await floor.get("sokolova", "/tasks")
    assert "Позвонить по счёту" in page and "Письмо Сидорову" in page
    status, page = await floor.get(
        "sokolova", f"/tasks?manager={floor.world.users['smirnova']}")
    assert "Позвонить по счёту" not in page and "Письмо Сидорову" in page
    status, page = await floor.get("kuznetsov", "/tasks")
    assert "Позвонить по счёту" not in page and "Письмо Сидорову" not in page

    # completing needs the next task: without a kind nothing is written
    status, page = await floor.post("petrov", f"/tasks/{late['id']}/complete",
                                    {"next": "plan", "kind": "", "due_at": _local(
                                        timedelta(days=1))})
    assert status == 400 and "Выберите вид задачи" in page
    status, page = await floor.post("petrov", f"/tasks/{late['id']}/complete",
                                    {"next": "plan", "kind": "call", "due_at": ""})
    assert status == 400 and "Укажите срок следующей задачи" in page
    [(state,)] = await floor.rows(select(Task.status).where(Task.id == late["id"]))
    assert state == TaskStatus.OPEN

    # reschedule needs a reason; with one the due date moves and is audited
    status, page = await floor.post("petrov", f"/tasks/{late['id']}/reschedule",
                                    {"due_at": _local(timedelta(days=3)), "reason": ""})
    assert status == 400 and "укажите причину" in page
    status, page = await floor.post("petrov", f"/tasks/{late['id']}/reschedule",
                                    {"due_at": _local(timedelta(days=3)),
                                     "reason": "Клиент в отпуске"})
    assert status == 200 and "Срок перенесён" in page
    [(due, moves)] = await floor.rows(select(Task.due_at, Task.due_moves)
                                      .where(Task.id == late["id"]))
    assert moves == 1 and due.replace(tzinfo=UTC) > datetime.now(UTC) + timedelta(days=2)
    audits = await floor.rows(select(AuditLog.changes).where(
        AuditLog.entity == "task", AuditLog.entity_id == late["id"]))
    assert any("Клиент в отпуске" in str(c) for (c,) in audits)

    # complete with the next task: the task is done, the next one planned for the client
    status, page = await floor.post("petrov", f"/tasks/{late['id']}/complete",
                                    {"next": "plan", "kind": "meeting", "note": "Договорились",
                                     "due_at": _local(timedelta(days=5)),
                                     "title": "Встреча в офисе"})
    assert status == 200 and "следующая запланирована" in page
    [(state,)] = await floor.rows(select(Task.status).where(Task.id == late["id"]))
    assert state == TaskStatus.DONE
    [(kind, assignee)] = await floor.rows(select(Task.kind, Task.assignee_id).where(
        Task.client_id == mine, Task.status == TaskStatus.OPEN.value,
        Task.title == "Встреча в офисе"))
    assert kind == "meeting" and assignee == floor.world.users["petrov"]


async def test_stop_requests_go_to_the_supervisor_of_the_team(floor: Floor) -> None:
    mine, far = floor.world.clients["101"], floor.world.clients["103"]
    task = await floor.api("petrov", "POST", f"/api/clients/{mine}/tasks",
                           {"kind": "call", "due_at": _iso(timedelta(hours=1))})
    status, page = await floor.post("petrov", f"/tasks/{task['id']}/complete",
                                    {"next": "stop", "reason": ""})
    assert status == 400 and "почему работу" in page
    status, page = await floor.post("petrov", f"/tasks/{task['id']}/complete",
                                    {"next": "stop", "reason": "Закрыли бизнес"})
    assert status == 200 and "отправлен руководителю" in page
    status, page = await floor.post("petrov", f"/tasks/{task['id']}/complete",
                                    {"next": "stop", "reason": "Ещё раз"})
    assert status == 400 and "уже ждёт решения" in page
    [(stop_id, approved)] = await floor.rows(select(ClientStop.id, ClientStop.approved_at)
                                             .where(ClientStop.client_id == mine))
    assert approved is None
    far_task = await floor.api("kuznetsov", "POST", f"/api/clients/{far}/tasks",
                               {"kind": "call", "due_at": _iso(timedelta(hours=1))})
    await floor.post("kuznetsov", f"/tasks/{far_task['id']}/complete",
                     {"next": "stop", "reason": "Не наш профиль"})
    [(far_stop,)] = await floor.rows(select(ClientStop.id).where(ClientStop.client_id == far))

    # a manager cannot approve; a supervisor sees and decides only his team's requests
    status, page = await floor.post("petrov", f"/tasks/stops/{stop_id}/approve", {})
    assert status == 403
    status, page = await floor.get("sokolova", "/tasks")
    assert "Закрыли бизнес" in page and "Не наш профиль" not in page
    status, _ = await floor.post("sokolova", f"/tasks/stops/{far_stop}/approve", {})
    assert status == 404
    status, page = await floor.post("sokolova", f"/tasks/stops/{stop_id}/approve",
                                    {"reason": "Согласовано"})
    assert status == 200 and "согласовано" in page
    [(approved,)] = await floor.rows(select(ClientStop.approved_at)
                                     .where(ClientStop.id == stop_id))
    assert approved is not None
    # the stop approved: the manager's open task is closed with the supervisor's reason
    [(state, note)] = await floor.rows(select(Task.status, Task.note)
                                       .where(Task.id == task["id"]))
    assert state == TaskStatus.CANCELLED and "Согласовано" in note
    status, page = await floor.get("petrov", "/tasks")
    assert f'data-task="{task["id"]}"' not in page
    # the other team's supervisor is the admin here: refusing keeps the work going
    status, page = await floor.post("admin", f"/tasks/stops/{far_stop}/refuse", {"reason": ""})
    assert status == 400 and "причину отказа" in page
    status, page = await floor.post("admin", f"/tasks/stops/{far_stop}/refuse",
                                    {"reason": "Есть интерес к новой линейке"})
    assert status == 200 and "продолжается" in page
    [(revoked, approved)] = await floor.rows(select(ClientStop.revoked_at,
                                                    ClientStop.approved_at)
                                             .where(ClientStop.id == far_stop))
    assert revoked is not None and approved is None
    [(state,)] = await floor.rows(select(Task.status).where(Task.id == far_task["id"]))
    assert state == TaskStatus.OPEN


async def test_rules_pipelines_deals_and_plan(floor: Floor) -> None:
    mine, theirs = floor.world.clients["101"], floor.world.clients["102"]
    team_id = (await floor.api("sokolova", "GET", "/api/sales/settings", None))["team_id"]

    # rules: a manager may not open the page; the supervisor changes his team's
    status, _ = await floor.get("petrov", "/sales/settings")
    assert status == 403
    status, page = await floor.post("sokolova", "/sales/settings/rules",
                                    {"new_period_days": "дни"})
    assert status == 400 and "неверное значение" in page
    status, page = await floor.post("sokolova", "/sales/settings/rules",
                                    {"new_period_days": "45", "team_id": "999"})
    assert status == 200 and "пересчитаны" in page
    [(days,)] = await floor.rows(select(SalesSettings.new_period_days)
                                 .where(SalesSettings.team_id == team_id))
    assert days == 45

    # pipelines and lose reasons: a supervisor creates them, a manager cannot
    status, _ = await floor.post("petrov", "/sales/settings/pipelines",
                                 {"name": "B2B", **STAGES})
    assert status == 403
    status, page = await floor.post("sokolova", "/sales/settings/pipelines", {
        "name": "B2B", **stage_rows(("Квалификация", "open", "call", "", "1", "owner"))})
    assert status == 400 and "«выиграна»" in page
    assert 'value="Квалификация"' in page  # the rows come back as typed
    status, page = await floor.post("sokolova", "/sales/settings/pipelines", {
        "name": "B2B", **stage_rows(("Квалификация", "open", "call", "", "через неделю",
                                     "owner"))})
    assert status == 400 and "Этап «Квалификация»: срок задачи — целое число дней" in page
    status, page = await floor.post("sokolova", "/sales/settings/pipelines",
                                    {"name": "B2B новые", **STAGES})
    assert status == 200 and "Воронка создана" in page
    status, page = await floor.post("sokolova", "/sales/settings/reasons", {"name": "Дорого"})
    assert status == 200 and "Дорого" in page
    [(pipeline_id,)] = await floor.rows(select(Pipeline.id))
    [(reason_id,)] = await floor.rows(select(LoseReason.id))
    pipelines = (await floor.api("petrov", "GET", "/api/pipelines", None))["pipelines"]
    stage = {s["name"]: s["id"] for s in pipelines[0]["stages"]}

    # a new deal from the client card: on the first stage, with its task
    status, page = await floor.get("petrov", f"/deals?client={mine}")
    assert status == 200 and "Новая сделка: ООО Ромашка" in page
    status, page = await floor.post("petrov", "/deals/new",
                                    {"client_id": mine, "pipeline_id": pipeline_id,
                                     "title": "Поставка", "amount": "150000"})
    assert status == 200 and "Сделка создана" in page and "150\u00a0000\u00a0₽" in page
    status, _ = await floor.post("petrov", "/deals/new",
                                 {"client_id": theirs, "pipeline_id": pipeline_id,
                                  "title": "Чужая"})
    assert status == 404
    await floor.post("smirnova", "/deals/new", {"client_id": theirs,
                                                "pipeline_id": pipeline_id, "title": "Сидоров"})
    deals = dict(await floor.rows(select(Deal.title, Deal.id)))
    status, page = await floor.get("petrov", "/deals")
    assert "Поставка" in page and "Сидоров" not in page
    status, page = await floor.get("sokolova", "/deals")
    assert "Поставка" in page and "Сидоров" in page
    status, page = await floor.get("kuznetsov", "/deals")
    assert "Поставка" not in page

    # moves: another's deal is refused; a stage entry creates its task; won needs an amount
    status, _ = await floor.post("petrov", f"/deals/{deals['Сидоров']}/move",
                                 {"stage_id": stage["КП"]})
    assert status in (403, 404)
    status, page = await floor.post("petrov", f"/deals/{deals['Поставка']}/move",
                                    {"stage_id": stage["КП"]})
    assert status == 200 and "Сделка перенесена" in page
    [(stage_now,)] = await floor.rows(select(Deal.stage_id).where(Deal.id == deals["Поставка"]))
    assert stage_now == stage["КП"]
    assert await floor.rows(select(Task.id).where(Task.client_id == mine, Task.kind == "email",
                                                  Task.title == "Отправить КП: Поставка"))
    status, page = await floor.post("petrov", f"/deals/{deals['Поставка']}/move",
                                    {"stage_id": stage["Выиграна"], "amount": ""})
    assert status == 400 and "укажите сумму" in page
    status, page = await floor.post("petrov", f"/deals/{deals['Поставка']}/move",
                                    {"stage_id": stage["Выиграна"], "amount": "140000"})
    assert status == 200
    status, page = await floor.post("smirnova", f"/deals/{deals['Сидоров']}/move",
                                    {"stage_id": stage["Проиграна"]})
    assert status == 400 and "причину из списка" in page
    status, page = await floor.post("smirnova", f"/deals/{deals['Сидоров']}/move",
                                    {"stage_id": stage["Проиграна"],
                                     "lose_reason_id": reason_id})
    assert status == 200
    closed = {t: (s, w, r) for t, s, w, r in await floor.rows(
        select(Deal.title, Deal.status, Deal.won_amount, Deal.lose_reason_id))}
    assert closed == {"Поставка": ("won", Decimal("140000.00"), None),
                      "Сидоров": ("lost", None, reason_id)}

    # the plan: the supervisor sets his managers'; % done shows for the manager
    month = local_today("Europe/Moscow").strftime("%Y-%m")  # the workday's month
    status, _ = await floor.post("petrov", "/plan", {"user_id": floor.world.users["petrov"],
                                                     "month": month, "kind": "amount",
                                                     "target": "100000"})
    assert status == 403
    status, page = await floor.post("sokolova", "/plan",
                                    {"user_id": floor.world.users["kuznetsov"], "month": month,
                                     "kind": "amount", "target": "100000"})
    assert status == 403 and "не из вашего отдела" in page
    status, page = await floor.post("sokolova", "/plan",
                                    {"user_id": floor.world.users["petrov"], "month": month,
                                     "kind": "amount", "target": "200000"})
    assert status == 200 and "План сохранён" in page
    [(target,)] = await floor.rows(select(SalesPlan.target).where(
        SalesPlan.user_id == floor.world.users["petrov"]))
    assert target == Decimal("200000")
    status, page = await floor.get("petrov", f"/plan?month={month}")
    assert status == 200 and "70,0\u00a0%" in page and "Задать план" not in page
    assert await floor.rows(select(func.count()).select_from(AuditLog).where(
        AuditLog.entity == "sales_plan"))


async def test_csrf_supervisor_stop_admin_rules_and_own_plan(floor: Floor) -> None:
    mine, far = floor.world.clients["101"], floor.world.clients["103"]
    task = await floor.api("petrov", "POST", f"/api/clients/{mine}/tasks",
                           {"kind": "call", "due_at": _iso(timedelta(hours=1))})
    # a form without the CSRF field is refused and changes nothing
    http = await floor.login("petrov")
    async with http.post(f"{floor.base}/tasks/{task['id']}/reschedule",
                         data={"due_at": _local(timedelta(days=2)), "reason": "x"}) as response:
        assert response.status == 403
    [(moves,)] = await floor.rows(select(Task.due_moves).where(Task.id == task["id"]))
    assert not moves

    # a supervisor stopping work himself: approved at once, the task closes
    status, page = await floor.post("sokolova", f"/tasks/{task['id']}/complete",
                                    {"next": "stop", "reason": "Клиент ликвидирован"})
    assert status == 200 and "Задача выполнена." in page
    [(approved, by)] = await floor.rows(select(ClientStop.approved_at, ClientStop.approved_by_id)
                                        .where(ClientStop.client_id == mine))
    assert approved is not None and by == floor.world.users["sokolova"]
    [(state,)] = await floor.rows(select(Task.status).where(Task.id == task["id"]))
    assert state == TaskStatus.DONE
    # ... but not for another team's client
    far_task = await floor.api("kuznetsov", "POST", f"/api/clients/{far}/tasks",
                               {"kind": "call", "due_at": _iso(timedelta(hours=1))})
    status, _ = await floor.post("sokolova", f"/tasks/{far_task['id']}/complete",
                                 {"next": "stop", "reason": "Чужой"})
    assert status == 404

    # the admin edits any team's rules; the supervisor's page shows his team's
    team_id = (await floor.api("sokolova", "GET", "/api/sales/settings", None))["team_id"]
    status, page = await floor.post("admin", "/sales/settings/rules",
                                    {"team_id": team_id, "contact_days_a": "5"})
    assert status == 200 and "пересчитаны" in page
    [(days,)] = await floor.rows(select(SalesSettings.contact_days_a)
                                 .where(SalesSettings.team_id == team_id))
    assert days == 5
    status, page = await floor.get("sokolova", "/sales/settings")
    assert 'name="contact_days_a" value="5"' in page and "Отдел продаж" in page

    # a manager's plan page: his own row only, no forms
    status, page = await floor.get("petrov", "/plan")
    assert status == 200 and "Иван Петров" in page and "Ольга Смирнова" not in page
    assert 'class="sp-row plan-form"' not in page
    status, page = await floor.get("sokolova", "/plan")
    assert "Ольга Смирнова" in page and "Алексей Кузнецов" not in page
