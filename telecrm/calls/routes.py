"""The call log people search: the ``/calls`` page, its CSV and ``GET /api/calls``.

All three read the same query (:mod:`telecrm.calls.filters`) and page the same way
(:mod:`crm_core.calls.log`), always within the calls the user may see. A manager
sees his own calls, a supervisor his team's, an admin all; a marketer has call
tracking instead of the log (the API still gives him calls without recordings, as
architecture.md fixes).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import phonenumbers
from aiohttp import web
from multidict import MultiDict
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.log import Cursor, call_log_page, iter_call_log
from crm_core.calls.models import Call
from crm_core.calls.services import call_attempts, call_to_dict
from crm_core.calltracking.attribution import source_label
from crm_core.calltracking.call_log import channels
from crm_core.clients.phones import DEFAULT_REGION, normalize_phone
from crm_core.clock import local_today
from crm_core.errors import DomainError, NotAllowedError
from crm_core.people import access
from crm_core.people.models import User
from crm_core.people.users import call_extensions, names_by_extension
from telecrm.calls.filters import PARAMS, LogQuery, parse
from telecrm.csv_safety import FORMULA_STARTS, csv_text
from telecrm.messages import russian
from telecrm.web.auth import api_user, page_user
from telecrm.web.keys import CALL_HOOKS, SESSIONS, workday_tz
from telecrm.web.present import DIRECTIONS, STATUSES, duration
from telecrm.web.present import phone as phone_text

PAGE_SIZE = 50  # rows on the page
CSV_BATCH = 500  # rows fetched per query while streaming the CSV
CSV_MAX_ROWS = 100_000  # the most one CSV holds; the last line says when it was cut
SORT_LABELS = {"newest": "Сначала новые", "oldest": "Сначала старые",
               "longest": "Сначала долгие"}
FLAG_LABELS = {"": "Все", "yes": "Есть", "no": "Нет"}


async def _scope(session: AsyncSession, user: User, parsed: LogQuery) -> ColumnElement[bool]:
    """The calls ``user`` may see, told the period the log looks at (cheaper to ask)."""
    return await access.calls_filter(session, user, since=parsed.since, until=parsed.until)



def _link(values: dict[str, Any], path: str = "/calls", **changes: Any) -> str:
    """``path`` with the current filters (lists repeat), changed by ``changes``."""
    merged = {**values, **changes}
    pairs: list[tuple[str, str]] = []
    for name in (*PARAMS, "cursor"):
        value = merged.get(name)
        for item in (value if isinstance(value, list) else [value]):
            if item not in (None, ""):
                pairs.append((name, str(item)))
    return f"{path}?{urlencode(pairs)}" if pairs else path


# -- the page ---------------------------------------------------------------------------------


def _legacy_day(request: web.Request) -> web.Request:
    """``/calls?date=D`` (older links): the same as ``since=D&until=D``."""
    day = request.query.get("date")
    if not day or "since" in request.query or "until" in request.query:
        return request
    query = MultiDict(request.query)
    query.popall("date")
    query.extend(since=day, until=day)
    return request.clone(rel_url=request.rel_url.with_query(query))


def _days(since: datetime, until: datetime, tz: ZoneInfo) -> tuple[date, date]:
    """The first and last local day of ``[since, until)``, as the form's date fields show."""
    last = (until - timedelta(microseconds=1)).astimezone(tz).date()
    return since.astimezone(tz).date(), max(last, since.astimezone(tz).date())


def _typed_day(raw: str, default: date) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        return default


