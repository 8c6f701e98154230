"""Routes of the sales management layer, registered by telecrm.web.routes.

JSON API (who may do what is checked here and again by the services):
- ``GET /api/sales/settings?team_id=T``, ``PUT /api/sales/settings`` ``{"team_id"?, KEY: VALUE}``:
  the rules (a supervisor edits his team's, an admin any); a change re-judges every client;
- ``POST /api/invoices`` ``{"client_id", "number", "amount", "issued_on", "due_on"?}``: anyone
  who may open the client (managers issue invoices);
- ``POST /api/payments`` ``{"client_id", "amount", "paid_on", "invoice"?, "ref"?, "note"?}``:
  a supervisor for his team's clients, an admin for any (money comes from accounting);
- ``GET /api/clients/{id}/sales``: status, ABC, planned contact frequency, invoices,
  payments, the status and owner history;
- ``PUT /api/clients/{id}/potential`` ``{"amount"?, "items"?, "contact_every_days"?}``;
- ``POST /api/clients/reassign`` ``{"client_ids": [...], "owner_id", "reason"?}``;
- ``POST /api/clients/{id}/archive`` ``{"reason"?, "restore"?}``;
- ``POST /api/clients/{id}/tasks`` ``{"kind", "due_at", "title"?, "assignee_id"?}``: plan a task
  (not in the past; a manager for himself, a supervisor for a manager of his team);
- ``POST /api/tasks/{id}/complete`` ``{"note"?, "next"?: {"kind", "due_at", ...}}``: completes
  only when the client's work goes on (next task, another open task, or an approved stop);
- ``POST /api/tasks/{id}/reschedule`` ``{"due_at", "reason"}``;
- ``POST /api/clients/{id}/stop`` ``{"reason"}``: a manager asks, a supervisor approves;
- ``GET /api/pipelines``: pipelines, their stages and the lose reasons;
- ``POST /api/deals`` ``{"client_id", "pipeline_id", "title", "amount"?}``;
- ``POST /api/deals/{id}/move`` ``{"stage_id", "amount"?, "lose_reason_id"?, "note"?}``;
- ``GET /api/plan?month=YYYY-MM-DD``: % of the monthly plan per manager, team and company.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from crm_core.clock import local_today
from crm_core.errors import DomainError, NotAllowedError, NotFoundError
from crm_core.people import access
from crm_core.people.models import Role, User
from crm_core.sales.client_status import planned_contact_days, recompute_all, status_history
from crm_core.sales.clients import (
    MAX_BULK,
    archive_client,
    bulk_client_ids,
    check_may_reassign,
    owner_history,
    reassign_clients,
    set_contact_frequency,
    set_potential,
)
from crm_core.sales.deals import (
    create_deal,
    deal_to_dict,
    move_deal,
    plan_progress,
)
from crm_core.sales.models import Deal, LoseReason, Pipeline
from crm_core.sales.payments import (
    client_money,
    invoice_to_dict,
    payment_to_dict,
    record_invoice,
    record_payment,
)
from crm_core.sales.settings import rules_for_team, save_rules
from crm_core.sales.tasks import (
    NextTask,
    approve_stop,
    finish_task,
    plan_task,
    request_stop,
    reschedule_task,
)
from crm_core.tasks.models import Task
from crm_core.tasks.services import task_to_dict
from crm_core.timestamps import isoformat
from telecrm.sales import archive_routes as sales_archive_routes
from telecrm.sales import pages as sales_pages
from telecrm.sales import pipeline_routes as sales_pipeline_routes
from telecrm.sales import report_routes as sales_report_routes
from telecrm.web.auth import api_user
from telecrm.web.keys import SESSIONS, SETTINGS, WRITER_SESSIONS, workday_tz
from telecrm.web.params import (
    id_field,
    id_list,
    json_object,
    parse_day,
    parse_moment,
    path_id,
    query_int,
)


@contextlib.asynccontextmanager
async def _writing(request: web.Request) -> AsyncIterator[AsyncSession]:
    """A writer session in one transaction: a refused change (a DomainError, answered by
    the error middleware) writes nothing."""
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        yield session


def _sales_user(request: web.Request) -> User:
    user = api_user(request)
    if not access.may_see_clients(user):
        raise NotAllowedError("sales.role_no_clients", "your role has no access to clients")
    return user


def _int(body: dict[str, Any], name: str, *, required: bool = True) -> int | None:
    return id_field(body, name, required=required)


async def _visible(session: AsyncSession, user: User, client_id: int) -> None:
    if await access.visible_client(session, user, client_id) is None:
        raise NotFoundError("clients.not_found", "no such client")


# -- settings -------------------------------------------------------------------------------


async def get_settings(request: web.Request) -> web.Response:
    user = _sales_user(request)
    raw = request.query.get("team_id")
    team_id = user.team_id if raw is None and user.role != Role.ADMIN else None
    if raw:
        team_id = query_int(request, "team_id", 0, low=1)
    async with request.app[SESSIONS]() as session:
        rules = await rules_for_team(session, team_id)
    return web.json_response({"team_id": team_id, **rules.to_dict()})


async def put_settings(request: web.Request) -> web.Response:
    user = _sales_user(request)
    body = await json_object(request)
    team_id = _int(body, "team_id", required=False)
    values = {k: v for k, v in body.items() if k != "team_id"}
    async with _writing(request) as session:
        rules = await save_rules(session, team_id, values, by=user, actor=user.username)
        counts = await recompute_all(session, actor="settings",
                                     tz_name=request.app[SETTINGS].timezone)
    return web.json_response({"team_id": team_id, **rules.to_dict(), "recomputed": counts})


# -- money ----------------------------------------------------------------------------------


async def post_invoice(request: web.Request) -> web.Response:
    user = _sales_user(request)
    body = await json_object(request)
    client_id = _int(body, "client_id")
    async with _writing(request) as session:
        await _visible(session, user, client_id)  # type: ignore[arg-type]
        invoice = await record_invoice(
            session, client=client_id, number=body.get("number", ""),
            amount=body.get("amount", ""), issued_on=body.get("issued_on", ""),
            due_on=body.get("due_on"), user_id=user.id, actor=user.username)
        row = invoice_to_dict(invoice)
    return web.json_response(row, status=201)


async def post_payment(request: web.Request) -> web.Response:
    user = _sales_user(request)
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotAllowedError("sales.payment.bosses_only",
                              "only a supervisor or an admin records payments")
    body = await json_object(request)
    client_id = _int(body, "client_id")
    async with _writing(request) as session:
        await _visible(session, user, client_id)  # type: ignore[arg-type]
        payment = await record_payment(
            session, client=client_id, amount=body.get("amount", ""),
            paid_on=body.get("paid_on", ""), invoice=body.get("invoice"),
            ref=body.get("ref"), note=body.get("note"), source="api", user_id=user.id,
            actor=user.username)
        row = payment_to_dict(payment)
    return web.json_response(row, status=201)


# -- clients --------------------------------------------------------------------------------


async def client_sales(request: web.Request) -> web.Response:
    user = _sales_user(request)
    client_id = path_id(request)
    async with request.app[SESSIONS]() as session:
        client = await access.visible_client(session, user, client_id)
        if client is None:
            raise NotFoundError("clients.not_found", "no such client")
        owner_team = client.owner.team_id if client.owner is not None else None
        rules = await rules_for_team(session, owner_team)
        body = {
            "id": client.id, "status": client.status,
            "status_since": isoformat(client.status_since),
            "owner_id": client.owner_id, "owner_since": isoformat(client.owner_since),
            "annual_potential": (str(client.annual_potential)
                                 if client.annual_potential is not None else None),
            "annual_potential_items": client.annual_potential_items,
            "abc_group": client.abc_group, "qualified_at": isoformat(client.qualified_at),
            "contact_every_days": planned_contact_days(client, rules),
            "archived_at": isoformat(client.archived_at),
            **await client_money(session, client_id),
            "status_history": await status_history(session, client_id),
            "owner_history": await owner_history(session, client_id),
        }
    return web.json_response(body)


async def put_potential(request: web.Request) -> web.Response:
    user = _sales_user(request)
    client_id = path_id(request)
    body = await json_object(request)
    async with _writing(request) as session:
        await _visible(session, user, client_id)
        client = None
        if "amount" in body:
            client = await set_potential(session, client_id, body["amount"],
                                         items=_int(body, "items", required=False),
                                         by=user, actor=user.username)
        if "contact_every_days" in body:
            client = await set_contact_frequency(
                session, client_id, _int(body, "contact_every_days", required=False),
                by=user, actor=user.username)
        if client is None:
            raise DomainError("sales.client.potential_nothing",
                              "give amount and/or contact_every_days")
        row = {"id": client.id, "annual_potential": str(client.annual_potential),
               "abc_group": client.abc_group, "contact_every_days": client.contact_every_days}
    return web.json_response(row)


async def post_reassign(request: web.Request) -> web.Response:
    user = _sales_user(request)
    body = await json_object(request)
    # Parsing is bounded (ten pages' worth); the bulk rule then says how many clients one
    # request may change, before the role and before any query.
    ids = bulk_client_ids(id_list(body, "client_ids", max_items=10 * MAX_BULK))
    check_may_reassign(user)
    owner_id = _int(body, "owner_id", required=False)
    reason = _text(body, "reason")
    async with _writing(request) as session:
        if await access.unopenable_clients(session, user, ids):
            raise NotFoundError("clients.not_found", "no such client")
        moved = await reassign_clients(session, ids, owner_id, by=user, reason=reason,
                                       actor=user.username)
    return web.json_response({"reassigned": len(moved), "owner_id": owner_id})


async def post_archive(request: web.Request) -> web.Response:
    user = _sales_user(request)
    client_id = path_id(request)
    body = await json_object(request)
    reason = _text(body, "reason")
    async with _writing(request) as session:
        await _visible(session, user, client_id)
        client = await archive_client(session, client_id, by=user, reason=reason,
                                      restore=body.get("restore") is True,
                                      actor=user.username)
        row = {"id": client.id, "archived_at": isoformat(client.archived_at)}
    return web.json_response(row)


# -- tasks ----------------------------------------------------------------------------------


def _moment(request: web.Request, body: dict[str, Any], name: str) -> Any:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise DomainError("request.moment_required",
                          f"{name} is required (YYYY-MM-DD or an ISO 8601 time)", name=name)
    return parse_moment(value, name, workday_tz(request))


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise DomainError("request.not_string", f"{name} must be a string", name=name)
    return value


async def _task(session: AsyncSession, user: User, task_id: int) -> Task:
    task = await session.scalar(select(Task).where(Task.id == task_id,
                                                   await access.tasks_filter(session, user)))
    if task is None:
        raise NotFoundError("tasks.not_found", "no such task")
    return task


async def post_client_task(request: web.Request) -> web.Response:
    user = _sales_user(request)
    client_id = path_id(request)
    body = await json_object(request)
    kind = _text(body, "kind") or ""
    due = _moment(request, body, "due_at")
    async with _writing(request) as session:
        await _visible(session, user, client_id)
        task = await plan_task(session, client_id=client_id, kind=kind, due_at=due, by=user,
                               title=_text(body, "title"),
                               assignee_id=_int(body, "assignee_id", required=False),
                               actor=user.username, future_only=True)
        row = task_to_dict(task)
    return web.json_response(row, status=201)


async def post_complete(request: web.Request) -> web.Response:
    user = _sales_user(request)
    task_id = path_id(request)
    body = await json_object(request)
    following = body.get("next")
    next_task = None
    if following is not None:
        if not isinstance(following, dict):
            raise DomainError("request.next_task_object", "next must be an object {kind, due_at}")
        next_task = NextTask(kind=_text(following, "kind") or "",
                             due_at=_moment(request, following, "due_at"),
                             title=_text(following, "title"),
                             assignee_id=_int(following, "assignee_id", required=False))
    async with _writing(request) as session:
        task = await _task(session, user, task_id)
        done, created = await finish_task(session, task, by=user, next_task=next_task,
                                          note=_text(body, "note"), actor=user.username)
        row = {"task": task_to_dict(done), "next": task_to_dict(created) if created else None}
    return web.json_response(row)


async def post_reschedule(request: web.Request) -> web.Response:
    user = _sales_user(request)
    task_id = path_id(request)
    body = await json_object(request)
    due = _moment(request, body, "due_at")
    async with _writing(request) as session:
        task = await _task(session, user, task_id)
        task = await reschedule_task(session, task, due, _text(body, "reason") or "",
                                     by=user, actor=user.username)
        row = {**task_to_dict(task), "due_moves": task.due_moves}
    return web.json_response(row)


async def post_stop(request: web.Request) -> web.Response:
    user = _sales_user(request)
    client_id = path_id(request)
    body = await json_object(request)
    reason = _text(body, "reason") or ""
    async with _writing(request) as session:
        await _visible(session, user, client_id)
        if user.role == Role.MANAGER:
            stop = await request_stop(session, client_id, reason, by=user,
                                      actor=user.username)
        else:
            stop = await approve_stop(session, client_id, reason, by=user,
                                      actor=user.username)
        row = {"id": stop.id, "client_id": client_id, "approved": stop.approved_at is not None,
               "request_task_id": stop.request_task_id}
    return web.json_response(row, status=201)


# -- deals ----------------------------------------------------------------------------------


async def get_pipelines(request: web.Request) -> web.Response:
    _sales_user(request)
    async with request.app[SESSIONS]() as session:
        pipelines = await session.scalars(select(Pipeline).where(Pipeline.archived_at.is_(None))
                                          .options(selectinload(Pipeline.stages))
                                          .order_by(Pipeline.id))
        body = {"pipelines": [{"id": p.id, "name": p.name, "stages": [
            {"id": s.id, "position": s.position, "name": s.name, "code": s.code,
             "outcome": s.outcome, "task_kind": s.task_kind, "task_due_days": s.task_due_days,
             "task_assignee": s.task_assignee}
            for s in p.stages if s.archived_at is None]} for p in pipelines],
            "lose_reasons": [{"id": r.id, "name": r.name} for r in await session.scalars(
                select(LoseReason).where(LoseReason.active.is_(True)).order_by(LoseReason.name))]}
    return web.json_response(body)


async def post_deal(request: web.Request) -> web.Response:
    user = _sales_user(request)
    body = await json_object(request)
    client_id = _int(body, "client_id")
    async with _writing(request) as session:
        await _visible(session, user, client_id)  # type: ignore[arg-type]
        deal = await create_deal(session, client_id=client_id,  # type: ignore[arg-type]
                                 pipeline_id=_int(body, "pipeline_id"),  # type: ignore[arg-type]
                                 title=_text(body, "title") or "", amount=body.get("amount"),
                                 owner_id=_int(body, "owner_id", required=False), by=user,
                                 actor=user.username, tz_name=request.app[SETTINGS].timezone)
        row = deal_to_dict(deal)
    return web.json_response(row, status=201)


async def post_move(request: web.Request) -> web.Response:
    user = _sales_user(request)
    deal_id = path_id(request)
    body = await json_object(request)
    async with _writing(request) as session:
        deal = await session.get(Deal, deal_id)
        if deal is None or deal.archived_at is not None:
            raise NotFoundError("sales.deal.not_visible", "no such deal")
        await _visible(session, user, deal.client_id)
        if user.role == Role.MANAGER and deal.owner_id != user.id:
            raise NotAllowedError("sales.deal.others", "this deal is another manager's")
        change = await move_deal(session, deal, _int(body, "stage_id"),  # type: ignore[arg-type]
                                 by=user, amount=body.get("amount"),
                                 lose_reason_id=_int(body, "lose_reason_id", required=False),
                                 note=_text(body, "note"), actor=user.username,
                                 tz_name=request.app[SETTINGS].timezone)
        row = {**deal_to_dict(deal), "task_id": change.task_id}
    return web.json_response(row)


async def get_plan(request: web.Request) -> web.Response:
    user = _sales_user(request)
    tz = workday_tz(request)
    raw = request.query.get("month")
    month = parse_day(raw, "month") if raw else local_today(tz)
    async with request.app[SESSIONS]() as session:
        managers = await access.visible_managers(session, user)
        body = await plan_progress(session, month, managers, tz)
    return web.json_response(body)


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this feature's pages and API routes."""
    router.add_get("/api/sales/settings", get_settings)
    router.add_put("/api/sales/settings", put_settings)
    router.add_post("/api/invoices", post_invoice)
    router.add_post("/api/payments", post_payment)
    router.add_post("/api/clients/reassign", post_reassign)
    router.add_get("/api/clients/{id}/sales", client_sales)
    router.add_put("/api/clients/{id}/potential", put_potential)
    router.add_post("/api/clients/{id}/archive", post_archive)
    router.add_post("/api/clients/{id}/tasks", post_client_task)
    router.add_post("/api/clients/{id}/stop", post_stop)
    router.add_post("/api/tasks/{id}/complete", post_complete)
    router.add_post("/api/tasks/{id}/reschedule", post_reschedule)
    router.add_get("/api/pipelines", get_pipelines)
    router.add_post("/api/deals", post_deal)
    router.add_post("/api/deals/{id}/move", post_move)
    router.add_get("/api/plan", get_plan)
    sales_pipeline_routes.add_routes(router)
    sales_archive_routes.add_routes(router)
    sales_report_routes.add_routes(router)
    sales_pages.add_routes(router)
