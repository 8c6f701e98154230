"""Speech alerts in the app: the alerts a supervisor got, and the rules that raise them.

- ``/alerts``: alerts newest first, filtered by rule and period, each opening the call at
  the phrase's second, each marked «просмотрено» by its reader;
- ``/alerts/rules``: the rules (dictionary, whose speech, team), a form to add one, and
  buttons to switch one off or on, archive or bring it back;
- the same as JSON under ``/api/alerts`` and ``/api/alert-rules``.

Supervisors (their team's rules) and admins (any team's, or the company's) only; see
:mod:`crm_core.speech.alerts` for the matching and :mod:`telecrm.speech.alerts` for the
delivery.
"""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from crm_core.errors import DomainError, NotAllowedError
from crm_core.people import access
from crm_core.people.models import Role, User
from crm_core.speech import alerts as store
from crm_core.speech import dictionaries
from telecrm.messages import russian
from telecrm.speech.alerts import SAID, second
from telecrm.web import openapi
from telecrm.web.auth import api_user, page_user
from telecrm.web.keys import SESSIONS, WRITER_SESSIONS, workday_tz
from telecrm.web.params import day_bounds, json_object, parse_day, path_id

SPEAKER_LABELS = {"client": "Клиент", "manager": "Менеджер", "any": "Любой"}


def _bosses(user: User) -> None:
    if not store.may_manage(user):
        raise NotAllowedError("speech.alerts.bosses_only", "supervisors and admins only")


def _filters(request: web.Request) -> dict[str, Any]:
    """rule, since and until from the query (days in the working day's timezone)."""
    tz = workday_tz(request)
    raw_rule, raw_from, raw_to = (request.query.get(n, "").strip()
                                  for n in ("rule", "from", "to"))
    if raw_rule and not raw_rule.isdigit():
        raise DomainError("speech.alerts.rule_not_found", "no such rule")
    since = day_bounds(parse_day(raw_from, "from"), tz)[0] if raw_from else None
    until = day_bounds(parse_day(raw_to, "to"), tz)[1] if raw_to else None
    if since is not None and until is not None and since >= until:
        raise DomainError("request.range_reversed", "from must not be after to",
                          first="from", last="to")
    return {"rule_id": int(raw_rule) if raw_rule else None, "since": since, "until": until}


def _row(row: store.AlertRow, tz: Any, names: dict[str, str]) -> dict[str, Any]:
    return {"id": row.id, "rule_id": row.rule_id, "dictionary": row.dictionary,
            "call_id": row.call_id, "speaker": row.speaker, "said": row.said,
            "text": row.text, "start": row.start, "at": second(row.start),
            "created_at": row.created_at.isoformat(),
            "when": row.created_at.astimezone(tz).strftime("%d.%m.%Y %H:%M"),
            "call_started_at": row.started_at.isoformat(), "client": row.client_name,
            "manager": {"extension": row.manager, "name": names.get(row.manager or "")},
            "verb": SAID.get(row.speaker, "В разговоре прозвучало"),
            "url": f"/calls/{row.call_id}#t={row.start:g}", "seen": row.seen}


async def _alerts(request: web.Request, user: User) -> list[dict[str, Any]]:
    _bosses(user)
    filters = _filters(request)
    tz = workday_tz(request)
    async with request.app[SESSIONS]() as session:
        rows = await store.listing(session, user, **filters)
        names = {p.extension: p.name for p in await access.visible_managers(session, user)
                 if p.extension}
    return [_row(r, tz, names) for r in rows]


def _rule(view: store.RuleView) -> dict[str, Any]:
    return {"id": view.id, "dictionary": view.dictionary, "speaker": view.speaker,
            "team": view.team, "active": view.active, "archived": view.archived}


def _int(value: Any, name: str) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise DomainError("request.not_integer", f"{name} is a number", name=name)


# -- API ------------------------------------------------------------------------------------