async def calls_page(request: web.Request) -> web.Response:
    user = page_user(request)
    if not access.may_search_call_log(user):
        raise web.HTTPSeeOther("/calltracking")
    request = _legacy_day(request)
    tz = workday_tz(request)
    error: str | None = None
    page_calls: list[dict[str, Any]] = []
    staff: dict[str, str] = {}
    next_link = previous_link = None
    values: dict[str, Any] = {name: request.query.get(name, "") for name in
                              ("since", "until", "direction", "status", "min_duration",
                               "client_name", "number", "source", "recording", "violation",
                               "sort", "team", "client")}
    values["manager"] = request.query.getall("manager", [])
    client_name = None
    async with request.app[SESSIONS]() as session:
        people = await access.pickable_people(session, user)
        teams = await access.pickable_teams(session, user)
        sources = await channels(session)
        try:
            parsed = await parse(request, session, user, default_limit=PAGE_SIZE)
        except DomainError as exc:
            error = russian(exc)
            parsed = None
        if parsed is not None:
            values = parsed.values
            client_name = parsed.client.name if parsed.client is not None else None
            page = await call_log_page(session, await _scope(session, user, parsed),
                                       parsed.filter, sort=parsed.sort, cursor=parsed.cursor,
                                       limit=parsed.limit)
            hooks = request.app[CALL_HOOKS]
            page_calls = [access.redact_call(user, call_to_dict(call, hooks))
                          for call in page.calls]
            staff = await names_by_extension(session, call_extensions(page_calls))
            if page.next is not None:
                next_link = _link(values, cursor=page.next.encode())
            if page.previous is not None:
                previous_link = _link(values, cursor=page.previous.encode())
    today = local_today(tz)
    if parsed is not None and parsed.since is not None and parsed.until is not None:
        first, last = _days(parsed.since, parsed.until, tz)
    else:  # the form shows back the days as typed, so a reversed period can be fixed
        first, last = _typed_day(values["since"], today), _typed_day(values["until"], today)
    quick = [("Сегодня", today, today), ("Вчера", today - timedelta(days=1),
                                          today - timedelta(days=1)),
             ("7 дней", today - timedelta(days=6), today),
             ("30 дней", today - timedelta(days=29), today)]
    context = {
        "title": "Звонки", "calls": page_calls, "error": error, "values": values,
        "first": first, "last": last, "people": people, "teams": teams, "sources": sources,
        "client_name": client_name,
        "quick": [(label, _link(values, since=a.isoformat(), until=b.isoformat()),
                   a == first and b == last) for label, a, b in quick],
        "next_link": next_link, "previous_link": previous_link,
        "first_link": _link(values) if previous_link else None,
        "csv_link": _link(values, path="/calls.csv"),
        "without_client": _link(values, client=""),
        "sort_labels": SORT_LABELS, "flag_labels": FLAG_LABELS,
        "show_people": bool(people), "show_teams": len(teams) > 1,
        "may_listen": access.may_hear_recordings(user),
        "may_open_clients": access.may_see_clients(user),
        "staff": staff,
    }
    return aiohttp_jinja2.render_template("calls.html", request, context,
                                          status=400 if error else 200)


# -- CSV ----------------------------------------------------------------------------------------

CSV_COLUMNS = ("Дата", "Время", "Направление", "Статус", "Клиент", "Номер клиента", "Наш номер",
               "Кто звонил / кому звонили", "Говорили", "Ожидание, с", "Разговор, с",
               "Разговор", "Источник", "Запись", "Звонок в CRM")


# Excel runs a cell that starts with one of these as a formula (and "+7 916 ..." as a broken
# one): such text gets an apostrophe, which Excel shows as text (OWASP: CSV injection).


