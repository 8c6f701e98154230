"""Routes of «Обзвон»: the manager's dialer, the supervisor's team board, the retry rules.

JSON API (a manager works his own session and tasks only; a supervisor sees his team,
an admin everyone; state changes carry the CSRF token like every other POST):
- ``GET /api/dialer``: his session, the current client's card and script, the list left,
  the session's calls (per hour) and today's talk minutes against the norm;
- ``POST /api/dialer/start``: start (or go back to) the session, on the first client;
- ``POST /api/dialer/call``: ring his phone, then the current client (click-to-call);
- ``POST /api/dialer/hangup`` ``{"call_id"}``: the call placed ended; a busy, unanswered or
  failed one gets a retry task by the rules, an answered one (or the last try) the form;
- ``POST /api/dialer/saved``: the outcome form was saved, the countdown runs;
- ``POST /api/dialer/next`` ``{"skip"?}``: the next client (after the countdown, or skip);
- ``POST /api/dialer/pause``, ``/resume``, ``/end``;
- ``GET /api/dialer/team``: who of the team is in a session: on a call, paused, idle;
- ``GET /api/dialer/rules?team_id=T``, ``PUT /api/dialer/rules``
  ``{"team_id"?, "max_attempts", "retry_minutes"}``: the head of sales' retry rules.

The outcome and the next task are saved through the existing API
(``POST /api/calls/{id}/outcome``, ``POST /api/tasks/{id}/complete``).

Pages: ``GET /dialer`` (a manager's dialer; a supervisor's and admin's team board),
``GET|POST /dialer/settings`` (the rules form).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.activities.outcomes import outcome_list
from crm_core.calls.models import Call
from crm_core.clock import local_now, utcnow
from crm_core.dialer import services
from crm_core.dialer.models import DialerAttempt, SessionPhase, SessionState
from crm_core.dialer.queue import callable_now
from crm_core.errors import DomainError, NotAllowedError, NotFoundError
from crm_core.people import access
from crm_core.people.models import Role, Team, User
from crm_core.sales.tasks import PLANNABLE_KINDS
from crm_core.talktime.metric import Rules as TalkRules
from crm_core.tasks.models import Task
from crm_core.tasks.services import task_to_dict
from crm_core.timestamps import ensure_utc, isoformat
from telecrm.dialer.card import client_card
from telecrm.messages import http_status, russian
from telecrm.presence.report import pace, presence_day
from telecrm.web.api import place_call
from telecrm.web.auth import api_user, page_user
from telecrm.web.keys import SESSIONS, WEB_CONFIG, WRITER_SESSIONS, workday_tz
from telecrm.web.params import json_object

COUNTDOWN_SECONDS = 10
STATE_WORDS = {"off": "не в обзвоне", "call": "на звонке", "paused": "пауза",
               "wrap_up": "заполняет итог", "idle": "ждёт звонка"}


@contextlib.asynccontextmanager
async def _writing(request: web.Request) -> AsyncIterator[AsyncSession]:
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        yield session


def _manager(request: web.Request) -> User:
    user = api_user(request)
    if user.role != Role.MANAGER:
        raise NotAllowedError("dialer.managers_only",
                              "the dialer is for managers with a phone of their own")
    return user


def _boss(user: User) -> None:
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotAllowedError("dialer.bosses_only", "only a supervisor or an admin")


# -- the manager's state ------------------------------------------------------------------


async def talk_today(request: web.Request, session: AsyncSession, user: User) -> dict[str, Any]:
    """Today's talk minutes against the norm and the projection by day end, as /talktime
    and the Today bar project it (his pauses are not working time)."""
    tz, now = workday_tz(request), utcnow()
    default = TalkRules(target_seconds=request.app[WEB_CONFIG].daily_target_seconds)
    (row,) = await presence_day(session, [user], now.astimezone(tz).date(), tz, now, default)
    return {"talk_seconds": row["talk_seconds"], "target_minutes": row["target_seconds"] // 60,
            **pace(row, now, tz)}


async def state(request: web.Request, session: AsyncSession, user: User) -> dict[str, Any]:
    """Everything the dialer page draws, as JSON."""
    tz, now = workday_tz(request), utcnow()
    dsession = await services.open_session(session, user.id)
    rules = await services.rules_for_team(session, user.team_id)
    body: dict[str, Any] = {
        "session": None, "task": None, "card": None, "attempt": None, "last_call": None,
        "left": 0, "waiting_retries": 0, "next_retry_at": None,
        "rules": {"max_attempts": rules.max_attempts, "retry_minutes": rules.retry_minutes},
        "countdown_seconds": COUNTDOWN_SECONDS,
        "talk": await talk_today(request, session, user)}
    items = await services.call_list(session, user, now, tz)
    skipped = [int(i) for i in dsession.skipped or []] if dsession else []
    ready = callable_now(items, now, skipped)
    retries = [i for i in items if i.is_retry and i not in ready]
    body["left"] = len(ready)
    body["waiting_retries"] = len(retries)
    body["next_retry_at"] = isoformat(min(i.due_at for i in retries)) if retries else None
    if dsession is None:
        return body
    body["session"] = {"id": dsession.id, "state": dsession.state, "phase": dsession.phase,
                       "number": dsession.number,
                       "started_at": isoformat(dsession.started_at),
                       **await services.session_figures(session, dsession, now)}
    body["session"]["ended_call_id"] = await services.ended_call(session, dsession)
    task = await session.get(Task, dsession.task_id) if dsession.task_id else None
    if task is not None and task.client_id is not None:
        client = await access.visible_client(session, user, task.client_id)
        if client is not None:
            body["task"] = {**task_to_dict(task), "overdue": task.due_at is not None
                            and ensure_utc(task.due_at) < now}
            body["card"] = await client_card(session, client, user=user, now=now)
            body["attempt"] = await services.attempt_number(session, task.id)
            last = await session.scalar(
                select(DialerAttempt).where(DialerAttempt.session_id == dsession.id,
                                            DialerAttempt.task_id == task.id)
                .order_by(DialerAttempt.id.desc()).limit(1))
            body["last_call"] = None if last is None else {
                "call_id": last.call_id, "status": last.status, "attempt": last.attempt}
    return body


async def _answer(request: web.Request, user: User, extra: dict[str, Any] | None = None,
                  status: int = 200) -> web.Response:
    async with request.app[SESSIONS]() as session:
        body = await state(request, session, user)
    return web.json_response({**body, **(extra or {})}, status=status)


async def get_state(request: web.Request) -> web.Response:
    return await _answer(request, _manager(request))


async def post_start(request: web.Request) -> web.Response:
    user = _manager(request)
    async with _writing(request) as session:
        await services.start_session(session, user, utcnow(), workday_tz(request))
    return await _answer(request, user, status=201)


async def post_call(request: web.Request) -> web.Response:
    user = _manager(request)
    async with _writing(request) as session:
        dsession = await services.own_session(session, user)
        task = await services.current_task(session, dsession)
        client = await access.visible_client(session, user, task.client_id or 0)
        if client is None or not client.phones:
            raise DomainError("dialer.client_no_phone", "the client has no phone number",
                              client=client.name if client else "")
        number, name = client.phones[0].e164, client.name
        await services.mark_calling(session, dsession, number)
    try:
        placed = await place_call(request, user, number, name)
    except Exception:
        await _back_to_card(request, user)
        raise
    if placed["status"] == "failed":
        await _back_to_card(request, user)
    return await _answer(request, user, {"placed": placed}, status=202)


async def _back_to_card(request: web.Request, user: User) -> None:
    """Nothing rings (refused at once): the card waits for «Позвонить» again."""
    async with _writing(request) as session:
        dsession = await services.own_session(session, user)
        services.set_phase(dsession, SessionPhase.IDLE)


async def post_hangup(request: web.Request) -> web.Response:
    user = _manager(request)
    body = await json_object(request)
    call_id = body.get("call_id")
    if isinstance(call_id, bool) or not isinstance(call_id, int) or call_id <= 0:
        raise DomainError("request.not_positive", "call_id must be a positive integer",
                          name="call_id")
    async with request.app[SESSIONS]() as session:
        # Asked apart: its loader leaves related rows partly loaded for a writer.
        if await access.visible_call(session, user, call_id) is None:
            raise NotFoundError("calls.not_found", "no such call")
    async with _writing(request) as session:
        dsession = await services.own_session(session, user)
        call = await session.get(Call, call_id)
        if call is None:
            raise NotFoundError("calls.not_found", "no such call")
        result = await services.record_hangup(session, dsession, user, call)
        answer = {"hangup": {"call_id": call_id, "status": result.status,
                             "attempt": result.attempt.attempt, "form": result.form,
                             "exhausted": result.exhausted, "note": result.note,
                             "retry": task_to_dict(result.retry) if result.retry else None}}
    return await _answer(request, user, answer)


async def post_saved(request: web.Request) -> web.Response:
    """The outcome form is saved: the countdown to the next client runs."""
    user = _manager(request)
    async with _writing(request) as session:
        dsession = await services.own_session(session, user)
        if dsession.phase == SessionPhase.WRAP_UP.value:
            services.set_phase(dsession, SessionPhase.COUNTDOWN)
    return await _answer(request, user)


async def post_next(request: web.Request) -> web.Response:
    user = _manager(request)
    body = await json_object(request) if request.can_read_body else {}
    async with _writing(request) as session:
        dsession = await services.own_session(session, user)
        if dsession.state != SessionState.ACTIVE.value and not body.get("skip"):
            raise DomainError("dialer.paused", "the session is paused")
        await services.advance(session, dsession, user, utcnow(), workday_tz(request),
                               skip=body.get("skip") is True)
    return await _answer(request, user)


async def _pause(request: web.Request, paused: bool) -> web.Response:
    user = _manager(request)
    async with _writing(request) as session:
        dsession = await services.own_session(session, user)
        await services.set_paused(session, dsession, user, paused=paused)
    return await _answer(request, user)


async def post_pause(request: web.Request) -> web.Response:
    return await _pause(request, True)


async def post_resume(request: web.Request) -> web.Response:
    return await _pause(request, False)


async def post_end(request: web.Request) -> web.Response:
    user = _manager(request)
    async with _writing(request) as session:
        dsession = await services.own_session(session, user)
        await services.end_session(session, dsession, user)
    return await _answer(request, user)


# -- the team board -------------------------------------------------------------------------


async def board(request: web.Request, user: User) -> list[dict[str, Any]]:
    async with request.app[SESSIONS]() as session:
        managers = await access.visible_managers(session, user)
        return await services.team_board(session, managers, utcnow())


async def get_team(request: web.Request) -> web.Response:
    user = api_user(request)
    _boss(user)
    return web.json_response({"at": utcnow().isoformat(), "managers": await board(request, user)})


# -- the rules ------------------------------------------------------------------------------


async def _rules_team(session: AsyncSession, user: User, raw: Any) -> int | None:
    """The team whose rules are asked for: a supervisor's own; an admin's choice (None:
    the company's)."""
    if user.role == Role.SUPERVISOR:
        return user.team_id
    if raw in (None, ""):
        return None
    team_id = int(raw) if isinstance(raw, str) and raw.isdigit() else raw
    if isinstance(team_id, bool) or not isinstance(team_id, int) or \
            await session.get(Team, team_id) is None:
        raise NotFoundError("dialer.team_not_found", "no such team")
    return team_id


async def get_rules(request: web.Request) -> web.Response:
    user = api_user(request)
    _boss(user)
    async with request.app[SESSIONS]() as session:
        team_id = await _rules_team(session, user, request.query.get("team_id"))
        rules = await services.rules_for_team(session, team_id)
    return web.json_response({"team_id": team_id, "max_attempts": rules.max_attempts,
                              "retry_minutes": rules.retry_minutes})


async def put_rules(request: web.Request) -> web.Response:
    user = api_user(request)
    _boss(user)
    body = await json_object(request)
    async with _writing(request) as session:
        team_id = await _rules_team(session, user, body.get("team_id"))
        rules = await services.save_rules(session, team_id, max_attempts=body.get("max_attempts"),
                                          retry_minutes=body.get("retry_minutes"), by=user)
    return web.json_response({"team_id": team_id, "max_attempts": rules.max_attempts,
                              "retry_minutes": rules.retry_minutes})


# -- pages ----------------------------------------------------------------------------------


async def dialer_page(request: web.Request) -> web.Response:
    user = page_user(request)
    if user.role == Role.MANAGER:
        async with request.app[SESSIONS]() as session:
            outcomes = await outcome_list(session)
        due = (local_now(workday_tz(request)) + timedelta(days=1)).replace(
            hour=10, minute=0, second=0, microsecond=0)
        return aiohttp_jinja2.render_template("dialer.html", request, {
            "title": "Обзвон", "outcomes": outcomes, "kinds": [k.value for k in PLANNABLE_KINDS],
            "default_due": due.strftime("%Y-%m-%dT%H:%M"),
            "timezone": workday_tz(request).key})
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotAllowedError("dialer.bosses_only", "only a supervisor or an admin")
    return aiohttp_jinja2.render_template("dialer_team.html", request, {
        "title": "Обзвон: команда", "rows": await board(request, user),
        "STATE_WORDS": STATE_WORDS, "timezone": workday_tz(request).key})


async def _settings_context(request: web.Request, user: User,
                            team_raw: Any) -> dict[str, Any]:
    async with request.app[SESSIONS]() as session:
        team_id = await _rules_team(session, user, team_raw)
        rules = await services.rules_for_team(session, team_id)
        teams = (list(await session.scalars(select(Team).order_by(Team.name)))
                 if user.role == Role.ADMIN else [])
    return {"title": "Обзвон: повторные звонки", "rules": rules, "team_id": team_id,
            "teams": teams, "error": None, "saved": request.query.get("saved") == "1"}


async def settings_page(request: web.Request) -> web.Response:
    user = page_user(request)
    _boss(user)
    context = await _settings_context(request, user, request.query.get("team_id"))
    return aiohttp_jinja2.render_template("dialer_settings.html", request, context)


async def settings_form(request: web.Request) -> web.Response:
    user = page_user(request)
    _boss(user)
    form = await request.post()
    team_raw = form.get("team_id")
    try:
        async with _writing(request) as session:
            team_id = await _rules_team(session, user, team_raw)
            await services.save_rules(session, team_id, max_attempts=form.get("max_attempts"),
                                      retry_minutes=form.get("retry_minutes"), by=user)
    except DomainError as exc:
        context = await _settings_context(request, user, team_raw)
        context["error"] = russian(exc)
        return aiohttp_jinja2.render_template("dialer_settings.html", request, context,
                                              status=http_status(exc))
    suffix = f"&team_id={team_id}" if user.role == Role.ADMIN and team_id else ""
    raise web.HTTPSeeOther(f"/dialer/settings?saved=1{suffix}")


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the dialer's pages and API routes."""
    router.add_get("/api/dialer", get_state)
    router.add_post("/api/dialer/start", post_start)
    router.add_post("/api/dialer/call", post_call)
    router.add_post("/api/dialer/hangup", post_hangup)
    router.add_post("/api/dialer/saved", post_saved)
    router.add_post("/api/dialer/next", post_next)
    router.add_post("/api/dialer/pause", post_pause)
    router.add_post("/api/dialer/resume", post_resume)
    router.add_post("/api/dialer/end", post_end)
    router.add_get("/api/dialer/team", get_team)
    router.add_get("/api/dialer/rules", get_rules)
    router.add_put("/api/dialer/rules", put_rules)
    router.add_get("/dialer", dialer_page)
    router.add_get("/dialer/settings", settings_page)
    router.add_post("/dialer/settings", settings_form)

