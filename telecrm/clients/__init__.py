"""Clients in the app: find, create, edit, merge and reassign them.

- ``pages``: ``/clients`` (search, filters, reassigning), ``/clients/new``,
  ``/clients/{id}/edit`` (the card and its contact persons), ``/clients/{id}/merge``
- ``api``: ``GET|POST /api/clients``, ``PATCH /api/clients/{id}``, contacts, merge
- ``listing``: the list's filters, read once for the page and the API
- ``service``: who may do what, then the core's card and merge and the sales rules
- ``openapi``: the feature's OpenAPI paths

The card page itself (``/clients/{id}``) and ``GET /api/clients/{id}`` are in
:mod:`telecrm.web`.
"""

from __future__ import annotations

from aiohttp import web

from telecrm.clients import api, pages


def add_routes(router: web.UrlDispatcher) -> None:
    """The feature's pages and JSON routes (before ``/clients/{id}``, which they extend)."""
    api.add_routes(router)
    pages.add_routes(router)
