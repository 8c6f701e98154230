"""CSRF protection for every state-changing request.

- Signed-in requests that change state (POST, PUT, PATCH, DELETE) must carry the
  session's CSRF token: the ``X-CSRF-Token`` header (fetch and API clients) or the
  ``csrf_token`` form field (HTML forms). The token is in the page (``<meta>``) and
  in the JSON answer of ``POST /api/login``.
- ``POST /api/login`` is exempt (there is no session yet) but accepts only
  ``application/json``, which a cross-site HTML form cannot send without a CORS
  pre-flight that this app never grants; so it cannot be forged from another site.
- The sign-in form (``POST /login``) uses a double-submit token: a random cookie
  set with the form and the same value in a hidden field.
- An API token (``Authorization: Bearer``, :mod:`telecrm.integrations.auth`) is taken on
  ``/api/`` only and is no session: a browser never sends it by itself, so it needs no
  CSRF token, and a page's form never takes it (the form finds nobody signed in).
- Public endpoints (call tracking for websites) are exempt by design, and so is the
  dialplan's owner lookup (``POST /pbx/owner``): it answers only to the PBX token and
  never acts on a session.

The session cookie is also ``SameSite=Lax``: a defence in depth, not the defence.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from crm_core.errors import DomainError, NotAllowedError
from telecrm.web.config import CSRF_FIELD, CSRF_HEADER
from telecrm.web.errors import ApiError
from telecrm.web.keys import WEB_SESSION

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# (method, path) pairs that carry their own protection, see the module docstring.
EXEMPT = frozenset({("POST", "/api/login"), ("POST", "/login"), ("POST", "/api/ct/session"),
                    ("POST", "/pbx/owner")})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def tokens_match(expected: str | None, given: str | None) -> bool:
    if not expected or not given:
        return False
    return secrets.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in SAFE_METHODS or (request.method, request.path) in EXEMPT:
        return await handler(request)
    web_session = request.get(WEB_SESSION)
    if web_session is None:
        # Not signed in: nothing to forge; the handler answers 401 (or redirects).
        return await handler(request)
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.content_type in _FORM_TYPES:
        try:
            form = await request.post()
        except web.HTTPRequestEntityTooLarge:
            raise ApiError(413, "http.too_large") from None
        except ValueError:
            raise DomainError("request.malformed_form", "malformed form body") from None
        field = form.get(CSRF_FIELD)
        given = field if isinstance(field, str) else None
    if not tokens_match(web_session.csrf_token, given):
        raise NotAllowedError("request.csrf", "missing or wrong CSRF token", header=CSRF_HEADER)
    return await handler(request)
