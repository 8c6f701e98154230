"""Routes of the talktime feature, registered by telecrm.web.routes.

- ``GET /api/talktime/report?date=D`` or ``?from=D&to=D``: per manager his days and
  totals (days met/missed) and per team the sums, limited by :mod:`crm_core.people.access`;
- ``GET /api/talktime/live``: today's figures with who is on a call now and with whom,
  and each manager's projection at his current pace (the board polls it on events);
- ``GET /api/talktime/violations``, ``POST /talktime/violations/{id}``: the supervisor
  confirms (fine) or excuses (reason) a day below the threshold;
- ``GET /talktime``: the supervisor's board, the period table and a chart per manager;
- the settings page and its API (rules, holidays, absences): :mod:`.talktime_settings`.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import Call, CallLeg, CallStatus, LegRole
from crm_core.clients.models import Client
from crm_core.clock import local_today
from crm_core.errors import DomainError, NotAllowedError, NotFoundError
from crm_core.people import access
from crm_core.people.models import Role, User
from crm_core.talktime.metric import (
    Rules,
    decide_violation,
    period_report,
    violation_to_dict,
)
from crm_core.talktime.models import Violation
from crm_core.timestamps import utcnow
from telecrm.presence.report import pace, presence_day
from telecrm.talktime import settings_routes as talktime_settings
from telecrm.talktime.board import EXCLUDED_NAMES
from telecrm.web.auth import api_user, page_user
from telecrm.web.keys import SESSIONS, WEB_CONFIG, WRITER_SESSIONS, workday_tz
from telecrm.web.params import parse_day, path_id
from telecrm.web.redirects import local_referer


def _default(request: web.Request) -> Rules:
    return Rules(target_seconds=request.app[WEB_CONFIG].daily_target_seconds)


def _range(request: web.Request) -> tuple[date, date]:
    """``?date=`` (one day), ``?from=&to=`` (inclusive), else the current month so far."""
    q = request.query
    if "date" in q:
        day = parse_day(q["date"], "date")
        return day, day
    today = local_today(workday_tz(request))
    first = parse_day(q["from"], "from") if "from" in q else today.replace(day=1)
    last = parse_day(q["to"], "to") if "to" in q else max(first, today)
    if last < first:
        raise DomainError("request.range_reversed", "from must not be after to",
                          first="from", last="to")
    if (last - first).days > 366:
        raise DomainError("talktime.period_too_long", "the period must not exceed a year")
    return first, last


def _viewer(request: web.Request, *, page: bool = False) -> User:
    user = page_user(request) if page else api_user(request)
    if not access.may_see_talk_time(user):
        raise NotAllowedError("talktime.role_no_access", "your role has no access to talk time")
    return user


async def report(request: web.Request) -> web.Response:
    user = _viewer(request)
    first, last = _range(request)
    async with request.app[SESSIONS]() as session:
        managers = await access.visible_managers(session, user)
        body = await period_report(session, managers, first, last, workday_tz(request),
                                   now=utcnow(), default=_default(request))
    return web.json_response(body)


async def _on_calls(session: AsyncSession, user_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Who is talking right now (a live bridged leg) and with whom."""
    if not user_ids:
        return {}
    stmt = (
        select(CallLeg.user_id, CallLeg.bridged_at, Call.id, Call.direction,
               Call.client_number, Client.name)
        .join(Call, Call.id == CallLeg.call_id)
        .outerjoin(Client, Client.id == Call.client_id)
        .where(CallLeg.user_id.in_(user_ids), CallLeg.role == LegRole.MANAGER.value,
               CallLeg.ended_at.is_(None), CallLeg.bridged_at.is_not(None),
               Call.status == CallStatus.IN_PROGRESS.value)
    )
    return {uid: {"call_id": cid, "direction": direction, "since": bridged.isoformat(),
                  "with": name or number or "внутренний"}
            for uid, bridged, cid, direction, number, name in await session.execute(stmt)}


async def live_board(session: AsyncSession, user: User, tz: ZoneInfo,
                     default: Rules) -> list[dict[str, Any]]:
    """Today per visible manager: talk so far (live), target, calls, pace, current call and
    presence (``presence``, ``states``, ``working_seconds``, ``paused_seconds``)."""
    now = utcnow()
    managers = await access.visible_managers(session, user)
    # presence: the state now and time per state; pauses do not slow the projected pace
    rows = await presence_day(session, managers, now.astimezone(tz).date(), tz, now, default)
    talking = await _on_calls(session, [m.id for m in managers])
    for row in rows:
        row["on_call"] = talking.get(row["user_id"])
        row.update(pace(row, now, tz))
    return rows


