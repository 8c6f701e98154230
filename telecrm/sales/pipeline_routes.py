"""Editing pipelines, stages and lose reasons: the API and the /sales/settings forms.

- ``PATCH /api/pipelines/{id}`` ``{"name"?, "archived"?}``;
- ``PATCH /api/pipeline-stages/{id}`` ``{"name"?, "position"?, "task_kind"?,
  "task_title"?, "task_due_days"?, "task_assignee"?, "archived"?}``;
- ``PATCH /api/lose-reasons/{id}`` ``{"archived": true|false}``;
- ``POST /sales/settings/pipeline/{id}``, ``/sales/settings/stage/{id}`` (its fields; the
  ↑/↓ buttons move it one place), ``/sales/settings/reason/{id}``: the same from the
  settings page's forms; ``POST /sales/settings/pipeline/{id}/stages``: a new stage.

Only a supervisor or an admin; nothing is deleted, every change is audited.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.errors import DomainError, NotAllowedError
from crm_core.people.models import Role, User
from crm_core.sales.deals import DealError
from crm_core.sales.models import PipelineStage
from crm_core.sales.pipelines import (
    add_stage,
    archive_lose_reason,
    archive_pipeline,
    archive_stage,
    rename_pipeline,
    stage_to_dict,
    update_stage,
)
from crm_core.timestamps import isoformat
from telecrm.messages import http_status, russian
from telecrm.sales.deals_pages import settings_context
from telecrm.sales.pages import sales_page_user
from telecrm.web.auth import api_user
from telecrm.web.keys import WRITER_SESSIONS
from telecrm.web.params import json_object, path_id

STAGE_FIELDS = ("name", "position", "task_kind", "task_title", "task_due_days",
                "task_assignee")
FORM_FIELDS = ("name", "task_kind", "task_title", "task_due_days", "task_assignee")


def _boss_api(request: web.Request) -> User:
    user = api_user(request)
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotAllowedError("sales.pipeline.bosses_only",
                              "only a supervisor or an admin may change pipelines")
    return user


def _archived(body: dict[str, Any]) -> bool | None:
    value = body.get("archived")
    if value is not None and not isinstance(value, bool):
        raise DomainError("request.not_boolean", "archived must be true or false",
                          name="archived")
    return value


async def _apply_pipeline(session: AsyncSession, pipeline_id: int, name: str | None,
                          archived: bool | None, user: User) -> dict[str, Any]:
    pipeline = None
    if name is not None:
        pipeline = await rename_pipeline(session, pipeline_id, name, by=user,
                                         actor=user.username)
    if archived is not None:
        pipeline = await archive_pipeline(session, pipeline_id, by=user, restore=not archived,
                                          actor=user.username)
    if pipeline is None:
        raise DealError("sales.pipeline.nothing", "Nothing to change: give a name or archived.")
    return {"id": pipeline.id, "name": pipeline.name,
            "archived_at": isoformat(pipeline.archived_at)}


async def _apply_stage(session: AsyncSession, stage_id: int, values: dict[str, Any],
                       archived: bool | None, user: User) -> dict[str, Any]:
    if not values and archived is None:
        raise DealError("sales.stage.nothing", "Nothing to change.")
    stage = None
    if archived is False:
        stage = await archive_stage(session, stage_id, by=user, restore=True,
                                    actor=user.username)
    if values:
        stage = await update_stage(session, stage_id, values, by=user, actor=user.username)
    if archived:
        stage = await archive_stage(session, stage_id, by=user, actor=user.username)
    return stage_to_dict(stage)  # type: ignore[arg-type]


async def patch_pipeline(request: web.Request) -> web.Response:
    user = _boss_api(request)
    pipeline_id = path_id(request)
    body = await json_object(request)
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise DomainError("request.not_string", "name must be a string", name="name")
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        row = await _apply_pipeline(session, pipeline_id, name, _archived(body), user)
    return web.json_response(row)


async def patch_stage(request: web.Request) -> web.Response:
    user = _boss_api(request)
    stage_id = path_id(request)
    body = await json_object(request)
    unknown = set(body) - set(STAGE_FIELDS) - {"archived"}
    if unknown:
        raise DomainError("request.unknown_field", f"unknown field {sorted(unknown)[0]!r}",
                          name=sorted(unknown)[0])
    values = {k: body[k] for k in STAGE_FIELDS if k in body}
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        row = await _apply_stage(session, stage_id, values, _archived(body), user)
    return web.json_response(row)


async def patch_reason(request: web.Request) -> web.Response:
    user = _boss_api(request)
    reason_id = path_id(request)
    archived = _archived(await json_object(request))
    if archived is None:
        raise DomainError("request.boolean_required", "archived (true or false) is required",
                          name="archived")
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        reason = await archive_lose_reason(session, reason_id, by=user,
                                           restore=not archived, actor=user.username)
        row = {"id": reason.id, "name": reason.name, "active": reason.active}
    return web.json_response(row)


def _field(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else None


async def settings_edit_form(request: web.Request) -> web.Response:
    """One row's form on /sales/settings: save it, or archive it with the button."""
    user = sales_page_user(request)
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotAllowedError("sales.pipeline.bosses_only",
                              "only a supervisor or an admin may change pipelines")
    what = request.match_info["what"]
    item_id = path_id(request)
    form = await request.post()
    archived = {"archive": True, "restore": False}.get(_field(form, "action") or "")
    try:
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            if what == "pipeline":
                await _apply_pipeline(session, item_id, _field(form, "name"), archived, user)
            elif what == "stage":
                values: dict[str, Any] = {}
                if archived is None:
                    values = _stage_values(form)
                    step = {"up": -1, "down": 1}.get(_field(form, "move") or "")
                    if step is not None:
                        stage = await session.get(PipelineStage, item_id)
                        values["position"] = (stage.position if stage else 0) + step
                await _apply_stage(session, item_id, values, archived, user)
            else:
                await archive_lose_reason(session, item_id, by=user,
                                          restore=not (archived is not False),
                                          actor=user.username)
    except DomainError as exc:
        context = await settings_context(request, user, user.team_id)
        context.update(error=russian(exc))
        return aiohttp_jinja2.render_template("sales_settings.html", request, context,
                                              status=http_status(exc))
    raise web.HTTPSeeOther("/sales/settings?" + urlencode({"done": "edited"}))


