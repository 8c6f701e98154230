"""The head of sales' reports on the web: ``/reports``, ``/reports/{name}`` and
``GET /api/reports/{name}?from=D&to=D[&format=csv]``.

The figures come from :mod:`crm_core.sales.reports` (which also decides who sees
which managers); this module only parses the period, labels the columns in Russian
and renders a page, JSON or CSV.
"""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from crm_core.clock import local_today
from crm_core.errors import DomainError, NotFoundError
from crm_core.people.models import Role, User
from crm_core.sales.reports import REPORTS, TITLES
from telecrm import csv_safety
from telecrm.web.auth import api_user, page_user
from telecrm.web.keys import SESSIONS, SETTINGS, workday_tz
from telecrm.web.params import day_bounds, parse_day
from telecrm.web.present import number

# column -> Russian heading; the order is the table's
COLUMNS: dict[str, list[tuple[str, str]]] = {
    "contact-frequency": [
        ("name", "Менеджер"), ("clients", "Клиентов"), ("abandoned", "Заброшено"),
        ("abandoned_pct", "% заброшенных"), ("calls", "Звонков"), ("talk_minutes", "Минут"),
        ("calls_per_client", "Звонков на клиента"), ("minutes_per_client", "Минут на клиента"),
        ("potential", "Потенциал, ₽"), ("open_offers", "КП в работе, ₽"),
        ("unpaid_invoices", "Счета к оплате, ₽"), ("payments", "Оплаты, ₽")],
    "overdue-clients": [
        ("name", "Менеджер"), ("group", "Группа"), ("clients", "Клиентов"), ("m0", "< 1 мес"),
        ("m1", "1 мес"), ("m2", "2 мес"), ("m3", "3 мес"), ("m4", "4 мес"), ("m5", "5 мес"),
        ("m6", "6+ мес"), ("max_days", "Максимум, дней"), ("over_max", "Сверх максимума")],
    "summary": [
        ("status", "Состояние"), ("clients", "Клиентов"), ("clients_prev", "Было"),
        ("potential", "Потенциал, ₽"), ("potential_prev", "Было, ₽"), ("paid", "Оплаты, ₽"),
        ("paid_prev", "Было, ₽")],
    "qualification": [
        ("name", "Менеджер"), ("new_clients", "Новых клиентов"), ("qualified", "Квалифицировано"),
        ("qualified_pct", "% квалификации"), ("a", "A"), ("b", "B"), ("c", "C"),
        ("avg_days_to_qualify", "Дней до квалификации")],
    "activity": [
        ("rank", "Место"), ("name", "Менеджер"), ("inbound_calls", "Входящих"),
        ("outbound_calls", "Исходящих"), ("talk_minutes", "Минут разговора"),
        ("tasks_done", "Задач выполнено"), ("emails", "Писем"), ("meetings", "Встреч"),
        ("deals_moved", "Сделок продвинуто")],
    "deals": [
        ("name", "Менеджер"), ("won", "Выиграно"), ("won_amount", "Выиграно, ₽"),
        ("in_progress", "В работе"), ("in_progress_amount", "В работе, ₽"),
        ("lost", "Проиграно"), ("lost_amount", "Проиграно, ₽"), ("win_rate_pct", "% побед")],
}
STATUS_NAMES = {"potential": "Потенциальные", "new": "Новые", "regular": "Постоянные",
                "lost": "Потерянные", "total": "Итого"}
GROUP_NAMES = {"potential": "Потенциальные", "new": "Новые"}
MAX_DAYS = 400


def _period(request: web.Request) -> tuple[date, date, datetime, datetime]:
    """``from``/``to`` (inclusive days, workday timezone); default: this month so far."""
    tz = workday_tz(request)
    today = local_today(tz)
    first = parse_day(request.query["from"], "from") if request.query.get("from") \
        else today.replace(day=1)
    last = parse_day(request.query["to"], "to") if request.query.get("to") else today
    if last < first:
        raise DomainError("request.range_reversed", "from must not be after to",
                          first="from", last="to")
    if (last - first).days >= MAX_DAYS:
        raise DomainError("request.period_too_long", f"ask for at most {MAX_DAYS} days at a time",
                          days=MAX_DAYS)
    return first, last, day_bounds(first, tz)[0], day_bounds(last, tz)[1]


async def _run(request: web.Request, user: User) -> tuple[str, dict[str, Any], date, date]:
    name = request.match_info["name"]
    report = REPORTS.get(name)
    if report is None:
        raise NotFoundError("reports.unknown", f"no report {name!r}", name=name,
                            known=list(REPORTS))
    first, last, start, end = _period(request)
    async with request.app[SESSIONS]() as session:
        body = await report(session, start, end, user, tz_name=request.app[SETTINGS].timezone)
    return name, body, first, last


