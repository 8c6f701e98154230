"""``/admin/users``: the admin's page of users and teams, and its forms (admins only).

- ``GET /admin/users``: everyone (active first), a form for a new user, the teams
  with their heads, and a form for a new team;
- ``POST /admin/users``: create a user (the team picked from a list);
- ``GET /admin/users/{id}``: one user: his details to edit, a password reset, switching
  him off or on, and the history of changes to him;
- ``POST /admin/users/{id}``: save name, role, team, extension, phones (Asterisk devices
  and mobile numbers, one per line);
- ``POST /admin/users/{id}/deactivate`` | ``reactivate`` | ``password``;
- ``POST /admin/teams``: a new team; ``POST /admin/teams/{id}``: rename it, set its head.

A refused change shows the form again with the sentence of its error code and the
values typed. A temporary password is shown once, in the answer to the reset, and
never stored or logged in clear.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select

from crm_core.audit import AuditLog
from crm_core.clients.phones import format_phone
from crm_core.errors import DomainError, NotAllowedError, NotFoundError
from crm_core.people.management import (
    KEEP,
    UserChange,
    create_team,
    create_user,
    deactivate_user,
    deactivation_periods,
    edit_user,
    get_team,
    get_user,
    list_teams,
    list_users,
    reactivate_user,
    rename_team,
    reset_password,
    set_team_head,
)
from crm_core.people.models import Role, User
from telecrm.messages import http_status, russian
from telecrm.passwords import hash_password, temporary_password
from telecrm.web.auth import page_user
from telecrm.web.keys import SESSIONS, SETTINGS, WRITER_SESSIONS
from telecrm.web.params import path_id
from telecrm.web.present import ROLES
from telecrm.web.sse import end_user_streams

USERS_PAGE = "/admin/users"

DONE = {
    "created": "Пользователь создан.",
    "saved": "Изменения сохранены.",
    "deactivated": "Пользователь отключён: войти он больше не может, его сеансы завершены. "
                   "Звонки, клиенты и задачи остались на месте.",
    "reactivated": "Пользователь снова может входить.",
    "team": "Отдел сохранён.",
    "team_created": "Отдел создан.",
}
FIELDS = {"username": "Логин", "name": "Имя", "role": "Роль", "team": "Отдел",
          "extension": "Внутренний номер", "devices": "Телефоны в Asterisk",
          "mobiles": "Мобильные", "heads_team": "Руководит отделом",
          "active": "Активен", "must_change_password": "Сменить пароль при входе",
          "sessions_ended": "Завершено сеансов"}
ACTIONS = {"create": "Создан", "update": "Изменён", "deactivate": "Отключён",
           "reactivate": "Снова включён", "password": "Пароль сброшен"}


def admin_user(request: web.Request) -> User:
    user = page_user(request)
    if user.role != Role.ADMIN:
        raise NotAllowedError("people.admin_only", "only an admin manages people")
    return user


def _field(form: Any, name: str, limit: int = 200) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _number(value: str) -> int:
    """An id picked from a list; anything else is an id nothing has."""
    return int(value) if value.isdigit() and len(value) < 10 else -1


def _lines(form: Any, name: str) -> list[str]:
    """A textarea of one value per line (commas too), blanks dropped; at most 50 values."""
    value = form.get(name)
    if not isinstance(value, str):
        return []
    return [v.strip() for v in value[:5000].replace(",", "\n").splitlines() if v.strip()][:50]


def _team_id(form: Any) -> int | None:
    """The team picked in the form's list (none: no team)."""
    value = _field(form, "team_id")
    return _number(value) if value else None


def _path_id(request: web.Request) -> int:
    return path_id(request, code="people.no_such_user")


def _value(field: str, value: Any) -> str:
    if value is None or value == []:
        return "—"
    if isinstance(value, list):
        return ", ".join(format_phone(v) if field == "mobiles" else str(v) for v in value)
    if isinstance(value, bool):
        return "да" if value else "нет"
    if field == "role":
        return ROLES.get(str(value), str(value))
    return str(value)


