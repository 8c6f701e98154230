"""The call log's query string, read once for the page, the CSV and ``GET /api/calls``.

One parser, so a filter means the same wherever it is used and a link copied from
the page gives the same calls as the API. Refusals are domain errors with Russian
sentences (``telecrm.messages``): the page shows them beside the form, the API
answers 400 with the sentence and its code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from multidict import MultiMapping
from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.log import MAX_PAGE, SORTS, CallLogFilter, Cursor
from crm_core.calls.models import CallStatus, Direction
from crm_core.calltracking.call_log import from_channel
from crm_core.clients.models import Client
from crm_core.clients.phones import normalize_phone
from crm_core.clock import local_today, utcnow
from crm_core.errors import DomainError, NotAllowedError
from crm_core.people import access
from crm_core.people.models import Role, User
from crm_core.recordings.call_log import has_recording
from crm_core.speech.call_log import has_violation
from telecrm.web.errors import ApiError
from telecrm.web.keys import SETTINGS, workday_tz
from telecrm.web.params import MAX_DAYS, MAX_ID, day_bounds, parse_moment

API_PAGE = 100  # rows per API page unless ``limit`` asks otherwise (at most MAX_PAGE)
CLIENT_NAME_MATCHES = 1000  # a client name matching more clients is too vague a filter
MAX_TALK_FILTER = 24 * 3600
_TEXT_MAX = 200
_YES, _NO = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
# Every query parameter the log reads (the page keeps them in its links, minus the cursor).
PARAMS = ("since", "until", "manager", "team", "direction", "status", "min_duration",
          "client", "client_name", "number", "source", "recording", "violation", "sort")

# Russian names of the fields, for the sentences of the refusals.
LABELS = {"since": "С", "until": "По", "manager": "Менеджер", "team": "Команда",
          "direction": "Направление", "status": "Статус", "min_duration": "Разговор от, с",
          "client": "Клиент", "client_name": "Клиент", "number": "Номер", "source": "Источник",
          "recording": "Запись", "violation": "Нарушение скрипта", "sort": "Порядок",
          "limit": "Строк на странице", "cursor": "Страница"}


@dataclass
class LogQuery:
    """The parsed query: the filter for the core, and what the form shows back."""

    filter: CallLogFilter
    sort: str = "newest"
    cursor: Cursor | None = None
    limit: int = API_PAGE
    since: datetime | None = None
    until: datetime | None = None
    client: Client | None = None  # the client picked by a link (shown as a removable chip)
    values: dict[str, Any] = field(default_factory=dict)  # as typed, for the form


def _one(query: MultiMapping[str], name: str) -> str:
    value = query.get(name, "")
    if len(value) > _TEXT_MAX:
        raise DomainError("calls.filter_too_long", f"{name} is too long", label=LABELS[name])
    return value.strip()


def _int(raw: str, name: str, low: int = 1, high: int = MAX_ID) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or not low <= int(raw) <= high:
        raise DomainError("calls.bad_number_field", f"{name} must be a whole number",
                          label=LABELS[name], value=raw)
    return int(raw)


def _flag(raw: str, name: str) -> bool | None:
    if raw == "":
        return None
    if raw.lower() in _YES:
        return True
    if raw.lower() in _NO:
        return False
    raise DomainError("calls.bad_choice", f"{name} must be yes or no", label=LABELS[name],
                      value=raw)


def _choice(raw: str, name: str, allowed: tuple[str, ...]) -> str | None:
    if raw == "":
        return None
    if raw not in allowed:
        raise DomainError("calls.bad_choice", f"{name} must be one of {', '.join(allowed)}",
                          label=LABELS[name], value=raw)
    return raw


def _moment(raw: str, name: str, tz: ZoneInfo, *, end: bool = False) -> datetime:
    try:
        return parse_moment(raw, name, tz, end=end)
    except ApiError:
        raise DomainError("calls.bad_moment", f"{name} must be a date or an ISO 8601 time",
                          label=LABELS[name], value=raw) from None


def period(query: MultiMapping[str], tz: ZoneInfo) -> tuple[datetime, datetime]:
    """``since``/``until``: a date is a whole day in ``tz`` (inclusive as ``until``).

    ``since`` alone runs until now (a future ``since`` finds nothing), ``until`` alone
    covers the day before it, and neither means today.
    """
    since_raw, until_raw = _one(query, "since"), _one(query, "until")
    since = _moment(since_raw, "since", tz) if since_raw else None
    until = _moment(until_raw, "until", tz, end=True) if until_raw else None
    if since is None and until is None:
        since, until = day_bounds(local_today(tz), tz)
    elif until is None:
        assert since is not None
        until = max(utcnow(), since)
    elif since is None:
        since = until - timedelta(days=1)
    if since > until:
        raise DomainError("calls.period_reversed", "since must not be after until")
    if until - since > timedelta(days=MAX_DAYS):
        raise DomainError("calls.period_too_long", f"ask for at most {MAX_DAYS} days at a time",
                          days=MAX_DAYS)
    return since, until


async def _managers(session: AsyncSession, user: User, raw: list[str]) -> tuple[int, ...]:
    ids = tuple(dict.fromkeys(_int(value, "manager") for value in raw if value.strip()))
    if not ids:
        return ()
    allowed = {person.id for person in await access.pickable_people(session, user)}
    allowed.add(user.id)  # "only the calls I took part in" is anyone's filter
    for person_id in ids:
        if person_id not in allowed:
            raise DomainError("calls.unknown_manager", f"user {person_id} is not yours to pick",
                              id=person_id)
    return ids


async def _team(session: AsyncSession, user: User, raw: str) -> int | None:
    if raw == "":
        return None
    team_id = _int(raw, "team")
    allowed = {team.id for team in await access.pickable_teams(session, user)}
    if user.role == Role.SUPERVISOR and user.team_id is not None:
        allowed.add(user.team_id)
    if team_id not in allowed:
        raise DomainError("calls.unknown_team", f"team {team_id} is not yours to pick",
                          id=team_id)
    return team_id


async def clients_named(session: AsyncSession, text: str) -> tuple[int, ...]:
    """Ids of the clients whose name contains ``text``, whatever its letters' case.

    Matched in Python (``casefold``): SQLite's LIKE folds only Latin letters, and a
    PostgreSQL database in the C locale folds no Cyrillic either. Call visibility is
    applied to the calls afterwards, so matching every client's name reveals nothing.
    """
    needle = " ".join(text.split()).casefold()
    found: list[int] = []
    rows = await session.stream(select(Client.id, Client.name).execution_options(
        yield_per=2000))
    async for client_id, name in rows:
        if needle in " ".join(name.split()).casefold():
            found.append(client_id)
            if len(found) > CLIENT_NAME_MATCHES:
                await rows.close()
                raise DomainError("calls.client_name_too_broad",
                                  f"more than {CLIENT_NAME_MATCHES} clients match {text!r}",
                                  text=text)
    return tuple(found)


async def parse(request: web.Request, session: AsyncSession, user: User, *,
                default_limit: int = API_PAGE) -> LogQuery:
    """The call log query of ``request`` for ``user``; DomainError for what makes no sense."""
    query = request.query
    tz = workday_tz(request)
    since, until = period(request.query, tz)
    values: dict[str, Any] = {name: _one(request.query, name) for name in PARAMS}
    values["manager"] = [v for v in request.query.getall("manager", []) if v.strip()]
    recording = _flag(values["recording"], "recording")
    violation = _flag(values["violation"], "violation")
    if (recording is not None or violation is not None) and not \
            access.may_filter_by_recordings(user):
        raise NotAllowedError("calls.recordings_not_allowed",
                              "your role may not filter by recordings or script checks")
    extra: list[ColumnElement[bool]] = []
    if recording is not None:
        extra.append(has_recording(recording))
    if violation is not None:
        extra.append(has_violation(violation))
    if values["source"]:
        extra.append(from_channel(values["source"]))
    number = None
    if values["number"]:
        number = normalize_phone(values["number"], request.app[SETTINGS].phone_region)
        if number is None:
            raise DomainError("calls.bad_phone", f"{values['number']!r} is not a phone number",
                              number=values["number"])
    client = None
    client_ids: tuple[int, ...] | None = None
    if values["client"]:
        client = await access.visible_client(session, user, _int(values["client"], "client"))
        if client is None:
            raise DomainError("calls.unknown_client", "no such client, or not yours to see")
        client_ids = (client.id,)
    if values["client_name"]:
        named = await clients_named(session, values["client_name"])
        client_ids = named if client_ids is None else tuple(i for i in client_ids if i in named)
    min_talk = _int(values["min_duration"], "min_duration", 0, MAX_TALK_FILTER) \
        if values["min_duration"] else None
    sort = _choice(values["sort"], "sort", SORTS) or "newest"
    raw_cursor = _one(query, "cursor") if "cursor" in query else ""
    cursor = Cursor.decode(raw_cursor, sort) if raw_cursor else None
    limit_raw = _one(query, "limit")
    limit = _int(limit_raw, "limit", 1, MAX_PAGE) if limit_raw else default_limit
    log_filter = CallLogFilter(
        since=since, until=until,
        manager_ids=await _managers(session, user, values["manager"]),
        team_id=await _team(session, user, values["team"]),
        direction=_choice(values["direction"], "direction", tuple(d.value for d in Direction)),
        status=_choice(values["status"], "status", tuple(s.value for s in CallStatus)),
        min_talk_seconds=min_talk, client_ids=client_ids, number=number, extra=tuple(extra))
    return LogQuery(filter=log_filter, sort=sort, cursor=cursor, limit=limit, since=since,
                    until=until, client=client, values=values)
