"""Routes of the weekly random sample: N per team, the draw, the week's sampled calls.

- ``GET /api/qc/sample?week=D``: N per team the user manages, the week's sampled calls.
- ``POST /api/qc/sample`` ``{"week"}``: draw (supervisor: his team; admin: all).
- ``POST /api/qc/sample/settings`` ``{"team", "per_manager"}``: a team's N.
- ``POST /qc/sample``: the same two as forms of the /qc page.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import select

from crm_core.clock import local_today
from crm_core.errors import DomainError
from crm_core.people.models import Role, Team, User
from crm_core.speech import sampling
from telecrm.speech.roles import qc_user
from telecrm.web.auth import api_user, page_user
from telecrm.web.keys import SESSIONS, WRITER_SESSIONS, workday_tz
from telecrm.web.params import json_object


def default_week(request: web.Request) -> date:
    """The last full week: drawn once it is over, every call of it can be picked."""
    return sampling.monday(local_today(workday_tz(request))) - timedelta(days=7)


def week_of(request: web.Request, raw: Any) -> date:
    if raw in (None, ""):
        return default_week(request)
    try:
        return sampling.monday(date.fromisoformat(str(raw)))
    except ValueError:
        raise DomainError("request.not_a_date", "week must be a date (YYYY-MM-DD)",
                          name="week") from None


async def page_data(request: web.Request, session: Any, user: User) -> dict[str, Any]:
    """What the /qc page shows of the sample (nothing asked of a manager's settings)."""
    week = week_of(request, request.query.get("week"))
    tz = workday_tz(request)
    calls = await sampling.queue(session, user, week)
    for c in calls:
        c["when"] = datetime.fromisoformat(c["started_at"]).astimezone(tz)
    may = user.role in (Role.SUPERVISOR, Role.ADMIN)
    return {"week": week, "week_end": week + timedelta(days=6), "calls": calls,
            "settings": await sampling.settings(session, user) if may else [],
            "may_draw": may}


async def _team(session: Any, raw: Any) -> int:
    team = await session.scalar(select(Team).where(Team.name == str(raw or "")))
    if team is None:
        raise DomainError("speech.scorecard.no_team", "no such team", team=str(raw or ""))
    return int(team.id)


def _count(raw: Any) -> int:
    try:
        return int(str(raw).strip())
    except ValueError:
        raise DomainError("speech.sample.count_out_of_range", "N is 0..50",
                          max=sampling.MAX_PER_MANAGER) from None


async def sample_api(request: web.Request) -> web.Response:
    """GET /api/qc/sample?week=D."""
    user = qc_user(api_user(request))
    async with request.app[SESSIONS]() as session:
        data = await page_data(request, session, user)
    for c in data["calls"]:
        c.pop("when", None)
    return web.json_response({"week": data["week"].isoformat(), "settings": data["settings"],
                              "calls": data["calls"]})


async def draw_api(request: web.Request) -> web.Response:
    """POST /api/qc/sample {"week"}: the calls drawn now (none when the week is full)."""
    user = api_user(request)
    body = await json_object(request)
    week = week_of(request, body.get("week"))
    async with request.app[WRITER_SESSIONS]() as session:
        added = await sampling.draw(session, user, week, workday_tz(request))
        await session.commit()
        out = [{"call_id": s.call_id, "manager": s.manager, "week": s.week} for s in added]
    return web.json_response({"week": week.isoformat(), "added": out}, status=201)


async def settings_api(request: web.Request) -> web.Response:
    """POST /api/qc/sample/settings {"team", "per_manager"}."""
    user = api_user(request)
    body = await json_object(request)
    async with request.app[WRITER_SESSIONS]() as session:
        team_id = await _team(session, body.get("team"))
        await sampling.set_per_manager(session, user, team_id, _count(body.get("per_manager")))
        await session.commit()
        rows = await sampling.settings(session, user)
    return web.json_response(rows)


async def sample_form(request: web.Request) -> web.Response:
    """POST /qc/sample: ``action=settings`` (``n_<team id>`` fields) or ``action=draw``."""
    user = page_user(request)
    form = await request.post()
    week = week_of(request, form.get("week"))
    async with request.app[WRITER_SESSIONS]() as session:
        if form.get("action") == "settings":
            for row in await sampling.settings(session, user):
                raw = form.get(f"n_{row['team_id']}")
                if raw is not None and str(raw).strip() != str(row["per_manager"]):
                    await sampling.set_per_manager(session, user, row["team_id"],
                                                   _count(raw or "0"))
        else:
            await sampling.draw(session, user, week, workday_tz(request))
        await session.commit()
    raise web.HTTPSeeOther(f"/qc?week={week.isoformat()}#qc-sample")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/qc/sample", sample_api)
    router.add_post("/api/qc/sample", draw_api)
    router.add_post("/api/qc/sample/settings", settings_api)
    router.add_post("/qc/sample", sample_form)
