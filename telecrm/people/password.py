"""Changing one's own password: ``/password`` (a page) and ``POST /api/me/password``.

After an admin's reset the user signs in with the temporary password and lands
here; nothing else works until he has chosen his own (``telecrm.web.auth``). Anyone
signed in may use the page to change his password at any time. The new password
ends his other sessions and their live streams; the one he is using stays.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from crm_core.errors import DomainError
from crm_core.people.management import change_own_password, get_user
from crm_core.people.models import User
from telecrm.messages import http_status, russian
from telecrm.passwords import hash_password, verify_password
from telecrm.web.auth import PASSWORD_PAGE, api_user, page_user
from telecrm.web.keys import SETTINGS, WEB_SESSION, WRITER_SESSIONS
from telecrm.web.pages import home_of
from telecrm.web.params import json_object, string_field
from telecrm.web.sse import end_user_streams


async def change_password(request: web.Request, user: User, current: str, new: str,
                          repeat: str | None = None) -> User:
    """Check and store ``user``'s new password; returns him as stored now."""
    ok = await asyncio.to_thread(verify_password, user.password_hash, current)
    if not ok:
        raise DomainError("people.password_wrong", "the current password is wrong")
    if repeat is not None and new != repeat:
        raise DomainError("people.password_mismatch", "the new password and its repeat differ")
    if new == current:
        raise DomainError("people.password_same", "the new password is the old one")
    hashed = await asyncio.to_thread(hash_password, new,
                                     request.app[SETTINGS].password_hashing)
    web_session = request.get(WEB_SESSION)
    keep = web_session.id if web_session is not None else None
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        stored = await get_user(session, user.id)
        await change_own_password(session, stored, hashed, keep)
    await end_user_streams(request.app, user.id, keep_session=keep)
    return stored


def _page(request: web.Request, user: User, *, error: str | None = None,
          status: int = 200) -> web.Response:
    return aiohttp_jinja2.render_template(
        "password.html", request,
        {"title": "Смена пароля", "forced": user.must_change_password, "error": error},
        status=status)


async def password_page(request: web.Request) -> web.Response:
    return _page(request, page_user(request))


async def password_form(request: web.Request) -> web.Response:
    user = page_user(request)
    form = await request.post()

    def field(name: str) -> str:
        value = form.get(name)
        return value[:1000] if isinstance(value, str) else ""

    try:
        stored = await change_password(request, user, field("current"), field("new"),
                                       field("repeat"))
    except DomainError as exc:
        return _page(request, user, error=russian(exc), status=http_status(exc))
    raise web.HTTPSeeOther(home_of(stored))


async def api_change_password(request: web.Request) -> web.Response:
    user = api_user(request)
    body: dict[str, Any] = await json_object(request)
    current = string_field(body, "current", max_length=1000)
    new = string_field(body, "new", max_length=1000)
    await change_password(request, user, current, new)
    return web.json_response({"ok": True})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(PASSWORD_PAGE, password_page)
    router.add_post(PASSWORD_PAGE, password_form)
    router.add_post("/api/me/password", api_change_password)