async def alerts_api(request: web.Request) -> web.Response:
    """GET /api/alerts?rule=&from=&to=: the alerts, newest first."""
    return web.json_response(await _alerts(request, api_user(request)))


async def seen_api(request: web.Request) -> web.Response:
    """POST /api/alerts/{id}/seen."""
    user = api_user(request)
    async with request.app[WRITER_SESSIONS]() as session:
        await store.mark_seen(session, user, path_id(request))
        await session.commit()
    return web.json_response({"seen": True})


async def rules_api(request: web.Request) -> web.Response:
    """GET /api/alert-rules."""
    user = api_user(request)
    _bosses(user)
    async with request.app[SESSIONS]() as session:
        return web.json_response([_rule(v) for v in await store.rules(session, user)])


async def create_rule_api(request: web.Request) -> web.Response:
    """POST /api/alert-rules {"dictionary_id", "speaker", "team_id"?}."""
    user = api_user(request)
    body = await json_object(request)
    async with request.app[WRITER_SESSIONS]() as session:
        rule = await store.create_rule(
            session, user, dictionary_id=_int(body.get("dictionary_id"), "dictionary_id") or 0,
            speaker=str(body.get("speaker") or store.ANY),
            team_id=_int(body.get("team_id"), "team_id"))
        await session.commit()
        views = {v.id: v for v in await store.rules(session, user)}
    return web.json_response(_rule(views[rule.id]), status=201)


async def update_rule_api(request: web.Request) -> web.Response:
    """PATCH /api/alert-rules/{id} {"active"?, "archived"?}."""
    user = api_user(request)
    body = await json_object(request)
    for name in ("active", "archived"):
        if body.get(name) is not None and not isinstance(body[name], bool):
            raise DomainError("request.not_boolean", f"{name} is true or false", name=name)
    async with request.app[WRITER_SESSIONS]() as session:
        rule = await store.update_rule(session, user, path_id(request),
                                       active=body.get("active"), archived=body.get("archived"))
        await session.commit()
        views = {v.id: v for v in await store.rules(session, user)}
    return web.json_response(_rule(views[rule.id]))


# -- pages ----------------------------------------------------------------------------------


async def alerts_page(request: web.Request) -> web.Response:
    user = page_user(request)
    _bosses(user)
    error, alerts = None, []
    try:
        alerts = await _alerts(request, user)
    except DomainError as exc:
        if isinstance(exc, NotAllowedError):
            raise
        error = russian(exc)
    async with request.app[SESSIONS]() as session:
        rules = await store.rules(session, user)
    context = {"title": "Оповещения", "alerts": alerts, "rules": rules, "error": error,
               "values": {n: request.query.get(n, "") for n in ("rule", "from", "to")},
               "speakers": SPEAKER_LABELS}
    return aiohttp_jinja2.render_template("alerts.html", request, context,
                                          status=400 if error else 200)


async def seen_form(request: web.Request) -> web.Response:
    user = page_user(request)
    async with request.app[WRITER_SESSIONS]() as session:
        await store.mark_seen(session, user, path_id(request))
        await session.commit()
    back = request.headers.get("Referer", "")
    path = back.split("://", 1)[-1].partition("/")[2] if "://" in back else ""
    raise web.HTTPSeeOther("/" + path if path.startswith("alerts") else "/alerts")


async def rules_page(request: web.Request, *, error: str | None = None,
                     form: dict[str, str] | None = None) -> web.Response:
    user = page_user(request)
    _bosses(user)
    async with request.app[SESSIONS]() as session:
        rules = await store.rules(session, user)
        books = await dictionaries.listing(session)
        teams = await access.visible_teams(session, user)
    context = {"title": "Правила оповещений", "rules": rules, "dictionaries": books,
               "teams": teams, "company": user.role == Role.ADMIN,
               "speakers": SPEAKER_LABELS, "error": error, "form": form or {}}
    return aiohttp_jinja2.render_template("alert_rules.html", request, context,
                                          status=400 if error else 200)


