"""The JSON API under ``/api/`` (routes and shapes fixed by architecture.md).

Every handler resolves the user, asks :mod:`crm_core.people.access` what he may see, and
answers 404 for anything he may not (existence is not revealed); role-wide
refusals (a marketer and recordings) are 403.
"""

from __future__ import annotations

import logging
import mimetypes
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from crm_core.calls.services import call_to_dict
from crm_core.clients.phones import normalize_phone
from crm_core.clients.services import find_clients_by_phones
from crm_core.clock import local_today
from crm_core.errors import DomainError, NotAllowedError, NotFoundError
from crm_core.people import access
from crm_core.people.models import User
from crm_core.tasks.models import TaskKind
from crm_core.timestamps import utcnow
from pbx_bridge.actions import ClickToCallError
from pbx_bridge.ami import AmiError
from telecrm.messages import phone_refusal
from telecrm.talktime import routes as talktime_routes
from telecrm.talktime.board import talk_time
from telecrm.web.auth import api_user, audible_call, authenticate, client_ip, sign_in, sign_out
from telecrm.web.clicktocall import ClickToCallBusy
from telecrm.web.errors import ApiError
from telecrm.web.keys import (
    CALL_HOOKS,
    CLICK_TO_CALL,
    PBX_ROOTS,
    SESSIONS,
    SETTINGS,
    THROTTLE,
    WEB_CONFIG,
    WEB_SESSION,
    WRITER_SESSIONS,
    workday_tz,
)
from telecrm.web.openapi import openapi_document
from telecrm.web.params import (
    day_bounds,
    json_object,
    parse_day,
    path_id,
    query_int,
    string_field,
)
from telecrm.web.present import client_to_dict, task_view

log = logging.getLogger(__name__)


def user_json(user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "name": user.name, "role": user.role,
            "extension": user.extension, "team_id": user.team_id,
            "must_change_password": user.must_change_password}


# -- sign-in ------------------------------------------------------------------------------


async def login(request: web.Request) -> web.Response:
    body = await json_object(request)
    username = string_field(body, "username", max_length=100)
    password = string_field(body, "password", max_length=1000)
    throttle, ip = request.app[THROTTLE], client_ip(request)
    wait = await throttle.retry_after(username, ip)
    if wait > 0:
        raise ApiError(429, "auth.too_many_attempts",
                       headers={"Retry-After": str(int(wait) + 1)})
    user = await authenticate(request.app[SESSIONS], username, password,
                              request.app[SETTINGS].password_hashing)
    if user is None:
        await throttle.failed(username, ip)
        raise ApiError(401, "auth.wrong_password")
    await throttle.succeeded(username, ip)
    response = web.json_response({})
    csrf = await sign_in(request, response, user, request.app[WRITER_SESSIONS],
                         request.app[WEB_CONFIG])
    response.text = web.json_response({"user": user_json(user), "csrf_token": csrf}).text
    return response


async def logout(request: web.Request) -> web.Response:
    api_user(request)
    response = web.json_response({"ok": True})
    await sign_out(request, response, request.app[WRITER_SESSIONS])
    return response


async def me(request: web.Request) -> web.Response:
    user = api_user(request)
    return web.json_response({"user": user_json(user),
                              "csrf_token": request[WEB_SESSION].csrf_token})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


# -- calls ------------------------------------------------------------------------------------


async def get_call(request: web.Request) -> web.Response:
    user = api_user(request)
    call_id = path_id(request)
    async with request.app[SESSIONS]() as session:
        call = await access.visible_call(session, user, call_id)
    if call is None:
        raise NotFoundError("calls.not_found", "no such call")
    data = call_to_dict(call, request.app[CALL_HOOKS])
    return web.json_response(access.redact_call(user, data))


def recording_file(root: Path, relative: str) -> Path | None:
    """The file under ``root`` for a stored relative path; None if it would leave ``root``."""
    if not relative or relative.startswith(("/", "\\")) or "\x00" in relative:
        return None
    base = root.resolve()
    candidate = (base / relative).resolve()
    if not candidate.is_relative_to(base):
        return None
    return candidate


def _default_recording(paths: list[str]) -> int:
    """The mixed file (both sides) when there is one: that is what people want to hear."""
    for index, path in enumerate(paths):
        if path.endswith("-mix.wav"):
            return index
    return 0


