"""Search over transcripts: ``GET /api/transcripts/search`` and the page «Поиск по разговорам».

One parser (:func:`parse`) for both, so a link copied from the page gives the API's hits.
Every hit is a phrase of a call the user may see (:func:`crm_core.people.access.calls_filter`:
a manager his own calls, a supervisor his team's, an admin all); marketers hear no
recordings and read no transcripts, so both answer them 403. Filters by manager, team and
client accept only those the user may pick, as in the call log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import ColumnElement, Select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.log import CallLogFilter, filter_clauses
from crm_core.errors import DomainError, NotAllowedError
from crm_core.people import access
from crm_core.people.models import Role, User
from crm_core.speech import search as index
from telecrm.calls.filters import clients_named
from telecrm.messages import russian
from telecrm.web import openapi
from telecrm.web.auth import api_user, page_user
from telecrm.web.keys import SESSIONS, workday_tz
from telecrm.web.params import day_bounds, parse_day, query_int

API_PAGE = 50
PAGE_SIZE = 30
MAX_TEXT = 200
PARAMS = ("q", "speaker", "manager", "team", "from", "to", "client", "client_name")
SPEAKER_LABELS = {"": "Все", "manager": "Менеджер", "client": "Клиент"}
WHO = {"manager": "Менеджер", "client": "Клиент", "mixed": "Запись"}


def may_search(user: User) -> None:
    """Transcripts are for those who may hear recordings: not for marketers."""
    if not access.may_hear_recordings(user):
        raise NotAllowedError("speech.role_no_transcripts", "your role may not see transcripts")


@dataclass
class SearchQuery:
    terms: index.Terms
    visible: ColumnElement[bool]
    where: list[ColumnElement[bool]]
    since: datetime | None
    until: datetime | None
    speaker: str | None
    before: int | None
    limit: int
    values: dict[str, str] = field(default_factory=dict)
    client_label: str | None = None
    viewer_calls: Select[int] | None = None  # where to look first (see index.search)


def _text(request: web.Request, name: str) -> str:
    value = request.query.get(name, "").strip()
    if len(value) > MAX_TEXT:
        raise DomainError("request.too_long", f"{name} is too long", name=name, max=MAX_TEXT)
    return value


async def _manager(session: AsyncSession, user: User, raw: str) -> tuple[int, ...]:
    if not raw:
        return ()
    person = query_int_value(raw, "manager")
    allowed = {p.id for p in await access.pickable_people(session, user)} | {user.id}
    if person not in allowed:
        raise DomainError("calls.unknown_manager", f"user {person} is not yours to pick",
                          id=person)
    return (person,)


async def _team(session: AsyncSession, user: User, raw: str) -> int | None:
    if not raw:
        return None
    team = query_int_value(raw, "team")
    allowed = {t.id for t in await access.pickable_teams(session, user)}
    if user.role == Role.SUPERVISOR and user.team_id is not None:
        allowed.add(user.team_id)
    if team not in allowed:
        raise DomainError("calls.unknown_team", f"team {team} is not yours to pick", id=team)
    return team


def query_int_value(raw: str, name: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or int(raw) < 1:
        raise DomainError("request.not_positive", f"{name} must be a positive integer",
                          name=name)
    return int(raw)


async def parse(request: web.Request, session: AsyncSession, user: User, *,
                default_limit: int = API_PAGE) -> SearchQuery:
    """The search of ``request`` for ``user``; DomainError for what makes no sense."""
    values = {name: _text(request, name) for name in PARAMS}
    terms = index.query_terms(values["q"])
    if not terms:
        raise DomainError("speech.search.query_required", "q: the words to look for")
    speaker = values["speaker"] or None
    if speaker is not None and speaker not in index.SPEAKERS:
        raise DomainError("speech.search.bad_speaker", "speaker is manager or client")
    tz: ZoneInfo = workday_tz(request)
    since = day_bounds(parse_day(values["from"], "from"), tz)[0] if values["from"] else None
    until = day_bounds(parse_day(values["to"], "to"), tz)[1] if values["to"] else None
    if since is not None and until is not None and since >= until:
        raise DomainError("request.range_reversed", "from must not be after to",
                          first="from", last="to")
    client_ids: tuple[int, ...] | None = None
    label = None
    if values["client"]:
        client = await access.visible_client(session, user,
                                             query_int_value(values["client"], "client"))
        if client is None:
            raise DomainError("calls.unknown_client", "no such client, or not yours to see")
        client_ids, label = (client.id,), client.name
    if values["client_name"]:
        named = await clients_named(session, values["client_name"])
        client_ids = named if client_ids is None else tuple(i for i in client_ids if i in named)
    log_filter = CallLogFilter(
        since=since, until=until, manager_ids=await _manager(session, user, values["manager"]),
        team_id=await _team(session, user, values["team"]), client_ids=client_ids)
    visible = await access.calls_filter(session, user, since=since, until=until)
    cursor = query_int(request, "cursor", 0, low=0)
    limit = query_int(request, "limit", default_limit, low=1, high=index.MAX_PAGE)
    return SearchQuery(terms=terms, visible=visible, where=filter_clauses(log_filter), since=since,
                       until=until, speaker=speaker, before=cursor or None, limit=limit,
                       values=values, client_label=label,
                       viewer_calls=await access.call_ids_seen_by(session, user))


async def run(session: AsyncSession, query: SearchQuery
              ) -> tuple[list[index.Hit], int | None]:
    return await index.search(session, query.terms, visible=query.visible,
                              where=query.where, speaker=query.speaker,
                              before=query.before, limit=query.limit,
                              viewer_calls=query.viewer_calls)


def hit_dict(hit: index.Hit, tz: ZoneInfo) -> dict[str, Any]:
    """A hit as the API gives it: the phrase, where it plays from, whose call it is."""
    return {
        "call_id": hit.call_id, "phrase_id": hit.phrase_id, "speaker": hit.speaker,
        "start": hit.start, "end": hit.end, "text": hit.text,
        "fragments": [{"text": piece, "hit": found} for piece, found in hit.fragments],
        "started_at": hit.started_at.isoformat(),
        "when": hit.started_at.astimezone(tz).strftime("%d.%m.%Y %H:%M"),
        "manager": ({"extension": hit.manager, "name": hit.manager_name}
                    if hit.manager else None),
        "client": ({"id": hit.client_id, "name": hit.client_name}
                   if hit.client_id is not None else None),
        "recording": f"/api/calls/{hit.call_id}/recording",
        "url": f"/calls/{hit.call_id}#t={hit.start:g}",
    }


async def search_api(request: web.Request) -> web.Response:
    """GET /api/transcripts/search?q=&speaker=&manager=&team=&from=&to=&client=&cursor=."""
    user = api_user(request)
    may_search(user)
    async with request.app[SESSIONS]() as session:
        query = await parse(request, session, user)
        hits, cursor = await run(session, query)
    tz = workday_tz(request)
    return web.json_response({"hits": [hit_dict(h, tz) for h in hits],
                              "next": str(cursor) if cursor else None})


def _link(values: dict[str, str], **changes: Any) -> str:
    merged = {**values, **changes}
    pairs = [(k, str(merged[k])) for k in (*PARAMS, "cursor") if merged.get(k)]
    return "/transcripts/search?" + urlencode(pairs)


async def search_page(request: web.Request) -> web.Response:
    """The page «Поиск по разговорам»: the form, then hits with a player from each second."""
    user = page_user(request)
    may_search(user)
    tz = workday_tz(request)
    values = {name: request.query.get(name, "") for name in PARAMS}
    hits: list[dict[str, Any]] = []
    error = next_link = None
    client_label = None
    async with request.app[SESSIONS]() as session:
        people = await access.pickable_people(session, user)
        teams = await access.pickable_teams(session, user)
        if values["q"].strip():
            try:
                query = await parse(request, session, user, default_limit=PAGE_SIZE)
                found, cursor = await run(session, query)
            except DomainError as exc:
                error = russian(exc)
            else:
                values, client_label = query.values, query.client_label
                hits = [hit_dict(h, tz) for h in found]
                if cursor:
                    next_link = _link(values, cursor=cursor)
    context = {"title": "Поиск по разговорам", "values": values, "hits": hits, "error": error,
               "next_link": next_link, "first_link": _link(values)
               if request.query.get("cursor") else None,
               "people": people, "teams": teams if len(teams) > 1 else [],
               "speakers": SPEAKER_LABELS, "who": WHO, "client_label": client_label,
               "without_client": _link(values, client=""),
               "searched": bool(values["q"].strip())}
    return aiohttp_jinja2.render_template("transcript_search.html", request, context,
                                          status=400 if error else 200)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/transcripts/search", search_page)
    router.add_get("/api/transcripts/search", search_api)


_Q = [{"name": n, "in": "query", "schema": {"type": "string"}, "description": d} for n, d in (
    ("q", "the words to look for (any inflected form; every word in one phrase)"),
    ("speaker", "manager or client"), ("manager", "a user id: calls he took part in"),
    ("team", "a team id"), ("from", "the first day, YYYY-MM-DD"),
    ("to", "the last day, YYYY-MM-DD"), ("client", "a client id"),
    ("client_name", "part of a client's name"), ("cursor", "the previous page's next"),
    ("limit", f"hits per page, at most {index.MAX_PAGE}"))]

OPENAPI_PATHS: dict[str, Any] = {
    "/api/transcripts/search": {"get": {
        "summary": "Phrases of the transcripts of calls I may see, newest first: "
                   "{hits: [{call_id, phrase_id, speaker, start, end, text, fragments, "
                   "started_at, when, manager, client, recording, url}], next}",
        "security": [{"session": []}], "parameters": _Q,
        "responses": {"200": {"description": "hits and the next page's cursor", "content": {
            "application/json": {"schema": {"type": "object"}}}},
            **{c: {"description": "error", "content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/Error"}}}} for c in ("400", "401", "403")}}}},
}
openapi.PATHS.update(OPENAPI_PATHS)
