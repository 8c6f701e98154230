"""Routes of QC scorecards: the builder's form, scoring a call, weekly averages.

- ``/qc/scorecards``: the head of sales (a supervisor for his team, an admin for any
  team or the company) builds a scorecard as rows of a form; saving adds a version.
- ``/api/calls/{id}/qc``: the call page's QC panel: the automatic check, the
  scorecard in force, every reviewer's score; ``POST /api/calls/{id}/scores`` saves
  the reviewer's own.
- ``/api/qc/weekly``: per manager and week, the average score.
- ``/qc/calibration``: how far reviewers agree on calls two of them scored.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select

from crm_core.errors import DomainError, NotAllowedError, NotFoundError
from crm_core.people import access
from crm_core.people.models import Role, Team, User
from crm_core.speech import calibration, scorecards
from crm_core.speech import review as kkp_review
from crm_core.speech import scripts as kkp_scripts
from crm_core.speech.models import KkpResult, QcScorecard
from speech.script import KkpError, parse_script_text
from telecrm.messages import sentence
from telecrm.speech.roles import qc_user
from telecrm.web.auth import api_user, page_user
from telecrm.web.keys import SESSIONS, WRITER_SESSIONS, workday_tz
from telecrm.web.params import json_object, path_id, period

BLANK_ROWS = 4  # empty rows under the items, so a new checkpoint needs no script


def card_dict(row: QcScorecard, teams: dict[int, str], names: dict[int, str],
              request: web.Request) -> dict[str, Any]:
    local = row.created_at.astimezone(workday_tz(request))
    return {"id": row.id, "name": row.name, "team": teams.get(row.team_id or 0),
            "items": row.items, "author": names.get(row.created_by or 0),
            "created_at": row.created_at.isoformat(),
            "label": f"Версия от {local:%d.%m.%Y %H:%M}"
                     + (f", {names[row.created_by]}" if row.created_by in names else "")}


async def _lookups(session: Any) -> tuple[dict[int, str], dict[int, str]]:
    teams = {k: v for k, v in await session.execute(select(Team.id, Team.name))}
    names = {k: v for k, v in await session.execute(select(User.id, User.name))}
    return teams, names


async def _visible_cards(session: Any, user: User) -> list[QcScorecard]:
    rows = await scorecards.versions(session, every=True)
    if user.role == Role.ADMIN:
        return rows
    return [r for r in rows if r.team_id in (None, user.team_id)]


async def _team_id(session: Any, user: User, raw: Any) -> int | None:
    """The team a form or a body names (by name); a supervisor's own by default."""
    if raw in (None, ""):
        return user.team_id if user.role == Role.SUPERVISOR else None
    team = await session.scalar(select(Team).where(Team.name == str(raw)))
    if team is None:
        raise DomainError("speech.scorecard.no_team", "no such team", team=str(raw))
    return int(team.id)


def items_from_form(form: Any) -> list[dict[str, Any]]:
    """Rows ``title_N``, ``weight_N``, ``fail_N`` in order; rows without a title are
    the blank ones left for new items."""
    items = []
    for n in range(scorecards.MAX_ITEMS + BLANK_ROWS):
        title = str(form.get(f"title_{n}", "")).strip()
        if title:
            items.append({"title": title, "weight": form.get(f"weight_{n}", ""),
                          "instant_fail": form.get(f"fail_{n}") == "1"})
    return items


async def builder_page(request: web.Request, *, error: str | None = None,
                       form: dict[str, Any] | None = None) -> web.Response:
    """GET /qc/scorecards: the form (prefilled with the version in force) and versions."""
    user = qc_user(page_user(request))
    async with request.app[SESSIONS]() as session:
        teams, names = await _lookups(session)
        cards = await _visible_cards(session, user)
        wanted = request.query.get("team")
        team_id = (await _team_id(session, user, wanted) if user.role == Role.ADMIN
                   else user.team_id)
        base = await scorecards.in_force(session, team_id)
    if form is None:
        form = {"name": base.name if base else "Оценка звонка",
                "team": teams.get(team_id or 0, ""),
                "items": [dict(i) for i in base.items] if base else []}
    rows = list(form["items"]) + [{"title": "", "weight": "", "instant_fail": False}
                                  for _ in range(BLANK_ROWS)]
    context = {"title": "Карточки оценки", "versions": [card_dict(c, teams, names, request)
                                                        for c in cards],
               "may_edit": scorecards.may_build(user), "is_admin": user.role == Role.ADMIN,
               "teams": sorted(teams.items(), key=lambda t: t[1]), "form": form, "rows": rows,
               "error": error, "added": request.query.get("added")}
    return aiohttp_jinja2.render_template("qc_scorecards.html", request, context,
                                          status=400 if error else 200)


