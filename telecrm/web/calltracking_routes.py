"""Routes of the call-tracking feature, registered by telecrm.web.routes."""

from __future__ import annotations

from aiohttp import web


def add_routes(router: web.UrlDispatcher) -> None:
    """Register this feature's pages and API routes."""
