"""Routes of sticky routing, registered by telecrm.web.routes.

- ``POST /pbx/owner`` (form ``token``, ``caller``, ``did``): the dialplan's question,
  authenticated by the PBX token only (never a user's session); the answer is plain text,
  ``<ring seconds>:<dial string>`` or empty (the queue at once); 403 for a wrong token;
- ``GET /routing``: the form (teams for the head of sales of each and for admins, DIDs);
  ``POST /routing/teams/{id}``, ``POST /routing/dids``;
- ``GET /api/routing``, ``PUT /api/routing/teams/{id}``, ``PUT /api/routing/dids``
  ``{"did", "mode": "on"|"off"|"team"}`` (the DID's switch over the owner's team's).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from crm_core.errors import DomainError, NotAllowedError
from crm_core.people.models import Role, User
from crm_core.routing import services
from telecrm.routing.lookup import ROUTING, changed
from telecrm.web.auth import api_user, page_user
from telecrm.web.keys import SESSIONS, WRITER_SESSIONS
from telecrm.web.params import json_object, path_id

log = logging.getLogger(__name__)

TOKEN_HEADER = "X-Telecrm-Token"


async def owner(request: web.Request) -> web.Response:
    """The dialplan's question; any doubt answers empty, and the call goes to the queue."""
    began = time.perf_counter()
    form = await request.post()
    token = request.headers.get(TOKEN_HEADER) or str(form.get("token", ""))
    lookup = request.app[ROUTING]
    if not lookup.snapshot.token_ok(token):
        return web.Response(status=403, text="")
    caller, did = str(form.get("caller", ""))[:40], str(form.get("did", ""))[:40]
    try:
        answer, why = await lookup.answer(caller, did)
    except Exception:  # never a 500 to the PBX: the call just goes to the queue
        log.exception("sticky routing: lookup of %s failed", caller)
        answer, why = None, "error"
    log.info("sticky routing: %s -> %s (%s, %.1f ms)", caller, answer or "queue", why,
             (time.perf_counter() - began) * 1000)
    return web.Response(text=answer or "", content_type="text/plain",
                        headers={"X-Telecrm-Route": why})


def _bosses(user: User) -> User:
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotAllowedError("routing.for_bosses", "the head of sales or an admin decides")
    return user


def _bool(value: Any, name: str) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise DomainError("routing.flag_invalid", f"{name} is true or false")
    return value


def _mode(value: Any) -> services.DidMode:
    try:
        return services.DidMode(value)
    except ValueError:
        raise DomainError("routing.did_mode_invalid", "mode is on, off or team") from None


def _ring(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise DomainError("routing.ring_seconds", "ring time out of range",
                          low=services.MIN_RING, high=services.MAX_RING) from None


async def _state(request: web.Request, user: User) -> dict[str, Any]:
    async with request.app[SESSIONS]() as session:
        teams, dids = await services.list_rules(session)
    for team in teams:
        team["editable"] = user.role == Role.ADMIN or user.team_id == team["team_id"]
    return {"teams": teams, "dids": dids}


async def show(request: web.Request) -> web.Response:
    user = _bosses(api_user(request))
    return web.json_response(await _state(request, user))


async def put_team(request: web.Request) -> web.Response:
    user = _bosses(api_user(request))
    team_id = path_id(request)
    body = await json_object(request)
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        await services.set_team_rule(session, user, team_id,
                                     enabled=_bool(body.get("enabled"), "enabled"),
                                     ring_seconds=_ring(body.get("ring_seconds")))
    await changed(request.app)
    return web.json_response(await _state(request, user))


async def put_did(request: web.Request) -> web.Response:
    user = _bosses(api_user(request))
    body = await json_object(request)
    did = body.get("did")
    if not isinstance(did, str):
        raise DomainError("routing.did_invalid", "did is required", number=str(did or ""))
    if "mode" in body:
        mode = _mode(body["mode"])
    else:  # the first shape: false switched it off, true gave it back to the team
        enabled = _bool(body.get("enabled"), "enabled")
        if enabled is None:
            raise DomainError("routing.did_mode_invalid", "mode is required")
        mode = services.DidMode.TEAM if enabled else services.DidMode.OFF
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        await services.set_did_rule(session, user, did, mode=mode)
    await changed(request.app)
    return web.json_response(await _state(request, user))


@aiohttp_jinja2.template("routing.html")
async def page(request: web.Request) -> dict[str, Any]:
    user = _bosses(page_user(request))
    return {"title": "Звонки своему менеджеру", **await _state(request, user),
            "min_ring": services.MIN_RING, "max_ring": services.MAX_RING}


async def page_team(request: web.Request) -> web.Response:
    user = _bosses(page_user(request))
    team_id = path_id(request)
    form = await request.post()
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        await services.set_team_rule(session, user, team_id,
                                     enabled=form.get("enabled") == "1",
                                     ring_seconds=_ring(form.get("ring_seconds")))
    await changed(request.app)
    raise web.HTTPSeeOther("/routing")


async def page_did(request: web.Request) -> web.Response:
    user = _bosses(page_user(request))
    form = await request.post()
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        await services.set_did_rule(session, user, str(form.get("did", "")),
                                    mode=_mode(form.get("mode")))
    await changed(request.app)
    raise web.HTTPSeeOther("/routing#dids")


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this feature's routes."""
    router.add_post("/pbx/owner", owner)
    router.add_get("/api/routing", show)
    router.add_put("/api/routing/teams/{id}", put_team)
    router.add_put("/api/routing/dids", put_did)
    router.add_get("/routing", page)
    router.add_post("/routing/teams/{id}", page_team)
    router.add_post("/routing/dids", page_did)
