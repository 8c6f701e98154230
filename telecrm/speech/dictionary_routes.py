"""Phrase dictionaries in the app: the list and its form, the report with its chart, the calls.

- ``/dictionaries``: the dictionaries, a form to add one (a name and phrases, one per
  line); ``/dictionaries/{id}/edit`` changes or archives one (supervisors and admins);
- ``/dictionaries/{id}``: per manager and week, calls where a phrase was said / not said
  (by the manager, the client or either), a bar chart, each count a link to its calls;
- ``/dictionaries/{id}/calls``: those calls, each playing from the phrase that said it;
- the same as JSON under ``/api/dictionaries``.

Everyone but marketers reads the reports, within the calls he may see (a manager his own
row); see :mod:`crm_core.speech.dictionaries` for what is counted.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from crm_core.clock import local_today
from crm_core.errors import DomainError, NotAllowedError
from crm_core.people import access
from crm_core.people.models import User
from crm_core.speech import dictionaries as store
from crm_core.speech.search import SPEAKERS
from telecrm.messages import russian
from telecrm.speech.search_routes import WHO, may_search
from telecrm.web import openapi
from telecrm.web.auth import api_user, page_user
from telecrm.web.keys import SESSIONS, WRITER_SESSIONS, workday_tz
from telecrm.web.params import day_bounds, json_object, parse_day, path_id

DEFAULT_DAYS = 28
MAX_DAYS = 366
SPEAKER_LABELS = {"": "Любой", "manager": "Менеджер", "client": "Клиент"}


def _period(request: web.Request) -> store.Period:
    tz = workday_tz(request)
    raw_from, raw_to = (request.query.get(n, "").strip() for n in ("from", "to"))
    last = parse_day(raw_to, "to") if raw_to else local_today(tz)
    first = parse_day(raw_from, "from") if raw_from else last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise DomainError("request.range_reversed", "from must not be after to",
                          first="from", last="to")
    if (last - first).days >= MAX_DAYS:
        raise DomainError("request.period_too_long", f"at most {MAX_DAYS} days",
                          days=MAX_DAYS)
    return store.Period(day_bounds(first, tz)[0], day_bounds(last, tz)[1], tz)


def _speaker(request: web.Request) -> str | None:
    raw = request.query.get("speaker", "").strip()
    if raw and raw not in SPEAKERS:
        raise DomainError("speech.search.bad_speaker", "speaker is manager or client")
    return raw or None


def _phrases(value: Any) -> list[str]:
    """Phrases from JSON (a list of strings) or a form (one per line)."""
    if isinstance(value, str):
        return value.splitlines()
    if isinstance(value, list) and all(isinstance(p, str) for p in value):
        return value
    raise DomainError("speech.dictionaries.phrases_required", "phrases: a list of strings")


async def _report(request: web.Request, user: User, dictionary_id: int) -> dict[str, Any]:
    period, speaker = _period(request), _speaker(request)
    async with request.app[SESSIONS]() as session:
        row = await store.get(session, dictionary_id)
        visible = await access.calls_filter(session, user, since=period.since,
                                            until=period.until)
        return await store.report(session, user, row, visible=visible, period=period,
                                  speaker=speaker)


async def _drill_down(request: web.Request, user: User, dictionary_id: int
                      ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    period, speaker = _period(request), _speaker(request)
    said = request.query.get("said", "1") not in ("0", "no", "false")
    manager = request.query.get("manager", "").strip() or None
    if manager is not None and (not manager.isdigit() or len(manager) > 8):
        raise DomainError("request.not_extension", "manager is an extension", name="manager")
    raw_week = request.query.get("week", "").strip()
    week = parse_day(raw_week, "week") if raw_week else None
    async with request.app[SESSIONS]() as session:
        row = await store.get(session, dictionary_id)
        visible = await access.calls_filter(session, user, since=period.since,
                                            until=period.until)
        calls = await store.drill_down(session, user, row, visible=visible, period=period,
                                       said=said, speaker=speaker, manager=manager, week=week)
    return store.to_dict(row), calls


# -- API ------------------------------------------------------------------------------------


async def list_api(request: web.Request) -> web.Response:
    """GET /api/dictionaries: the dictionaries in use (``?archived=1``: the archived)."""
    user = api_user(request)
    may_search(user)
    async with request.app[SESSIONS]() as session:
        rows = await store.listing(session, archived=request.query.get("archived") == "1")
    return web.json_response([store.to_dict(r) for r in rows])


async def create_api(request: web.Request) -> web.Response:
    """POST /api/dictionaries {"name", "phrases": [...]}."""
    user = api_user(request)
    body = await json_object(request)
    async with request.app[WRITER_SESSIONS]() as session:
        row = await store.create(session, user, str(body.get("name") or ""),
                                 _phrases(body.get("phrases")))
        await session.commit()
        return web.json_response(store.to_dict(row), status=201)


async def update_api(request: web.Request) -> web.Response:
    """PATCH /api/dictionaries/{id} {"name"?, "phrases"?, "archived"?}."""
    user = api_user(request)
    body = await json_object(request)
    archived = body.get("archived")
    if archived is not None and not isinstance(archived, bool):
        raise DomainError("request.not_boolean", "archived is true or false", name="archived")
    name = body.get("name")
    async with request.app[WRITER_SESSIONS]() as session:
        row = await store.update(
            session, user, path_id(request), name=str(name) if name is not None else None,
            phrases=_phrases(body["phrases"]) if "phrases" in body else None, archived=archived)
        await session.commit()
        return web.json_response(store.to_dict(row))


async def report_api(request: web.Request) -> web.Response:
    """GET /api/dictionaries/{id}/report?from=&to=&speaker=."""
    user = api_user(request)
    may_search(user)
    return web.json_response(await _report(request, user, path_id(request)))


async def calls_api(request: web.Request) -> web.Response:
    """GET /api/dictionaries/{id}/calls?from=&to=&speaker=&manager=&week=&said=."""
    user = api_user(request)
    may_search(user)
    _, calls = await _drill_down(request, user, path_id(request))
    return web.json_response(calls)


# -- pages ----------------------------------------------------------------------------------


def _query(request: web.Request, **changes: Any) -> str:
    values = {n: request.query.get(n, "") for n in ("from", "to", "speaker")}
    values.update({k: str(v) for k, v in changes.items()})
    return urlencode([(k, v) for k, v in values.items() if v])


async def list_page(request: web.Request, *, error: str | None = None,
                    form: dict[str, str] | None = None) -> web.Response:
    user = page_user(request)
    may_search(user)
    async with request.app[SESSIONS]() as session:
        rows = await store.listing(session)
        archived = await store.listing(session, archived=True)
    context = {"title": "Словари фраз", "dictionaries": rows, "archived": archived,
               "may_edit": store.may_edit(user), "error": error, "form": form or {}}
    return aiohttp_jinja2.render_template("dictionaries.html", request, context,
                                          status=400 if error else 200)


async def create_form(request: web.Request) -> web.Response:
    user = page_user(request)
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    try:
        async with request.app[WRITER_SESSIONS]() as session:
            row = await store.create(session, user, form.get("name", ""),
                                     _phrases(form.get("phrases", "")))
            await session.commit()
    except DomainError as exc:
        if isinstance(exc, NotAllowedError):
            raise
        return await list_page(request, error=russian(exc), form=form)
    raise web.HTTPSeeOther(f"/dictionaries/{row.id}")


async def edit_page(request: web.Request, *, error: str | None = None,
                    form: dict[str, str] | None = None) -> web.Response:
    user = page_user(request)
    if not store.may_edit(user):
        raise NotAllowedError("speech.dictionaries.bosses_only", "bosses only")
    async with request.app[SESSIONS]() as session:
        row = await store.get(session, path_id(request))
    form = form or {"name": row.name, "phrases": "\n".join(row.phrases)}
    context = {"title": f"Словарь «{row.name}»", "dictionary": row, "form": form,
               "error": error}
    return aiohttp_jinja2.render_template("dictionary_edit.html", request, context,
                                          status=400 if error else 200)


async def edit_form(request: web.Request) -> web.Response:
    user = page_user(request)
    dictionary_id = path_id(request)
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    action = form.get("action", "save")
    try:
        async with request.app[WRITER_SESSIONS]() as session:
            if action in ("archive", "restore"):
                await store.update(session, user, dictionary_id, archived=action == "archive")
            else:
                await store.update(session, user, dictionary_id, name=form.get("name", ""),
                                   phrases=_phrases(form.get("phrases", "")))
            await session.commit()
    except DomainError as exc:
        if isinstance(exc, NotAllowedError):
            raise
        return await edit_page(request, error=russian(exc), form=form)
    raise web.HTTPSeeOther("/dictionaries" if action == "archive"
                           else f"/dictionaries/{dictionary_id}")


def _week_label(monday: date) -> str:
    """«23.11–29.11»: a week as the report's columns name it."""
    return f"{monday:%d.%m}–{monday + timedelta(days=6):%d.%m}"


