"""Routes of presence, registered by telecrm.web.routes.

- ``GET /api/presence``: the reasons, the user's own state and his visible managers';
- ``POST /api/presence`` ``{"state": "present" | <reason id>, "user_id"?}``: change it
  (himself; a supervisor his team's; an admin anyone's), pause or unpause his queues;
- ``GET /api/presence/report?date=D``: per manager talk time and seconds in each state;
- ``GET/POST /api/presence/reasons``, ``PATCH /api/presence/reasons/{id}``: the reasons;
- ``GET /presence``: the supervisor's live view and the day's report, with the reasons'
  form (``POST /presence/reasons``, ``POST /presence/reasons/{id}``).
"""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from crm_core.clock import local_today
from crm_core.errors import DomainError, NotAllowedError, NotFoundError
from crm_core.people import access
from crm_core.people.models import Role, User
from crm_core.presence import services
from crm_core.presence.services import PRESENT, PRESENT_KEY
from crm_core.talktime.metric import Rules
from crm_core.timestamps import utcnow
from telecrm.presence.queue import apply_to_queues, publish
from telecrm.presence.report import presence_day, reason_dict
from telecrm.routing.lookup import changed as routing_changed
from telecrm.web.auth import api_user, page_user
from telecrm.web.keys import SESSIONS, WEB_CONFIG, WRITER_SESSIONS, workday_tz
from telecrm.web.params import json_object, parse_day, path_id

QUEUE_WORDS = {"paused": "очередь на паузе", "unpaused": "очередь снова звонит",
               "unreachable": "АТС недоступна, очередь не изменена",
               "not_member": "не состоит в очередях"}


def _default(request: web.Request) -> Rules:
    return Rules(target_seconds=request.app[WEB_CONFIG].daily_target_seconds)


def _viewer(user: User) -> User:
    if not access.may_see_talk_time(user):
        raise NotAllowedError("presence.role_no_access", "your role has no presence view")
    return user


def _bosses(user: User) -> User:
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotAllowedError("presence.reasons_for_bosses",
                              "pause reasons are kept by the head of sales or an admin")
    return user


def _state_of(body: dict[str, Any]) -> int | None:
    """``"present"`` (or null) is «на месте»; anything else a reason's id."""
    raw = body.get("state")
    if raw is None or raw == PRESENT_KEY:
        return None
    if isinstance(raw, bool):
        raise DomainError("presence.state_invalid", "state is «present» or a reason's id")
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise DomainError("presence.state_invalid",
                          "state is «present» or a reason's id") from None
    if value < 1 or value > 2**31 - 1:
        raise NotFoundError("presence.reason_not_found", "no such reason")
    return value


async def _with_phones(session: Any, user_id: int) -> User | None:
    return await session.scalar(select(User).options(selectinload(User.phones))
                                .where(User.id == user_id, User.active.is_(True)))


async def overview(request: web.Request) -> web.Response:
    user = api_user(request)
    async with request.app[SESSIONS]() as session:
        reasons = await services.list_reasons(session)
        managers = await access.visible_managers(session, user)
        ids = [m.id for m in managers] + ([user.id] if user.extension else [])
        states = await services.current_states(session, ids)
    return web.json_response({
        "reasons": [{"state": PRESENT_KEY, "name": PRESENT, "pauses_queue": False},
                    *({"state": str(r.id), "name": r.name, "pauses_queue": r.pauses_queue}
                      for r in reasons)],
        "me": states[user.id].as_dict() if user.extension else None,
        "managers": [{"extension": m.extension, "name": m.name, **states[m.id].as_dict()}
                     for m in managers]})


async def change(request: web.Request) -> web.Response:
    user = api_user(request)
    body = await json_object(request)
    reason_id = _state_of(body)
    target_id = body.get("user_id", user.id)
    if not isinstance(target_id, int) or isinstance(target_id, bool):
        raise DomainError("presence.user_invalid", "user_id is a number")
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        manager = await _with_phones(session, target_id)
        if manager is None:
            raise NotFoundError("presence.user_not_found", "no such user")
        state, changed = await services.set_presence(session, user, manager, reason_id)
        devices = list(manager.devices)
    # After the commit: the state is his whatever Asterisk says.
    queue = await apply_to_queues(request.app, manager.extension, devices, state)
    if changed:
        await routing_changed(request.app)  # a paused owner is not rung first
        await publish(request.app, manager, state, queue)
    return web.json_response({**state.as_dict(), "changed": changed, "queue": queue,
                              "queue_text": QUEUE_WORDS[queue]})


