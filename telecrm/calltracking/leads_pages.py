"""Leads and the marketers' extra reports in the app: the «Заявки» page and
«Маркетинговые отчёты», and their JSON.

- ``GET /leads?from=D&to=D&kind=form|callback``: «Заявки»: a marketer (and an admin)
  sees every lead, a supervisor his team's, a manager those given to him or of his
  own clients; ``GET /api/leads`` the same as JSON;
- ``POST /leads/archive`` (lead, a hidden field of the row's button): a marketer or an
  admin archives a lead (spam, a test); nothing is deleted, the audit log keeps it;
- ``GET /calltracking/marketing?from=D&to=D``: by keyword, by landing page, lost leads
  per channel and first against last touch (marketers and admins);
  ``GET /api/ct/marketing`` the same as JSON.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select

from crm_core.calltracking.lead_reports import first_callbacks, marketing_reports, touch_label
from crm_core.calltracking.leads import (
    KIND_LABELS,
    STATUS_LABELS,
    archive_lead,
    lead_to_dict,
    may_see_all_leads,
    may_see_leads,
    visible_leads,
)
from crm_core.calltracking.models import LeadStatus
from crm_core.clients.models import Client
from crm_core.clock import utcnow
from crm_core.errors import DomainError, NotAllowedError
from crm_core.people.access import may_see_clients
from crm_core.people.models import User
from crm_core.timestamps import ensure_utc
from telecrm.calltracking.routes import _period, _viewer
from telecrm.web.auth import api_user, page_user
from telecrm.web.keys import SESSIONS, WRITER_SESSIONS
from telecrm.web.params import parse_day

KINDS = ("form", "callback")


def wait_label(seconds: float | None) -> str:
    """How long a call back took, as people say it: «45 с», «12 мин», «2 ч 05 мин»."""
    if seconds is None:
        return "—"
    total = round(seconds)
    if total < 60:
        return f"{total} с"
    minutes = total // 60
    if minutes < 60:
        return f"{minutes} мин"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} ч {minutes:02d} мин"
    return f"{hours // 24} дн {hours % 24} ч"


def _kind(request: web.Request) -> str | None:
    kind = request.query.get("kind") or None
    if kind is not None and kind not in KINDS:
        raise DomainError("leads.kind_unknown", "kind must be form or callback")
    return kind


def _leads_viewer(user: User) -> User:
    if not may_see_leads(user):
        raise NotAllowedError("leads.not_allowed", "leads are not for this role")
    return user


async def _rows(request: web.Request, user: User) -> tuple[list[dict[str, Any]], Any, Any]:
    period, first, last = _period(request)
    async with request.app[SESSIONS]() as session:
        leads = await visible_leads(session, user, period.start, period.end,
                                    kind=_kind(request))
        called = await first_callbacks(session, leads)
        ids = {lead.client_id for lead in leads if lead.client_id} | {-1}
        names = dict((await session.execute(select(Client.id, Client.name).where(
            Client.id.in_(ids)))).all())
        people = {lead.assignee_id for lead in leads if lead.assignee_id} | {-1}
        managers = dict((await session.execute(select(User.id, User.name).where(
            User.id.in_(people)))).all())
    rows = []
    for lead in leads:
        row = lead_to_dict(lead)
        at = called.get(lead.id)
        # a lead still waiting that has been called back since is no longer waiting
        waiting = lead.status == LeadStatus.NEW.value
        row.update(
            kind_label=KIND_LABELS[lead.kind],
            status_label="перезвонили" if waiting and at else STATUS_LABELS[lead.status],
            source_label=touch_label(lead.channel, lead.source, lead.medium),
            client=names.get(lead.client_id or -1), manager=managers.get(lead.assignee_id or -1),
            called_back_at=at.isoformat() if at else None,
            callback_seconds=(at - ensure_utc(lead.created_at)).total_seconds() if at else None)
        rows.append(row)
    return rows, first, last


async def leads_api(request: web.Request) -> web.Response:
    user = _leads_viewer(api_user(request))
    rows, _, _ = await _rows(request, user)
    return web.json_response({"leads": rows})


async def leads_page(request: web.Request) -> web.Response:
    user = _leads_viewer(page_user(request))
    rows, first, last = await _rows(request, user)
    kind = _kind(request)
    context = {"title": "Заявки", "leads": rows, "first": first, "last": last, "kind": kind,
               "kinds": KIND_LABELS, "wait": wait_label,
               "may_archive": may_see_all_leads(user), "may_open": may_see_clients(user),
               "saved": request.query.get("saved") == "archive"}
    return aiohttp_jinja2.render_template("leads.html", request, context)


async def archive_form(request: web.Request) -> web.Response:
    user = page_user(request)
    form = await request.post()
    raw = form.get("lead")
    if not isinstance(raw, str) or not raw.isdigit() or len(raw) > 12:
        raise DomainError("request.not_positive", "lead must be a number", name="lead")
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        await archive_lead(session, user, int(raw), now=utcnow())
    view = []
    for key in ("from", "to"):  # back to the same period and kind
        value = form.get(key)
        if isinstance(value, str) and value:
            view.append((key, parse_day(value, key).isoformat()))
    kind = form.get("kind")
    if isinstance(kind, str) and kind in KINDS:
        view.append(("kind", kind))
    view.append(("saved", "archive"))
    raise web.HTTPSeeOther(f"/leads?{urlencode(view)}")


async def marketing_api(request: web.Request) -> web.Response:
    _viewer(request)
    period, _, _ = _period(request)
    async with request.app[SESSIONS]() as session:
        body = await marketing_reports(session, period)
    return web.json_response(body)


async def marketing_page(request: web.Request) -> web.Response:
    _viewer(request, page=True)
    period, first, last = _period(request)
    async with request.app[SESSIONS]() as session:
        body = await marketing_reports(session, period)
    for client in body["touches"]["clients"]:
        for key in ("first", "last"):
            client[key]["when"] = datetime.fromisoformat(client[key]["at"])
    return aiohttp_jinja2.render_template(
        "ct_marketing.html", request,
        {"title": "Маркетинговые отчёты", "report": body, "first": first, "last": last,
         "wait": wait_label})


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the leads' pages and routes (the public endpoints are in ``routes``)."""
    router.add_get("/leads", leads_page)
    router.add_post("/leads/archive", archive_form)
    router.add_get("/api/leads", leads_api)
    router.add_get("/calltracking/marketing", marketing_page)
    router.add_get("/api/ct/marketing", marketing_api)

