"""The deals board, the monthly sales plan and the sales rules pages.

- ``GET /deals?pipeline=ID&client=ID``: a board per pipeline (columns = stages, cards =
  deals with client, amount, manager, days in stage); with ``client`` a form opens a
  new deal for that client (the link from the client card);
- ``POST /deals/new``, ``POST /deals/{id}/move`` (won: amount; lost: a reason);
- ``GET /plan?month=YYYY-MM``, ``POST /plan``: % done for company, team and manager;
  a supervisor sets his managers' plans, an admin anyone's;
- ``GET /sales/settings?team=ID``, ``POST /sales/settings/rules|reasons|pipelines``; a new
  pipeline's stages come as rows of the form (name, kind, the task it creates).

Rules, role checks and audit live in :mod:`crm_core.sales.deals` and
:mod:`crm_core.sales.settings`; a page only reads forms and shows outcomes.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from crm_core.activities.outcomes import outcome_list
from crm_core.clients.models import Client
from crm_core.clock import local_now, local_today
from crm_core.errors import DomainError, NotAllowedError, NotFoundError
from crm_core.people import access
from crm_core.people.models import Role, Team, User
from crm_core.sales.client_status import recompute_all
from crm_core.sales.deals import (
    StageSpec,
    add_lose_reason,
    create_deal,
    create_pipeline,
    move_deal,
    plan_progress,
    set_plan,
)
from crm_core.sales.models import Deal, DealStatus, LoseReason, Pipeline
from crm_core.sales.settings import (
    RULE_FIELDS,
    rules_for_team,
    save_rules,
)
from crm_core.timestamps import ensure_utc
from telecrm.messages import http_status, russian
from telecrm.sales.pages import sales_page_user
from telecrm.web.keys import SESSIONS, SETTINGS, WRITER_SESSIONS, workday_tz
from telecrm.web.params import path_id

DONE = {"created": "Сделка создана, задача первого этапа поставлена.",
        "moved": "Сделка перенесена, задача этапа поставлена.",
        "plan": "План сохранён.", "rules": "Правила сохранены, статусы клиентов пересчитаны.",
        "reason": "Причина проигрыша добавлена.", "pipeline": "Воронка создана.",
        "edited": "Изменения сохранены, записаны в журнал.",
        "outcomes": "Список итогов звонков сохранён.",
        "stage": "Этап добавлен, записан в журнал."}
RULE_LABELS = {
    "new_period_days": "«Новый» клиент: дней после первой оплаты",
    "lost_after_days": "«Потерянный»: дней без оплаты и контакта",
    "max_potential_days": "Макс. дней «потенциального» у менеджера",
    "max_new_days": "Макс. дней «нового» у менеджера",
    "abc_a_min": "Группа A: потенциал от, ₽/год", "abc_b_min": "Группа B: потенциал от, ₽/год",
    "contact_days_a": "Контакт с A не реже, дней", "contact_days_b": "Контакт с B не реже, дней",
    "contact_days_c": "Контакт с C не реже, дней",
    "contact_days_none": "Контакт без группы не реже, дней",
}


def _field(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _id(form: Any, name: str) -> int | None:
    value = _field(form, name)
    return int(value) if value.isdigit() and len(value) < 10 else None


def _boss(user: User) -> None:
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotAllowedError("sales.bosses_only", "only a supervisor or an admin may do this")


# -- the deals board ------------------------------------------------------------------------


async def _deal_owners(session: Any, user: User) -> list[int] | None:
    """Whose deals ``user`` sees on the board (None: everyone's)."""
    if user.role == Role.ADMIN:
        return None
    return [m.id for m in await access.team_members(session, user)]


async def board_context(request: web.Request, user: User) -> dict[str, Any]:
    now = local_now(workday_tz(request))
    async with request.app[SESSIONS]() as session:
        pipelines = list(await session.scalars(
            select(Pipeline).where(Pipeline.archived_at.is_(None))
            .options(selectinload(Pipeline.stages)).order_by(Pipeline.id)))
        raw = request.query.get("pipeline", "")
        current = next((p for p in pipelines if raw.isdigit() and p.id == int(raw)),
                       pipelines[0] if pipelines else None)
        columns: list[dict[str, Any]] = []
        if current is not None:
            stmt = (select(Deal, Client.name).join(Client, Client.id == Deal.client_id)
                    .where(Deal.pipeline_id == current.id, Deal.archived_at.is_(None),
                           await access.clients_filter(session, user)))
            owners = await _deal_owners(session, user)
            if owners is not None:
                stmt = stmt.where(Deal.owner_id.in_(owners))
            deals = (await session.execute(stmt.order_by(Deal.stage_entered_at))).all()
            names = {u.id: u.name for u in await session.scalars(select(User))}
            for stage in current.stages:
                if stage.archived_at is not None:
                    continue
                cards = [{"deal": d, "client": name, "owner": names.get(d.owner_id or 0, "—"),
                          "days": (now - ensure_utc(d.stage_entered_at)).days}
                         for d, name in deals if d.stage_id == stage.id]
                columns.append({"stage": stage, "cards": cards})
        reasons = list(await session.scalars(select(LoseReason).where(
            LoseReason.active.is_(True)).order_by(LoseReason.name)))
        client = None
        client_raw = request.query.get("client", "")
        if client_raw.isdigit() and len(client_raw) < 10:
            client = await access.visible_client(session, user, int(client_raw))
    return {"title": "Сделки", "pipelines": pipelines, "current": current, "columns": columns,
            "reasons": reasons, "new_client": client, "OPEN": DealStatus.OPEN.value,
            "error": None, "done": DONE.get(request.query.get("done", ""))}


async def deals_page(request: web.Request) -> web.Response:
    user = sales_page_user(request)
    return aiohttp_jinja2.render_template("sales_deals.html", request,
                                          await board_context(request, user))


async def _board_refused(request: web.Request, user: User, exc: DomainError) -> web.Response:
    context = await board_context(request, user)
    context["error"] = russian(exc)
    return aiohttp_jinja2.render_template("sales_deals.html", request, context,
                                          status=http_status(exc))


async def new_deal_form(request: web.Request) -> web.Response:
    user = sales_page_user(request)
    form = await request.post()
    client_id, pipeline_id = _id(form, "client_id"), _id(form, "pipeline_id")
    try:
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            if client_id is None or await access.visible_client(session, user,
                                                                client_id) is None:
                raise NotFoundError("clients.not_found", "no such client")
            deal = await create_deal(session, client_id=client_id, pipeline_id=pipeline_id or 0,
                                     title=_field(form, "title"),
                                     amount=_field(form, "amount") or None, by=user,
                                     actor=user.username,
                                     tz_name=request.app[SETTINGS].timezone)
            pipeline_id = deal.pipeline_id
    except DomainError as exc:
        return await _board_refused(request, user, exc)
    raise web.HTTPSeeOther("/deals?" + urlencode({"pipeline": pipeline_id, "done": "created"}))


async def move_form(request: web.Request) -> web.Response:
    user = sales_page_user(request)
    deal_id = path_id(request)
    form = await request.post()
    try:
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            deal = await session.get(Deal, deal_id)
            if deal is None or deal.archived_at is not None or await access.visible_client(
                    session, user, deal.client_id) is None:
                raise NotFoundError("sales.deal.not_visible", "no such deal")
            if user.role == Role.MANAGER and deal.owner_id != user.id:
                raise NotAllowedError("sales.deal.others", "this deal is another manager's")
            pipeline_id = deal.pipeline_id
            await move_deal(session, deal, _id(form, "stage_id") or 0, by=user,
                            amount=_field(form, "amount") or None,
                            lose_reason_id=_id(form, "lose_reason_id"),
                            note=_field(form, "note") or None, actor=user.username,
                            tz_name=request.app[SETTINGS].timezone)
    except DomainError as exc:
        return await _board_refused(request, user, exc)
    raise web.HTTPSeeOther("/deals?" + urlencode({"pipeline": pipeline_id, "done": "moved"}))


# -- the monthly plan -----------------------------------------------------------------------


def _month(request: web.Request, raw: str | None) -> date:
    today = local_today(workday_tz(request))
    if raw:
        try:
            return datetime.strptime(raw[:7], "%Y-%m").date()
        except ValueError:
            pass
    return today.replace(day=1)


async def plan_context(request: web.Request, user: User, month: date) -> dict[str, Any]:
    async with request.app[SESSIONS]() as session:
        managers = await access.visible_managers(session, user)
        progress = await plan_progress(session, month, managers, workday_tz(request))
        teams = {t.id: t.name for t in await session.scalars(select(Team))}
    return {"title": "План продаж", "progress": progress, "teams": teams,
            "month": month.strftime("%Y-%m"), "may_edit": user.role in (Role.SUPERVISOR,
                                                                        Role.ADMIN),
            "error": None, "done": DONE.get(request.query.get("done", ""))}


async def plan_page(request: web.Request) -> web.Response:
    user = sales_page_user(request)
    month = _month(request, request.query.get("month"))
    return aiohttp_jinja2.render_template("sales_plan.html", request,
                                          await plan_context(request, user, month))


async def plan_form(request: web.Request) -> web.Response:
    user = sales_page_user(request)
    _boss(user)
    form = await request.post()
    month = _month(request, _field(form, "month"))
    try:
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            await set_plan(session, _id(form, "user_id") or 0, month, _field(form, "kind"),
                           _field(form, "target"), by=user, actor=user.username)
    except DomainError as exc:
        context = await plan_context(request, user, month)
        context["error"] = russian(exc)
        return aiohttp_jinja2.render_template("sales_plan.html", request, context,
                                              status=http_status(exc))
    raise web.HTTPSeeOther("/plan?" + urlencode({"month": month.strftime("%Y-%m"),
                                                 "done": "plan"}))


# -- a new pipeline: its stages as rows of a form ----------------------------------------------

STAGE_ROW_FIELDS = ("stage_name", "stage_outcome", "stage_task_kind", "stage_task_title",
                    "stage_days", "stage_assignee")
STAGE_KINDS = {"open": "Рабочий этап", "won": "Сделка выиграна", "lost": "Сделка проиграна"}
NEW_PIPELINE_ROWS = [
    {"name": "", "outcome": "open", "task_kind": "call", "task_title": "", "days": "1",
     "assignee": "owner"},
    {"name": "", "outcome": "open", "task_kind": "call", "task_title": "", "days": "1",
     "assignee": "owner"},
    {"name": "Выиграна", "outcome": "won", "task_kind": "", "task_title": "", "days": "1",
     "assignee": "owner"},
    {"name": "Проиграна", "outcome": "lost", "task_kind": "", "task_title": "", "days": "1",
     "assignee": "owner"},
]


class StageFormError(DomainError):
    """A row of the new pipeline's stages that cannot be a stage."""


def stage_rows(form: Any) -> list[dict[str, str]]:
    """The stage rows as posted, in the order shown (each row posts each field once)."""
    columns = [[v.strip() if isinstance(v, str) else "" for v in form.getall(name, [])]
               for name in STAGE_ROW_FIELDS]
    count = max(len(c) for c in columns)
    if any(len(c) != count for c in columns):
        raise StageFormError("sales.stage_form.incomplete", "the stage rows are incomplete")
    keys = ("name", "outcome", "task_kind", "task_title", "days", "assignee")
    return [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]


def stage_specs(form: Any) -> list[StageSpec]:
    """Stages of a new pipeline from the form's rows; rows without a name are left out."""
    specs = []
    for row in stage_rows(form):
        name = row["name"][:200]
        if not name:
            continue
        outcome = row["outcome"]
        if outcome not in STAGE_KINDS:
            raise StageFormError("sales.stage_form.kind", "no stage kind", name=name)
        if outcome != "open":
            specs.append(StageSpec(name, outcome=outcome))
            continue
        kind = row["task_kind"] or None
        if kind is not None and kind not in ("call", "email", "meeting", "other"):
            raise StageFormError("sales.stage_form.task", "no task kind", name=name)
        days = row["days"] or "1"
        if not days.isdigit() or not 0 <= int(days) <= 365:
            raise StageFormError("sales.stage_form.days", "bad task days", name=name)
        if row["assignee"] not in ("owner", "supervisor"):
            raise StageFormError("sales.stage_form.assignee", "no assignee", name=name)
        specs.append(StageSpec(name, task_kind=kind, task_due_days=int(days),
                               task_assignee=row["assignee"],
                               task_title=row["task_title"][:300] or None))
    return specs


# -- the rules ------------------------------------------------------------------------------


def _team(user: User, raw: str | None) -> int | None:
    """The team whose rules are shown: a supervisor's own; an admin picks (empty: company)."""
    if user.role != Role.ADMIN:
        return user.team_id
    return int(raw) if raw and raw.isdigit() and len(raw) < 10 else None


async def settings_context(request: web.Request, user: User, team_id: int | None
                           ) -> dict[str, Any]:
    async with request.app[SESSIONS]() as session:
        rules = (await rules_for_team(session, team_id)).to_dict()
        teams = {t.id: t.name for t in await session.scalars(select(Team).order_by(Team.name))}
        # Archived pipelines, stages and reasons are listed too, so they can be restored.
        pipelines = list(await session.scalars(
            select(Pipeline).options(selectinload(Pipeline.stages))
            .order_by(Pipeline.archived_at.is_not(None), Pipeline.id)))
        reasons = list(await session.scalars(select(LoseReason).order_by(
            LoseReason.active.desc(), LoseReason.name)))
        outcomes = await outcome_list(session, with_archived=True)
    return {"title": "Правила продаж", "rules": rules, "labels": RULE_LABELS,
            "fields": RULE_FIELDS, "teams": teams, "team_id": team_id,
            "is_admin": user.role == Role.ADMIN, "pipelines": pipelines, "reasons": reasons,
            "outcomes": outcomes, "stage_kinds": STAGE_KINDS, "new_stages": NEW_PIPELINE_ROWS,
            "error": None, "form": {}, "done": DONE.get(request.query.get("done", ""))}


async def settings_page(request: web.Request) -> web.Response:
    user = sales_page_user(request)
    _boss(user)
    team_id = _team(user, request.query.get("team"))
    return aiohttp_jinja2.render_template("sales_settings.html", request,
                                          await settings_context(request, user, team_id))


async def settings_form(request: web.Request) -> web.Response:
    user = sales_page_user(request)
    _boss(user)
    what = request.match_info["what"]
    form = await request.post()
    team_id = _team(user, _field(form, "team_id"))
    try:
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            if what == "rules":
                values = {k: _field(form, k) for k in RULE_FIELDS if _field(form, k)}
                await save_rules(session, team_id, values, by=user, actor=user.username)
                await recompute_all(session, actor="settings",
                                    tz_name=request.app[SETTINGS].timezone)
            elif what == "reasons":
                await add_lose_reason(session, _field(form, "name"), by=user,
                                      actor=user.username)
            else:
                await create_pipeline(session, _field(form, "name"), stage_specs(form),
                                      by=user, actor=user.username)
    except DomainError as exc:
        context = await settings_context(request, user, team_id)
        context.update(error=russian(exc), form=dict(form))
        if what == "pipelines":
            context["new_stages"] = stage_rows(form)
        return aiohttp_jinja2.render_template("sales_settings.html", request, context,
                                              status=http_status(exc))
    done = {"rules": "rules", "reasons": "reason"}.get(what, "pipeline")
    query = {"done": done, **({"team": team_id} if team_id is not None else {})}
    raise web.HTTPSeeOther("/sales/settings?" + urlencode(query))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/deals", deals_page)
    router.add_post("/deals/new", new_deal_form)
    router.add_post("/deals/{id:\\d+}/move", move_form)
    router.add_get("/plan", plan_page)
    router.add_post("/plan", plan_form)
    router.add_get("/sales/settings", settings_page)
    router.add_post("/sales/settings/{what:rules|reasons|pipelines}", settings_form)