def _stage_values(form: Any) -> dict[str, Any]:
    """A stage row's fields as posted (a closing stage's row has its name only)."""
    values: dict[str, Any] = {k: _field(form, k) for k in FORM_FIELDS
                              if _field(form, k) is not None}
    if "task_kind" in values:
        values["task_kind"] = values["task_kind"] or None
    return values


async def add_stage_form(request: web.Request) -> web.Response:
    """A new working stage at the end of a pipeline's working stages (before won/lost)."""
    user = sales_page_user(request)
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotAllowedError("sales.rules.not_allowed", "only a supervisor or an admin")
    pipeline_id = path_id(request)
    form = await request.post()
    try:
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            await add_stage(session, pipeline_id, _stage_values(form), by=user,
                            actor=user.username)
    except DomainError as exc:
        context = await settings_context(request, user, user.team_id)
        context.update(error=russian(exc), form={"pipeline_id": pipeline_id, **form})
        return aiohttp_jinja2.render_template("sales_settings.html", request, context,
                                              status=http_status(exc))
    raise web.HTTPSeeOther("/sales/settings?" + urlencode({"done": "stage"})
                           + f"#pipeline-{pipeline_id}")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_patch("/api/pipelines/{id}", patch_pipeline)
    router.add_patch("/api/pipeline-stages/{id}", patch_stage)
    router.add_patch("/api/lose-reasons/{id}", patch_reason)
    router.add_post("/sales/settings/{what:pipeline|stage|reason}/{id:\\d+}",
                    settings_edit_form)
    router.add_post("/sales/settings/pipeline/{id:\\d+}/stages", add_stage_form)
