"""The ad systems' page of call tracking (marketers and admins): costs loaded from the ad
systems' export files, and offline conversions sent back to Yandex Metrica and Google Ads.

- ``GET /calltracking/ads``: the page (forms only: nothing to type but the settings);
- ``POST /calltracking/ads/costs`` (system, channel, file): an export of Yandex Direct,
  VK Ads or Google Ads, booked by campaign and day, all rows or none;
- ``POST /calltracking/ads/accounts`` (system, counter or customer id, goals, currency,
  token...): the account of one system; a token field left empty keeps the stored
  token, which is never shown back;
- ``GET /calltracking/ads/conversions.csv?file=metrica-calls|metrica-deals|google-ads
  &from=D&to=D``: the documented file for a manual upload;
- ``POST /calltracking/ads/send``: send the due conversions now (as the scheduled round).
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web

from crm_core.calltracking.ad_models import AdSystem, ConversionGoal, ConversionSystem
from crm_core.calltracking.conversions import (
    SYSTEM_NAMES,
    AccountForm,
    ConversionError,
    account_to_dict,
    conversions,
    get_account,
    google_csv,
    metrica_calls_csv,
    metrica_deals_csv,
    save_account,
    sent_counts,
    system_of,
    upload_log,
)
from crm_core.calltracking.cost_import import (
    SYSTEM_NAMES as COST_SYSTEMS,
)
from crm_core.calltracking.cost_import import (
    CostFileError,
    decode,
    list_campaign_costs,
    parse_cost_file,
    store_campaign_costs,
)
from crm_core.clock import local_today
from crm_core.errors import DomainError, NotAllowedError
from crm_core.people.models import User
from telecrm import csv_safety
from telecrm.calltracking.conversion_upload import send_all
from telecrm.calltracking.manage_api import MARKETING_ROLES
from telecrm.messages import done, http_status, russian
from telecrm.web.auth import page_user
from telecrm.web.keys import SESSIONS, SETTINGS, WRITER_SESSIONS, workday_tz
from telecrm.web.params import check_days, day_bounds, parse_day

MAX_FILE_BYTES = 10_000_000  # a year of campaigns by day fits many times over
FILES = {"metrica-calls": (ConversionSystem.METRICA, ConversionGoal.CALL),
         "metrica-deals": (ConversionSystem.METRICA, ConversionGoal.DEAL),
         "google-ads": (ConversionSystem.GOOGLE_ADS, None)}
STATUS_NAMES = {"sent": "отправлено", "sending": "отправляется", "failed": "ждёт повтора",
                "rejected": "отклонено"}
GOAL_NAMES = {"call": "звонки", "deal": "сделки"}


def _viewer(request: web.Request) -> User:
    """The signed-in marketer or admin (the call-tracking pages' one rule)."""
    user = page_user(request)
    if user.role not in MARKETING_ROLES:
        raise NotAllowedError("calltracking.for_marketers", "call tracking is for marketers")
    return user


def _period(request: web.Request) -> tuple[date, date, datetime, datetime]:
    """``from``/``to`` days (inclusive); default: the last 21 days (Metrica's window)."""
    tz = workday_tz(request)
    today = local_today(tz)
    q = request.query
    last = parse_day(q["to"], "to") if q.get("to") else today
    first = parse_day(q["from"], "from") if q.get("from") else date.fromordinal(
        last.toordinal() - 20)
    check_days(first, last)
    return first, last, day_bounds(first, tz)[0], day_bounds(last, tz)[1]


async def _context(request: web.Request) -> dict[str, Any]:
    first, last, _, _ = _period(request)
    tz = workday_tz(request)
    async with request.app[SESSIONS]() as session:
        accounts = {system.value: await get_account(session, system)
                    for system in ConversionSystem}
        costs = await list_campaign_costs(session, limit=60)
        log = await upload_log(session)
        counts = await sent_counts(session)
    states = [{"system": SYSTEM_NAMES[ConversionSystem(system)], "goal": GOAL_NAMES[goal],
               "status": STATUS_NAMES[status], "count": n}
              for (system, goal, status), n in sorted(counts.items())]
    q = request.query
    notice = None
    if q.get("saved") == "costs" and q.get("rows"):
        notice = done("ct.campaign_costs_imported", system=q.get("system", ""),
                      file=q.get("file", ""), rows=int(q.get("rows", "0")),
                      created=q.get("created", "0"), replaced=q.get("replaced", "0"),
                      unchanged=q.get("unchanged", "0"))
    elif q.get("saved") == "account" and q.get("system") in SYSTEM_NAMES:
        notice = done("conversions.saved",
                      system=SYSTEM_NAMES[ConversionSystem(q["system"])])
    elif q.get("saved") == "sent":
        notice = q.get("result")
    return {
        "title": "Рекламные системы", "first": first, "last": last,
        "cost_systems": [(s.value, name) for s, name in COST_SYSTEMS.items()],
        "costs": [{"day": c.day.strftime("%d.%m.%Y"), "system": COST_SYSTEMS[AdSystem(c.system)],
                   "campaign": c.campaign, "channel": c.channel, "amount": float(c.amount),
                   "clicks": c.clicks, "impressions": c.impressions, "file": c.file_name}
                  for c in costs],
        "accounts": {k: account_to_dict(v) if v is not None else None
                     for k, v in accounts.items()},
        "system_names": {s.value: n for s, n in SYSTEM_NAMES.items()},
        "log": [{"at": u.at.astimezone(tz).strftime("%d.%m.%Y %H:%M"),
                 "system": SYSTEM_NAMES[ConversionSystem(u.system)], "goal": GOAL_NAMES[u.goal],
                 "count": u.conversions, "attempt": u.attempt, "ok": u.ok,
                 "status": u.http_status, "upload_id": u.upload_id, "error": u.error}
                for u in log],
        "states": states, "notice": notice, "error": None, "form": {},
    }


async def page(request: web.Request) -> web.Response:
    _viewer(request)
    return aiohttp_jinja2.render_template("calltracking_ads.html", request,
                                          await _context(request))


async def _refused(request: web.Request, message: str, form: dict[str, str], *,
                   status: int = 400) -> web.Response:
    context = await _context(request)
    context.update(error=message, form=form)
    return aiohttp_jinja2.render_template("calltracking_ads.html", request, context,
                                          status=status)


async def costs_form(request: web.Request) -> web.Response:
    """An ad system's export uploaded by the marketer: every row or none."""
    user = _viewer(request)
    form = await request.post()
    fields = {k: v.strip() for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    raw_system = fields.get("system", "")
    try:
        system = AdSystem(raw_system)
    except ValueError:
        return await _refused(request, russian(CostFileError(
            "calltracking.cost_system", "choose the ad system")), fields)
    upload = form.get("file")
    if not isinstance(upload, web.FileField) or not upload.filename:
        return await _refused(request, russian(CostFileError(
            "calltracking.cost_file_missing", "choose a file")), fields)
    name = upload.filename[:300]
    raw = upload.file.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        return await _refused(request, russian(CostFileError(
            "calltracking.cost_file_too_big", "the file is too big", path=name,
            megabytes=MAX_FILE_BYTES // 1_000_000)), fields)
    try:
        # parsed on a thread and before the transaction: the file is a user's upload
        text = decode(raw, name)
        rows = await asyncio.to_thread(parse_cost_file, text, system, name)
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            result = await store_campaign_costs(
                session, system, rows, file_name=name, channel=fields.get("channel"),
                actor=user.username, user_id=user.id)
    except DomainError as exc:
        return await _refused(request, russian(exc), fields, status=http_status(exc))
    query = urlencode({"saved": "costs", "system": COST_SYSTEMS[system], "file": name,
                       "rows": result.rows, "created": result.created,
                       "replaced": result.replaced, "unchanged": result.unchanged})
    raise web.HTTPSeeOther(f"/calltracking/ads?{query}#ads-costs")


async def account_form(request: web.Request) -> web.Response:
    user = _viewer(request)
    form = await request.post()
    fields = {k: v.strip() for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    shown = {k: v for k, v in fields.items() if "token" not in k}  # never echoed back
    try:
        system = system_of(fields.get("system", ""))
        account = AccountForm(
            enabled=fields.get("enabled") == "on", account_id=fields.get("account_id", ""),
            call_goal=fields.get("call_goal", ""), deal_goal=fields.get("deal_goal", ""),
            call_name=fields.get("call_name", ""), deal_name=fields.get("deal_name", ""),
            currency=fields.get("currency", "RUB"),
            min_talk_seconds=fields.get("min_talk_seconds") or 0,
            token=fields.get("token", ""), developer_token=fields.get("developer_token", ""))
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            await save_account(session, system, account, actor=user.username, user_id=user.id)
    except DomainError as exc:
        return await _refused(request, russian(exc), shown, status=http_status(exc))
    raise web.HTTPSeeOther(f"/calltracking/ads?saved=account&system={system.value}"
                           "#ads-conversions")


async def send_form(request: web.Request) -> web.Response:
    """Send the due conversions now, as the scheduled round does."""
    _viewer(request)
    await request.post()
    result = await send_all(request.app[WRITER_SESSIONS], request.app[SETTINGS])
    text = " ".join(
        done("conversions.sent", system=SYSTEM_NAMES[ConversionSystem(system)], **counts)
        if any(counts.values())
        else done("conversions.nothing", system=SYSTEM_NAMES[ConversionSystem(system)])
        for system, counts in result.items())
    raise web.HTTPSeeOther("/calltracking/ads?" + urlencode({"saved": "sent", "result": text})
                           + "#ads-conversions")


async def export_file(sessions: Any, kind: str, since: datetime, until: datetime,
                      tz: ZoneInfo) -> str:
    """The documented file ``kind`` of the conversions of ``[since, until)``."""
    if kind not in FILES:
        raise ConversionError("conversions.file_kind", "file is metrica-calls, metrica-deals "
                              "or google-ads", value=kind)
    system, goal = FILES[kind]
    async with sessions() as session:
        account = await get_account(session, system)
        currency = account.currency if account is not None else "RUB"
        if system == ConversionSystem.METRICA:
            assert goal is not None
            items = await conversions(session, system, goal, since, until)
            if goal == ConversionGoal.CALL:
                return metrica_calls_csv(items, currency=currency, writer=csv_safety.writer)
            target = (account.deal_goal if account is not None else None) or "deal_won"
            return metrica_deals_csv(items, target, currency=currency,
                                     writer=csv_safety.writer)
        items = (await conversions(session, system, ConversionGoal.CALL, since, until)
                 + await conversions(session, system, ConversionGoal.DEAL, since, until))
    names = {ConversionGoal.CALL: (account.call_name if account else None) or "Звонок",
             ConversionGoal.DEAL: (account.deal_name if account else None) or "Сделка"}
    return google_csv(items, names, tz, currency=currency, writer=csv_safety.writer)


async def conversions_csv(request: web.Request) -> web.Response:
    _viewer(request)
    first, last, since, until = _period(request)
    kind = request.query.get("file", "metrica-calls")
    text = await export_file(request.app[SESSIONS], kind, since, until, workday_tz(request))
    name = f"{kind}-{first.isoformat()}-{last.isoformat()}.csv"
    return web.Response(text=text, content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/calltracking/ads", page)
    router.add_post("/calltracking/ads/costs", costs_form)
    router.add_post("/calltracking/ads/accounts", account_form)
    router.add_post("/calltracking/ads/send", send_form)
    router.add_get("/calltracking/ads/conversions.csv", conversions_csv)
