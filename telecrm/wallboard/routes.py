"""``/wallboard`` and ``/api/wallboard``: queues and managers live, for a wall screen.

Supervisors see their team's queue and managers, admins every team's; anyone else
gets 403. The live part (callers waiting, who is on a call) comes from the call
trackers of the PBXs this process listens to (:mod:`crm_core.wallboard.live`); the
day's figures and talk time from the stored calls. The page redraws from the JSON
on every call event (SSE) and every few seconds, and counts waits up in between.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.snapshot import CallData
from crm_core.clients.phones import normalize_phone
from crm_core.clients.services import find_clients_by_phones
from crm_core.errors import NotAllowedError
from crm_core.people import access
from crm_core.people.models import Role, Team, User
from crm_core.presence.services import current_states
from crm_core.talktime.metric import Rules, day_report
from crm_core.timestamps import isoformat, utcnow
from crm_core.wallboard.figures import queue_days
from crm_core.wallboard.live import manager_state, waiting_callers
from pbx_bridge.pipeline import Listener
from telecrm.web import openapi
from telecrm.web.auth import api_user, page_user
from telecrm.web.keys import LISTENER, LISTENERS, SESSIONS, SETTINGS, WEB_CONFIG, workday_tz
from telecrm.web.present import phone

WAITING_SHOWN = 6  # callers listed per queue; the count says the rest


def _viewer(user: User) -> User:
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotAllowedError("wallboard.for_supervisors", "the wallboard is for supervisors")
    return user


def _listeners(app: web.Application) -> list[Listener]:
    listeners = app.get(LISTENERS)
    if listeners:
        return list(listeners.values())
    listener = app.get(LISTENER)
    return [listener] if listener is not None else []


def live_calls(app: web.Application, now: datetime) -> list[CallData]:
    """Calls in progress on every PBX this process listens to, as they stand at ``now``."""
    return [call for listener in _listeners(app)
            for call in listener.tracker.live_calls(at=now.timestamp())]


async def _queues(session: AsyncSession, user: User,
                  waiting: Sequence[str]) -> list[tuple[str, str | None]]:
    """(queue, team name) the viewer watches: his team's; an admin every team's, and
    any other queue with callers waiting now."""
    stmt = select(Team.queue, Team.name).where(Team.queue.is_not(None)).order_by(Team.name)
    if user.role != Role.ADMIN:
        stmt = stmt.where(Team.id == user.team_id)
    found: list[tuple[str, str | None]] = [(q, name) for q, name in await session.execute(stmt)
                                           if q]
    if user.role == Role.ADMIN:
        known = {q for q, _ in found}
        found += [(q, None) for q in sorted(waiting) if q not in known]
    return found


async def _client_names(session: AsyncSession, numbers: Sequence[str | None]) -> dict[str, str]:
    """The client each waiting caller's number belongs to (by E.164), so the wall names him."""
    e164s = {e164 for raw in numbers if raw and (e164 := normalize_phone(raw))}
    names: dict[str, str] = {}
    for client in await find_clients_by_phones(session, e164s):  # preferred client first
        for owned in client.phones:
            if owned.e164 in e164s:
                names.setdefault(owned.e164, client.name)
    return names