async def create_rule_form(request: web.Request) -> web.Response:
    user = page_user(request)
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    try:
        async with request.app[WRITER_SESSIONS]() as session:
            await store.create_rule(
                session, user, dictionary_id=_int(form.get("dictionary"), "dictionary") or 0,
                speaker=form.get("speaker", store.ANY), team_id=_int(form.get("team"), "team"))
            await session.commit()
    except DomainError as exc:
        if isinstance(exc, NotAllowedError):
            raise
        return await rules_page(request, error=russian(exc), form=form)
    raise web.HTTPSeeOther("/alerts/rules")


ACTIONS: dict[str, dict[str, bool]] = {
    "off": {"active": False}, "on": {"active": True},
    "archive": {"archived": True}, "restore": {"archived": False}}


async def update_rule_form(request: web.Request) -> web.Response:
    user = page_user(request)
    form = await request.post()
    change = ACTIONS.get(str(form.get("action", "")))
    if change is None:
        raise web.HTTPBadRequest(text="Неизвестное действие.")
    async with request.app[WRITER_SESSIONS]() as session:
        await store.update_rule(session, user, path_id(request), **change)
        await session.commit()
    raise web.HTTPSeeOther("/alerts/rules")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/alerts", alerts_page)
    router.add_post("/alerts/{id:\\d+}/seen", seen_form)
    router.add_get("/alerts/rules", rules_page)
    router.add_post("/alerts/rules", create_rule_form)
    router.add_post("/alerts/rules/{id:\\d+}", update_rule_form)
    router.add_get("/api/alerts", alerts_api)
    router.add_post("/api/alerts/{id}/seen", seen_api)
    router.add_get("/api/alert-rules", rules_api)
    router.add_post("/api/alert-rules", create_rule_api)
    router.add_patch("/api/alert-rules/{id}", update_rule_api)


def _doc(summary: str, params: list[str], codes: tuple[str, ...] = ("400", "401", "403"),
         kind: str = "object", csrf: bool = False) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": n, "in": "path" if n == "id" else "query", "required": n == "id",
         "schema": {"type": "string"}} for n in params]
    if csrf:
        parameters.append({"name": "X-CSRF-Token", "in": "header", "required": True,
                           "schema": {"type": "string"}})
    return {"summary": summary, "security": [{"session": []}], "parameters": parameters,
            "responses": {"200": {"description": "ok", "content": {"application/json": {
                "schema": {"type": kind}}}},
                **{c: {"description": "error", "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/Error"}}}} for c in codes}}}


_RULE_BODY = {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "properties": {
        "dictionary_id": {"type": "integer"},
        "speaker": {"type": "string", "enum": list(store.SPEAKERS)},
        "team_id": {"type": ["integer", "null"]},
        "active": {"type": "boolean"}, "archived": {"type": "boolean"}}}}}}

OPENAPI_PATHS: dict[str, Any] = {
    "/api/alerts": {"get": _doc("Speech alerts of the user's rules, newest first",
                                ["rule", "from", "to"], kind="array")},
    "/api/alerts/{id}/seen": {"post": _doc("Mark an alert seen (for this user)", ["id"],
                                           ("401", "403", "404"), csrf=True)},
    "/api/alert-rules": {
        "get": _doc("Speech alert rules the user keeps", [], kind="array"),
        "post": {**_doc("Add a rule {dictionary_id, speaker, team_id}", [],
                        ("400", "401", "403", "404", "415"), csrf=True),
                 "requestBody": _RULE_BODY}},
    "/api/alert-rules/{id}": {"patch": {
        **_doc("Switch a rule on/off, archive or restore it", ["id"],
               ("400", "401", "403", "404", "415"), csrf=True), "requestBody": _RULE_BODY}},
}
_created = OPENAPI_PATHS["/api/alert-rules"]["post"]["responses"]
_created["201"] = _created.pop("200")
openapi.PATHS.update(OPENAPI_PATHS)