def _text(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def excel_phone(e164: str | None) -> str:
    """A Russian number as people write it, ``8 (916) 123-45-67``: text to Excel, no formula."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return _text(e164)
    if phonenumbers.region_code_for_number(number) == DEFAULT_REGION:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return _text(phone_text(e164))


def _client(call: Call) -> str:
    """The client's name; a lead still named after its number is written as the number."""
    if call.client is None:
        return ""
    name = call.client.name
    e164 = normalize_phone(name) if name.startswith("+") else None
    return excel_phone(e164) if e164 else _text(name)


def _names(extensions: Iterable[str], staff: dict[str, str]) -> str:
    return _text(", ".join(staff.get(ext, ext) for ext in extensions))


def csv_row(call: Call, tz: ZoneInfo, staff: dict[str, str], origin: str,
            may_listen: bool) -> list[str]:
    """One call as a CSV line for Russian Excel (local time, whole seconds, names; no cell
    Excel would take for a formula)."""
    started = call.started_at.astimezone(tz)
    attempts = [a["name"] or staff.get(a["extension"], a["extension"])
                for a in call_attempts(call)]
    return [started.strftime("%d.%m.%Y"), started.strftime("%H:%M:%S"),
            DIRECTIONS.get(call.direction, call.direction),
            STATUSES.get(call.status, call.status), _client(call),
            excel_phone(call.client_number), excel_phone(call.did),
            _text(", ".join(attempts)), _names(call.managers, staff),
            str(round(call.ring_seconds)), str(round(call.talk_seconds)),
            duration(call.talk_seconds),
            _text(source_label(getattr(call, "ct_attribution", None)) or ""),
            ("есть" if call.recordings else "нет") if may_listen else "",
            f"{origin}/calls/{call.id}"]


def _csv_text(rows: Iterable[list[str]]) -> str:
    return csv_text(rows, delimiter=";", lineterminator="\r\n")


async def calls_csv(request: web.Request) -> web.StreamResponse:
    """The filtered log as CSV (UTF-8 with BOM, ``;``): streamed, at most CSV_MAX_ROWS."""
    user = page_user(request)
    if not access.may_search_call_log(user):
        raise NotAllowedError("calls.log_not_allowed", "marketers have call tracking instead")
    request = _legacy_day(request)
    tz = workday_tz(request)
    may_listen = access.may_hear_recordings(user)
    origin = f"{request.scheme}://{request.host}"
    async with request.app[SESSIONS]() as session:
        staff = await names_by_extension(session, None)  # an export names everyone it streams
        parsed: LogQuery = await parse(request, session, user)
        assert parsed.since is not None and parsed.until is not None
        first, last = _days(parsed.since, parsed.until, tz)
        name = f"calls-{first.isoformat()}" + ("" if first == last else f"-{last.isoformat()}")
        response = web.StreamResponse(headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}.csv"',
            "Cache-Control": "no-store"})
        await response.prepare(request)
        await response.write(("\ufeff" + _csv_text([list(CSV_COLUMNS)])).encode("utf-8"))
        scope = await _scope(session, user, parsed)
        batch: list[list[str]] = []
        sent = 0
        async for call in iter_call_log(session, scope, parsed.filter, sort=parsed.sort,
                                        batch=CSV_BATCH, max_rows=CSV_MAX_ROWS + 1):
            if sent == CSV_MAX_ROWS:
                batch.append([f"Выгрузка ограничена {CSV_MAX_ROWS:,} звонками".replace(
                    ",", "\u00a0") + " — сузьте период или фильтры."])
                break
            batch.append(csv_row(call, tz, staff, origin, may_listen))
            sent += 1
            if len(batch) >= CSV_BATCH:
                await response.write(_csv_text(batch).encode("utf-8"))
                batch = []
        if batch:
            await response.write(_csv_text(batch).encode("utf-8"))
    await response.write_eof()
    return response


# -- the API ------------------------------------------------------------------------------------


async def list_calls(request: web.Request) -> web.Response:
    """``GET /api/calls``: one page of the calls this user may see, and the next page's cursor.

    ``{"calls": [...], "next": cursor | null}``: pass ``cursor=<next>`` with the same
    filters for the next page. Pages hold ``limit`` calls (default 100, at most 500).
    """
    user = api_user(request)
    async with request.app[SESSIONS]() as session:
        parsed = await parse(request, session, user)
        page = await call_log_page(session, await _scope(session, user, parsed),
                                   parsed.filter, sort=parsed.sort, cursor=parsed.cursor,
                                   limit=parsed.limit)
        hooks = request.app[CALL_HOOKS]
        calls = [access.redact_call(user, call_to_dict(call, hooks)) for call in page.calls]
    next_cursor = _forward(page.next)
    response = web.json_response({"calls": calls, "next": next_cursor})
    if next_cursor is not None:
        link = request.rel_url.update_query(cursor=next_cursor)
        response.headers["Link"] = f'<{link}>; rel="next"'
    return response


def _forward(cursor: Cursor | None) -> str | None:
    return cursor.encode() if cursor is not None else None


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the call log's page, its CSV and the JSON list."""
    router.add_get("/calls", calls_page)
    router.add_get("/calls.csv", calls_csv)
    router.add_get("/api/calls", list_calls)
