"""Server-rendered pages (Jinja2, Russian). Data comes through :mod:`crm_core.people.access`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.activities.timeline import MAX_SHOWN, PAGE
from crm_core.clients.models import Client
from crm_core.clients.services import has_placeholder_name
from crm_core.clock import local_today
from crm_core.errors import DomainError, NotAllowedError, NotFoundError
from crm_core.people import access
from crm_core.people.models import Role, User
from crm_core.people.users import call_extensions, names_by_extension
from crm_core.talktime.metric import Rules
from crm_core.tasks.models import TaskKind
from crm_core.timestamps import utcnow
from telecrm.activities.card import FILTERS, card_context, timeline_context
from telecrm.messages import sentence
from telecrm.presence.report import presence_day
from telecrm.speech.scenario import client_scenario
from telecrm.talktime.board import TodayBar, talk_time, today_bar
from telecrm.web.auth import (
    PASSWORD_PAGE,
    authenticate,
    client_ip,
    new_token,
    page_user,
    set_cookie,
    sign_in,
    sign_out,
)
from telecrm.web.config import CSRF_FIELD, PRELOGIN_COOKIE
from telecrm.web.csrf import tokens_match
from telecrm.web.keys import (
    CALL_HOOKS,
    SESSIONS,
    SETTINGS,
    THROTTLE,
    USER,
    WEB_CONFIG,
    WRITER_SESSIONS,
    workday_tz,
)
from telecrm.web.params import day_bounds, parse_day, path_id, query_int
from telecrm.web.present import task_view
from telecrm.web.redirects import local_path

CARD_DONE = {"created": "Клиент создан.", "saved": "Карточка сохранена.",
             "merged": "Клиенты объединены: звонки, сделки, задачи и история перенесены сюда."}



def redirect(location: str) -> web.Response:
    """A 303 See Other (a response to set cookies on, not an exception)."""
    return web.Response(status=303, headers={"Location": location})


def home_of(user: User) -> str:
    """Where each role starts its day (after changing a temporary password)."""
    if user.must_change_password:
        return PASSWORD_PAGE
    if user.role == Role.MARKETER:
        return "/calltracking"
    if user.role in (Role.SUPERVISOR, Role.ADMIN):
        return "/team"
    return "/today"


async def index(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther(home_of(page_user(request)))


# -- sign-in ----------------------------------------------------------------------------------


def _login_page(request: web.Request, *, error: str | None = None, status: int = 200,
                username: str = "") -> web.Response:
    token = new_token()
    response = aiohttp_jinja2.render_template(
        "login.html", request,
        {"prelogin": token, "error": error, "username": username,
         "next": local_path(request.query.get("next"))}, status=status)
    # Strict: the form's own double-submit token never travels cross-site.
    set_cookie(request, response, PRELOGIN_COOKIE, token, request.app[WEB_CONFIG],
               max_age=3600, samesite="Strict")
    return response


async def login_form(request: web.Request) -> web.Response:
    if request.get(USER) is not None:
        raise web.HTTPSeeOther(home_of(request[USER]))
    return _login_page(request)


async def login_submit(request: web.Request) -> web.Response:
    try:
        form = await request.post()
    except (ValueError, web.HTTPRequestEntityTooLarge):
        raise DomainError("request.malformed_form", "malformed form body") from None
    username = str(form.get("username", ""))[:100].strip()
    password = str(form.get("password", ""))[:1000]
    if not tokens_match(request.cookies.get(PRELOGIN_COOKIE), str(form.get(CSRF_FIELD, ""))):
        return _login_page(request, error=sentence("auth.form_expired"), status=403,
                           username=username)
    if not username or not password:
        return _login_page(request, error=sentence("auth.credentials_missing"), status=400,
                           username=username)
    throttle, ip = request.app[THROTTLE], client_ip(request)
    wait = await throttle.retry_after(username, ip)
    if wait > 0:
        minutes = int(wait // 60) + 1
        response = _login_page(
            request, status=429, username=username,
            error=sentence("auth.wait_minutes", {"minutes": minutes}))
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    user = await authenticate(request.app[SESSIONS], username, password,
                              request.app[SETTINGS].password_hashing)
    if user is None:
        await throttle.failed(username, ip)
        return _login_page(request, error=sentence("auth.wrong_password"), status=401,
                           username=username)
    await throttle.succeeded(username, ip)
    target = local_path(str(form.get("next", "")))
    response = redirect(home_of(user) if target == "/" or user.must_change_password
                        else target)
    await sign_in(request, response, user, request.app[WRITER_SESSIONS],
                  request.app[WEB_CONFIG])
    response.del_cookie(PRELOGIN_COOKIE, path="/")
    return response


async def logout_submit(request: web.Request) -> web.Response:
    response = redirect("/login")
    if request.get(USER) is not None:
        await sign_out(request, response, request.app[WRITER_SESSIONS])
    return response


# -- the manager's day ------------------------------------------------------------------------


def _day_param(request: web.Request) -> tuple[Any, datetime, datetime]:
    tz = workday_tz(request)
    raw = request.query.get("date")
    try:
        day = parse_day(raw, "date") if raw else local_today(tz)
    except DomainError:
        raise DomainError("pages.bad_date", "the date must be YYYY-MM-DD") from None
    start, end = day_bounds(day, tz)
    return day, start, end


async def _talk_bar(request: web.Request, session: AsyncSession, user: User) -> TodayBar | None:
    """The manager's own talk-time bar; supervisors and admins have no target of their own."""
    if user.role != Role.MANAGER:
        return None
    tz, now = workday_tz(request), utcnow()
    default = Rules(target_seconds=request.app[WEB_CONFIG].daily_target_seconds)
    (row,) = await presence_day(session, [user], now.astimezone(tz).date(), tz, now, default)
    return today_bar(row, now, tz)  # pauses slow no pace


