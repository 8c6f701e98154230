"""JSON API of what a marketer manages on the call-tracking page (registered by
:mod:`telecrm.calltracking.routes`): ad costs, static numbers, sites and pools.

The same services as the page forms (the rules live in :mod:`crm_core.calltracking`);
marketers and admins only; writes carry the CSRF header; bad input is a 400 with
``{"error": "...", "code": "..."}``. Nothing is deleted: numbers are archived, costs corrected
(audited).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calltracking.services import (
    SiteOptions,
    add_pool_numbers,
    add_static,
    archive_number,
    cost_to_dict,
    list_costs,
    list_sites,
    list_static,
    save_site,
    set_cost,
    site_to_dict,
    static_to_dict,
)
from crm_core.errors import DomainError, NotAllowedError
from crm_core.people.models import Role, User
from telecrm.web.auth import api_user
from telecrm.web.keys import SESSIONS, WRITER_SESSIONS
from telecrm.web.params import json_object

MARKETING_ROLES = frozenset({Role.MARKETER, Role.ADMIN})
Change = Callable[[AsyncSession, User, dict[str, Any]], Awaitable[Any]]


def _marketer(request: web.Request) -> User:
    user = api_user(request)
    if user.role not in MARKETING_ROLES:
        raise NotAllowedError("calltracking.for_marketers", "call tracking is for marketers")
    return user


def _text(body: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise DomainError("request.not_string", f"{name} must be a string", name=name)
    return str(value)


def _numbers(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name)
    if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
        raise DomainError("request.phone_list", f"{name} must be a list of phone numbers",
                          name=name)
    if len(value) > 500:
        raise DomainError("request.list_too_long", f"give at most 500 {name} at a time",
                          name=name, max=500)
    return value


async def _write(request: web.Request, change: Change, status: int = 200) -> web.Response:
    """Run one change in a transaction; a rule broken is a 400 with its sentence."""
    user = _marketer(request)  # before the body: the sales floor learns nothing more
    body = await json_object(request)
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        answer = await change(session, user, body)
    return web.json_response(answer, status=status)


async def costs(request: web.Request) -> web.Response:
    """``GET /api/ct/costs?from=YYYY-MM&to=YYYY-MM``: costs, newest month first."""
    _marketer(request)
    async with request.app[SESSIONS]() as session:
        rows = await list_costs(session, since=request.query.get("from") or None,
                                until=request.query.get("to") or None)
    return web.json_response([cost_to_dict(r) for r in rows])


async def put_cost(request: web.Request) -> web.Response:
    """``PUT /api/ct/costs``: a month's cost of a channel; again: a correction (audited)."""
    async def change(session: AsyncSession, user: User, body: dict[str, Any]) -> dict[str, Any]:
        row = await set_cost(session, _text(body, "month"), _text(body, "channel"),
                             _text(body, "amount"), actor=user.username, user_id=user.id)
        return cost_to_dict(row)
    return await _write(request, change)


async def statics(request: web.Request) -> web.Response:
    _marketer(request)
    async with request.app[SESSIONS]() as session:
        rows = await list_static(session)
    return web.json_response([static_to_dict(r) for r in rows])


async def post_static(request: web.Request) -> web.Response:
    async def change(session: AsyncSession, user: User, body: dict[str, Any]) -> dict[str, Any]:
        row = await add_static(
            session, _text(body, "did"), _text(body, "channel"),
            campaign=_text(body, "campaign", required=False) or None,
            source=_text(body, "source", required=False) or None,
            medium=_text(body, "medium", required=False) or None,
            cost_per_month=_text(body, "cost_per_month", required=False) or 0,
            actor=user.username)
        return static_to_dict(row)
    return await _write(request, change, 201)


async def sites(request: web.Request) -> web.Response:
    _marketer(request)
    async with request.app[SESSIONS]() as session:
        rows = await list_sites(session)
    return web.json_response([site_to_dict(s) for s in rows])


async def post_site(request: web.Request) -> web.Response:
    """``POST /api/ct/sites``: create a site (or change its fallback numbers, channel)."""
    async def change(session: AsyncSession, user: User, body: dict[str, Any]) -> dict[str, Any]:
        defaults = _numbers(body, "default_numbers") if "default_numbers" in body else []
        options = SiteOptions(default_numbers=defaults,
                              channel=_text(body, "channel", required=False) or None)
        site = await save_site(session, _text(body, "site"), options, actor=user.username)
        return site_to_dict(site)
    return await _write(request, change)


async def post_pool(request: web.Request) -> web.Response:
    """``POST /api/ct/pool``: numbers for a site's pool (the site is created when new)."""
    async def change(session: AsyncSession, user: User, body: dict[str, Any]) -> dict[str, Any]:
        site = await add_pool_numbers(session, _text(body, "site"), _numbers(body, "numbers"),
                                      actor=user.username)
        return site_to_dict(site)
    return await _write(request, change)


async def post_archive(request: web.Request) -> web.Response:
    """``POST /api/ct/numbers/archive``: stop tracking a static or pool number."""
    async def change(session: AsyncSession, user: User, body: dict[str, Any]) -> dict[str, Any]:
        number = _text(body, "number")
        kind = await archive_number(session, number, actor=user.username, user_id=user.id)
        return {"number": number, "archived": kind}
    return await _write(request, change)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/ct/costs", costs)
    router.add_put("/api/ct/costs", put_cost)
    router.add_get("/api/ct/static", statics)
    router.add_post("/api/ct/static", post_static)
    router.add_get("/api/ct/sites", sites)
    router.add_post("/api/ct/sites", post_site)
    router.add_post("/api/ct/pool", post_pool)
    router.add_post("/api/ct/numbers/archive", post_archive)