async def report(request: web.Request) -> web.Response:
    user = _viewer(api_user(request))
    tz = workday_tz(request)
    day = parse_day(request.query["date"], "date") if "date" in request.query \
        else local_today(tz)
    async with request.app[SESSIONS]() as session:
        managers = await access.visible_managers(session, user)
        rows = await presence_day(session, managers, day, tz, utcnow(), _default(request))
    return web.json_response({"date": day.isoformat(), "managers": [
        {key: row[key] for key in ("user_id", "extension", "name", "talk_seconds", "calls",
                                   "target_seconds", "working", "presence", "states",
                                   "working_seconds", "paused_seconds")}
        for row in rows]})


async def reasons(request: web.Request) -> web.Response:
    user = api_user(request)
    archived = request.query.get("archived") == "1"
    if archived:
        _bosses(user)
    async with request.app[SESSIONS]() as session:
        found = await services.list_reasons(session, archived=archived)
    return web.json_response({"reasons": [reason_dict(r) for r in found]})


def _flag(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise DomainError("presence.flag_invalid", f"{name} is true or false")
    return value


def _name(body: dict[str, Any], *, required: bool) -> str | None:
    value = body.get("name")
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise DomainError("presence.reason_name_empty", "a reason needs a name")
    return value


async def add_reason(request: web.Request) -> web.Response:
    user = _bosses(api_user(request))
    body = await json_object(request)
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        reason = await services.add_reason(session, user, _name(body, required=True) or "",
                                           pauses_queue=_flag(body, "pauses_queue") is not False)
        result = reason_dict(reason)
    return web.json_response(result, status=201)


async def edit_reason(request: web.Request) -> web.Response:
    user = _bosses(api_user(request))
    reason_id = path_id(request)
    body = await json_object(request)
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        reason = await services.update_reason(
            session, user, reason_id, name=_name(body, required=False),
            pauses_queue=_flag(body, "pauses_queue"), archived=_flag(body, "archived"))
        result = reason_dict(reason)
    return web.json_response(result)


# -- the page ------------------------------------------------------------------------------


@aiohttp_jinja2.template("presence.html")
async def page(request: web.Request) -> dict[str, Any]:
    user = _bosses(page_user(request))
    tz = workday_tz(request)
    day = parse_day(request.query["date"], "date") if "date" in request.query \
        else local_today(tz)
    async with request.app[SESSIONS]() as session:
        managers = await access.visible_managers(session, user)
        rows = await presence_day(session, managers, day, tz, utcnow(), _default(request))
        every = await services.list_reasons(session, archived=True)
    for row in rows:
        row["by_state"] = {s["state"]: s["seconds"] for s in row["states"]}
    columns = [(PRESENT_KEY, PRESENT)] + [(str(r.id), r.name) for r in every]
    used = {s["state"] for row in rows for s in row["states"]} | {PRESENT_KEY}
    return {"title": "Присутствие", "rows": rows, "day": day,
            "today": day == local_today(tz),
            "columns": [(key, name) for key, name in columns if key in used],
            "reasons": [reason_dict(r) for r in every], "queue_words": QUEUE_WORDS}


async def page_add_reason(request: web.Request) -> web.Response:
    user = _bosses(page_user(request))
    form = await request.post()
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        await services.add_reason(session, user, str(form.get("name", "")),
                                  pauses_queue=form.get("pauses_queue") == "1")
    raise web.HTTPSeeOther("/presence#reasons")


async def page_edit_reason(request: web.Request) -> web.Response:
    user = _bosses(page_user(request))
    reason_id = path_id(request)
    form = await request.post()
    action = str(form.get("action", "save"))
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        if action in ("archive", "restore"):
            await services.update_reason(session, user, reason_id,
                                         archived=action == "archive")
        else:
            await services.update_reason(session, user, reason_id,
                                         name=str(form.get("name", "")),
                                         pauses_queue=form.get("pauses_queue") == "1")
    raise web.HTTPSeeOther("/presence#reasons")


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this feature's pages and API routes."""
    router.add_get("/api/presence", overview)
    router.add_post("/api/presence", change)
    router.add_get("/api/presence/report", report)
    router.add_get("/api/presence/reasons", reasons)
    router.add_post("/api/presence/reasons", add_reason)
    router.add_patch("/api/presence/reasons/{id}", edit_reason)
    router.add_get("/presence", page)
    router.add_post("/presence/reasons", page_add_reason)
    router.add_post("/presence/reasons/{id}", page_edit_reason)
