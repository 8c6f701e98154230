"""Missed calls on the web: the report, the team's limit, the admin's mail form.

- ``GET /reports/missed`` (page) and ``GET /api/reports/missed?from=D&to=D[&format=csv]``:
  figures from :mod:`crm_core.missed.report`, which decides who sees which rows;
- ``POST /missed/limit``: the head of sales sets after how many minutes without a
  callback he is told (an admin: any team);
- ``GET|POST /admin/mail``: the SMTP server and the people's addresses (admins).

The period is parsed as for the sales reports (:mod:`telecrm.sales.report_routes`).
"""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select

from crm_core.errors import DomainError, NotAllowedError
from crm_core.missed.mail import (
    KEEP,
    all_addresses,
    describe,
    mail_settings,
    set_address,
    set_mail_settings,
)
from crm_core.missed.models import MailSecurity
from crm_core.missed.report import FIGURES, missed_report
from crm_core.missed.services import rules_of, set_escalate_minutes
from crm_core.people.models import Role, Team, User
from crm_core.sales.reports import TITLES
from telecrm import csv_safety
from telecrm.messages import russian
from telecrm.sales.report_routes import _period as report_period
from telecrm.web.auth import api_user, page_user
from telecrm.web.keys import SESSIONS, WRITER_SESSIONS

TITLE = "Пропущенные звонки"


async def _report(request: web.Request, user: User) -> tuple[dict[str, Any], dict[str, str],
                                                              Any, Any]:
    first, last, start, end = report_period(request)
    async with request.app[SESSIONS]() as session:
        report = await missed_report(session, start, end, user)
    return report.body, report.names, first, last