async def wallboard(session: AsyncSession, user: User, calls: Sequence[CallData], *,
                    tz: ZoneInfo, now: datetime, threshold_seconds: int,
                    target_seconds: int) -> dict[str, Any]:
    """The board's data for ``user`` at ``now`` (see the module docstring)."""
    today = now.astimezone(tz).date()
    waiting = waiting_callers(calls, now)
    queues = await _queues(session, user, list(waiting))
    figures = await queue_days(session, [q for q, _ in queues], today, tz,
                               threshold_seconds=threshold_seconds)
    managers = await access.visible_managers(session, user)
    talk = {row["user_id"]: row for row in await day_report(
        session, managers, today, tz, now=now, default=Rules(target_seconds=target_seconds))}
    shown = [c for q, _ in queues for c in waiting.get(q, [])[:WAITING_SHOWN]]
    names = await _client_names(session, [c.number for c in shown])
    queue_rows = []
    for queue, team in queues:
        day, callers = figures[queue], waiting.get(queue, [])
        queue_rows.append({
            "queue": queue, "team": team, "waiting": len(callers),
            "longest_wait_seconds": round(callers[0].seconds, 1) if callers else None,
            "callers": [{"number": c.number, "number_display": phone(c.number) if c.number
                         else "номер скрыт",
                         "client": names.get(normalize_phone(c.number or "") or ""),
                         "since": isoformat(c.since),
                         "waiting_seconds": round(c.seconds, 1)}
                        for c in callers[:WAITING_SHOWN]],
            "answered": day.answered, "abandoned": day.abandoned, "offered": day.offered,
            "answered_within": day.answered_within, "service_level": day.service_level,
            "average_wait_seconds": day.average_wait_seconds,
        })
    presence = await current_states(session, [manager.id for manager in managers])
    manager_rows = []
    for manager in managers:
        state = presence.get(manager.id)
        paused = (state.name, state.since) if state and state.reason_id is not None else None
        activity = manager_state(manager.extension, calls, pause=paused)
        row = talk.get(manager.id, {})
        manager_rows.append({
            "user_id": manager.id, "name": manager.name, "extension": manager.extension,
            "state": str(activity.state), "state_label": activity.label,
            "state_since": isoformat(activity.since),
            "state_seconds": (round(max((now - activity.since).total_seconds(), 0.0), 1)
                              if activity.since else None),
            "talk_seconds": row.get("talk_seconds", 0.0), "calls": row.get("calls", 0),
            "target_seconds": row.get("target_seconds", target_seconds),
            "working": row.get("working", True),
        })
    return {"at": isoformat(now), "date": today.isoformat(),
            "service_level_seconds": threshold_seconds,
            "queues": queue_rows, "managers": manager_rows}


async def _board_of(request: web.Request, user: User) -> dict[str, Any]:
    now = utcnow()
    async with request.app[SESSIONS]() as session:
        body = await wallboard(
            session, user, live_calls(request.app, now), tz=workday_tz(request), now=now,
            threshold_seconds=max(1, request.app[SETTINGS].service_level_seconds),
            target_seconds=request.app[WEB_CONFIG].daily_target_seconds)
    # Is any PBX connected now? Without one the live part is empty, and the page says why.
    body["telephony"] = any(listener.session.connected.is_set()
                            for listener in _listeners(request.app))
    return body


async def board_api(request: web.Request) -> web.Response:
    """GET /api/wallboard: the board's figures (supervisors: their team; admins: all)."""
    user = _viewer(api_user(request))
    return web.json_response(await _board_of(request, user))


async def board_page(request: web.Request) -> web.Response:
    """GET /wallboard: the wall-screen page, drawn at once from the same figures."""
    user = _viewer(page_user(request))
    board = await _board_of(request, user)
    team = None
    if user.team_id is not None:
        async with request.app[SESSIONS]() as session:
            team = await session.scalar(select(Team.name).where(Team.id == user.team_id))
    return aiohttp_jinja2.render_template("wallboard.html", request, {
        "title": "Табло", "board": board, "team": team if user.role != Role.ADMIN else None,
        "tz": request.app[SETTINGS].timezone})


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the wallboard's page and API routes."""
    router.add_get("/wallboard", board_page)
    router.add_get("/api/wallboard", board_api)


_ERR = {"description": "error", "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/Error"}}}}
OPENAPI_PATHS: dict[str, Any] = {
    "/api/wallboard": {"get": {
        "summary": "The wallboard: per queue callers waiting now, the longest wait, answered "
                   "and abandoned today, service level and average wait; per manager his "
                   "state and talk time today (supervisors: their team; admins: all)",
        "security": [{"session": []}],
        "responses": {"200": {"description": "queues and managers", "content": {
            "application/json": {"schema": {"type": "object", "required": [
                "at", "date", "service_level_seconds", "queues", "managers", "telephony"]}}}},
            "401": _ERR, "403": _ERR}}},
}
openapi.PATHS.update(OPENAPI_PATHS)
