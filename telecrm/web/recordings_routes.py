"""Routes of the recordings feature: the call page with its player, the speakers' time
line, and supervisors listening in live (ChanSpy)."""

from __future__ import annotations

import re
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select

from crm_core import access
from crm_core.calls import call_to_dict
from crm_core.models import Role, User
from crm_core.models_recordings import AudioStatus
from crm_core.recordings import audio_of
from pbx_bridge.actions import SPY_MODES, ClickToCallError, spy
from pbx_bridge.ami import AmiError
from recordings.store import DirectoryStore

from . import openapi
from .auth import api_user, audible_call, page_user
from .errors import ApiError
from .keys import LISTENER, SESSIONS, SETTINGS
from .params import json_object, path_id, string_field

_LINKEDID = re.compile(r"[0-9]{1,20}\.[0-9]{1,10}")


def may_download(user: User) -> bool:
    """Downloading a file (not just playing it) is for supervisors and admins."""
    return user.role in (Role.SUPERVISOR, Role.ADMIN)


async def call_page(request: web.Request) -> web.Response:
    user = page_user(request)
    call_id = path_id(request)
    async with request.app[SESSIONS]() as session:
        call = await access.visible_call(session, user, call_id)
        if call is None:
            raise ApiError(404, "Звонок не найден.")
        audio = await audio_of(session, call_id)
        data = access.redact_call(user, call_to_dict(call))
    context = {"title": f"Звонок №{call_id}", "call": data, "audio": audio,
               "may_hear": access.may_hear_recordings(user), "may_download": may_download(user)}
    return aiohttp_jinja2.render_template("call.html", request, context)


async def call_activity(request: web.Request) -> web.Response:
    """Who spoke when (stored at finalize), for the player's time line."""
    user = api_user(request)
    call_id = path_id(request)
    async with request.app[SESSIONS]() as session:
        await audible_call(session, user, call_id)
        audio = await audio_of(session, call_id)
    if audio is None:
        raise ApiError(404, "this call has no recording")
    return web.json_response({"status": audio.status, "error": audio.error,
                              "duration": audio.duration_seconds, "channels": audio.channels,
                              "activity": audio.activity or {}})


def _live_manager_channel(request: web.Request, linkedid: str) -> tuple[str, list[str]] | None:
    """The manager's channel of a live call, and the call's manager extensions."""
    listener = request.app.get(LISTENER)
    if listener is None:
        return None
    for call in listener.tracker.live_calls():
        if call.linkedid != linkedid:
            continue
        managers = [leg for leg in call.legs if leg.role == "manager" and leg.extension]
        talking = [leg for leg in managers if leg.ended_at is None and leg.answered_at]
        if talking:
            return talking[-1].channel, [leg.extension for leg in managers if leg.extension]
    return None


async def _may_spy_on(request: web.Request, user: User, extensions: list[str]) -> bool:
    if user.role == Role.ADMIN:
        return True
    if user.role != Role.SUPERVISOR or user.team_id is None:
        return False
    async with request.app[SESSIONS]() as session:
        teams = set(await session.scalars(select(User.team_id)
                                          .where(User.extension.in_(extensions))))
    return user.team_id in teams


async def listen(request: web.Request) -> web.Response:
    """POST /api/calls/{linkedid}/listen {"mode": "listen|whisper|barge"} (a live call)."""
    user = api_user(request)
    body = await json_object(request)
    mode = string_field(body, "mode", max_length=10)
    if mode not in SPY_MODES:
        raise ApiError(400, f"mode must be one of {', '.join(SPY_MODES)}")
    if user.role not in (Role.SUPERVISOR, Role.ADMIN) or not user.extension:
        raise ApiError(403, "only supervisors with a phone may listen in")
    raw = request.match_info["id"]
    live = _live_manager_channel(request, raw) if _LINKEDID.fullmatch(raw) else None
    if live is None or not await _may_spy_on(request, user, live[1]):
        raise ApiError(404, "no such live call of your team")
    listener = request.app[LISTENER]
    try:
        action_id = await spy(listener.session, user.extension, live[0], mode)
    except ClickToCallError as exc:
        raise ApiError(502, f"Asterisk did not connect you: {exc}") from None
    except AmiError as exc:
        raise ApiError(503, f"telephony is unavailable: {exc}") from None
    result: dict[str, Any] = {"status": "connected", "mode": mode, "action_id": action_id}
    return web.json_response(result, status=202)


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this feature's pages and API routes."""
    router.add_get("/calls/{id}", call_page)
    router.add_get("/api/calls/{id}/activity", call_activity)
    router.add_post("/api/calls/{id}/listen", listen)


_ERR = {"description": "error", "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/Error"}}}}
OPENAPI_PATHS: dict[str, Any] = {
    "/api/calls/{id}/activity": {"get": {
        "summary": "Who spoke when in the call's stored recording (for the player)",
        "security": [{"session": []}],
        "parameters": [{"name": "id", "in": "path", "required": True,
                        "schema": {"type": "integer", "minimum": 1}}],
        "responses": {"200": {"description": "status, duration and speech segments",
                              "content": {"application/json": {"schema": {"type": "object"}}}},
                      "401": _ERR, "403": _ERR, "404": _ERR}}},
    "/api/calls/{id}/listen": {"post": {
        "summary": "Supervisor listens / whispers / barges in on a live call of his team",
        "description": "{id} is the live call's linkedid. The supervisor's phone rings; "
                       "ChanSpy never makes him a party of the call.",
        "security": [{"session": []}],
        "parameters": [{"name": "id", "in": "path", "required": True,
                        "schema": {"type": "string", "maxLength": 40}},
                       {"name": "X-CSRF-Token", "in": "header", "required": True,
                        "schema": {"type": "string"}}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["mode"],
            "properties": {"mode": {"type": "string",
                                    "enum": ["listen", "whisper", "barge"]}}}}}},
        "responses": {"202": {"description": "the supervisor's phone answered",
                              "content": {"application/json": {"schema": {"type": "object"}}}},
                      "400": _ERR, "401": _ERR, "403": _ERR, "404": _ERR, "413": _ERR,
                      "415": _ERR, "502": _ERR, "503": _ERR}}},
}
# Documented on import, before any app or document is built.
openapi.PATHS.update(OPENAPI_PATHS)


async def stored_audio_response(request: web.Request, user: User,
                                call_id: int) -> web.StreamResponse | None:
    """The finalized stereo file of a call the caller already checked ``user`` may hear.

    None when the call has no stored file yet (the originals are then served). The
    path comes from the database key, never from the URL: nothing to traverse.
    """
    async with request.app[SESSIONS]() as session:
        audio = await audio_of(session, call_id)
    if audio is None or audio.status != AudioStatus.STORED.value or not audio.key:
        return None
    path = DirectoryStore(request.app[SETTINGS].recordings_store_dir).path(audio.key)
    if path is None:
        raise ApiError(404, "the recording file is missing")
    download = request.query.get("download") == "1"
    if download and not may_download(user):
        raise ApiError(403, "only supervisors may download recordings")
    headers = {"Content-Type": audio.content_type or "application/octet-stream",
               "Cache-Control": "private, max-age=3600"}
    if download:
        headers["Content-Disposition"] = f'attachment; filename="call-{call_id}{path.suffix}"'
    return web.FileResponse(path, headers=headers)
