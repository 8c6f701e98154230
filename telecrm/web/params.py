"""Parsing what clients send: ids, dates, JSON bodies. Bad input is a 400, not a 500.

Refusals are coded (``request.*`` in ``telecrm.messages``); ``name`` is the query or
body field as the API names it.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from crm_core.clock import local_today
from crm_core.errors import DomainError, NotFoundError
from telecrm.web.errors import ApiError

MAX_ID = 2**31 - 1  # fits an INTEGER column on every backend
MAX_DAYS = 400  # the longest period one request may ask for
MIN_YEAR, MAX_YEAR = 1900, 2199  # dates outside are typos (and would overflow datetime math)


def path_id(request: web.Request, name: str = "id") -> int:
    """A positive integer path segment; anything else is a 404 (no such thing)."""
    raw = request.match_info.get(name, "")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or not 0 < int(raw) <= MAX_ID:
        raise NotFoundError("request.not_found", "not found")
    return int(raw)


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
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise DomainError("request.bad_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise DomainError("request.not_object", "the body must be a JSON object")
    return body


def string_field(body: dict[str, Any], name: str, *, max_length: int = 200) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise DomainError("request.string_required", f"{name} is required (a non-empty string)",
                          name=name)
    if len(value) > max_length:
        raise DomainError("request.too_long", f"{name} is too long", name=name,
                          max=max_length)
    return value