@aiohttp_jinja2.template("today.html")
async def today(request: web.Request) -> dict[str, Any]:
    user = page_user(request)
    if not access.may_see_tasks(user):
        raise web.HTTPSeeOther(home_of(user))
    day, start, end = _day_param(request)
    now = utcnow()
    async with request.app[SESSIONS]() as session:
        tasks = [task_view(t, now) for t in await access.visible_tasks(session, user)]
        calls = await access.visible_calls(session, user, start, end,
                                            hooks=request.app[CALL_HOOKS])
        talk = await _talk_bar(request, session, user) if day == local_today(workday_tz(request)) \
            else None
        staff = await names_by_extension(session, call_extensions(calls))
    # Missed calls wait for a callback whatever their deadline; other tasks by their day.
    # The callback tasks are the one source of "who waits for a call back" on the page.
    callbacks = [t for t in tasks if t["kind"] == TaskKind.CALLBACK]
    others = [t for t in tasks if t["kind"] != TaskKind.CALLBACK
              and t["due_at"] and datetime.fromisoformat(t["due_at"]) < end]
    overdue = [t for t in others if datetime.fromisoformat(t["due_at"]) < start]
    planned = [t for t in others if t not in overdue]
    return {
        "title": "Сегодня", "day": day, "planned": planned, "overdue": overdue,
        "callbacks": callbacks, "calls": calls, "talk": talk,
        "staff": staff,
    }


@aiohttp_jinja2.template("_today_talk.html")
async def today_talk(request: web.Request) -> dict[str, Any]:
    """The Today bar alone, for the page to refresh while its owner talks."""
    user = page_user(request)
    async with request.app[SESSIONS]() as session:
        talk = await _talk_bar(request, session, user)
    if talk is None:
        raise NotFoundError("talktime.bar_managers_only", "only managers have a talk-time bar")
    return {"talk": talk}


async def _client_context(request: web.Request, user: User) -> dict[str, Any]:
    client_id = path_id(request)
    async with request.app[SESSIONS]() as session:
        client = await access.openable_client(session, user, client_id)
        tasks = await access.visible_tasks(session, user, client_id=client_id)
        card = await card_context(session, user, client, workday_tz(request), tasks=tasks,
                                  calls_where=await access.calls_filter(session, user))
        scenario = await client_scenario(session, user, client)
        merged_into = (await session.get(Client, client.merged_into_id)
                       if client.merged_into_id else None)
    now = utcnow()
    may_edit = access.may_edit_client(user, client) and client.archived_at is None
    # ``calls`` (the player's recorded calls) and ``staff`` (names on the timeline's calls)
    # come with the card's context: the card loads each call once, and no list of the floor
    return {"title": client.name, "client": client,
            "tasks": [task_view(t, now) for t in tasks],
            "next_task": task_view(tasks[0], now) if tasks else None,
            "may_listen": access.may_hear_recordings(user),
            # the clients feature (telecrm.clients): the card's forms and merging
            "may_edit": may_edit, "may_merge": may_edit and access.may_merge_clients(user),
            "merged_into": merged_into, "done": CARD_DONE.get(request.query.get("done", "")),
            "is_lead": has_placeholder_name(client), "scenario": scenario, **card}


@aiohttp_jinja2.template("client.html")
async def client_card(request: web.Request) -> dict[str, Any]:
    return await _client_context(request, page_user(request))


TIMELINE_FILTERS = [key for key, _ in FILTERS]


@aiohttp_jinja2.template("_history.html")
async def client_history(request: web.Request) -> dict[str, Any]:
    """The client's timeline alone: for the card to refresh itself on live events, to
    show one filter's entries (``group``) and older ones (``shown``, «Показать ещё»)."""
    user = page_user(request)
    client_id = path_id(request)
    group = request.query.get("group") or "all"
    if group not in TIMELINE_FILTERS:
        raise DomainError("request.format_invalid", "group: one of the card's filters",
                          formats=", ".join(TIMELINE_FILTERS))
    shown = query_int(request, "shown", PAGE, low=1, high=MAX_SHOWN)
    async with request.app[SESSIONS]() as session:
        client = await access.openable_client(session, user, client_id)
        timeline = await timeline_context(session, user, client, shown=shown,
                                          group=None if group == "all" else group)
    return {"client": client, **timeline}


@aiohttp_jinja2.template("team.html")
async def team_page(request: web.Request) -> dict[str, Any]:
    user = page_user(request)
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotAllowedError("pages.team_for_supervisors", "the team page is for supervisors")
    day, start, end = _day_param(request)
    target = request.app[WEB_CONFIG].daily_target_seconds
    async with request.app[SESSIONS]() as session:
        managers = await access.visible_managers(session, user)
        rows = await talk_time(session, managers, start, end, target)
        calls = await access.visible_calls(session, user, start, end,
                                            hooks=request.app[CALL_HOOKS])
        staff = await names_by_extension(session, call_extensions(calls))
    for row in rows:
        row["progress"] = min(100, round(100 * row["talk_seconds"] / target)) if target else 0
    return {"title": "Команда", "day": day, "rows": rows, "calls": calls,
            "target_seconds": target, "prev_day": day - timedelta(days=1),
            "next_day": day + timedelta(days=1), "may_listen": True,
            "may_open_clients": True, "staff": staff}
