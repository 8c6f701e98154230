"""Parsing what clients send: ids, dates, JSON bodies. Bad input is a 400, not a 500.

Ids are read here and nowhere else (:func:`path_id`, :func:`id_value`, :func:`id_field`,
:func:`id_list`): within 1..MAX_ID, so a number no database column can hold is a 404 in
a path and a 400 in a body, never an overflow in the driver. :func:`json_object` refuses
integers longer than any column and non-finite numbers before a handler sees them.

Refusals are coded (``request.*`` in ``telecrm.messages``); ``name`` is the query or
body field as the API names it.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from crm_core.clock import local_today
from crm_core.errors import DomainError, NotFoundError
from telecrm.web.errors import ApiError

MAX_ID = 2**31 - 1  # fits an INTEGER column on every backend
MAX_JSON_DIGITS = 18  # a JSON integer longer than this fits no column (BIGINT: 19 digits)
MAX_IDS = 1000  # ids one request may list
MAX_DAYS = 400  # the longest period one request may ask for
MIN_YEAR, MAX_YEAR = 1900, 2199  # dates outside are typos (and would overflow datetime math)


def path_id(request: web.Request, name: str = "id", code: str = "request.not_found") -> int:
    """A positive integer path segment; anything else is a 404 (no such thing), with
    ``code``'s sentence."""
    raw = request.match_info.get(name, "")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or not 0 < int(raw) <= MAX_ID:
        raise NotFoundError(code, "not found")
    return int(raw)


def id_value(value: Any, name: str) -> int:
    """An id sent in a JSON body: an integer 1..MAX_ID (no bool, float or string)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise DomainError("request.not_positive", f"{name} must be a positive integer",
                          name=name)
    return value


def id_field(body: dict[str, Any], name: str, *, required: bool = True) -> int | None:
    """``body[name]`` as an id (:func:`id_value`); None when absent and not required."""
    value = body.get(name)
    if value is None and not required:
        return None
    return id_value(value, name)


def id_list(body: dict[str, Any], name: str, *, max_items: int = MAX_IDS) -> list[int]:
    """``body[name]`` as a list of ids, each :func:`id_value`, at most ``max_items``."""
    values = body.get(name)
    if not isinstance(values, list):
        raise DomainError("request.id_list", f"{name} must be a list of ids", name=name)
    if len(values) > max_items:
        raise DomainError("request.list_too_long", f"{name}: at most {max_items}", name=name,
                          max=max_items)
    try:
        return [id_value(value, name) for value in values]
    except DomainError:
        raise DomainError("request.id_list", f"{name} must be a list of ids",
                          name=name) from None


def query_int(request: web.Request, name: str, default: int, *, low: int = 0,
              high: int = MAX_ID) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.lstrip("-").isdigit() or len(raw) > 11:
        raise DomainError("request.not_integer", f"{name} must be an integer", name=name)
    value = int(raw)
    if not low <= value <= high:
        raise DomainError("request.out_of_bounds", f"{name} must be between {low} and {high}",
                          name=name, low=low, high=high)
    return value


def parse_day(value: str, name: str) -> date:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise DomainError("request.not_a_date", f"{name} must be a date (YYYY-MM-DD)",
                          name=name) from None
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise DomainError("request.date_out_of_range", f"{name} is out of range", name=name)
    return day


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The working day ``day`` in ``tz`` as a half-open UTC-comparable interval."""
    start = datetime.combine(day, time(0), tzinfo=tz)
    return start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)


def parse_moment(value: str, name: str, tz: ZoneInfo, *, end: bool = False) -> datetime:
    """A date (its whole day in ``tz``; inclusive as an end) or an ISO 8601 moment."""
    if len(value) == 10:
        day = parse_day(value, name)
        return day_bounds(day, tz)[1 if end else 0]
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise DomainError("request.not_a_moment",
                          f"{name} must be a date (YYYY-MM-DD) or an ISO 8601 time",
                          name=name) from None
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise DomainError("request.date_out_of_range", f"{name} is out of range", name=name)
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def check_days(first: date, last: date) -> None:
    """The days ``from``..``to`` (inclusive) a report asks for: in order, at most
    ``MAX_DAYS`` apart."""
    if last < first:
        raise DomainError("request.range_reversed", "from must not be after to",
                          first="from", last="to")
    if (last - first).days > MAX_DAYS:
        raise DomainError("request.period_too_long", f"ask for at most {MAX_DAYS} days at a time",
                          days=MAX_DAYS)


def period(request: web.Request, tz: ZoneInfo, *, default_days: int = 1
           ) -> tuple[datetime, datetime]:
    """``since``/``until`` from the query; by default the last ``default_days`` days."""
    since_raw, until_raw = request.query.get("since"), request.query.get("until")
    until = parse_moment(until_raw, "until", tz, end=True) if until_raw else None
    since = parse_moment(since_raw, "since", tz) if since_raw else None
    if until is None:
        until = (since + timedelta(days=default_days)) if since else day_bounds(
            local_today(tz), tz)[1]
    if since is None:
        since = until - timedelta(days=default_days)
    if since > until:
        raise DomainError("request.range_reversed", "since must not be after until",
                          first="since", last="until")
    if until - since > timedelta(days=MAX_DAYS):
        raise DomainError("request.period_too_long", f"ask for at most {MAX_DAYS} days at a time",
                          days=MAX_DAYS)
    return since, until


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object; wrong type, bad JSON or too big is a 4xx."""
    if request.content_type != "application/json":
        raise ApiError(415, "request.json_expected")
    try:
        raw = await request.read()  # raises 413 beyond client_max_size
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "http.too_large") from None
    try:
        body = json.loads(raw.decode("utf-8"), parse_int=_json_int, parse_float=_json_float,
                          parse_constant=_json_constant)
    except DomainError:
        raise
    except (UnicodeDecodeError, ValueError):
        raise DomainError("request.bad_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise DomainError("request.not_object", "the body must be a JSON object")
    return body


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_DIGITS:
        raise DomainError("request.number_too_big", "a number in the body is too big")
    return int(text)


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or abs(value) >= 10.0**MAX_JSON_DIGITS:
        raise DomainError("request.number_too_big", "a number in the body is too big")
    return value


def _json_constant(text: str) -> float:
    raise DomainError("request.bad_json", f"{text} is not a number JSON allows")


def string_field(body: dict[str, Any], name: str, *, max_length: int = 200) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise DomainError("request.string_required", f"{name} is required (a non-empty string)",
                          name=name)
    if len(value) > max_length:
        raise DomainError("request.too_long", f"{name} is too long", name=name,
                          max=max_length)
    return value


def string_list(body: dict[str, Any], name: str, *, max_items: int, max_length: int,
                phones: bool = False) -> list[str]:
    """``body[name]`` as a list of strings: at most ``max_items``, each at most
    ``max_length`` characters. Anything but a list of strings is ``request.string_list``,
    or ``request.phone_list`` for a list of ``phones``."""
    values = body.get(name)
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise DomainError("request.phone_list" if phones else "request.string_list",
                          f"{name} must be a list of strings", name=name)
    if len(values) > max_items:
        raise DomainError("request.list_too_long", f"{name}: at most {max_items}", name=name,
                          max=max_items)
    if any(len(v) > max_length for v in values):
        raise DomainError("request.too_long", f"{name}: a value is too long", name=name,
                          max=max_length)
    return values
