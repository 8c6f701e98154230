"""The client card's routes: notes, logged contacts, call outcomes, the timeline.

JSON API (the role checks are here: who may open the client, or see the call):
- ``POST /api/clients/{id}/notes`` ``{"text"}``: a note on the card;
- ``POST /api/clients/{id}/activities`` ``{"kind": "email_out|email_in|meeting", "text",
  "at"?, "people"?}``: an e-mail sent or received, a meeting held (a contact);
- ``POST /api/activities/{id}/archive`` ``{"reason"?}``: take a note or a contact back
  (its author, or a supervisor);
- ``GET /api/clients/{id}/timeline?group=G``: the card's timeline as JSON;
- ``GET /api/call-outcomes``: the outcome list (``?archived=1``: with archived ones);
  ``POST /api/call-outcomes`` ``{"name"}``, ``PATCH /api/call-outcomes/{id}``
  ``{"name"?, "archived"?}``: a supervisor or an admin edits it;
- ``POST /api/calls/{id}/outcome`` ``{"outcome_id", "note"?}``: what came of a call;
- ``GET /api/call-outcomes/missing?from=D&to=D&manager_id=M``: calls without an outcome,
  counted per manager (supervisors: their team; admins: everyone).

Pages: ``GET /outcomes`` (the same for a supervisor, with a period and a manager to pick),
``POST /sales/settings/outcomes`` and ``/sales/settings/outcome/{id}`` (the outcome
list's forms on the rules page).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.activities.models import ClientActivity
from crm_core.activities.notes import activity_to_dict, add_note, archive_activity, log_contact
from crm_core.activities.outcomes import (
    add_outcome,
    archive_outcome,
    missing_outcomes,
    outcome_list,
    outcome_to_dict,
    rename_outcome,
    result_to_dict,
    set_call_outcome,
)
from crm_core.activities.timeline import GROUPS
from crm_core.clients.models import Client
from crm_core.clock import local_today
from crm_core.errors import DomainError, NotAllowedError, NotFoundError
from crm_core.people import access
from crm_core.people.models import Role, User
from telecrm.activities.card import timeline_context
from telecrm.messages import http_status, russian
from telecrm.web.auth import api_user, page_user
from telecrm.web.errors import ApiError
from telecrm.web.keys import SESSIONS, SETTINGS, WRITER_SESSIONS, workday_tz
from telecrm.web.params import (
    MAX_DAYS,
    day_bounds,
    id_value,
    json_object,
    parse_day,
    parse_moment,
    path_id,
)

TEXT_LIMIT = 10_000  # longer bodies are refused before the domain looks at them
DEFAULT_DAYS = 7



def _card_user(request: web.Request) -> User:
    user = api_user(request)
    if not access.may_see_clients(user):
        raise NotAllowedError("clients.role_no_cards", "your role has no access to clients")
    return user


def _boss_api(request: web.Request) -> User:
    user = api_user(request)
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotAllowedError("activities.bosses_only", "only a supervisor or an admin")
    return user


def _string(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ApiError(400, "request.not_string", name=name)
    if len(value) > TEXT_LIMIT:
        raise ApiError(400, "request.text_too_long", name=name, max=TEXT_LIMIT)
    return value


def _id(body: dict[str, Any], name: str) -> int:
    return id_value(body.get(name), name)


async def _client(session: AsyncSession, user: User, client_id: int) -> Client:
    client = await access.visible_client(session, user, client_id)
    if client is None:
        raise NotFoundError("clients.not_found", "no such client")
    return client


# -- notes and contacts -----------------------------------------------------------------------


async def post_note(request: web.Request) -> web.Response:
    user = _card_user(request)
    client_id = path_id(request)
    text = _string(await json_object(request), "text", required=True)
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        await _client(session, user, client_id)
        note = await add_note(session, client_id, text or "", by=user)
        row = activity_to_dict(note)
    return web.json_response(row, status=201)


async def post_activity(request: web.Request) -> web.Response:
    user = _card_user(request)
    client_id = path_id(request)
    body = await json_object(request)
    kind = _string(body, "kind", required=True)
    text = _string(body, "text", required=True)
    raw_at = _string(body, "at")
    at = parse_moment(raw_at, "at", workday_tz(request)) if raw_at else None
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        await _client(session, user, client_id)
        entry = await log_contact(session, client_id, kind or "", text or "", by=user, at=at,
                                  people=_string(body, "people"),
                                  tz_name=request.app[SETTINGS].timezone)
        row = activity_to_dict(entry)
    return web.json_response(row, status=201)


async def post_archive(request: web.Request) -> web.Response:
    user = _card_user(request)
    entry_id = path_id(request)
    reason = _string(await json_object(request), "reason")
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        entry = await session.get(ClientActivity, entry_id)
        if entry is None or await access.visible_client(session, user, entry.client_id) is None:
            raise ApiError(404, "request.not_found")
        await archive_activity(session, entry, by=user, reason=reason,
                               tz_name=request.app[SETTINGS].timezone)
        row = activity_to_dict(entry)
    return web.json_response(row)


async def get_timeline(request: web.Request) -> web.Response:
    user = _card_user(request)
    client_id = path_id(request)
    group = request.query.get("group")
    if group is not None and group not in set(GROUPS.values()):
        raise ApiError(400, "request.format_invalid",
                       formats=", ".join(sorted(set(GROUPS.values()))))
    async with request.app[SESSIONS]() as session:
        client = await _client(session, user, client_id)
        entries = (await timeline_context(session, user, client, group=group,
                                          shown=None))["timeline"]
    return web.json_response({"client_id": client_id, "entries": entries})


# -- call outcomes ----------------------------------------------------------------------------


async def get_outcomes(request: web.Request) -> web.Response:
    user = _card_user(request)
    archived = request.query.get("archived") == "1" and user.role in (Role.SUPERVISOR,
                                                                      Role.ADMIN)
    async with request.app[SESSIONS]() as session:
        rows = [outcome_to_dict(o) for o in await outcome_list(session, with_archived=archived)]
    return web.json_response({"outcomes": rows})


async def post_outcome(request: web.Request) -> web.Response:
    user = _boss_api(request)
    name = _string(await json_object(request), "name", required=True)
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        row = outcome_to_dict(await add_outcome(session, name or "", by=user))
    return web.json_response(row, status=201)


async def patch_outcome(request: web.Request) -> web.Response:
    user = _boss_api(request)
    outcome_id = path_id(request)
    body = await json_object(request)
    name = _string(body, "name")
    archived = body.get("archived")
    if archived is not None and not isinstance(archived, bool):
        raise ApiError(400, "request.not_boolean", name="archived")
    if name is None and archived is None:
        raise ApiError(400, "outcomes.nothing_to_change")
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        outcome = None
        if name is not None:
            outcome = await rename_outcome(session, outcome_id, name, by=user)
        if archived is not None:
            outcome = await archive_outcome(session, outcome_id, by=user, restore=not archived)
        assert outcome is not None
        row = outcome_to_dict(outcome)
    return web.json_response(row)


async def post_call_outcome(request: web.Request) -> web.Response:
    user = _card_user(request)
    call_id = path_id(request)
    body = await json_object(request)
    outcome_id = _id(body, "outcome_id")
    note = _string(body, "note")
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        call = await access.visible_call(session, user, call_id)
        if call is None:
            raise ApiError(404, "request.not_found")
        result = await set_call_outcome(session, call, outcome_id, note, by=user)
        row = await result_to_dict(session, result)
    return web.json_response(row)


def _period(request: web.Request) -> tuple[date, date]:
    """``from``/``to`` days of the query (inclusive); by default the last week."""
    today = local_today(workday_tz(request))
    raw_from, raw_to = request.query.get("from"), request.query.get("to")
    last = parse_day(raw_to, "to") if raw_to else today
    first = parse_day(raw_from, "from") if raw_from else last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise ApiError(400, "request.range_reversed", first=first, last=last)
    if (last - first).days >= MAX_DAYS:
        raise ApiError(400, "request.period_too_long", days=MAX_DAYS)
    return first, last


def _manager_param(request: web.Request) -> int | None:
    raw = request.query.get("manager_id") or request.query.get("manager") or ""
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else None


async def _missing(request: web.Request, user: User, first: date, last: date
                   ) -> tuple[list[User], Any, list[dict[str, Any]]]:
    tz = workday_tz(request)
    start, end = day_bounds(first, tz)[0], day_bounds(last, tz)[1]
    async with request.app[SESSIONS]() as session:
        managers = await access.visible_managers(session, user)
        counts, calls = await missing_outcomes(session, managers, start, end,
                                               manager_id=_manager_param(request))
    return managers, counts, calls


async def get_missing(request: web.Request) -> web.Response:
    user = _boss_api(request)
    first, last = _period(request)
    _, counts, calls = await _missing(request, user, first, last)
    return web.json_response({
        "from": first.isoformat(), "to": last.isoformat(),
        "managers": [{"user_id": c.user.id, "name": c.user.name, "extension": c.user.extension,
                      "calls": c.calls, "without_outcome": c.missing} for c in counts],
        "calls": calls})


# -- pages ----------------------------------------------------------------------------------


async def outcomes_page(request: web.Request) -> web.Response:
    """Calls without an outcome: counts per manager, and the calls, for a supervisor."""
    user = page_user(request)
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotAllowedError("activities.bosses_only", "the page is for supervisors")
    try:
        first, last = _period(request)
    except (ApiError, DomainError):
        raise ApiError(400, "activities.bad_period", days=MAX_DAYS) from None
    managers, counts, calls = await _missing(request, user, first, last)
    picked = _manager_param(request)
    return aiohttp_jinja2.render_template("outcomes.html", request, {
        "title": "Звонки без итога", "first": first, "last": last, "counts": counts,
        "calls": calls, "managers": managers, "manager_id": picked,
        "total_missing": sum(c.missing for c in counts),
        "total_calls": sum(c.calls for c in counts)})


async def settings_outcomes_form(request: web.Request) -> web.Response:
    """The outcome list's forms on /sales/settings: add one, or rename / archive / restore."""
    from telecrm.sales.deals_pages import settings_context

    user = page_user(request)
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotAllowedError("outcomes.not_allowed", "only a supervisor or an admin")
    form = await request.post()
    name = form.get("name")
    action = form.get("action")
    try:
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            if "id" not in request.match_info:
                await add_outcome(session, name if isinstance(name, str) else "", by=user)
            elif action in ("archive", "restore"):
                await archive_outcome(session, path_id(request), by=user,
                                      restore=action == "restore")
            else:
                await rename_outcome(session, path_id(request),
                                     name if isinstance(name, str) else "", by=user)
    except DomainError as exc:
        context = await settings_context(request, user, user.team_id)
        context.update(error=russian(exc))
        return aiohttp_jinja2.render_template("sales_settings.html", request, context,
                                              status=http_status(exc))
    raise web.HTTPSeeOther("/sales/settings?" + urlencode({"done": "outcomes"}) + "#outcomes")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/api/clients/{id}/notes", post_note)
    router.add_post("/api/clients/{id}/activities", post_activity)
    router.add_get("/api/clients/{id}/timeline", get_timeline)
    router.add_post("/api/activities/{id}/archive", post_archive)
    router.add_get("/api/call-outcomes", get_outcomes)
    router.add_post("/api/call-outcomes", post_outcome)
    router.add_get("/api/call-outcomes/missing", get_missing)
    router.add_patch("/api/call-outcomes/{id}", patch_outcome)
    router.add_post("/api/calls/{id}/outcome", post_call_outcome)
    router.add_get("/outcomes", outcomes_page)
    router.add_post("/sales/settings/outcomes", settings_outcomes_form)
    router.add_post("/sales/settings/outcome/{id:\\d+}", settings_outcomes_form)