def _history_row(row: AuditLog) -> dict[str, Any]:
    parts = []
    for field, change in row.changes.items():
        label = FIELDS.get(field, field)
        if isinstance(change, list) and len(change) == 2:
            parts.append(f"{label}: {_value(field, change[0])} → {_value(field, change[1])}")
        else:
            parts.append(f"{label}: {_value(field, change)}")
    return {"at": row.at, "actor": row.actor, "action": ACTIONS.get(row.action, row.action),
            "changes": "; ".join(parts)}


async def _teams_context(request: web.Request) -> dict[str, Any]:
    async with request.app[SESSIONS]() as session:
        teams = await list_teams(session)
        users = await list_users(session)
    heads = {u.team_id: u for u in users if u.heads_team and u.team_id is not None}
    members: dict[int, int] = {}
    for u in users:
        if u.active and u.team_id is not None:
            members[u.team_id] = members.get(u.team_id, 0) + 1
    supervisors = [u for u in users if u.active and u.role == Role.SUPERVISOR]
    return {"teams": [{"id": t.id, "name": t.name, "head": heads.get(t.id),
                       "members": members.get(t.id, 0)} for t in teams],
            "users": users, "supervisors": supervisors, "roles": ROLES}


async def _list_page(request: web.Request, *, error: str | None = None,
                     error_at: str | None = None, form: dict[str, Any] | None = None,
                     status: int = 200) -> web.Response:
    """The list page; ``error_at`` is the section whose form was refused (shown there)."""
    context = await _teams_context(request)
    done = request.query.get("done", "") if error is None else ""
    context.update(title="Пользователи и отделы", error=error, error_at=error_at,
                   form=form or {}, done=DONE.get(done),
                   done_at="teams" if done.startswith("team") else None)
    return aiohttp_jinja2.render_template("admin_users.html", request, context, status=status)


async def _user_page(request: web.Request, user_id: int, *, error: str | None = None,
                     form: dict[str, Any] | None = None, status: int = 200,
                     temporary: str | None = None) -> web.Response:
    context = await _teams_context(request)
    async with request.app[SESSIONS]() as session:
        try:
            person = await get_user(session, user_id)
        except DomainError:
            raise NotFoundError("people.no_such_user", "no such user") from None
        history = list(await session.scalars(
            select(AuditLog).where(AuditLog.entity == "user", AuditLog.entity_id == user_id)
            .order_by(AuditLog.at.desc(), AuditLog.id.desc()).limit(30)))
        periods = (await deactivation_periods(session, [user_id])).get(user_id, [])
    done = DONE.get(request.query.get("done", "")) if error is None and not temporary else None
    context.update(title=person.name, person=person, error=error, form=form or {}, done=done,
                   temporary=temporary, history=[_history_row(r) for r in history],
                   periods=periods)
    response = aiohttp_jinja2.render_template("admin_user.html", request, context,
                                              status=status)
    if temporary:
        response.headers["Cache-Control"] = "no-store"  # the password is shown once
    return response


# -- the list and new users ----------------------------------------------------------------


async def users_page(request: web.Request) -> web.Response:
    admin_user(request)
    return await _list_page(request)


async def create_user_form(request: web.Request) -> web.Response:
    admin = admin_user(request)
    form = await request.post()
    password = _field(form, "password", 1000)
    try:
        if not password:
            raise DomainError("people.password_short", "a first password is needed", min=8)
        hashed = await asyncio.to_thread(hash_password, password,
                                         request.app[SETTINGS].password_hashing)
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            user = await create_user(
                session, admin, username=_field(form, "username", 100),
                name=_field(form, "name"), role=_field(form, "role", 20),
                team_id=_team_id(form), extension=_field(form, "extension", 20) or None,
                password_hash=hashed, must_change_password=form.get("must_change") == "1",
                devices=_lines(form, "devices"), mobiles=_lines(form, "mobiles"))
    except DomainError as exc:
        typed = {k: v for k, v in form.items() if k not in ("password", "csrf_token")}
        return await _list_page(request, error=russian(exc), error_at="new-user", form=typed,
                                status=http_status(exc))
    raise web.HTTPSeeOther(f"{USERS_PAGE}/{user.id}?done=created")


# -- one user ---------------------------------------------------------------------------------


async def user_page(request: web.Request) -> web.Response:
    admin_user(request)
    return await _user_page(request, _path_id(request))