async def report_page(request: web.Request) -> web.Response:
    user = page_user(request)
    may_search(user)
    dictionary_id = path_id(request)
    error, data = None, None
    try:
        data = await _report(request, user, dictionary_id)
    except DomainError as exc:
        if isinstance(exc, NotAllowedError) or exc.code == "speech.dictionaries.not_found":
            raise
        error = russian(exc)
        async with request.app[SESSIONS]() as session:
            data = {"dictionary": store.to_dict(await store.get(session, dictionary_id)),
                    "weeks": [], "managers": [], "total": None}
    most = max([m["calls"] for m in data["managers"]] or [1])
    context = {"title": f"Словарь «{data['dictionary']['name']}»", "data": data,
               "error": error, "most": most, "speakers": SPEAKER_LABELS,
               "weeks": [_week_label(date.fromisoformat(w)) for w in data["weeks"]],
               "values": {n: request.query.get(n, "") for n in ("from", "to", "speaker")},
               "may_edit": store.may_edit(user),
               "link": lambda **kw: f"/dictionaries/{dictionary_id}/calls?"
                                    + _query(request, **kw)}
    return aiohttp_jinja2.render_template("dictionary_report.html", request, context,
                                          status=400 if error else 200)


async def calls_page(request: web.Request) -> web.Response:
    user = page_user(request)
    may_search(user)
    dictionary, calls = await _drill_down(request, user, path_id(request))
    said = request.query.get("said", "1") not in ("0", "no", "false")
    week = request.query.get("week", "")
    manager = request.query.get("manager", "")
    names = {c["manager"]["extension"]: c["manager"]["name"] for c in calls}
    context = {"manager_label": (names.get(manager) or manager) if manager
               else "Все менеджеры",
               "title": f"Словарь «{dictionary['name']}»: звонки", "dictionary": dictionary,
               "calls": calls, "said": said, "who": WHO,
               "speaker": SPEAKER_LABELS.get(request.query.get("speaker", ""), ""),
               "week": date.fromisoformat(week) if week else None,
               "back": f"/dictionaries/{dictionary['id']}?" + _query(request)}
    return aiohttp_jinja2.render_template("dictionary_calls.html", request, context)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/dictionaries", list_page)
    router.add_post("/dictionaries", create_form)
    router.add_get("/dictionaries/{id:\\d+}", report_page)
    router.add_get("/dictionaries/{id:\\d+}/edit", edit_page)
    router.add_post("/dictionaries/{id:\\d+}/edit", edit_form)
    router.add_get("/dictionaries/{id:\\d+}/calls", calls_page)
    router.add_get("/api/dictionaries", list_api)
    router.add_post("/api/dictionaries", create_api)
    router.add_patch("/api/dictionaries/{id}", update_api)
    router.add_get("/api/dictionaries/{id}/report", report_api)
    router.add_get("/api/dictionaries/{id}/calls", calls_api)


