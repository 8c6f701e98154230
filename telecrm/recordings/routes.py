"""Routes of the recordings feature: the call page with its player, the speakers' time
line, and supervisors listening in live (ChanSpy)."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import PurePosixPath
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import exists, select

from crm_core.calls.services import call_to_dict
from crm_core.calls.snapshot import DEFAULT_PBX
from crm_core.clients.models import Client
from crm_core.clients.phones import normalize_phone
from crm_core.clients.services import find_clients_by_phones
from crm_core.errors import DomainError, NotAllowedError, NotFoundError
from crm_core.pbxes.models import Pbx
from crm_core.people import access
from crm_core.people.models import Role, User
from crm_core.people.users import call_extensions, first_device, names_by_extension
from crm_core.recordings.jobs import audio_of, problems
from crm_core.recordings.models import AudioStatus
from crm_core.speech.models import Transcript
from pbx_bridge.actions import CLICK_TO_CALL_CONTEXT, SPY_MODES, ClickToCallError, spy
from pbx_bridge.ami import AmiError
from pbx_bridge.pipeline import Listener
from recordings.store import DirectoryStore, Store, StoreError
from telecrm.messages import phone_refusal, sentence
from telecrm.web import openapi
from telecrm.web.auth import api_user, audible_call, page_user
from telecrm.web.errors import ApiError
from telecrm.web.keys import CALL_HOOKS, LISTENER, LISTENERS, SESSIONS, SETTINGS
from telecrm.web.params import json_object, path_id, string_field

log = logging.getLogger(__name__)

_LINKEDID = re.compile(r"[0-9]{1,20}\.[0-9]{1,10}")
_RANGE = re.compile(r"bytes=([0-9]{0,15})-([0-9]{0,15})")
# The recordings backend (directory or S3), set by the app factory.
RECORDINGS_STORE: web.AppKey[Store] = web.AppKey("recordings_store")


def may_download(user: User) -> bool:
    """Downloading a file (not just playing it) is for supervisors and admins."""
    return user.role in (Role.SUPERVISOR, Role.ADMIN)


async def call_page(request: web.Request) -> web.Response:
    user = page_user(request)
    call_id = path_id(request)
    async with request.app[SESSIONS]() as session:
        call = await access.visible_call(session, user, call_id)
        if call is None:
            raise NotFoundError("calls.not_found", "no such call")
        audio = await audio_of(session, call_id)
        data = access.redact_call(user, call_to_dict(call, request.app[CALL_HOOKS]))
        may_hear = access.may_hear_recordings(user)
        # The page asks for its transcript only when there is one: no transcript yet is a
        # normal state, said on the page, not a 404 in the browser's console.
        transcript_ready = may_hear and await session.scalar(
            select(exists().where(Transcript.call_id == call_id)))
        # «АТС» only means something to a company with branches: a single PBX is not named.
        several_pbxes = data.get("pbx", DEFAULT_PBX) != DEFAULT_PBX or bool(
            await session.scalar(select(exists().where(Pbx.name != DEFAULT_PBX))))
        staff = await names_by_extension(session, call_extensions([data]))
    context = {"title": f"Звонок №{call_id}", "call": data, "audio": audio,
               "may_hear": may_hear, "may_download": may_download(user),
               "transcript_ready": bool(transcript_ready), "staff": staff,
               "may_open_clients": access.may_see_clients(user), "several_pbxes": several_pbxes}
    return aiohttp_jinja2.render_template("call.html", request, context)


async def call_activity(request: web.Request) -> web.Response:
    """Who spoke when (stored at finalize), for the player's time line."""
    user = api_user(request)
    call_id = path_id(request)
    async with request.app[SESSIONS]() as session:
        await audible_call(session, user, call_id)
        audio = await audio_of(session, call_id)
    if audio is None:
        raise NotFoundError("recordings.call_has_none", "this call has no recording")
    return web.json_response({"status": audio.status, "error": audio.error,
                              "duration": audio.duration_seconds, "channels": audio.channels,
                              "activity": audio.activity or {}})