async def live(request: web.Request) -> web.Response:
    user = _viewer(request)
    async with request.app[SESSIONS]() as session:
        rows = await live_board(session, user, workday_tz(request), _default(request))
    return web.json_response({"at": utcnow().isoformat(), "managers": rows})


async def _visible_violations(session: AsyncSession, user: User, first: date,
                              last: date) -> list[dict[str, Any]]:
    managers = {m.id: m for m in await access.visible_managers(session, user)}
    rows = await session.scalars(
        select(Violation).where(Violation.user_id.in_(list(managers)), Violation.day >= first,
                                Violation.day <= last).order_by(Violation.day.desc()))
    return [violation_to_dict(v, managers[v.user_id]) for v in rows]


async def violations(request: web.Request) -> web.Response:
    user = _viewer(request)
    first, last = _range(request)
    async with request.app[SESSIONS]() as session:
        body = await _visible_violations(session, user, first, last)
    return web.json_response(body)


async def decide(request: web.Request) -> web.Response:
    """A supervisor's (or admin's) decision on a violation of his team, from the page form."""
    user = page_user(request)
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotAllowedError("talktime.decide_for_bosses",
                              "a supervisor decides on violations")
    violation_id = path_id(request, code="talktime.violation_not_found")
    form = await request.post()
    action, reason = str(form.get("action", "")), str(form.get("reason", ""))[:1000]
    if action not in ("confirm", "excuse"):
        raise DomainError("talktime.decision_invalid", "confirm or excuse")
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        visible = {m.id for m in await access.visible_managers(session, user)}
        violation = await session.get(Violation, violation_id)
        if violation is None or violation.user_id not in visible:
            raise NotFoundError("talktime.violation_not_found", "no such violation")
        await decide_violation(session, violation, user, confirm=action == "confirm",
                               reason=reason, default=_default(request))
    raise web.HTTPSeeOther(local_referer(request.headers.get("Referer"), request.host,
                                        "/talktime"))


def chart_points(days: list[dict[str, Any]], width: int = 300, height: int = 60) -> dict[str, Any]:
    """Bar geometry of a manager's month for an inline SVG (minutes per day vs target)."""
    top = max([d["talk_seconds"] for d in days] + [d["target_seconds"] for d in days] + [1])
    step = width / max(1, len(days))
    bars = [{"x": round(i * step, 1), "w": round(max(1.0, step - 1), 1),
             "h": round(height * d["talk_seconds"] / top, 1), "date": d["date"],
             "minutes": round(d["talk_seconds"] / 60), "met": d["met"], "working": d["working"],
             "excluded": d["excluded"]}
            for i, d in enumerate(days)]
    target = days[0]["target_seconds"] if days else 0
    return {"bars": bars, "width": width, "height": height,
            "target_y": round(height - height * target / top, 1)}


@aiohttp_jinja2.template("talktime_board.html")
async def page(request: web.Request) -> dict[str, Any]:
    user = _viewer(request, page=True)
    tz = workday_tz(request)
    first, last = _range(request)
    async with request.app[SESSIONS]() as session:
        board = await live_board(session, user, tz, _default(request))
        table = await period_report(session, await access.visible_managers(session, user),
                                    first, last, tz, now=utcnow(), default=_default(request))
        found = await _visible_violations(session, user, first, last)
    for row in table["managers"]:
        row["chart"] = chart_points(row["days"])
    return {"title": "Норма разговора", "board": board, "table": table, "first": first,
            "last": last, "violations": found,
            "may_decide": user.role in (Role.SUPERVISOR, Role.ADMIN),
            "excluded_names": EXCLUDED_NAMES,
            "prev_month": (first.replace(day=1) - timedelta(days=1)).replace(day=1),
            "prev_month_end": first.replace(day=1) - timedelta(days=1),
            "staff": {}}


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this feature's pages and API routes."""
    router.add_get("/api/talktime/report", report)
    router.add_get("/api/talktime/live", live)
    router.add_get("/api/talktime/violations", violations)
    router.add_post("/talktime/violations/{id}", decide)
    router.add_get("/talktime", page)
    talktime_settings.add_routes(router)
