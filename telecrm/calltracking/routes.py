"""Routes of the call-tracking feature, registered by telecrm.web.routes.

Public (hostile ground, see :mod:`telecrm.calltracking.public`):
- ``GET /ct.js?site=HOST``, ``POST /api/ct/session`` (and its CORS pre-flight);
- ``POST /api/ct/lead``, ``POST /api/ct/callback``: a site form, the callback widget
  (:mod:`telecrm.calltracking.leads_public`).

Leads and the marketers' extra reports (``/leads``, ``/calltracking/marketing``) are
registered by :mod:`telecrm.calltracking.leads_pages`.

For marketers (and admins; managers and supervisors get 403):
- ``GET /api/ct/report?from=D&to=D&by=channel|source|medium|campaign`` (``format=csv`` too);
- ``GET /api/ct/calls?from=D&to=D``: the call log with each call's source and pages;
- ``GET /calltracking``: the page with the report, charts, pool health and the call log;
- ``POST /calltracking/costs`` (month, channel, amount): enter or correct an ad cost;
- ``POST /calltracking/static`` (did, channel, campaign, source, medium, cost_per_month);
- ``POST /calltracking/pool`` (site, number (one field per number), default_number): a
  site and its pool numbers, from the new-site form or a site's own "add a number" form;
- ``POST /calltracking/costs/import`` (file): monthly costs from a CSV file, all or none;
  ``GET /calltracking/costs.csv``: the entered costs in the same shape, to edit and load;
- ``POST /calltracking/archive`` (number): stop tracking a static or pool number.
  The forms are HTML forms of the page (CSRF field); they redirect back to the page, and
  bad input shows the page again with one sentence saying what is wrong.

The same settings as JSON (marketers and admins, CSRF header): ``/api/ct/costs``,
``/api/ct/static``, ``/api/ct/sites``, ``/api/ct/pool``, ``/api/ct/numbers/archive``
(:mod:`telecrm.calltracking.manage_api`).

For anyone who may see the call: ``GET /api/ct/calls/{id}/source`` (the screen pop).
"""

from __future__ import annotations

import asyncio
import io
import math
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calltracking.attribution import source_label, tracking_of
from crm_core.calltracking.cost_import import SYSTEM_NAMES
from crm_core.calltracking.models import CtAttribution
from crm_core.calltracking.report import GROUPINGS, Period, call_log, channel_report, pool_health
from crm_core.calltracking.services import (
    SiteOptions,
    add_pool_numbers,
    add_static,
    archive_number,
    list_costs,
    list_sites,
    list_static,
    parse_costs_text,
    save_site,
    set_cost,
    site_to_dict,
    static_to_dict,
    store_costs,
)
from crm_core.clock import local_now, local_today
from crm_core.errors import DomainError, NotAllowedError, NotFoundError
from crm_core.people import access
from crm_core.people.models import User
from telecrm import csv_safety
from telecrm.calltracking import ads as ct_ads
from telecrm.calltracking import leads_public
from telecrm.calltracking import manage_api as ct_manage_api
from telecrm.calltracking import public as ct_public
from telecrm.messages import http_status, sentence
from telecrm.web.auth import api_user, page_user
from telecrm.web.keys import SESSIONS, WRITER_SESSIONS, workday_tz
from telecrm.web.params import check_days, day_bounds, parse_day, path_id, query_int
from telecrm.web.present import month_label

MAX_CSV_BYTES = 1_000_000

MARKETING_ROLES = ct_manage_api.MARKETING_ROLES  # one rule for pages and the API


def may_see_calltracking(user: User) -> bool:
    """Call-tracking reports are for marketers (and admins), not for the sales floor."""
    return user.role in MARKETING_ROLES


def _viewer(request: web.Request, *, page: bool = False) -> User:
    user = page_user(request) if page else api_user(request)
    if not may_see_calltracking(user):
        raise NotAllowedError("calltracking.for_marketers", "call tracking is for marketers")
    return user



def _period(request: web.Request) -> tuple[Period, date, date]:
    """``from``/``to`` days (inclusive) in the workday timezone; default: this month so far."""
    tz = workday_tz(request)
    today = local_today(tz)
    q = request.query
    first = parse_day(q["from"], "from") if q.get("from") else today.replace(day=1)
    last = parse_day(q["to"], "to") if q.get("to") else max(first, today)
    check_days(first, last)
    return Period(day_bounds(first, tz)[0], day_bounds(last, tz)[1]), first, last