async def recording_problems(request: web.Request) -> web.Response:
    """GET /api/recordings/problems: failed recordings of the supervisor's team (admin: all).

    The originals stay on the PBX; `telecrm recordings finalize --retry-failed` retries.
    """
    user = api_user(request)
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotAllowedError("recordings.problems_for_supervisors",
                              "only supervisors see recording problems")
    if user.role == Role.SUPERVISOR and user.team_id is None:
        return web.json_response({"problems": []})
    team = None if user.role == Role.ADMIN else user.team_id
    async with request.app[SESSIONS]() as session:
        rows = await problems(session, team_id=team)
    return web.json_response({"problems": [
        {"call_id": call.id, "started_at": call.started_at.isoformat(),
         "managers": call.managers, "attempts": audio.attempts, "error": audio.error,
         "page": f"/calls/{call.id}"} for audio, call in rows]})


def _listeners(request: web.Request) -> dict[str, Listener]:
    """Every running PBX's listener by name (one, unnamed, in apps built without LISTENERS)."""
    listeners = request.app.get(LISTENERS)
    if listeners:
        return listeners
    listener = request.app.get(LISTENER)
    return {DEFAULT_PBX: listener} if listener is not None else {}


def _live_manager_channel(request: web.Request, linkedid: str, pbx: str | None = None
                          ) -> tuple[str, str, Listener] | None:
    """The talking manager leg of a live call (its channel and extension) and the listener
    of the PBX it is on (the one to send ChanSpy through); ``pbx`` picks among PBXs that
    happen to have a live call with the same linkedid. Legs that only rang are not it:
    ChanSpy targets the leg that talks, so that leg alone decides whose call it is."""
    for name, listener in _listeners(request).items():
        if pbx is not None and name != pbx:
            continue
        for call in listener.tracker.live_calls():
            if call.linkedid != linkedid:
                continue
            talking = [leg for leg in call.legs if leg.role == "manager" and leg.extension
                       and leg.ended_at is None and leg.answered_at]
            if talking and talking[-1].extension:
                return talking[-1].channel, talking[-1].extension, listener
    return None


async def _team_extensions(request: web.Request, user: User) -> set[str] | None:
    """Extensions of the supervisor's team (None: all, for an admin)."""
    if user.role == Role.ADMIN:
        return None
    if user.role != Role.SUPERVISOR or user.team_id is None:
        return set()
    async with request.app[SESSIONS]() as session:
        rows = await session.scalars(select(User.extension).where(
            User.team_id == user.team_id, User.extension.is_not(None)))
        return {ext for ext in rows if ext}


async def live_calls(request: web.Request) -> web.Response:
    """GET /api/calls/live: calls of the supervisor's team in progress, to listen in on."""
    user = api_user(request)
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotAllowedError("recordings.live_for_supervisors",
                              "only supervisors listen in on calls")
    team = await _team_extensions(request, user)
    listeners = _listeners(request)
    found: list[dict[str, Any]] = []
    live = [(pbx, call) for pbx, listener in listeners.items()
            for call in listener.tracker.live_calls()]
    for pbx, call in live:
        talking = [leg for leg in call.legs if leg.role == "manager" and leg.extension
                   and leg.answered_at and leg.ended_at is None]
        if not talking or not may_spy_on(user, team, talking[-1].extension or ""):
            continue
        found.append({"linkedid": call.linkedid, "pbx": pbx, "direction": call.direction,
                      "client_number": call.client_number, "extension": talking[-1].extension,
                      "answered_at": talking[-1].answered_at.isoformat()
                      if talking[-1].answered_at else None})
    if found:
        async with request.app[SESSIONS]() as session:
            names = dict((await session.execute(select(User.extension, User.name).where(
                User.extension.in_([c["extension"] for c in found])))).all())
            clients = await _clients_by_number(session, [c["client_number"] for c in found])
        for item in found:
            item["manager"] = names.get(item["extension"], item["extension"])
            client = clients.get(normalize_phone(item["client_number"] or "") or "")
            item["client_id"] = client.id if client is not None else None
            item["client_name"] = client.name if client is not None else None
    return web.json_response({"calls": found, "phone": user.extension,
                              "telephony": bool(listeners)})