async def builder_post(request: web.Request) -> web.Response:
    """POST /qc/scorecards: a new version; a refusal shows the form again as typed."""
    user = qc_user(page_user(request))
    form = await request.post()
    items = items_from_form(form)
    data = {"name": str(form.get("name", "")), "team": str(form.get("team", "")),
            "items": items}
    try:
        async with request.app[WRITER_SESSIONS]() as session:
            team_id = await _team_id(session, user, data["team"])
            row = await scorecards.add_version(session, user, name=data["name"],
                                               team_id=team_id, items=items)
            await session.commit()
    except DomainError as exc:
        if isinstance(exc, NotAllowedError):
            raise
        return await builder_page(request, error=sentence(exc.code, exc.params), form=data)
    raise web.HTTPSeeOther(f"/qc/scorecards?added={row.id}")


async def cards_api(request: web.Request) -> web.Response:
    """GET /api/qc/scorecards: versions of my team's and the company's scorecards."""
    user = qc_user(api_user(request))
    async with request.app[SESSIONS]() as session:
        teams, names = await _lookups(session)
        rows = await _visible_cards(session, user)
    return web.json_response([card_dict(r, teams, names, request) for r in rows])


async def cards_api_add(request: web.Request) -> web.Response:
    """POST /api/qc/scorecards {"name", "team", "items": [{"title", "weight",
    "instant_fail"}]}."""
    user = qc_user(api_user(request))
    body = await json_object(request)
    items = body.get("items")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise DomainError("speech.scorecard.items_not_list", "items must be a list of objects")
    async with request.app[WRITER_SESSIONS]() as session:
        team_id = await _team_id(session, user, body.get("team"))
        row = await scorecards.add_version(session, user, name=str(body.get("name") or ""),
                                           team_id=team_id, items=items)
        await session.commit()
        teams, names = await _lookups(session)
        out = card_dict(row, teams, names, request)
    return web.json_response(out, status=201)


async def _call(session: Any, user: User, call_id: int) -> Any:
    call = await access.visible_call(session, user, call_id)
    if call is None:
        raise NotFoundError("calls.not_found", "no such call")
    return call


async def _titles(session: Any, script_id: int | None) -> dict[str, str]:
    """Stage and forbidden-list titles of a stored script version, by id."""
    version = await kkp_scripts.get_version(session, script_id) if script_id else None
    if version is None:
        return {}
    try:
        script = parse_script_text(version.text)
    except KkpError:
        return {}
    titles = {stage.id: stage.title for stage in script.stages}
    titles.update({f.id: f.title for f in script.forbidden if f.title})
    return titles


async def call_qc(request: web.Request) -> web.Response:
    """GET /api/calls/{id}/qc: the automatic check, the scorecard in force, the scores."""
    user = qc_user(api_user(request))
    call_id = path_id(request)
    tz = workday_tz(request)
    async with request.app[SESSIONS]() as session:
        call = await _call(session, user, call_id)
        auto = []
        for result in await session.scalars(select(KkpResult).where(KkpResult.call_id == call_id)
                                            .order_by(KkpResult.id)):
            data = await kkp_review.detail(session, result, call)
            titles = await _titles(session, result.script_id)
            auto.append({"result_id": result.id, "script": result.script_name,
                         "score": result.score,
                         "violations": [{"kind": v.get("kind"), "id": v.get("id"),
                                         "title": titles.get(str(v.get("id")), v.get("id")),
                                         "state": (v["review"] or {}).get("state", "open")}
                                        for v in data["violations"]]})
        card = await scorecards.in_force(session, await scorecards.team_of_call(session, call))
        scores = await scorecards.scores_of_call(session, call_id)
    for s in scores:
        s["when"] = datetime.fromisoformat(s["updated_at"]).astimezone(tz).strftime(
            "%d.%m.%Y %H:%M")
    may_score = scorecards.may_build(user)
    mine = next((s for s in scores if s["reviewer_id"] == user.id), None)
    return web.json_response({
        "call_id": call_id, "auto": auto, "scores": scores, "may_score": may_score,
        "scorecard": ({"id": card.id, "name": card.name, "items": card.items}
                      if card is not None else None),
        "mine": mine})