async def edit_user_form(request: web.Request) -> web.Response:
    admin = admin_user(request)
    user_id = _path_id(request)
    form = await request.post()
    change = UserChange(name=_field(form, "name") if "name" in form else None,
                        role=_field(form, "role", 20) if "role" in form else None,
                        team_id=_team_id(form) if "team_id" in form else KEEP,
                        extension=_field(form, "extension", 20) if "extension" in form
                        else KEEP,
                        devices=_lines(form, "devices") if "devices" in form else KEEP,
                        mobiles=_lines(form, "mobiles") if "mobiles" in form else KEEP)
    try:
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            await edit_user(session, admin, await _user(session, user_id), change)
    except DomainError as exc:
        typed = {k: v for k, v in form.items() if k != "csrf_token"}
        return await _user_page(request, user_id, error=russian(exc), form=typed,
                                status=http_status(exc))
    raise web.HTTPSeeOther(f"{USERS_PAGE}/{user_id}?done=saved")


async def _user(session: Any, user_id: int) -> User:
    try:
        return await get_user(session, user_id)
    except DomainError:
        raise NotFoundError("people.no_such_user", "no such user") from None


async def switch_form(request: web.Request) -> web.Response:
    """Switch a user off (his sessions and live streams end at once) or on again."""
    admin = admin_user(request)
    user_id = _path_id(request)
    off = request.match_info["action"] == "deactivate"
    try:
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            user = await _user(session, user_id)
            if off:
                await deactivate_user(session, admin, user)
            else:
                await reactivate_user(session, admin, user)
    except DomainError as exc:
        return await _user_page(request, user_id, error=russian(exc), status=http_status(exc))
    if off:
        await end_user_streams(request.app, user_id)
    raise web.HTTPSeeOther(f"{USERS_PAGE}/{user_id}?done={'de' if off else 're'}activated")


async def password_form(request: web.Request) -> web.Response:
    """A temporary password, shown once; he must change it when he next signs in."""
    admin = admin_user(request)
    user_id = _path_id(request)
    temporary = temporary_password()
    hashed = await asyncio.to_thread(hash_password, temporary,
                                     request.app[SETTINGS].password_hashing)
    try:
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            await reset_password(session, admin, await _user(session, user_id), hashed)
    except DomainError as exc:
        return await _user_page(request, user_id, error=russian(exc), status=http_status(exc))
    await end_user_streams(request.app, user_id)
    return await _user_page(request, user_id, temporary=temporary)


# -- teams ------------------------------------------------------------------------------------


async def create_team_form(request: web.Request) -> web.Response:
    admin = admin_user(request)
    form = await request.post()
    try:
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            await create_team(session, admin, _field(form, "name"))
    except DomainError as exc:
        return await _list_page(request, error=russian(exc), error_at="teams",
                                form={"team_name": _field(form, "name")},
                                status=http_status(exc))
    raise web.HTTPSeeOther(f"{USERS_PAGE}?done=team_created#teams")


async def team_form(request: web.Request) -> web.Response:
    """Rename a team and set its head (a supervisor picked from a list) in one go."""
    admin = admin_user(request)
    team_id = path_id(request, code="people.team_not_found")
    form = await request.post()
    head_id = _field(form, "head_id")
    try:
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            team = await get_team(session, team_id)
            if "name" in form:
                await rename_team(session, admin, team, _field(form, "name"))
            if "head_id" in form:
                head = (await get_user(session, _number(head_id))
                        if head_id else None)
                await set_team_head(session, admin, team, head)
    except DomainError as exc:
        return await _list_page(request, error=russian(exc), error_at="teams",
                                status=http_status(exc))
    raise web.HTTPSeeOther(f"{USERS_PAGE}?done=team#teams")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(USERS_PAGE, users_page)
    router.add_post(USERS_PAGE, create_user_form)
    router.add_get(USERS_PAGE + r"/{id:\d+}", user_page)
    router.add_post(USERS_PAGE + r"/{id:\d+}", edit_user_form)
    router.add_post(USERS_PAGE + r"/{id:\d+}/{action:deactivate|reactivate}", switch_form)
    router.add_post(USERS_PAGE + r"/{id:\d+}/password", password_form)
    router.add_post("/admin/teams", create_team_form)
    router.add_post(r"/admin/teams/{id:\d+}", team_form)