async def _clients_by_number(session: Any, numbers: list[str | None]) -> dict[str, Client]:
    """The client each live call's number belongs to (by E.164), so the board names him.

    A supervisor listens to his team's calls; their clients' names are his to read.
    """
    e164s = {e164 for raw in numbers if raw and (e164 := normalize_phone(raw))}
    found: dict[str, Client] = {}
    for client in await find_clients_by_phones(session, e164s):  # preferred client first
        for phone in client.phones:
            if phone.e164 in e164s:
                found.setdefault(phone.e164, client)
    return found


async def listen_page(request: web.Request) -> web.Response:
    """The supervisor's live calls with Listen / Whisper / Barge (his phone rings)."""
    user = page_user(request)
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotAllowedError("recordings.live_for_supervisors",
                              "only supervisors listen in on calls")
    return aiohttp_jinja2.render_template("listen.html", request, {"title": "Прослушка"})


def may_spy_on(user: User, team: set[str] | None, talking_extension: str) -> bool:
    """May ``user`` listen, whisper or barge into a live call whose talking manager leg is
    ``talking_extension``? ``team`` is :func:`_team_extensions` of the user (None: all).

    The one rule for every spy path (the live board and the listen action): an admin may,
    a supervisor only on a call his own team's manager is talking on; a leg that only rang
    (a queue that rang another team first) gives no right, since ChanSpy joins the talker.
    """
    if user.role == Role.ADMIN:
        return True
    if user.role != Role.SUPERVISOR or user.team_id is None or team is None:
        return False
    return talking_extension in team


async def _may_spy_on(request: web.Request, user: User, talking_extension: str) -> bool:
    """:func:`may_spy_on` with the user's team read from the database."""
    return may_spy_on(user, await _team_extensions(request, user), talking_extension)