def _by(request: web.Request) -> str:
    by = request.query.get("by", "channel")
    if by not in GROUPINGS:
        raise DomainError("calltracking.grouping_invalid", "by must be one of the groupings",
                          groupings=list(GROUPINGS))
    return by


async def _report(request: web.Request) -> dict[str, Any]:
    period, _, _ = _period(request)
    target = query_int(request, "target", 60, low=1, high=3600)
    async with request.app[SESSIONS]() as session:
        body = await channel_report(session, period, by=_by(request), target_seconds=target)
        body["pool_health"] = await pool_health(session, period)
    return body


async def report(request: web.Request) -> web.Response:
    _viewer(request)
    body = await _report(request)
    if request.query.get("format") == "csv":
        out = io.StringIO()
        rows = [*body["rows"], body["totals"]]
        writer = csv_safety.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return web.Response(text=out.getvalue(), content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition":
                                     'attachment; filename="calltracking.csv"'})
    return web.json_response(body)


async def calls(request: web.Request) -> web.Response:
    _viewer(request)
    period, _, _ = _period(request)
    target = query_int(request, "target", 60, low=1, high=3600)
    async with request.app[SESSIONS]() as session:
        rows = await call_log(session, period, target_seconds=target)
    return web.json_response(rows)


async def call_source(request: web.Request) -> web.Response:
    """The source of one call for the screen pop (whoever may see the call)."""
    user = api_user(request)
    call_id = path_id(request)
    async with request.app[SESSIONS]() as session:
        if not await access.can_see_call(session, user, call_id):
            raise NotFoundError("calls.not_found", "no such call")
        row = await session.scalar(select(CtAttribution).where(CtAttribution.call_id == call_id))
        return web.json_response({"source": source_label(row), "tracking": tracking_of(row)})


def _daily_chart(log: list[dict[str, Any]], first: date, last: date, tz: ZoneInfo
                 ) -> dict[str, Any]:
    """Calls per day by channel as stacked bars for an inline SVG."""
    days = [(first + timedelta(days=i)) for i in range((last - first).days + 1)]
    counts: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for row in log:
        day = datetime.fromisoformat(row["started_at"]).astimezone(tz).date()
        counts[row["channel"] or "(не указан)"][day] += 1
    channels = sorted(counts)
    top = max([sum(counts[c][d] for c in channels) for d in days] + [1])
    width, height = 640, 120
    step = width / max(1, len(days))
    bars = []
    for i, day in enumerate(days):
        y = height
        for index, channel in enumerate(channels):
            n = counts[channel][day]
            if not n:
                continue
            h = height * n / top
            y -= h
            bars.append({"x": round(i * step, 1), "y": round(y, 1), "w": round(max(1, step - 2), 1),
                         "h": round(h, 1), "color": index % 6, "title":
                         f"{day.strftime('%d.%m')} {channel}: {n}"})
    every = max(1, math.ceil(len(days) / 8))  # at most ~8 day labels stay readable
    labels = [{"x": round(i * step + step / 2, 1), "text": day.strftime("%d.%m"),
               "anchor": "middle"}
              for i, day in enumerate(days) if i % every == 0 or i == len(days) - 1]
    if len(labels) > 1 and labels[-1]["x"] - labels[-2]["x"] < 50:
        del labels[-2]  # the last day's label wins over a neighbour it would overlap
    labels[0].update(x=0, anchor="start")  # the edge labels stay inside the chart
    if len(labels) > 1:
        labels[-1].update(x=width, anchor="end")
    return {"bars": bars, "width": width, "height": height, "channels": channels, "top": top,
            "labels": labels}


