"""The users' JSON API: who works the phones, with which extension, devices and mobiles.

- ``GET /api/users``: an admin reads everyone, a supervisor his own team (read only):
  ``{"users": [...], "teams": [{"id", "name", "head_id"}]}``, the teams being those
  a ``team_id`` may name;
- ``GET /api/users/{id}``: one of them (anyone else is 404);
- ``POST /api/users`` ``{"username", "name", "role", "password", "team_id"?,
  "extension"?, "devices"?, "mobiles"?, "must_change_password"?}``: an admin creates a
  user (201 and the user);
- ``PATCH /api/users/{id}`` ``{"name"?, "role"?, "team_id"?, "extension"?, "devices"?,
  "mobiles"?, "active"?}``: an admin changes the fields given; ``devices`` and ``mobiles``
  replace the lists, ``active: false`` switches the user off (nobody is deleted: his
  sessions and live streams end, his calls and clients stay), ``true`` on again.

The rules, the audit and the refusals are those of the admin page and ``telecrm users``
(:mod:`crm_core.people.management`): a device or mobile another user holds is refused
(409) with one sentence naming him. Password hashes never leave the server.
"""

from __future__ import annotations

import asyncio
import unicodedata
from typing import Any

from aiohttp import web

from crm_core.errors import DomainError, NotAllowedError, NotFoundError
from crm_core.people import access
from crm_core.people.management import (
    KEEP,
    UserChange,
    create_user,
    deactivate_user,
    edit_user,
    get_user,
    reactivate_user,
    require_admin,
)
from crm_core.people.models import Team, User
from telecrm.passwords import hash_password
from telecrm.web.auth import api_user
from telecrm.web.keys import SESSIONS, SETTINGS, WRITER_SESSIONS
from telecrm.web.params import id_field, json_object, path_id, string_list
from telecrm.web.sse import end_user_streams

MAX_PHONES = 50  # as many as the admin page's lists take
CREATE_FIELDS = frozenset({"username", "name", "role", "password", "team_id", "extension",
                           "devices", "mobiles", "must_change_password"})
EDIT_FIELDS = frozenset({"name", "role", "team_id", "extension", "devices", "mobiles",
                         "active"})
LIMITS = {"username": 100, "name": 200, "role": 20, "password": 1000, "extension": 20}


def user_json(user: User) -> dict[str, Any]:
    """A user as the API shows him (his team and phones loaded); never his password hash."""
    return {"id": user.id, "username": user.username, "name": user.name, "role": user.role,
            "team": {"id": user.team.id, "name": user.team.name} if user.team else None,
            "team_id": user.team_id, "extension": user.extension, "devices": user.devices,
            "mobiles": user.mobiles, "active": user.active, "heads_team": user.heads_team,
            "must_change_password": user.must_change_password,
            "created_at": user.created_at.isoformat()}


def team_json(team: Team, heads: dict[int, int]) -> dict[str, Any]:
    return {"id": team.id, "name": team.name, "head_id": heads.get(team.id)}


# -- reading a body ---------------------------------------------------------------------------


def _refuse_unknown(body: dict[str, Any], known: frozenset[str]) -> None:
    """A typo must not pass as "nothing to change"."""
    unknown = sorted(set(body) - known)
    if unknown:
        raise DomainError("request.unknown_field", f"unknown field {unknown}",
                          name=", ".join(unknown))


def _clean(value: str, name: str) -> str:
    """Control characters and lone surrogates fit no name, login or phone (nor a database)."""
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise DomainError("request.control_characters", f"{name} has control characters",
                          name=name)
    return value


