"""The sales floor's tasks page: open tasks, complete with the next one, reschedule, stops.

- ``GET /tasks?manager=ID``: the open tasks the user may see (a manager his own, a
  supervisor his team's, filterable by manager), overdue ones flagged, today's marked;
  for a supervisor (and an admin) the queue of requests to stop work with a client;
- ``POST /tasks/{id}/complete``: ``next=plan`` with ``kind``, ``due_at``, ``title``
  (the next planned task), or ``next=stop`` with ``reason`` (a manager asks his
  supervisor; a supervisor's own stop is approved at once and the task closes);
- ``POST /tasks/{id}/reschedule``: ``due_at`` and a required ``reason``;
- ``POST /tasks/stops/{id}/approve|refuse``: the supervisor decides.

The rules, role checks and audit are in :mod:`crm_core.sales.tasks`; this module only
reads the forms and shows the outcome (a refusal as its sentence from ``telecrm.messages``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select

from crm_core.clients.models import Client
from crm_core.clock import local_now
from crm_core.errors import DomainError, NotAllowedError, NotFoundError
from crm_core.people import access
from crm_core.people.models import Role, User
from crm_core.sales.models import ClientStop
from crm_core.sales.tasks import (
    PLANNABLE_KINDS,
    NextTask,
    TaskRuleError,
    active_stop,
    approve_stop,
    finish_task,
    pending_stops,
    refuse_stop,
    request_stop,
    reschedule_task,
)
from crm_core.tasks.models import Task, TaskStatus
from crm_core.timestamps import ensure_utc
from telecrm.messages import http_status, russian
from telecrm.web.auth import page_user
from telecrm.web.keys import SESSIONS, WRITER_SESSIONS, workday_tz
from telecrm.web.params import parse_moment, path_id

DONE = {"completed": "Задача выполнена, следующая запланирована.",
        "closed": "Задача выполнена.",
        "asked": "Запрос на прекращение работы отправлен руководителю; задача закроется "
                 "после согласования.",
        "moved": "Срок перенесён.", "approved": "Прекращение работы согласовано.",
        "refused": "Запрос отклонён: работа с клиентом продолжается."}


def sales_page_user(request: web.Request) -> User:
    user = page_user(request)
    if not access.may_see_tasks(user):
        raise NotAllowedError("sales.role_no_work", "your role has no access to sales work")
    return user


def form_moment(request: web.Request, value: Any, field: str) -> datetime:
    """A ``datetime-local`` (or date) field in the workday timezone (``field`` names it in
    the refusal: a key of ``telecrm.messages.FIELDS``)."""
    if not isinstance(value, str) or not value.strip():
        raise TaskRuleError("sales.task.due_required", f"{field} is required", field=field)
    try:
        return parse_moment(value.strip(), "due_at", workday_tz(request))
    except DomainError:
        raise TaskRuleError("sales.task.due_invalid", f"{field} is not a date",
                            field=field) from None


async def _task(session: Any, user: User, task_id: int) -> Task:
    task = await session.scalar(select(Task).where(Task.id == task_id,
                                                   await access.tasks_filter(session, user)))
    if task is None:
        raise NotFoundError("tasks.not_found", "no such task")
    return task


async def _stops_scope(session: Any, user: User) -> Any:
    """The clients whose stop requests ``user`` decides (None: every client)."""
    if user.role == Role.ADMIN:
        return None
    ids = [m.id for m in await access.team_members(session, user)]
    return Client.owner_id.in_(ids)


async def page_context(request: web.Request, user: User) -> dict[str, Any]:
    tz = workday_tz(request)
    now = local_now(tz)
    manager_raw = request.query.get("manager", "")
    async with request.app[SESSIONS]() as session:
        managers = (await access.visible_managers(session, user)
                    if user.role != Role.MANAGER else [])
        stmt = (select(Task, Client.name).outerjoin(Client, Client.id == Task.client_id)
                .where(Task.status == TaskStatus.OPEN.value,
                       await access.tasks_filter(session, user)))
        if user.role == Role.MANAGER:
            stmt = stmt.where(Task.assignee_id == user.id)
        if manager_raw.isdigit() and int(manager_raw) in {m.id for m in managers}:
            stmt = stmt.where(Task.assignee_id == int(manager_raw))
        stops: list[ClientStop] = []
        if user.role in (Role.SUPERVISOR, Role.ADMIN):
            stops = await pending_stops(session, await _stops_scope(session, user))
        request_ids = {s.request_task_id for s in stops}
        rows = (await session.execute(stmt.order_by(Task.due_at.is_(None), Task.due_at,
                                                    Task.id))).all()
        # Only the people and clients the page names: a floor has hundreds of users.
        people = {task.assignee_id for task, _ in rows} | {s.requested_by_id for s in stops}
        people.discard(None)
        names: dict[int, str] = dict((await session.execute(
            select(User.id, User.name).where(User.id.in_(people)))).all()
            ) if people else {}
        clients: dict[int, str] = dict((await session.execute(
            select(Client.id, Client.name).where(Client.id.in_([s.client_id for s in stops])))
            ).all()) if stops else {}
    today_end = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    tasks = []
    for task, client_name in rows:
        if task.id in request_ids:
            continue
        due = ensure_utc(task.due_at) if task.due_at else None
        tasks.append({"task": task, "client": client_name,
                      "assignee": names.get(task.assignee_id or 0, "—"),
                      "overdue": due is not None and due < now,
                      "today": due is not None and now <= due < today_end})
    default_due = (now + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    return {"title": "Задачи", "tasks": tasks, "managers": managers,
            "manager_id": int(manager_raw) if manager_raw.isdigit() else None,
            "stops": [{"stop": s, "client": clients.get(s.client_id, "—"),
                       "by": names.get(s.requested_by_id or 0, "—")} for s in stops],
            "kinds": [k.value for k in PLANNABLE_KINDS],
            "default_due": default_due.strftime("%Y-%m-%dT%H:%M"),
            "overdue_count": sum(1 for t in tasks if t["overdue"]),
            "today_count": sum(1 for t in tasks if t["today"]),
            "error": None, "done": DONE.get(request.query.get("done", ""))}


async def tasks_page(request: web.Request) -> web.Response:
    user = sales_page_user(request)
    return aiohttp_jinja2.render_template("sales_tasks.html", request,
                                          await page_context(request, user))


async def _refused(request: web.Request, user: User, exc: DomainError) -> web.Response:
    context = await page_context(request, user)
    context["error"] = russian(exc)
    return aiohttp_jinja2.render_template("sales_tasks.html", request, context,
                                          status=http_status(exc))


def _back(request: web.Request, done: str) -> web.HTTPSeeOther:
    keep = {k: v for k, v in request.query.items() if k == "manager"}
    return web.HTTPSeeOther("/tasks?" + urlencode({**keep, "done": done}))


def _field(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


async def complete_form(request: web.Request) -> web.Response:
    user = sales_page_user(request)
    task_id = path_id(request)
    form = await request.post()
    try:
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            task = await _task(session, user, task_id)
            if _field(form, "next") == "stop":
                if task.client_id is None:
                    raise TaskRuleError("sales.task.no_client", "This task has no client.")
                reason = _field(form, "reason")
                if await active_stop(session, task.client_id) is not None:
                    await finish_task(session, task, by=user, note=reason or None,
                                      actor=user.username)
                    done = "closed"
                elif user.role == Role.MANAGER:
                    if await pending_stops(session, Client.id == task.client_id):
                        raise TaskRuleError("sales.task.stop_pending",
                                            "A request to stop work with this client is pending.")
                    await request_stop(session, task.client_id, reason, by=user,
                                       actor=user.username)
                    done = "asked"
                else:
                    if not reason:
                        raise TaskRuleError("sales.task.stop_needs_reason",
                                            "Say why work with the client should stop.")
                    await approve_stop(session, task.client_id, reason, by=user,
                                       actor=user.username, keep_task_id=task.id)
                    await finish_task(session, task, by=user, note=reason,
                                      actor=user.username)
                    done = "closed"
            else:
                following = None
                if task.client_id is not None:
                    following = NextTask(kind=_field(form, "kind"),
                                         due_at=form_moment(request, form.get("due_at"),
                                                            "next_due_at"),
                                         title=_field(form, "title") or None)
                await finish_task(session, task, by=user, next_task=following,
                                  note=_field(form, "note") or None, actor=user.username)
                done = "completed" if following else "closed"
    except DomainError as exc:
        return await _refused(request, user, exc)
    raise _back(request, done)


async def reschedule_form(request: web.Request) -> web.Response:
    user = sales_page_user(request)
    task_id = path_id(request)
    form = await request.post()
    try:
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            task = await _task(session, user, task_id)
            due = form_moment(request, form.get("due_at"), "new_due_at")
            await reschedule_task(session, task, due, _field(form, "reason"), by=user,
                                  actor=user.username)
    except DomainError as exc:
        return await _refused(request, user, exc)
    raise _back(request, "moved")


async def stop_form(request: web.Request) -> web.Response:
    user = sales_page_user(request)
    stop_id = path_id(request)
    decision = request.match_info["decision"]
    form = await request.post()
    reason = _field(form, "reason")
    try:
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            scope = await _stops_scope(session, user) if user.role != Role.MANAGER else None
            stmt = select(ClientStop).join(Client, Client.id == ClientStop.client_id).where(
                ClientStop.id == stop_id)
            if scope is not None:
                stmt = stmt.where(scope)
            stop = await session.scalar(stmt)
            if stop is None and user.role != Role.MANAGER:
                raise NotFoundError("sales.task.stop_not_found", "no such request")
            if decision == "approve":
                await approve_stop(session, stop.client_id if stop else 0, reason, by=user,
                                   actor=user.username)
            else:
                await refuse_stop(session, stop_id, reason, by=user, actor=user.username)
    except DomainError as exc:
        return await _refused(request, user, exc)
    raise _back(request, "approved" if decision == "approve" else "refused")


def add_routes(router: web.UrlDispatcher) -> None:
    """The tasks page, and the deals, plan and rules pages of :mod:`sales_pages_deals`."""
    from telecrm.sales import deals_pages as sales_pages_deals

    router.add_get("/tasks", tasks_page)
    router.add_post("/tasks/{id:\\d+}/complete", complete_form)
    router.add_post("/tasks/{id:\\d+}/reschedule", reschedule_form)
    router.add_post("/tasks/stops/{id:\\d+}/{decision:approve|refuse}", stop_form)
    sales_pages_deals.add_routes(router)