async def call_score(request: web.Request) -> web.Response:
    """POST /api/calls/{id}/scores {"scorecard_id", "answers": {item: yes|no|na},
    "comment"}: the reviewer's own score of the call (a second save corrects it)."""
    user = qc_user(api_user(request))
    call_id = path_id(request)
    body = await json_object(request)
    card_id, answers, comment = body.get("scorecard_id"), body.get("answers"), body.get("comment")
    if (not isinstance(card_id, int) or not isinstance(answers, dict)
            or (comment is not None and not isinstance(comment, str))):
        raise DomainError("speech.scorecard.body_invalid",
                          "scorecard_id is a number, answers an object, comment a string")
    async with request.app[WRITER_SESSIONS]() as session:
        call = await _call(session, user, call_id)
        if not scorecards.may_build(user):
            raise NotAllowedError("speech.scorecard.reviewers_only", "reviewers only")
        row = await scorecards.save_score(session, user, call, card_id, answers, comment)
        await session.commit()
        out = {"id": row.id, "score": row.score, "instant_fail": row.instant_fail,
               "answers": row.answers}
    return web.json_response(out, status=201)


async def weekly_api(request: web.Request) -> web.Response:
    """GET /api/qc/weekly: per manager and week, scores and their average."""
    user = qc_user(api_user(request))
    tz = workday_tz(request)
    since, until = period(request, tz, default_days=28)
    async with request.app[SESSIONS]() as session:
        rows = await scorecards.weekly(session, user, since=since, until=until, tz=tz)
    return web.json_response({"since": since.isoformat(), "until": until.isoformat(),
                              "weeks": rows})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/qc/scorecards", builder_page)
    router.add_post("/qc/scorecards", builder_post)
    router.add_get("/api/qc/scorecards", cards_api)
    router.add_post("/api/qc/scorecards", cards_api_add)
    router.add_get("/api/calls/{id}/qc", call_qc)
    router.add_post("/api/calls/{id}/scores", call_score)
    router.add_get("/api/qc/weekly", weekly_api)
    router.add_get("/api/qc/calibration", calibration_api)
    router.add_get("/qc/calibration", calibration_page)


async def calibration_api(request: web.Request) -> web.Response:
    """GET /api/qc/calibration: reviewers' agreement on calls two of them scored."""
    user = _calibration_user(api_user(request))
    since, until = period(request, workday_tz(request), default_days=28)
    async with request.app[SESSIONS]() as session:
        data = await calibration.report(session, user, since=since, until=until)
    return web.json_response({"since": since.isoformat(), "until": until.isoformat(), **data})


def _calibration_user(user: User) -> User:
    if not scorecards.may_build(user):
        raise NotAllowedError("speech.calibration.bosses_only",
                              "calibration is for supervisors and admins")
    return user


async def calibration_page(request: web.Request) -> web.Response:
    """GET /qc/calibration: the head of sales' page of agreement between reviewers."""
    user = _calibration_user(page_user(request))
    tz = workday_tz(request)
    since, until = period(request, tz, default_days=28)
    async with request.app[SESSIONS]() as session:
        data = await calibration.report(session, user, since=since, until=until)
    for pair in data["pairs"]:
        pair["when"] = datetime.fromisoformat(pair["started_at"]).astimezone(tz)
    context = {"title": "Калибровка проверяющих", **data,
               "since": since.astimezone(tz).date().isoformat(),
               "until": (until.astimezone(tz) - timedelta(seconds=1)).date().isoformat()}
    return aiohttp_jinja2.render_template("qc_calibration.html", request, context)
