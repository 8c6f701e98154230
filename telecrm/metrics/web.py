"""``GET /metrics`` (Prometheus text format) and the HTTP latency middleware.

Who may read: the metrics scraper with ``Authorization: Bearer <TELECRM_METRICS_TOKEN>``
(no session: Prometheus signs in nowhere), or a signed-in admin; a signed-in user of
another role gets 403, anyone else 401. The figures say how loaded the floor is and name
the PBXs, which is no business of managers or of the internet.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from crm_core.errors import NotAllowedError
from crm_core.people import access
from pbx_bridge.pipeline import Listener
from telecrm.metrics.backlog import Backlog, count_backlog
from telecrm.metrics.registry import JobQueueView, Metrics
from telecrm.speech.service import SPEECH_QUEUES
from telecrm.web.errors import ApiError
from telecrm.web.keys import EVENT_STREAMS, LISTENERS, LIVE_PROMPTS, SESSIONS, SETTINGS, USER

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

METRICS = web.AppKey("metrics", Metrics)
METRICS_FOR_PEOPLE = web.AppKey("metrics_for_people", bool)
# With Redis, the transcription queue is read there (whichever process runs the workers).
_REDIS_QUEUE = web.AppKey("metrics_redis_queue", JobQueueView)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Streams last as long as the browser stays: not a request time.
_UNTIMED_ROUTES = frozenset({"/api/events"})


def route_label(request: web.Request) -> str:
    """The matched route's canonical path (``/clients/{id}``), never the raw path, so the
    label has as many values as the route table has routes; ``unmatched`` for a 404."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def latency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Time every request (errors and redirects included) under its route."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = route_label(request)
        if route not in _UNTIMED_ROUTES:
            method = request.method if request.method in _METHODS else "other"
            request.app[METRICS].http_latency.labels(
                route=route, method=method, status=f"{status // 100}xx").observe(
                time.perf_counter() - started)


def _scraper(request: web.Request) -> bool:
    token = request.app[SETTINGS].metrics_token
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not token or scheme.lower() != "bearer" or not given:
        return False
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ApiError(401, "metrics.bad_token", headers={"WWW-Authenticate": "Bearer"})
    return True


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: every figure of this process in the Prometheus text format."""
    if not _scraper(request):
        user = request.get(USER)
        if user is None and not request.app[METRICS_FOR_PEOPLE]:
            # a listener-only process has no sign-in: the scraper's token alone
            raise web.HTTPUnauthorized(text="Нужен токен сборщика метрик.",
                                       headers={"WWW-Authenticate": "Bearer"})
        if user is None:
            raise ApiError(401, "auth.sign_in_first", headers={"WWW-Authenticate": "Bearer"})
        if not access.may_read_metrics(user):
            raise NotAllowedError("metrics.admins_only", "metrics are for admins and the scraper")
    app = request.app
    registry = app[METRICS]
    registry.watch(_listeners(app), app[EVENT_STREAMS])
    registry.watch_live(app.get(LIVE_PROMPTS))

    async def read_backlog() -> Backlog:
        async with app[SESSIONS]() as session:
            return await count_backlog(session)

    redis_queue = app.get(_REDIS_QUEUE)
    local: list[JobQueueView] = app.get(SPEECH_QUEUES) or []
    queues = [redis_queue] if redis_queue is not None else local
    await registry.refresh(read_backlog, queues)
    return web.Response(body=generate_latest(registry.registry),
                        headers={"Content-Type": CONTENT_TYPE_LATEST,
                                 "Cache-Control": "no-store"})


def _listeners(app: web.Application) -> dict[str, Listener]:
    """The running listeners by PBX (none in a web-only app); the app's own dict, so
    listeners added later are seen at the next scrape."""
    return app.get(LISTENERS) or {}


async def metrics_ctx(app: web.Application) -> AsyncIterator[None]:
    """After the listeners start: observe them and the live prompts; with Redis, a reader
    of the job queue."""
    app[METRICS].watch(_listeners(app), app[EVENT_STREAMS])
    app[METRICS].watch_live(app.get(LIVE_PROMPTS))
    queue = None
    settings = app[SETTINGS]
    if settings.redis_url:
        from speech.jobs import RedisStreamQueue

        queue = RedisStreamQueue(settings.redis_url)
        app[_REDIS_QUEUE] = queue
    yield
    if queue is not None:
        # Only a client to close, nothing to write: a Redis that does not answer must not
        # hold the stop (the history writer and the rest close after this).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(queue.close(), 5)


def setup_metrics(app: web.Application, *, for_people: bool = True) -> None:
    """Wire metrics into an app whose web site is set up: a registry of its own, the
    latency middleware outermost (it sees the final status of every request), the route,
    and the context that observes the listeners (append after the listeners' context)."""
    app[METRICS] = Metrics()
    app[METRICS_FOR_PEOPLE] = for_people  # False: no sign-in here (serve --listener)
    app.middlewares.insert(0, latency_middleware)
    app.router.add_get("/metrics", metrics)
    app.cleanup_ctx.append(metrics_ctx)