def _doc(summary: str, params: list[str], codes: tuple[str, ...] = ("400", "401", "403"),
         kind: str = "object") -> dict[str, Any]:
    return {"summary": summary, "security": [{"session": []}],
            "parameters": [{"name": n, "in": "path" if n == "id" else "query",
                            "required": n == "id", "schema": {"type": "string"}}
                           for n in params],
            "responses": {"200": {"description": "ok", "content": {"application/json": {
                "schema": {"type": kind}}}},
                **{c: {"description": "error", "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/Error"}}}} for c in codes}}}


_BODY = {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "properties": {
        "name": {"type": "string", "maxLength": store.MAX_NAME},
        "phrases": {"type": "array", "items": {"type": "string"}},
        "archived": {"type": "boolean"}}}}}}
_CSRF = {"name": "X-CSRF-Token", "in": "header", "required": True, "schema": {"type": "string"}}

OPENAPI_PATHS: dict[str, Any] = {
    "/api/dictionaries": {
        "get": _doc("Phrase dictionaries (archived=1: the archived ones)", ["archived"],
                    kind="array"),
        "post": {**_doc("Add a dictionary {name, phrases} (supervisors, admins)", [],
                        ("400", "401", "403", "409", "413", "415")),
                 "requestBody": _BODY},
    },
    "/api/dictionaries/{id}": {"patch": {
        **_doc("Rename, change the phrases, archive or restore a dictionary", ["id"],
               ("400", "401", "403", "404", "409", "413", "415")), "requestBody": _BODY}},
    "/api/dictionaries/{id}/report": {"get": _doc(
        "Per manager and week: transcribed calls, those where a phrase was said, the others",
        ["id", "from", "to", "speaker"], ("400", "401", "403", "404"))},
    "/api/dictionaries/{id}/calls": {"get": _doc(
        "The calls of one cell of the report (said=1|0), with the phrase that said it",
        ["id", "from", "to", "speaker", "manager", "week", "said"],
        ("400", "401", "403", "404"), kind="array")},
}
for _path in ("/api/dictionaries", "/api/dictionaries/{id}"):
    for _method in ("post", "patch"):
        if _method in OPENAPI_PATHS[_path]:
            OPENAPI_PATHS[_path][_method]["parameters"].append(_CSRF)
_created = OPENAPI_PATHS["/api/dictionaries"]["post"]["responses"]
_created["201"] = _created.pop("200")
openapi.PATHS.update(OPENAPI_PATHS)
