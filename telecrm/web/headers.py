"""Security headers on every response the app sends (pages, API, files, streams, errors).

Set from ``on_response_prepare``, which runs for every response just before its headers
go out (redirects and streamed answers included), so no handler can forget them:

- ``Content-Security-Policy``: scripts only from this site, plus the page's own inline
  import map, allowed by a per-request nonce (:func:`csp_nonce`, used by the templates);
  no inline handlers, no plugins, no foreign frames or form targets;
- ``X-Frame-Options: DENY`` and ``frame-ancestors 'none'``: no page of the CRM in a
  frame (clickjacking);
- ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: same-origin``.

``/ct.js`` is loaded by customers' sites as a plain ``<script src>``: none of these
headers limits that (no ``Cross-Origin-Resource-Policy`` is set).
"""

from __future__ import annotations

import secrets

from aiohttp import web

CSP_NONCE = web.RequestKey("csp_nonce", str)

# style-src allows inline style attributes (a few templates and scripts set widths); they
# cannot run code. img-src allows data: for the icons the scripts draw.
_POLICY = ("default-src 'self'; script-src 'self'{nonce}; style-src 'self' 'unsafe-inline'; "
           "img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; "
           "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
           "frame-ancestors 'none'")
STATIC_HEADERS = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
                  "Referrer-Policy": "same-origin"}


def csp_nonce(request: web.Request) -> str:
    """This request's nonce for an inline ``<script>`` the page itself writes."""
    nonce = request.get(CSP_NONCE)
    if nonce is None:
        nonce = request[CSP_NONCE] = secrets.token_urlsafe(16)
    return nonce


def content_security_policy(nonce: str | None) -> str:
    return _POLICY.format(nonce=f" 'nonce-{nonce}'" if nonce else "")


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the headers above, unless a handler set its own."""
    for name, value in STATIC_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Content-Security-Policy",
                                content_security_policy(request.get(CSP_NONCE)))


def install(app: web.Application) -> None:
    app.on_response_prepare.append(add_security_headers)