async def api_missed(request: web.Request) -> web.Response:
    user = api_user(request)
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise DomainError("request.format_invalid", "format must be json or csv",
                          formats=["json", "csv"])
    body, _, first, last = await _report(request, user)
    if fmt == "json":
        return web.json_response({**body, "from": first.isoformat(), "to": last.isoformat()})
    out = io.StringIO()
    writer = csv_safety.writer(out, lineterminator="\n")
    writer.writerow(["manager", "queue", *FIGURES])
    for row in [*body["rows"], body["total"]]:
        writer.writerow([row.get("manager"), row.get("queue"), *(row[k] for k in FIGURES)])
    return web.Response(text=out.getvalue(), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": 'attachment; filename="missed.csv"'})


def _view(row: dict[str, Any], label: str) -> dict[str, Any]:
    missed = row["missed"]

    def share(key: str) -> float | None:
        return 100.0 * row[key] / missed if missed else None

    return {"label": label, "missed": missed,
            "shares": [(row[k], share(k)) for k in ("called_back_5m", "called_back_15m",
                                                   "called_back_60m", "never_called_back")],
            "median": row["median_callback_seconds"]}


async def _teams_for(request: web.Request, user: User) -> list[Team]:
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        return []
    async with request.app[SESSIONS]() as session:
        stmt = select(Team).order_by(Team.name)
        if user.role == Role.SUPERVISOR:
            if user.team_id is None:
                return []
            stmt = stmt.where(Team.id == user.team_id)
        return list(await session.scalars(stmt))


@aiohttp_jinja2.template("missed_report.html")
async def missed_page(request: web.Request) -> dict[str, Any]:
    user = page_user(request)
    body, names, first, last = await _report(request, user)
    managers = [_view(r, names.get(r["manager"], r["manager"]) + f" ({r['manager']})")
                for r in body["rows"] if "manager" in r]
    queues = [_view(r, f"Очередь {r['queue']}") for r in body["rows"] if "queue" in r]
    teams = await _teams_for(request, user)
    async with request.app[SESSIONS]() as session:
        limits = await rules_of(session, teams)
    return {"title": TITLE, "reports": TITLES, "first": first, "last": last,
            "managers": managers, "queues": queues, "total": _view(body["total"], "Итого"),
            "teams": [(t, limits[t.id]) for t in teams],
            "notice": request.query.get("saved", ""), "error": request.query.get("error", "")}


def _back(request: web.Request, **query: str) -> web.HTTPSeeOther:
    """Back to the report with the period it showed, and what became of the form."""
    referer = urlsplit(str(request.headers.get("Referer", "")))
    kept = [(k, v) for k, v in parse_qsl(referer.query)
            if k in ("from", "to")] if referer.path == "/reports/missed" else []
    return web.HTTPSeeOther("/reports/missed?" + urlencode([*kept, *query.items()]))


async def set_limit(request: web.Request) -> web.Response:
    """The form on the report page: the team's minutes before its supervisor is told."""
    user = page_user(request)
    form = await request.post()
    try:
        team_id, minutes = int(str(form.get("team_id", ""))), int(str(form.get("minutes", "")))
    except ValueError:
        raise _back(request, error=russian(DomainError(
            "missed.minutes_out_of_range", "", low=1, high=1440))) from None
    try:
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            await set_escalate_minutes(session, user, team_id, minutes)
    except DomainError as exc:
        raise _back(request, error=russian(exc)) from None
    raise _back(request, saved="1")


# -- the admin's mail form ------------------------------------------------------------------


def _admin(request: web.Request) -> User:
    user = page_user(request)
    if user.role != Role.ADMIN:
        raise NotAllowedError("missed.mail_not_allowed", "only an admin sets the mail server")
    return user


async def _mail_context(request: web.Request, **extra: Any) -> dict[str, Any]:
    async with request.app[SESSIONS]() as session:
        settings = describe(await mail_settings(session))
        people = list(await session.scalars(select(User).where(User.active.is_(True))
                                            .order_by(User.name)))
        emails = await all_addresses(session)
    return {"title": "Почта для уведомлений", "mail": settings, "people": people,
            "emails": emails, "securities": [(MailSecurity.STARTTLS.value, "STARTTLS"),
                                             (MailSecurity.NONE.value, "без шифрования")],
            "notice": "", "error": "", "form": {}, **extra}


async def mail_page(request: web.Request) -> web.Response:
    _admin(request)
    notice = "Сохранено." if request.query.get("saved") else ""
    return aiohttp_jinja2.render_template("admin_mail.html", request,
                                          await _mail_context(request, notice=notice))


async def mail_submit(request: web.Request) -> web.Response:
    admin = _admin(request)
    form = await request.post()
    data = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    try:
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            if data.get("what") == "addresses":
                people = list(await session.scalars(select(User)
                                                    .where(User.active.is_(True))))
                for person in people:
                    key = f"email_{person.id}"
                    if key in data:
                        await set_address(session, person, data[key], actor=admin)
            else:
                port = data.get("port", "").strip()
                if not port.isdigit():
                    raise DomainError("missed.mail_port_invalid", "bad port", port=port)
                password: str | object = data.get("password") or KEEP
                if data.get("clear_password"):
                    password = ""
                await set_mail_settings(session, host=data.get("host", ""), port=int(port),
                                        security=data.get("security", ""),
                                        username=data.get("username"), password=password,
                                        sender=data.get("sender", ""), actor=admin)
    except DomainError as exc:
        return aiohttp_jinja2.render_template(
            "admin_mail.html", request,
            await _mail_context(request, error=russian(exc),
                                form={k: v for k, v in data.items() if k != "password"}),
            status=400)
    raise web.HTTPSeeOther("/admin/mail?saved=1")


def add_routes(router: web.UrlDispatcher) -> None:
    """Before the sales reports' ``/reports/{name}``."""
    router.add_get("/api/reports/missed", api_missed)
    router.add_get("/reports/missed", missed_page)
    router.add_post("/missed/limit", set_limit)
    router.add_get("/admin/mail", mail_page)
    router.add_post("/admin/mail", mail_submit)