async def listen(request: web.Request) -> web.Response:
    """POST /api/calls/{linkedid}/listen {"mode": "listen|whisper|barge"} (a live call)."""
    user = api_user(request)
    body = await json_object(request)
    mode = string_field(body, "mode", max_length=10)
    if mode not in SPY_MODES:
        raise DomainError("recordings.spy_mode_invalid", "mode must be listen, whisper or barge",
                          modes=list(SPY_MODES))
    if user.role not in (Role.SUPERVISOR, Role.ADMIN) or not user.extension:
        raise NotAllowedError("recordings.spy_needs_phone",
                              "only supervisors with a phone may listen in")
    raw = request.match_info["id"]
    pbx = body.get("pbx") if isinstance(body.get("pbx"), str) else None
    live = _live_manager_channel(request, raw, pbx) if _LINKEDID.fullmatch(raw) else None
    if live is None:
        raise NotFoundError("recordings.live_call_not_found", "no such live call of your team")
    if not await _may_spy_on(request, user, live[1]):
        raise NotAllowedError("recordings.live_call_not_yours",
                              "the manager talking on this call is not of your team")
    listener = live[2]  # ChanSpy through the PBX the call is on
    async with request.app[SESSIONS]() as session:
        device = await first_device(session, user.extension)  # his phone, if not PJSIP/<ext>
    own_dialplan = request.app[SETTINGS].dial_context == CLICK_TO_CALL_CONTEXT
    try:
        action_id = await spy(listener.session, user.extension, live[0], mode, device=device,
                              own_dialplan=own_dialplan)
    except ClickToCallError as exc:
        log.info("listening in from %s failed: %s", user.extension, exc)
        raise ApiError(502, "recordings.spy_failed", reason=phone_refusal(exc.kind)) from None
    except AmiError as exc:
        log.warning("listening in from %s: telephony unavailable (%s)", user.extension, exc)
        raise ApiError(503, "telephony.unavailable") from None
    result: dict[str, Any] = {"status": "connected", "mode": mode, "action_id": action_id}
    return web.json_response(result, status=202)


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this feature's pages and API routes."""
    router.add_get("/calls/live", listen_page)
    router.add_get("/api/calls/live", live_calls)
    router.add_get("/calls/{id}", call_page)
    router.add_get("/api/calls/{id}/activity", call_activity)
    router.add_get("/api/recordings/problems", recording_problems)
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
    "/api/calls/live": {"get": {
        "summary": "Calls of the supervisor's team in progress (admin: all), to listen in on",
        "security": [{"session": []}],
        "responses": {"200": {"description": "live calls by linkedid, and the caller's phone",
                              "content": {"application/json": {"schema": {"type": "object"}}}},
                      "401": _ERR, "403": _ERR}}},
    "/api/recordings/problems": {"get": {
        "summary": "Failed recordings of the supervisor's team (admin: all), newest first",
        "security": [{"session": []}],
        "responses": {"200": {"description": "calls whose recording could not be stored",
                              "content": {"application/json": {"schema": {"type": "object"}}}},
                      "401": _ERR, "403": _ERR}}},
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


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) of a single-range ``Range`` header; None for the whole file.

    Raises ValueError for a range outside the file (416); a malformed header is ignored,
    as RFC 9110 allows (the whole file is sent).
    """
    match = _RANGE.fullmatch((header or "").strip())
    if match is None:
        return None
    first, last = match.groups()
    if first == "":
        if not last or int(last) == 0:
            raise ValueError("empty suffix range")
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), (int(last) if last else size - 1)
    if start >= size or end < start:
        raise ValueError("range outside the file")
    return start, min(end, size - 1)


async def _proxy(request: web.Request, store: Store, key: str,
                 headers: dict[str, str]) -> web.StreamResponse:
    """Stream an object of a store without local files (S3) through the CRM, with Range.

    The CRM stays the only door: the role check already happened, no presigned URL leaks.
    """
    try:
        size = await asyncio.to_thread(store.size, key)
    except StoreError as exc:
        raise ApiError(503, "recordings.store_unavailable",
                       reason=exc.strerror or str(exc)) from None
    if size is None:
        raise NotFoundError("recordings.file_missing", "the recording file is missing")
    try:
        wanted = _byte_range(request.headers.get("Range"), size)
    except ValueError:
        return web.json_response({"error": sentence("recordings.range_outside", {"size": size}),
                                  "code": "recordings.range_outside"}, status=416,
                                 headers={"Content-Range": f"bytes */{size}"})
    start, end = wanted or (0, size - 1)
    response = web.StreamResponse(status=206 if wanted else 200, headers=headers)
    response.headers["Accept-Ranges"] = "bytes"
    response.content_length = end - start + 1
    if wanted:
        response.headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if request.method == "HEAD":
        await response.prepare(request)
        return response
    chunks = store.read(key, start, end)
    done = object()
    try:
        block = await asyncio.to_thread(next, chunks, done)
    except (StoreError, FileNotFoundError) as exc:
        raise ApiError(503, "recordings.store_unavailable", reason=str(exc)) from None
    await response.prepare(request)
    try:
        while block is not done:
            await response.write(block)  # type: ignore[arg-type]
            block = await asyncio.to_thread(next, chunks, done)
    finally:
        chunks.close()
    await response.write_eof()
    return response


async def stored_audio_response(request: web.Request, user: User,
                                call_id: int) -> web.StreamResponse | None:
    """The finalized stereo file of a call the caller already checked ``user`` may hear.

    None when the call has no stored file yet (the originals are then served). The
    key comes from the database, never from the URL: nothing to traverse.
    """
    async with request.app[SESSIONS]() as session:
        audio = await audio_of(session, call_id)
    if audio is None or audio.status != AudioStatus.STORED.value or not audio.key:
        return None
    download = request.query.get("download") == "1"
    if download and not may_download(user):
        raise NotAllowedError("recordings.download_for_supervisors",
                              "only supervisors may download recordings")
    store = request.app[RECORDINGS_STORE]
    suffix = PurePosixPath(audio.key).suffix
    headers = {"Content-Type": audio.content_type or "application/octet-stream",
               "Cache-Control": "private, max-age=3600"}
    if download:
        headers["Content-Disposition"] = f'attachment; filename="call-{call_id}{suffix}"'
    if audio.backend and audio.backend != store.name:
        raise ApiError(503, "recordings.other_store", backend=audio.backend, store=store.name)
    path = store.path(audio.key)
    if path is not None:  # FileResponse answers Range (206, 416) and HEAD by itself
        return web.FileResponse(path, headers=headers)
    if isinstance(store, DirectoryStore):
        raise NotFoundError("recordings.file_missing", "the recording file is missing")
    return await _proxy(request, store, audio.key, headers)
