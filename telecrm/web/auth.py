"""Sign-in: server-side sessions in a cookie, Argon2 passwords, login throttling.

Why server-side sessions rather than signed cookies: sign-out, disabling a user
or a password change must end every session at once, on every web process; a
row per session gives that with one indexed lookup per request and no extra
revocation list. The cookie holds only a random token (the database keeps its
SHA-256).

A user whose password an admin reset signs in with the temporary password and may
then only change it: every other page sends him to ``/password`` and every other
API call is refused (403, ``people.password_change_required``) until he has.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import TYPE_CHECKING
from urllib.parse import quote

from aiohttp import web
from sqlalchemy import select

from crm_core.calls.models import Call
from crm_core.db import without_transaction
from crm_core.errors import NotAllowedError, NotFoundError
from crm_core.people import access
from crm_core.people.models import User, WebSession
from crm_core.people.sessions import (
    create_session,
    end_session,
    needs_touch,
    resolve_session,
    touch_session,
)
from telecrm.passwords import dummy_hash, verify_password
from telecrm.web.config import SESSION_COOKIE, WebConfig
from telecrm.web.errors import ApiError, is_api
from telecrm.web.keys import (
    EVENT_STREAMS,
    SESSIONS,
    USER,
    WEB_CONFIG,
    WEB_SESSION,
    WRITER_SESSIONS,
)
from telecrm.web.redirects import local_path

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Verified when the username is unknown, so a wrong name costs as long as a wrong password.

PASSWORD_PAGE = "/password"
# What a user who must change his password may still reach (and the static files).
_WHILE_CHANGING = frozenset({PASSWORD_PAGE, "/login", "/logout", "/api/logout", "/api/me",
                             "/api/me/password"})


def client_ip(request: web.Request) -> str:
    """The client's address: the peer's, or behind a trusted reverse proxy
    (``TELECRM_TRUSTED_PROXIES``) the nearest address in ``X-Forwarded-For`` that is not
    one of those proxies. A client's own ``X-Forwarded-For`` is never believed."""
    remote = request.remote or "unknown"
    proxies = request.app[WEB_CONFIG].trusted_proxies
    if not proxies or not _trusted(remote, proxies):
        return remote
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")]
    for hop in reversed([h for h in hops if h]):
        if not _trusted(hop, proxies):
            return hop if _is_ip(hop) else remote
    return remote


def _is_ip(text: str) -> bool:
    try:
        ip_address(text)
    except ValueError:
        return False
    return True


def _trusted(address: str, proxies: tuple[IPv4Network | IPv6Network, ...]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in proxies)


async def authenticate(sessions: async_sessionmaker[AsyncSession], username: str,
                       password: str, strength: str = "strong") -> User | None:
    """The active user with this username and password, or None (constant-ish time:
    an unknown name is checked against a hash of ``strength``, as long to verify)."""
    async with sessions() as session:
        user = await session.scalar(select(User).where(User.username == username.strip()))
    ok = await asyncio.to_thread(
        verify_password,
        user.password_hash if user is not None else dummy_hash(strength), password)
    if user is None or not user.active or not ok or not user.password_hash:
        return None
    return user


async def sign_in(request: web.Request, response: web.StreamResponse, user: User,
                  writer: async_sessionmaker[AsyncSession], config: WebConfig) -> str:
    """Open a session for ``user``, set its cookie on ``response``; returns the CSRF token."""
    async with writer() as session, session.begin():
        new = await create_session(session, user, config.session_lifetime,
                                   ip=client_ip(request),
                                   user_agent=request.headers.get("User-Agent"))
    set_cookie(request, response, SESSION_COOKIE, new.token, config,
               max_age=int(config.session_lifetime.total_seconds()))
    return new.csrf_token


async def sign_out(request: web.Request, response: web.StreamResponse,
                   writer: async_sessionmaker[AsyncSession]) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        async with writer() as session, session.begin():
            await end_session(session, token)
    response.del_cookie(SESSION_COOKIE, path="/")
    # This session's event streams in this process end now (other processes: within
    # a second, telecrm.web.sse.watch_sessions).
    web_session = request.get(WEB_SESSION)
    if web_session is not None:
        for stream in list(request.app.get(EVENT_STREAMS, ())):
            if stream.session_id == web_session.id:
                await stream.sign_out()


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str,
               config: WebConfig, *, max_age: int | None = None,
               samesite: str = "Lax") -> None:
    secure = request.secure if config.cookie_secure is None else config.cookie_secure
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True,
                        samesite=samesite, secure=secure)


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the session cookie into ``request[USER]`` and ``request[WEB_SESSION]``."""
    request[USER] = None
    request[WEB_SESSION] = None
    token = request.cookies.get(SESSION_COOKIE)
    if token and not request.path.startswith("/static/") and request.path != "/favicon.ico":
        async with request.app[SESSIONS]() as session:
            await without_transaction(session)
            row = await resolve_session(session, token)
        if row is not None and needs_touch(row):
            async with request.app[WRITER_SESSIONS]() as session, session.begin():
                await touch_session(session, row.id, request.app[WEB_CONFIG].session_lifetime)
        if row is not None:
            request[WEB_SESSION] = row
            request[USER] = row.user
            if row.user.must_change_password and request.path not in _WHILE_CHANGING:
                if is_api(request):
                    raise NotAllowedError("people.password_change_required",
                                          "change the temporary password first "
                                          "(POST /api/me/password)")
                raise web.HTTPSeeOther(PASSWORD_PAGE)
    return await handler(request)


def current_session(request: web.Request) -> WebSession | None:
    return request.get(WEB_SESSION)


def api_user(request: web.Request) -> User:
    """The signed-in user of an API request, else 401."""
    user = request.get(USER)
    if user is None:
        raise ApiError(401, "auth.sign_in_first")
    return user


def page_user(request: web.Request) -> User:
    """The signed-in user of a page request, else a redirect to the sign-in page."""
    user = request.get(USER)
    if user is None:
        if is_api(request):
            raise ApiError(401, "auth.sign_in_first")
        target = request.path_qs if request.method == "GET" else "/"
        raise web.HTTPSeeOther("/login?next=" + quote(local_path(target), safe="/"))
    return user


def new_token() -> str:
    return secrets.token_urlsafe(32)


async def audible_call(session: AsyncSession, user: User, call_id: int) -> Call:
    """The call whose recording ``user`` may hear: 404 if not his to see, 403 by role."""
    call = await access.visible_call(session, user, call_id)
    if call is None:
        raise NotFoundError("calls.not_found", "no such call")
    if not access.may_hear_recordings(user):
        raise NotAllowedError("recordings.role_may_not_listen",
                              "your role may not listen to recordings")
    return call
