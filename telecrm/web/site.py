"""The web site assembled: templates, middlewares (errors, sessions, API tokens, CSRF) and
routes."""

from __future__ import annotations

import aiohttp_jinja2
import jinja2
from aiohttp import web

from telecrm.integrations.auth import token_middleware
from telecrm.web.auth import session_middleware
from telecrm.web.csrf import csrf_middleware
from telecrm.web.errors import error_middleware
from telecrm.web.headers import install as install_security_headers
from telecrm.web.keys import SETTINGS
from telecrm.web.routes import add_routes
from telecrm.web.server import body_timeout_middleware
from telecrm.web.sse import signed_out_ctx
from telecrm.web.templating import bytecode_cache, context_processor, install_filters

__all__ = ["setup_web"]


def setup_web(app: web.Application) -> None:
    """Templates, middlewares (errors, then sessions, API tokens, then CSRF) and routes.

    ``app`` must hold ``SETTINGS`` and ``WEB_CONFIG``; ``SESSIONS`` and
    ``WRITER_SESSIONS`` are read per request (the database context sets them up).
    """
    # Ours first: aiohttp_jinja2 appends its context-processor middleware, which must run
    # inside the session middleware to see the signed-in user.
    # The body is read (within its time limit) before sessions and handlers run. An API
    # token (telecrm.integrations.auth) stands in for the session on /api/ only.
    app.middlewares.extend([error_middleware, body_timeout_middleware, session_middleware,
                            token_middleware, csrf_middleware])
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.PackageLoader("telecrm", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        context_processors=[context_processor], undefined=jinja2.StrictUndefined,
        bytecode_cache=bytecode_cache(app[SETTINGS]))
    install_filters(env, app[SETTINGS])
    add_routes(app)
    install_security_headers(app)  # every response, errors and streams included
    app.cleanup_ctx.append(signed_out_ctx)  # after the bus's: stopped before it
