"""Server-rendered pages (Jinja2, Russian). Data comes through :mod:`crm_core.people.access`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select

from crm_core.clock import local_today
from crm_core.people import access
from crm_core.people.models import Role, User
from crm_core.tasks.models import TaskKind
from crm_core.timestamps import utcnow
from telecrm.talktime.board import talk_time
from telecrm.web.auth import (
    authenticate,
    client_ip,
    local_path,
    new_token,
    page_user,
    set_cookie,
    sign_in,
    sign_out,
)
from telecrm.web.config import CSRF_FIELD, PRELOGIN_COOKIE
from telecrm.web.csrf import tokens_match
from telecrm.web.errors import ApiError
from telecrm.web.keys import (
    CALL_HOOKS,
    SESSIONS,
    SETTINGS,
    THROTTLE,
    USER,
    WEB_CONFIG,
    WRITER_SESSIONS,
)
from telecrm.web.params import day_bounds, parse_day, path_id
from telecrm.web.present import task_view


async def _staff(request: web.Request) -> dict[str, str]:
    """Names by extension, so tables say "Иван Петров" rather than "101"."""
    async with request.app[SESSIONS]() as session:
        rows = await session.execute(select(User.extension, User.name)
                                     .where(User.extension.is_not(None)))
        return {ext: name for ext, name in rows}


def _tz(request: web.Request) -> ZoneInfo:
    return ZoneInfo(request.app[SETTINGS].timezone)


def redirect(location: str) -> web.Response:
    """A 303 See Other (a response to set cookies on, not an exception)."""
    return web.Response(status=303, headers={"Location": location})


def home_of(user: User) -> str:
    """Where each role starts its day."""
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
        raise ApiError(400, "Неверный запрос.") from None
    username = str(form.get("username", ""))[:100].strip()
    password = str(form.get("password", ""))[:1000]
    if not tokens_match(request.cookies.get(PRELOGIN_COOKIE), str(form.get(CSRF_FIELD, ""))):
        return _login_page(request, error="Форма устарела. Попробуйте ещё раз.", status=403,
                           username=username)
    if not username or not password:
        return _login_page(request, error="Введите логин и пароль.", status=400,
                           username=username)
    throttle, ip = request.app[THROTTLE], client_ip(request)
    wait = throttle.retry_after(username, ip)
    if wait > 0:
        minutes = int(wait // 60) + 1
        response = _login_page(
            request, status=429, username=username,
            error=f"Слишком много неудачных попыток. Попробуйте через {minutes} мин.")
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    user = await authenticate(request.app[SESSIONS], username, password)
    if user is None:
        throttle.failed(username, ip)
        return _login_page(request, error="Неверный логин или пароль.", status=401,
                           username=username)
    throttle.succeeded(username, ip)
    target = local_path(str(form.get("next", "")))
    response = redirect(target if target != "/" else home_of(user))
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
    tz = _tz(request)
    raw = request.query.get("date")
    try:
        day = parse_day(raw, "date") if raw else local_today(tz)
    except ApiError:
        raise ApiError(400, "Дата должна быть в формате ГГГГ-ММ-ДД.") from None
    start, end = day_bounds(day, tz)
    return day, start, end


@aiohttp_jinja2.template("today.html")
async def today(request: web.Request) -> dict[str, Any]:
    user = page_user(request)
    if not access.may_see_tasks(user):
        raise web.HTTPSeeOther(home_of(user))
    day, start, end = _day_param(request)
    now = utcnow()
    target = request.app[WEB_CONFIG].daily_target_seconds
    async with request.app[SESSIONS]() as session:
        tasks = [task_view(t, now) for t in await access.visible_tasks(session, user)]
        calls = await access.visible_calls(session, user, start, end,
                                            hooks=request.app[CALL_HOOKS])
        mine = [user] if user.extension else []
        talk = (await talk_time(session, mine, start, end, target))[0] if mine else None
    # Missed calls wait for a callback whatever their deadline; other tasks by their day.
    callbacks = [t for t in tasks if t["kind"] == TaskKind.CALLBACK]
    others = [t for t in tasks if t["kind"] != TaskKind.CALLBACK
              and t["due_at"] and datetime.fromisoformat(t["due_at"]) < end]
    overdue = [t for t in others if datetime.fromisoformat(t["due_at"]) < start]
    planned = [t for t in others if t not in overdue]
    talk_seconds = talk["talk_seconds"] if talk else 0.0
    return {
        "title": "Сегодня", "day": day, "planned": planned, "overdue": overdue,
        "callbacks": callbacks, "calls": calls, "talk_seconds": talk_seconds,
        "talk_calls": talk["calls"] if talk else 0, "target_seconds": target,
        "progress": min(100, round(100 * talk_seconds / target)) if target else 0,
        "missed_today": sum(1 for c in calls if c["status"] == "missed"),
        "staff": await _staff(request),
    }


async def _client_context(request: web.Request, user: User) -> dict[str, Any]:
    client_id = path_id(request)
    if not access.may_see_clients(user):
        raise ApiError(403, "Карточки клиентов недоступны для вашей роли.")
    async with request.app[SESSIONS]() as session:
        client = await access.visible_client(session, user, client_id)
        if client is None:
            raise ApiError(404, "Такого клиента нет или он вам недоступен.")
        calls = await access.visible_calls(session, user, client_id=client_id, limit=500,
                                            hooks=request.app[CALL_HOOKS])
        tasks = await access.visible_tasks(session, user, client_id=client_id)
    now = utcnow()
    return {"title": client.name, "client": client, "calls": calls,
            "tasks": [task_view(t, now) for t in tasks],
            "next_task": task_view(tasks[0], now) if tasks else None,
            "may_listen": access.may_hear_recordings(user), "staff": await _staff(request)}


@aiohttp_jinja2.template("client.html")
async def client_card(request: web.Request) -> dict[str, Any]:
    return await _client_context(request, page_user(request))


@aiohttp_jinja2.template("_history.html")
async def client_history(request: web.Request) -> dict[str, Any]:
    """The call history alone, for the card to refresh itself on live events."""
    return await _client_context(request, page_user(request))


@aiohttp_jinja2.template("team.html")
async def team_page(request: web.Request) -> dict[str, Any]:
    user = page_user(request)
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise ApiError(403, "Страница команды — для руководителей.")
    day, start, end = _day_param(request)
    target = request.app[WEB_CONFIG].daily_target_seconds
    async with request.app[SESSIONS]() as session:
        managers = await access.visible_managers(session, user)
        rows = await talk_time(session, managers, start, end, target)
        calls = await access.visible_calls(session, user, start, end,
                                            hooks=request.app[CALL_HOOKS])
    for row in rows:
        row["progress"] = min(100, round(100 * row["talk_seconds"] / target)) if target else 0
    return {"title": "Команда", "day": day, "rows": rows, "calls": calls,
            "target_seconds": target, "prev_day": day - timedelta(days=1),
            "next_day": day + timedelta(days=1), "may_listen": True,
            "may_open_clients": True, "staff": await _staff(request)}
