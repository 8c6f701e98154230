"""The JSON API of integrations: API tokens and webhook endpoints, for admins.

- ``GET /api/tokens``: every token (live ones first), never the token itself: its first
  characters, user, scopes (and their Russian description), last use, revocation;
- ``POST /api/tokens`` ``{"name", "user_id", "scopes": ["calls:read", ...]}``: a new
  token (201); the answer's ``token`` is the only time it is ever shown;
- ``POST /api/tokens/{id}/revoke``: revoke it for good (it stays listed, revoked);
- ``GET /api/webhooks``: the endpoints (never their secrets) and the events they may hear;
- ``POST /api/webhooks`` ``{"name", "url", "events": ["call.ended", ...]}``: register an
  endpoint (201); the answer's ``secret`` is the only time it is ever shown;
- ``PATCH /api/webhooks/{id}`` ``{"active": false|true}``: switch it off (nothing new is
  queued for it; it is never deleted) or on again;
- ``GET /api/webhooks/deliveries`` (``?state=pending|delivered|failed``): the delivery log;
  ``POST /api/webhooks/deliveries/{id}/resend``: «Отправить снова».

The services, the audit and the Russian refusals are those of the admin's pages
(:mod:`telecrm.integrations.pages`). A signed-in admin only: an API token may not use
these routes (``NO_TOKENS`` of :mod:`telecrm.integrations.auth`), so a token can never
make another token or widen its own scopes.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from crm_core.errors import DomainError, NotAllowedError, NotFoundError
from crm_core.integrations.models import ApiToken, DeliveryState, WebhookDelivery, WebhookEndpoint
from crm_core.integrations.outbox import delivery_log, resend
from crm_core.integrations.scopes import describe
from crm_core.integrations.tokens import create_token, list_tokens, revoke_token
from crm_core.integrations.webhooks import (
    EVENTS,
    create_endpoint,
    list_endpoints,
    set_endpoint_active,
)
from crm_core.people.models import Role, User
from telecrm.web.auth import api_user
from telecrm.web.keys import SESSIONS, SETTINGS, WRITER_SESSIONS
from telecrm.web.params import id_field, json_object, path_id, string_field, string_list

MAX_ITEMS = 100
NO_STORE = {"Cache-Control": "no-store"}


def _admin(request: web.Request) -> User:
    user = api_user(request)
    if user.role != Role.ADMIN:
        raise NotAllowedError("integrations.admin_only", "only an admin manages integrations")
    return user


def _fields(body: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(body) - known)
    if unknown:
        raise DomainError("request.unknown_field", f"unknown field {unknown}",
                          name=", ".join(unknown))


def _strings(body: dict[str, Any], name: str) -> list[str]:
    return string_list(body, name, max_items=MAX_ITEMS, max_length=100)


def _moment(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def token_json(row: ApiToken) -> dict[str, Any]:
    """A token as the API shows it (its user loaded): never the token, nor its hash."""
    return {"id": row.id, "name": row.name, "prefix": row.prefix,
            "user": {"id": row.user.id, "username": row.user.username, "name": row.user.name},
            "scopes": list(row.scopes), "described": describe(row.scopes),
            "created_at": _moment(row.created_at), "last_used_at": _moment(row.last_used_at),
            "revoked": row.revoked_at is not None, "revoked_at": _moment(row.revoked_at)}


def endpoint_json(row: WebhookEndpoint) -> dict[str, Any]:
    """An endpoint as the API shows it: never its secret."""
    return {"id": row.id, "name": row.name, "url": row.url, "events": list(row.events),
            "active": row.active, "created_at": _moment(row.created_at)}


def delivery_json(row: WebhookDelivery) -> dict[str, Any]:
    return {"id": row.id, "delivery_id": row.delivery_id, "event": row.event,
            "endpoint": {"id": row.endpoint.id, "name": row.endpoint.name},
            "state": row.state, "attempts": row.attempts,
            "created_at": _moment(row.created_at),
            "last_attempt_at": _moment(row.last_attempt_at),
            "next_attempt_at": _moment(row.next_attempt_at), "last_status": row.last_status,
            "last_error": row.last_error, "delivered_at": _moment(row.delivered_at)}


async def _token(request: web.Request, token_id: int) -> dict[str, Any]:
    async with request.app[SESSIONS]() as session:
        row = await session.scalar(select(ApiToken).where(ApiToken.id == token_id)
                                   .options(joinedload(ApiToken.user)))
    if row is None:
        raise NotFoundError("integrations.token_not_found", "no such token")
    return token_json(row)


# -- tokens ---------------------------------------------------------------------------------


async def tokens_list(request: web.Request) -> web.Response:
    _admin(request)
    async with request.app[SESSIONS]() as session:
        rows = await list_tokens(session)
    return web.json_response({"tokens": [token_json(row) for row in rows]})


async def tokens_create(request: web.Request) -> web.Response:
    admin = _admin(request)
    body = await json_object(request)
    _fields(body, {"name", "user_id", "scopes"})
    name = string_field(body, "name", max_length=200)
    user_id = id_field(body, "user_id") or 0
    scopes = _strings(body, "scopes")
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        row, token = await create_token(session, name=name, user_id=user_id, scopes=scopes,
                                        actor=admin)
        token_id = row.id
    return web.json_response({**await _token(request, token_id), "token": token}, status=201,
                             headers=NO_STORE)


async def tokens_revoke(request: web.Request) -> web.Response:
    admin = _admin(request)
    token_id = path_id(request, code="integrations.token_not_found")
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        await revoke_token(session, token_id, actor=admin)
    return web.json_response(await _token(request, token_id))


# -- webhooks -------------------------------------------------------------------------------


async def webhooks_list(request: web.Request) -> web.Response:
    _admin(request)
    async with request.app[SESSIONS]() as session:
        rows = await list_endpoints(session)
    return web.json_response({"endpoints": [endpoint_json(row) for row in rows],
                              "events": EVENTS})


async def webhooks_create(request: web.Request) -> web.Response:
    admin = _admin(request)
    body = await json_object(request)
    _fields(body, {"name", "url", "events"})
    name = string_field(body, "name", max_length=200)
    url = string_field(body, "url", max_length=2000)
    events = _strings(body, "events")
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        row = await create_endpoint(session, name=name, url=url, events=events, actor=admin,
                                    allow_private=request.app[SETTINGS].webhooks_allow_private)
        shown = {**endpoint_json(row), "secret": row.secret}
    return web.json_response(shown, status=201, headers=NO_STORE)


async def webhooks_edit(request: web.Request) -> web.Response:
    admin = _admin(request)
    endpoint_id = path_id(request, code="integrations.endpoint_not_found")
    body = await json_object(request)
    _fields(body, {"active"})
    active = body.get("active")
    if not isinstance(active, bool):
        raise DomainError("request.boolean_required", "active is required", name="active")
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        row = await set_endpoint_active(session, endpoint_id, active, actor=admin)
        shown = endpoint_json(row)
    return web.json_response(shown)


async def deliveries_list(request: web.Request) -> web.Response:
    _admin(request)
    state = request.query.get("state") or None
    if state is not None and state not in {s.value for s in DeliveryState}:
        raise DomainError("request.format_invalid", "state is pending, delivered or failed",
                          formats="pending, delivered, failed")
    async with request.app[SESSIONS]() as session:
        rows = await delivery_log(session, state=state)
    return web.json_response({"deliveries": [delivery_json(row) for row in rows]})


async def deliveries_resend(request: web.Request) -> web.Response:
    admin = _admin(request)
    row_id = path_id(request, code="integrations.delivery_not_found")
    async with request.app[WRITER_SESSIONS]() as session, session.begin():
        await resend(session, row_id, actor=admin)
    async with request.app[SESSIONS]() as session:
        row = await session.scalar(select(WebhookDelivery).where(WebhookDelivery.id == row_id)
                                   .options(joinedload(WebhookDelivery.endpoint)))
    if row is None:
        raise NotFoundError("integrations.delivery_not_found", "no such delivery")
    return web.json_response(delivery_json(row))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/tokens", tokens_list)
    router.add_post("/api/tokens", tokens_create)
    router.add_post(r"/api/tokens/{id:\d+}/revoke", tokens_revoke)
    router.add_get("/api/webhooks", webhooks_list)
    router.add_post("/api/webhooks", webhooks_create)
    router.add_patch(r"/api/webhooks/{id:\d+}", webhooks_edit)
    router.add_get("/api/webhooks/deliveries", deliveries_list)
    router.add_post(r"/api/webhooks/deliveries/{id:\d+}/resend", deliveries_resend)