def _csv(body: dict[str, Any], name: str) -> web.Response:
    rows = [*body.get("rows", []), *([body["totals"]] if body.get("totals") else [])]
    out = io.StringIO()
    if rows:
        fields = list(body["rows"][0]) if body.get("rows") else list(rows[0])
        writer = csv_safety.DictWriter(out, fieldnames=fields, extrasaction="ignore",
                                       lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return web.Response(text=out.getvalue(), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


async def api_report(request: web.Request) -> web.Response:
    user = api_user(request)
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise DomainError("request.format_invalid", "format must be json or csv",
                          formats=["json", "csv"])
    name, body, first, last = await _run(request, user)
    if fmt == "csv":
        return _csv(body, name)
    return web.json_response({**body, "from": first.isoformat(), "to": last.isoformat()})


def _links(name: str, row: dict[str, Any], last: date, owners: list[int]
           ) -> dict[str, str]:
    """Figures that open the client list filtered to exactly the clients they count.

    The filters are the reports' own definitions (``crm_core.sales.attention``) judged on
    the period's last day; a totals row links to all its managers' clients.
    """
    ids = [row["user_id"]] if row.get("user_id") else owners
    if not ids:
        return {}
    base = [("owner", str(i)) for i in ids]
    day = last.isoformat()
    if name == "contact-frequency":
        return {"clients": _list_url([*base, ("created_to", day)]),
                "abandoned": _list_url([*base, ("abandoned", "1"), ("as_of", day)])}
    if name != "overdue-clients":
        return {}
    groups = [row["group"]] if row.get("group") else ["potential", "new"]
    scope = base + [("status", g) for g in groups]
    links = {"clients": _list_url(scope),
             "over_max": _list_url([*scope, ("over_max", "1"), ("as_of", day)])}
    if row.get("group"):
        for k in range(7):
            links[f"m{k}"] = _list_url([*scope, ("stay", str(k)), ("as_of", day)])
    return links


def _list_url(params: list[tuple[str, str]]) -> str:
    return "/clients?" + urlencode(params)


def _cells(name: str, row: dict[str, Any], links: dict[str, str] | None = None
           ) -> list[dict[str, Any]]:
    """A row as the page shows it: text, a sort key, the trend for the summary and, for a
    figure that counts clients, the link to them."""
    cells = []
    for key, _ in COLUMNS[name]:
        value = row.get(key)
        text = "—" if value is None or value == "" else value
        if value is None:
            pass
        elif key == "status":
            text = STATUS_NAMES.get(str(value), value)
        elif key == "group":
            text = GROUP_NAMES.get(str(value), value)
        elif isinstance(value, str) and value.replace(".", "", 1).isdigit() and "." in value:
            text = f"{float(value):,.0f}".replace(",", "\u00a0")
        elif isinstance(value, int | float):  # in Russian: 1 250, 33,3 (the digits as given)
            shown = repr(value)
            text = number(value, len(shown.partition(".")[2]) if "." in shown else 0)
        trend = row.get(f"{key}_trend")
        cells.append({"key": key, "text": text, "sort": value if value is not None else "",
                      "trend": trend, "href": (links or {}).get(key)})
    return cells


@aiohttp_jinja2.template("report_page.html")
async def report_page(request: web.Request) -> dict[str, Any]:
    user = page_user(request)
    name, body, first, last = await _run(request, user)
    previous = body.get("previous")  # the summary's: the period it compared with
    prev_first = datetime.fromisoformat(previous["from"]).date() if previous else None
    prev_last = (datetime.fromisoformat(previous["to"]).date() - timedelta(days=1)
                 if previous else None)
    owners = [r["user_id"] for r in body["rows"] if r.get("user_id")]
    owners = list(dict.fromkeys(owners))
    boss = user.role in (Role.SUPERVISOR, Role.ADMIN)
    return {"boss": boss, "title": TITLES[name], "name": name, "reports": TITLES,
            "columns": COLUMNS[name],
            "rows": [_cells(name, r, _links(name, r, last, owners)) for r in body["rows"]],
            "totals": (_cells(name, body["totals"], _links(name, body["totals"], last, owners))
                       if body.get("totals") else None),
            "over_max_url": _list_url([*[("owner", str(i)) for i in owners],
                                       ("status", "potential"), ("status", "new"),
                                       ("over_max", "1"), ("as_of", last.isoformat())]),
            "extra": body, "first": first, "last": last,
            "prev_first": prev_first, "prev_last": prev_last,
            "query": request.query_string,
            "as_of": (date.fromisoformat(body["as_of"]).strftime("%d.%m.%Y")
                      if body.get("as_of") else "")}


async def reports_index(request: web.Request) -> web.Response:
    page_user(request)
    raise web.HTTPSeeOther("/reports/summary")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/reports/{name}", api_report)
    router.add_get("/reports", reports_index)
    router.add_get("/reports/{name}", report_page)
