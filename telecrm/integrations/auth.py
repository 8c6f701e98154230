"""API tokens on requests: ``Authorization: Bearer <token>`` acts as the token's user.

Only on ``/api/``: a page or a form never takes a token, so a token cannot pass the
CSRF protection of forms (the CSRF middleware lets a request without a session cookie
through, and the page handlers then find nobody signed in). On ``/api/`` a request with
a token is served as its user (every per-role rule applies: a manager's token sees only
his calls) and only within the token's scopes: reading (GET) needs ``<feature>:read``,
changing (POST, PUT, PATCH, DELETE) ``<feature>:write``, the feature being the route's
in :data:`ROUTE_FEATURES`. An unknown or revoked token is 401; a route of no feature
(signing in and out, passwords, the live event stream) is refused to every token.
The cookie session, if the same request also carries one, is ignored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from crm_core.clock import utcnow
from crm_core.errors import NotAllowedError
from crm_core.integrations.models import ApiToken
from crm_core.integrations.scopes import FEATURES, READ, WRITE, allows
from crm_core.integrations.tokens import needs_touch, resolve_token, touch_token
from telecrm.web.errors import ApiError, is_api
from telecrm.web.keys import SESSIONS, USER, WEB_SESSION, WRITER_SESSIONS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

API_TOKEN = web.RequestKey("api_token", ApiToken)
ANY = "*"  # a route every valid token may use (the API document)

# (route prefix, feature): the first whose prefix is the route's path, or a parent of it,
# decides; the more specific lines come first. ``tests/integrations`` checks that every
# /api/ route is here or in NO_TOKENS, so a new route is classified before it ships.
ROUTE_FEATURES: list[tuple[str, str]] = [
    ("/api/openapi.json", ANY),
    ("/api/calls/{id}/transcript", "speech"), ("/api/calls/{id}/qc", "speech"),
    ("/api/calls/{id}/scores", "speech"), ("/api/clients/{id}/transcripts", "speech"),
    ("/api/clients/{id}/scenario", "speech"),
    ("/api/clients/{id}/sales", "deals"), ("/api/clients/{id}/tasks", "tasks"),
    ("/api/calls", "calls"), ("/api/call-outcomes", "calls"), ("/api/recordings", "calls"),
    ("/api/clients", "clients"), ("/api/contacts", "clients"), ("/api/activities", "clients"),
    ("/api/deals", "deals"), ("/api/pipelines", "deals"), ("/api/pipeline-stages", "deals"),
    ("/api/lose-reasons", "deals"), ("/api/payments", "deals"), ("/api/invoices", "deals"),
    ("/api/plan", "deals"), ("/api/sales", "deals"),
    ("/api/tasks", "tasks"),
    ("/api/ct", "calltracking"), ("/api/leads", "calltracking"),
    ("/api/talktime", "talktime"),
    ("/api/kkp", "speech"), ("/api/qc", "speech"), ("/api/transcripts", "speech"),
    ("/api/dictionaries", "speech"), ("/api/alerts", "speech"), ("/api/alert-rules", "speech"),
    ("/api/reports", "reports"),
    ("/api/users", "people"),
    ("/api/presence", "presence"), ("/api/dialer", "dialer"), ("/api/routing", "routing"),
    ("/api/wallboard", "wallboard"),
]
# Routes no token may use: they belong to a person at a browser. Tokens and webhooks are
# managed by a signed-in admin only: a token never makes a token or widens its own scopes.
NO_TOKENS = ("/api/login", "/api/logout", "/api/me", "/api/events", "/api/tokens",
             "/api/webhooks")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def feature_of(path: str) -> str | None:
    """The feature of the API route ``path`` (its pattern, ``/api/calls/{id}``), ``ANY``,
    or None (no token may use it)."""
    for prefix in NO_TOKENS:
        if path == prefix or path.startswith(prefix + "/"):
            return None
    for prefix, feature in ROUTE_FEATURES:
        if path == prefix or path.startswith(prefix + "/"):
            return feature
    return None


def bearer(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()


@web.middleware
async def token_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Between the session and the CSRF middlewares (``telecrm.web.site``)."""
    token = bearer(request) if is_api(request) else None
    if token is None:
        return await handler(request)
    async with request.app[SESSIONS]() as session:
        row = await resolve_token(session, token)
    if row is None:
        raise ApiError(401, "integrations.token_invalid",
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    resource = request.match_info.route.resource
    if resource is not None:  # else aiohttp answers 404/405 by itself
        feature = feature_of(resource.canonical)
        if feature is None:
            raise NotAllowedError("integrations.token_route_refused",
                                  "API tokens may not use this route")
        access = READ if request.method in SAFE_METHODS else WRITE
        if feature != ANY and not allows(row.scopes, feature, access):
            raise NotAllowedError("integrations.token_scope_missing",
                                  f"the token lacks {feature}:{access}",
                                  feature=FEATURES[feature],
                                  access="запись" if access == WRITE else "чтение")
    if row.user.must_change_password:
        raise NotAllowedError("people.password_change_required",
                              "the token's user must change his temporary password first")
    now = utcnow()
    if needs_touch(row, now):
        async with request.app[WRITER_SESSIONS]() as session, session.begin():
            await touch_token(session, row.id, now)
    request[USER] = row.user
    request[WEB_SESSION] = None
    request[API_TOKEN] = row
    return await handler(request)
