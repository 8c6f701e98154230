"""The public lead endpoints: a site form and the callback widget (hostile ground).

``POST /api/ct/lead`` ``{"site", "session"?, "name"?, "phone"?, "email"?, "message"?,
"url"?}`` stores a form as a lead with its visit's source; ``POST /api/ct/callback``
``{"site", "session"?, "phone", "name"?, "url"?}`` asks the CRM to call the visitor: a
free manager's phone rings first (click-to-call), then the visitor's, and the call
carries the visit's source; a manager who does not answer passes it to the next free
one (three at most); outside working hours (the work calendar's), with nobody free or
nobody answering it is a lead with a callback task.

The same checks as the lease endpoint (:func:`~telecrm.calltracking.public.public_request`:
a rate per visitor address, a small JSON body, a known site, its own origins only),
plus a few leads a minute per address (``TELECRM_CT_LEADS_PER_MINUTE``). Every field
is checked before anything is written: a bad one is a 400 with the sentence saying
which, and nothing is stored. The answer holds only a sentence for the visitor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import time
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calltracking.leads import (
    NOTE_NOBODY_FREE,
    NOTE_OFF_HOURS,
    LeadError,
    LeadInput,
    callback_not_placed,
    callback_policy,
    clean,
    create_lead,
    free_managers,
    in_working_hours,
    next_callback_manager,
    recent_duplicate,
)
from crm_core.calltracking.models import CtSite, CtVisit, LeadKind, LeadStatus
from crm_core.calltracking.services import CallTrackingError, token_is_valid
from crm_core.clients.services import find_client_by_phone
from crm_core.clock import utcnow
from crm_core.tasks.services import CallbackPolicy
from pbx_bridge.actions import ClickToCallError
from pbx_bridge.ami import AmiError
from telecrm.calltracking.public import (
    CT,
    MAX_URL,
    PublicRequest,
    _error,
    _page_url,
    _text,
    public_request,
)
from telecrm.settings import Settings
from telecrm.web.clicktocall import Attempt, ClickToCallBusy
from telecrm.web.keys import CLICK_TO_CALL, SESSIONS, SETTINGS, WRITER_SESSIONS

log = logging.getLogger(__name__)

MAX_LEAD_BODY = 8192
VISIT_WAIT_SECONDS = 3.0  # the visit's history may be a moment behind the lease store
FIELDS = {"site", "session", "name", "phone", "email", "message", "url"}
ANSWERS = {
    "form": "Спасибо! Заявка принята, мы свяжемся с вами.",
    "calling": "Соединяем: сейчас вам позвонит менеджер.",
    "off_hours": "Спасибо! Сейчас нерабочее время: перезвоним в начале рабочего дня.",
    "later": "Спасибо! Менеджер перезвонит вам в ближайшее время.",
}


def _clock_time(raw: str) -> time:
    hours, minutes = (int(part) for part in raw.strip().split(":"))
    return time.max if (hours, minutes) == (24, 0) else time(hours, minutes)


def _days(raw: str) -> frozenset[int]:
    days: set[int] = set()
    for part in raw.split(","):
        first, _, last = part.strip().partition("-")
        days.update(range(int(first) - 1, int(last or first)))
    if not days <= set(range(7)):
        raise ValueError(raw)
    return frozenset(days)


def _overrides(settings: Settings) -> tuple[tuple[time, time] | None, frozenset[int] | None]:
    """``TELECRM_CT_CALLBACK_HOURS`` (``ЧЧ:ММ-ЧЧ:ММ``) and ``TELECRM_CT_CALLBACK_DAYS``
    (``1-5``, ``1-5,7``), set only when callbacks keep other hours or weekdays than the
    work calendar; empty (the default): the calendar's. An unreadable value is ignored
    (logged)."""
    hours = days = None
    if settings.ct_callback_hours.strip():
        try:
            start, end = settings.ct_callback_hours.split("-")
            hours = (_clock_time(start), _clock_time(end))
        except ValueError:
            log.warning("TELECRM_CT_CALLBACK_HOURS unreadable, the work calendar's hours "
                        "are used: %r", settings.ct_callback_hours)
    if settings.ct_callback_days.strip():
        try:
            days = _days(settings.ct_callback_days)
        except ValueError:
            log.warning("TELECRM_CT_CALLBACK_DAYS unreadable, the work calendar's weekdays "
                        "are used: %r", settings.ct_callback_days)
    return hours, days


async def callback_policy_for(session: AsyncSession, settings: Settings) -> CallbackPolicy:
    """When callbacks are placed at once and when a lead's call task is due: the company's
    work calendar (weekdays, the day's hours, holidays; :func:`callback_policy`) in the
    workday's time zone, with the settings' hours and weekdays when they are set."""
    hours, days = _overrides(settings)
    return await callback_policy(session, settings.timezone, utcnow(), hours=hours, days=days)


def _input(kind: str, body: dict[str, Any]) -> tuple[LeadInput, str | None]:
    """The visitor's fields, typed and bounded (a CallTrackingError names the bad one)."""
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise CallTrackingError("request.unknown_field", f"unknown field {unknown[0]}",
                                name=unknown[0][:40])
    message = body.get("message")
    if message is not None and (not isinstance(message, str) or len(message) > 2000):
        raise CallTrackingError("request.text_too_long", "message is too long",
                                name="message", max=2000)
    data = LeadInput(kind=kind, name=_text(body, "name", 200),
                     phone=_text(body, "phone", 40, required=kind == LeadKind.CALLBACK.value),
                     email=_text(body, "email", 254), message=message or None,
                     page=_page_url(_text(body, "url", MAX_URL), "url"))
    return data, _text(body, "session", 64)


async def _visit_id(request: web.Request, site: CtSite, token: str | None) -> int | None:
    """The visit the token names (a token this site issued), waiting a moment for the
    history writer when the visit is not written yet. Read in its own session: a
    transaction begun before the wait would not see the visit written meanwhile."""
    if token is None or not token_is_valid(site, token):
        return None
    stmt = select(CtVisit.id).where(CtVisit.session == token, CtVisit.site_id == site.id)
    async with request.app[SESSIONS]() as session:
        found = await session.scalar(stmt)
    if found is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(request.app[CT].history.drain(), VISIT_WAIT_SECONDS)
        async with request.app[SESSIONS]() as session:
            found = await session.scalar(stmt)
    return found


async def _visit(session: AsyncSession, visit_id: int | None) -> CtVisit | None:
    return await session.get(CtVisit, visit_id) if visit_id is not None else None


async def _site_row(session: AsyncSession, site: CtSite) -> CtSite:
    """The site in this session (the endpoints' cached copy is detached)."""
    row = await session.get(CtSite, site.id)
    assert row is not None
    return row


async def _checked(request: web.Request, kind: str
                   ) -> tuple[PublicRequest, LeadInput, str | None] | web.Response:
    checked = await public_request(request, max_body=MAX_LEAD_BODY)
    if isinstance(checked, web.Response):
        return checked
    try:
        data, token = _input(kind, checked.body)
        clean(data, request.app[SETTINGS].phone_region)  # refused before anything is stored
    except (CallTrackingError, LeadError) as exc:
        return _error(400, exc.code, checked.cors, **exc.params)
    limiter = request.app[CT].leads
    if limiter is not None and not await limiter.allow(checked.address, utcnow().timestamp()):
        return _error(429, "http.too_many", {**checked.cors, "Retry-After": "60"})
    return checked, data, token


def _answer(checked: PublicRequest, key: str, status: int = 201) -> web.Response:
    return web.json_response({"status": key, "message": ANSWERS[key]}, status=status,
                             headers={**checked.cors, "Cache-Control": "no-store"})


async def lead_endpoint(request: web.Request) -> web.Response:
    """``POST /api/ct/lead``: a site form becomes a lead with its visit's source."""
    result = await _checked(request, LeadKind.FORM.value)
    if isinstance(result, web.Response):
        return result
    checked, data, token = result
    site = checked.view.site
    visit_id = await _visit_id(request, site, token)
    now = utcnow()
    region = request.app[SETTINGS].phone_region
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        if await recent_duplicate(session, site.id, data, now=now, region=region) is None:
            visit = await _visit(session, visit_id)
            await create_lead(session, await _site_row(session, site), visit, data, now=now,
                              policy=await callback_policy_for(session, request.app[SETTINGS]),
                              region=region)
    return _answer(checked, "form")


async def callback_endpoint(request: web.Request) -> web.Response:
    """``POST /api/ct/callback``: call the visitor back through a free manager now, or
    leave a lead with a callback task (outside working hours, nobody free)."""
    result = await _checked(request, LeadKind.CALLBACK.value)
    if isinstance(result, web.Response):
        return result
    checked, data, token = result
    site = checked.view.site
    settings = request.app[SETTINGS]
    async with request.app[SESSIONS]() as session:
        policy = await callback_policy_for(session, settings)
    now = utcnow()
    working = in_working_hours(policy, now)
    visit_id = await _visit_id(request, site, token)
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        twice = await recent_duplicate(session, site.id, data, now=now,
                                       region=settings.phone_region)
        if twice is not None:  # pressed again: the first request is being served
            calling = twice.status in (LeadStatus.CALLING.value, LeadStatus.CONNECTED.value)
            return _answer(checked, "calling" if calling else "later" if working
                           else "off_hours")
        visit = await _visit(session, visit_id)
        manager = None
        if working:
            owner = await find_client_by_phone(session, data.phone or "", settings.phone_region)
            free = await free_managers(session, prefer=owner.owner_id if owner else None)
            manager = free[0] if free else None
        note = None if manager is not None else (NOTE_NOBODY_FREE if working else NOTE_OFF_HOURS)
        lead = await create_lead(session, await _site_row(session, site), visit, data,
                                 now=now, policy=policy, region=settings.phone_region,
                                 callback_to=manager, note=note)
        lead_id, phone = lead.id, lead.phone
        extension = manager.extension if manager is not None else None
        manager_id = manager.id if manager is not None else None
    if extension is None or phone is None or manager_id is None:
        return _answer(checked, "later" if working else "off_hours")
    name = f"Сайт: {data.name}" if data.name else "Обратный звонок с сайта"
    tried: list[int] = []
    attempt = await _ring(request.app, lead_id, phone, name, (manager_id, extension), tried)
    if attempt is None:
        return _answer(checked, "later")
    watcher = asyncio.create_task(_watch(request.app, lead_id, phone, name, attempt, tried),
                                  name=f"callback-lead:{lead_id}")
    callbacks = request.app[CT].callbacks
    callbacks.add(watcher)
    watcher.add_done_callback(callbacks.discard)
    return _answer(checked, "calling")


NOTE_NO_ANSWER = "менеджер не ответил"
NOTE_NOT_PLACED = "не удалось позвонить менеджеру"


async def _ring(app: web.Application, lead_id: int, phone: str, name: str,
                manager: tuple[int, str], tried: list[int]) -> Attempt | None:
    """Ring ``manager``'s phone (id, extension) for the callback. A phone that refuses at
    once (busy, already ringing for another number) passes the callback to the next free
    manager (:func:`_next`). Returns the attempt of the phone now ringing, or None when
    nobody could be rung (the lead then has its callback task). ``tried`` collects who
    was rung."""
    user_id, extension = manager
    while True:
        tried.append(user_id)
        try:
            attempt, _ = await app[CLICK_TO_CALL].place(extension, phone, name)
            return attempt
        except (ClickToCallError, ClickToCallBusy) as exc:  # his phone said no at once
            log.info("callback %s: the phone of %s refused: %s", lead_id, extension, exc)
            note = NOTE_NO_ANSWER
        except (AmiError, ValueError) as exc:  # no telephony: nobody else can be rung either
            log.info("callback %s not placed through %s: %s", lead_id, extension, exc)
            await _not_placed(app, lead_id, NOTE_NOT_PLACED, tried)
            return None
        following = await _next(app, lead_id, tried, note)
        if following is None:
            return None
        user_id, extension = following


async def _next(app: web.Application, lead_id: int, tried: list[int], note: str
                ) -> tuple[int, str] | None:
    """The next free manager for the callback (never one already rung, three in all), or
    None when the callback became a lead with a task."""
    async with app[WRITER_SESSIONS]() as session, session.begin():
        chosen = await next_callback_manager(session, lead_id, tried, note, now=utcnow(),
                                             policy=await callback_policy_for(
                                                 session, app[SETTINGS]))
        if chosen is None or chosen.extension is None:
            return None
        return chosen.id, chosen.extension


async def _not_placed(app: web.Application, lead_id: int, note: str,
                      tried: list[int] | None = None) -> None:
    async with app[WRITER_SESSIONS]() as session, session.begin():
        await callback_not_placed(session, lead_id, note, now=utcnow(),
                                  policy=await callback_policy_for(session, app[SETTINGS]),
                                  assignee_id=tried[0] if tried else None)


async def _watch(app: web.Application, lead_id: int, phone: str, name: str, attempt: Attempt,
                 tried: list[int]) -> None:
    """A manager's phone that does not answer passes the callback to the next free
    manager; when none is left the lead gets a callback task."""
    while True:
        try:
            await asyncio.shield(attempt.task)
            return  # he answered: the visitor's phone rings now
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the originate's own failure: the phone did not take it
            log.info("callback %s: the manager's phone did not take it: %s", lead_id, exc)
        try:
            following = await _next(app, lead_id, tried, NOTE_NO_ANSWER)
            if following is None:
                return
            ringing = await _ring(app, lead_id, phone, name, following, tried)
        except Exception:
            log.exception("callback %s: not passed on, nor was the lead's task written",
                          lead_id)
            return
        if ringing is None:
            return
        attempt = ringing