def _text(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    """``body[name]`` as a string for the domain to judge; None when absent or null."""
    value = body.get(name)
    if value is None:
        if required:
            raise DomainError("request.string_required", f"{name} is required", name=name)
        return None
    if not isinstance(value, str):
        raise DomainError("request.not_string", f"{name} must be a string", name=name)
    if len(value) > LIMITS[name]:
        raise DomainError("request.too_long", f"{name} is too long", name=name,
                          max=LIMITS[name])
    return _clean(value, name)


def _extension(body: dict[str, Any]) -> str | None:
    """The extension as typed (``"201"``), or None to take it away."""
    value = body.get("extension")
    if value is not None and not isinstance(value, str):
        raise DomainError("request.not_extension", "extension must be a string of digits",
                          name="extension")
    return (_text(body, "extension") or "").strip() or None


def _phones(body: dict[str, Any], name: str) -> list[str]:
    """A list of devices or mobiles, each a string (validated by the domain)."""
    values = body.get(name)
    if values is None:
        return []
    return [_clean(v, name) for v in string_list(body, name, max_items=MAX_PHONES,
                                                  max_length=120, phones=True)]


def _flag(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise DomainError("request.not_boolean", f"{name} must be true or false", name=name)
    return value


# -- handlers ---------------------------------------------------------------------------------


def _reader(request: web.Request) -> User:
    user = api_user(request)
    if not access.may_list_people(user):
        raise NotAllowedError("people.list_not_allowed", "only supervisors and admins read users")
    return user


def _admin(request: web.Request) -> User:
    user = api_user(request)
    require_admin(user)
    return user


async def _visible(request: web.Request, user: User, user_id: int) -> dict[str, Any]:
    async with request.app[SESSIONS]() as session:
        for person in await access.visible_people(session, user, user_id):
            return user_json(person)
    raise NotFoundError("people.no_such_user", "no such user")


async def list_users(request: web.Request) -> web.Response:
    user = _reader(request)
    async with request.app[SESSIONS]() as session:
        people = await access.visible_people(session, user)
        teams = await access.visible_teams(session, user)
    heads = {p.team_id: p.id for p in people if p.heads_team and p.team_id is not None}
    return web.json_response({"users": [user_json(p) for p in people],
                              "teams": [team_json(t, heads) for t in teams]})


async def get_one(request: web.Request) -> web.Response:
    user = _reader(request)
    return web.json_response(await _visible(request, user, path_id(request,
                                                                   code="people.no_such_user")))


async def create(request: web.Request) -> web.Response:
    admin = _admin(request)
    body = await json_object(request)
    _refuse_unknown(body, CREATE_FIELDS)
    username = _text(body, "username", required=True) or ""
    name = _text(body, "name", required=True) or ""
    role = _text(body, "role", required=True) or ""
    password = _text(body, "password", required=True) or ""
    team_id = id_field(body, "team_id", required=False)
    extension = _extension(body)
    devices, mobiles = _phones(body, "devices"), _phones(body, "mobiles")
    must_change = _flag(body, "must_change_password") or False
    hashed = await asyncio.to_thread(hash_password, password,
                                     request.app[SETTINGS].password_hashing)
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        user = await create_user(session, admin, username=username, name=name, role=role,
                                 team_id=team_id, extension=extension, password_hash=hashed,
                                 must_change_password=must_change, devices=devices,
                                 mobiles=mobiles)
        user_id = user.id
    return web.json_response(await _visible(request, admin, user_id), status=201)


async def edit(request: web.Request) -> web.Response:
    """The fields given, then switching off or on, in one transaction (all or nothing)."""
    admin = _admin(request)
    user_id = path_id(request, code="people.no_such_user")
    body = await json_object(request)
    _refuse_unknown(body, EDIT_FIELDS)
    change = UserChange(
        name=_text(body, "name") if "name" in body else None,
        role=_text(body, "role") if "role" in body else None,
        team_id=id_field(body, "team_id", required=False) if "team_id" in body else KEEP,
        extension=_extension(body) if "extension" in body else KEEP,
        devices=_phones(body, "devices") if "devices" in body else KEEP,
        mobiles=_phones(body, "mobiles") if "mobiles" in body else KEEP)
    active = _flag(body, "active")
    switched_off = False
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        try:
            user = await get_user(session, user_id)
        except NotFoundError:
            raise NotFoundError("people.no_such_user", "no such user") from None
        await edit_user(session, admin, user, change)
        if active is False and user.active:
            await deactivate_user(session, admin, user)
            switched_off = True
        elif active is True and not user.active:
            await reactivate_user(session, admin, user)
    if switched_off:
        await end_user_streams(request.app, user_id)
    return web.json_response(await _visible(request, admin, user_id))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/users", list_users)
    router.add_post("/api/users", create)
    router.add_get(r"/api/users/{id:\d+}", get_one)
    router.add_patch(r"/api/users/{id:\d+}", edit)