def _spread_by_row(spread: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The report's cost shares grouped under their row, each with its month in words."""
    rows: dict[str, dict[str, Any]] = {}
    for item in spread:
        row = rows.setdefault(item["key"], {"key": item["key"], "total": 0.0, "items": []})
        row["total"] += item["amount"]
        row["items"].append({**item, "month_label": month_label(date.fromisoformat(
            item["month"] + "-01"))})
    return sorted(rows.values(), key=lambda r: (-r["total"], r["key"]))


def days_word(n: int) -> str:
    """«дня» or «дней» after «из N»: из 31 дня, из 30 дней."""
    return "дня" if n % 10 == 1 and n % 100 != 11 else "дней"


VIEW_KEYS = ("from", "to", "by", "target")


def _view_query(request: web.Request) -> str:
    """The period and grouping on screen, so a saved form comes back to the same view."""
    return urlencode([(k, request.query[k]) for k in VIEW_KEYS if request.query.get(k)])


async def _page_context(request: web.Request) -> dict[str, Any]:
    period, first, last = _period(request)
    target = query_int(request, "target", 60, low=1, high=3600)
    async with request.app[SESSIONS]() as session:
        body = await channel_report(session, period, by=_by(request), target_seconds=target)
        health = await pool_health(session, period)
        log = await call_log(session, period, target_seconds=target)
        statics = [static_to_dict(s) for s in await list_static(session)]
        sites = [site_to_dict(s) for s in await list_sites(session)]
        costs = [{"month": month_label(c.month), "channel": c.channel,
                  "amount": float(c.amount)} for c in await list_costs(session)][:60]
    tz = workday_tz(request)
    for row in log:
        row["when"] = datetime.fromisoformat(row["started_at"]).astimezone(tz).strftime(
            "%d.%m %H:%M")
    top_cost = max([r["cost_per_target_call"] or 0 for r in body["rows"]] + [1])
    return {"title": "Коллтрекинг", "report": body, "health": health, "log": log,
            "first": first, "last": last, "by": body["by"], "groupings": GROUPINGS,
            "chart": _daily_chart(log, first, last, tz), "top_cost": top_cost,
            "spread": _spread_by_row(body["cost_spread"]), "days_word": days_word,
            "imported_names": {k.value: v for k, v in SYSTEM_NAMES.items()},
            "target": target, "statics": statics, "sites": sites, "costs": costs,
            "crm_origin": f"{request.scheme}://{request.host}",
            "view_query": _view_query(request),
            "this_month": local_now(tz).strftime("%Y-%m"),
            "saved": request.query.get("saved") in SAVED, "error": None, "form": {},
            "form_numbers": []}


SAVED = frozenset({"cost", "costs", "static", "pool", "archive"})


async def page(request: web.Request) -> web.Response:
    _viewer(request, page=True)
    return aiohttp_jinja2.render_template("calltracking.html", request,
                                          await _page_context(request))


async def _form(request: web.Request) -> tuple[dict[str, str], list[str]]:
    """The form's fields, and the numbers of its number list (one field per number)."""
    form = await request.post()
    fields = {k: v.strip() for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    numbers = [n.strip() for n in form.getall("number", []) if isinstance(n, str) and n.strip()]
    return fields, numbers


def _back(request: web.Request, saved: str) -> str:
    view = _view_query(request)
    return f"/calltracking?{view + '&' if view else ''}saved={saved}#ct-settings"


async def _refused(request: web.Request, what: str, message: str, data: dict[str, str],
                   numbers: list[str], *, status: int = 400) -> web.Response:
    """The page again with the reason and what the marketer typed."""
    context = await _page_context(request)
    context.update(error=message, form={"what": what, **data}, form_numbers=numbers)
    return aiohttp_jinja2.render_template("calltracking.html", request, context, status=status)


async def _save(request: web.Request, what: str,
                change: Callable[[AsyncSession, User, dict[str, str], list[str]],
                                 Awaitable[object]]) -> web.Response:
    """Run one change of the settings forms; bad input re-shows the page with the reason."""
    user = _viewer(request, page=True)
    data, numbers = await _form(request)
    try:
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            await change(session, user, data, numbers)
    except DomainError as exc:
        return await _refused(request, what, sentence("calltracking.not_saved", {"error": exc}),
                              data, numbers, status=http_status(exc))
    raise web.HTTPSeeOther(_back(request, what))


async def _cost(session: AsyncSession, user: User, data: dict[str, str], _: list[str]
                ) -> None:
    await set_cost(session, data.get("month", ""), data.get("channel", ""),
                   data.get("amount", ""), actor=user.username, user_id=user.id)


async def _static(session: AsyncSession, user: User, data: dict[str, str], _: list[str]
                  ) -> None:
    await add_static(session, data.get("did", ""), data.get("channel", ""),
                     campaign=data.get("campaign"), source=data.get("source"),
                     medium=data.get("medium"), cost_per_month=data.get("cost_per_month") or 0,
                     actor=user.username)


async def _pool(session: AsyncSession, user: User, data: dict[str, str], numbers: list[str]
                ) -> None:
    host = data.get("site", "")
    default = data.get("default_number")
    if default:
        await save_site(session, host, SiteOptions(default_numbers=[default]),
                        actor=user.username)
    await add_pool_numbers(session, host, numbers, actor=user.username)


async def _archive(session: AsyncSession, user: User, data: dict[str, str], _: list[str]
                   ) -> None:
    await archive_number(session, data.get("number", ""), actor=user.username,
                         user_id=user.id)


async def cost_form(request: web.Request) -> web.Response:
    return await _save(request, "cost", _cost)


async def static_form(request: web.Request) -> web.Response:
    return await _save(request, "static", _static)


async def pool_form(request: web.Request) -> web.Response:
    return await _save(request, "pool", _pool)


async def archive_form(request: web.Request) -> web.Response:
    return await _save(request, "archive", _archive)


async def costs_csv(request: web.Request) -> web.Response:
    """The entered costs as the CSV the upload takes: a copy to edit and load back."""
    _viewer(request, page=True)
    async with request.app[SESSIONS]() as session:
        rows = await list_costs(session)
    out = io.StringIO()
    writer = csv_safety.writer(out, lineterminator="\n")
    writer.writerow(["month", "channel", "amount"])
    writer.writerows([c.month.strftime("%Y-%m"), c.channel, f"{c.amount:.2f}"] for c in rows)
    return web.Response(text=out.getvalue(), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": 'attachment; filename="costs.csv"'})


async def costs_import_form(request: web.Request) -> web.Response:
    """The costs CSV (month,channel,amount) uploaded from the page: every row or none."""
    user = _viewer(request, page=True)
    form = await request.post()
    upload = form.get("file")
    if not isinstance(upload, web.FileField) or not upload.filename:
        return await _refused(request, "costs", "Выберите файл CSV.", {}, [])
    name = upload.filename
    raw = upload.file.read(MAX_CSV_BYTES + 1)
    if len(raw) > MAX_CSV_BYTES:
        return await _refused(request, "costs", f"Файл {name} больше 1 МБ.", {}, [])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return await _refused(request, "costs", f"Файл {name} не в кодировке UTF-8.", {}, [])
    try:
        # parsed on a thread and before the transaction: the file is a user's upload
        rows = await asyncio.to_thread(parse_costs_text, text, name)
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            await store_costs(session, rows, actor=user.username, user_id=user.id)
    except DomainError as exc:
        return await _refused(request, "costs", sentence("calltracking.not_loaded", {"error": exc}),
                              {}, [], status=http_status(exc))
    raise web.HTTPSeeOther(_back(request, "costs"))


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this feature's pages and API routes."""
    router.add_get("/ct.js", ct_public.snippet)
    router.add_post("/api/ct/session", ct_public.session_endpoint)
    router.add_route("OPTIONS", "/api/ct/session", ct_public.preflight)
    router.add_post("/api/ct/lead", leads_public.lead_endpoint)
    router.add_route("OPTIONS", "/api/ct/lead", ct_public.preflight)
    router.add_post("/api/ct/callback", leads_public.callback_endpoint)
    router.add_route("OPTIONS", "/api/ct/callback", ct_public.preflight)
    router.add_get("/api/ct/report", report)
    router.add_get("/api/ct/calls", calls)
    router.add_get("/api/ct/calls/{id}/source", call_source)
    router.add_get("/calltracking", page)
    router.add_post("/calltracking/costs", cost_form)
    router.add_post("/calltracking/costs/import", costs_import_form)
    router.add_get("/calltracking/costs.csv", costs_csv)
    router.add_post("/calltracking/static", static_form)
    router.add_post("/calltracking/pool", pool_form)
    router.add_post("/calltracking/archive", archive_form)
    ct_manage_api.add_routes(router)
    ct_ads.add_routes(router)