async def call_recording(request: web.Request) -> web.StreamResponse:
    user = api_user(request)
    call_id = path_id(request)
    async with request.app[SESSIONS]() as session:
        call = await audible_call(session, user, call_id)
        paths = [r.path for r in call.recordings]
        root = request.app.get(PBX_ROOTS, {}).get(call.pbx, request.app[SETTINGS].recordings_source)
    # -- recordings feature (#6): the finalized stereo file, once stored --------------------
    from telecrm.recordings.routes import stored_audio_response

    stored = await stored_audio_response(request, user, call_id)
    if stored is not None:
        return stored
    # -- end recordings feature ---------------------------------------------------------------
    if not paths:
        raise NotFoundError("recordings.call_has_none", "this call has no recording")
    index = query_int(request, "index", _default_recording(paths), high=len(paths) - 1)
    path = recording_file(root, paths[index])  # where the call's PBX wrote it
    if path is None:
        raise NotFoundError("recordings.not_found", "no such recording")
    if not path.is_file():
        raise NotFoundError("recordings.file_missing", "the recording file is missing")
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.suffix == ".wav":
        content_type = "audio/wav"
    # FileResponse answers Range requests (206, 416) and HEAD by itself.
    return web.FileResponse(path, headers={"Content-Type": content_type,
                                           "Cache-Control": "private, max-age=3600"})


async def originate(request: web.Request) -> web.Response:
    user = api_user(request)
    body = await json_object(request)
    raw = string_field(body, "number", max_length=50)
    if not access.may_place_calls(user):
        raise NotAllowedError("calls.no_extension", "you have no phone extension to call from")
    number = normalize_phone(raw, request.app[SETTINGS].phone_region)
    if number is None:
        raise DomainError("calls.number_invalid", "number is not a valid phone number",
                          number=raw)
    async with request.app[SESSIONS]() as session:
        name = None
        for client in await find_clients_by_phones(session, [number]):
            if await access.can_see_client(session, user, client.id):
                name = client.name
                break
    return web.json_response(await place_call(request, user, number, name), status=202)


async def place_call(request: web.Request, user: User, number: str,
                     name: str | None) -> dict[str, Any]:
    """Ring ``user``'s phone, then ``number`` (E.164); what ``originate`` answers (202).

    Shared by the dialer, so both refuse a busy phone or a dead AMI the same way.
    """
    assert user.extension is not None
    try:
        attempt, repeat = await request.app[CLICK_TO_CALL].place(user.extension, number, name)
    except ClickToCallBusy as exc:
        raise ApiError(409, "calls.phone_busy",
                       extra={"action_id": exc.attempt.action_id}) from None
    except ClickToCallError as exc:
        log.info("click-to-call from %s failed: %s", user.extension, exc)
        raise ApiError(502, "calls.originate_failed", reason=phone_refusal(exc.kind)) from None
    except AmiError as exc:
        log.warning("click-to-call from %s: telephony unavailable (%s)", user.extension, exc)
        raise ApiError(503, "telephony.unavailable") from None
    status = "failed" if attempt.error else "calling"
    return {"status": status, "action_id": attempt.action_id, "extension": user.extension,
            "number": number, "repeat": repeat}


# -- clients, tasks, talk time ------------------------------------------------------------


async def get_client(request: web.Request) -> web.Response:
    user = api_user(request)
    client_id = path_id(request)
    async with request.app[SESSIONS]() as session:
        client = await access.openable_client(session, user, client_id)
        calls = await access.visible_calls(session, user, client_id=client_id, limit=500,
                                            hooks=request.app[CALL_HOOKS])
        tasks = await access.visible_tasks(session, user, client_id=client_id)
    next_task = task_view(tasks[0], utcnow()) if tasks else None
    return web.json_response(client_to_dict(client, calls, next_task))


def _day(request: web.Request) -> tuple[datetime, datetime]:
    tz = workday_tz(request)
    raw = request.query.get("date")
    day = parse_day(raw, "date") if raw else local_today(tz)
    return day_bounds(day, tz)


async def list_tasks(request: web.Request) -> web.Response:
    """Open tasks due by the end of ``date`` (overdue included) and every open callback."""
    user = api_user(request)
    _, end = _day(request)
    if not access.may_see_tasks(user):
        raise NotAllowedError("tasks.role_no_tasks", "your role has no tasks")
    async with request.app[SESSIONS]() as session:
        tasks = await access.visible_tasks(session, user)
    now = utcnow()
    due = [t for t in tasks if t.kind == TaskKind.CALLBACK or (t.due_at and t.due_at < end)]
    return web.json_response([task_view(task, now) for task in due])


async def talktime(request: web.Request) -> web.Response:
    """One day in the fixed shape; ``?from=&to=`` gives the period report instead."""
    if "from" in request.query or "to" in request.query:
        return await talktime_routes.report(request)
    user = api_user(request)
    start, end = _day(request)
    if not access.may_see_talk_time(user):
        raise NotAllowedError("talktime.role_no_access", "your role has no access to talk time")
    async with request.app[SESSIONS]() as session:
        managers = await access.visible_managers(session, user)
        rows = await talk_time(session, managers, start, end,
                               request.app[WEB_CONFIG].daily_target_seconds)
    return web.json_response(rows)
