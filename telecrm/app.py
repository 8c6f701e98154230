"""The aiohttp application factory: explicit wiring, no globals.

Each long-lived resource (database engine, AMI listener) is one ``cleanup_ctx``
generator, so start-up and shutdown order is visible in one place and tests can
build an app with exactly the parts they need.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from crm_core.db import create_engine, session_factory, upgrade
from pbx_bridge.ami import AmiSettings
from pbx_bridge.pipeline import CaptureWriter, Listener
from pbx_bridge.store import CallStore

from .settings import Settings

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
SESSIONS = web.AppKey("sessions", object)
WRITER_SESSIONS = web.AppKey("writer_sessions", object)
LISTENER = web.AppKey("listener", Listener)


def ami_settings(settings: Settings) -> AmiSettings:
    return AmiSettings(host=settings.ami_host, port=settings.ami_port,
                       username=settings.ami_user, secret=settings.ami_secret)


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade(url)
    engine = create_engine(url)
    app[SESSIONS] = session_factory(engine)
    app[WRITER_SESSIONS] = session_factory(engine, writer=True)
    yield
    await engine.dispose()


async def listener_ctx(app: web.Application) -> AsyncIterator[None]:
    """The AMI listener runs beside the web app; Asterisk being down never stops the app."""
    settings = app[SETTINGS]
    listener = Listener(ami_settings(settings), CallStore(app[WRITER_SESSIONS]),
                        capture=CaptureWriter(settings.capture_dir))
    app[LISTENER] = listener
    task = asyncio.create_task(listener.run(), name="ami-listener")
    yield
    await listener.stop()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def health(request: web.Request) -> web.Response:
    listener = request.app[LISTENER]
    return web.json_response({
        "ami_connected": listener.session.connected.is_set(),
        "ami_error": listener.session.last_error,
        "calls_in_progress": len(listener.tracker.live_calls()),
        "events_seen": listener.tracker.events_seen,
    })


def create_app(settings: Settings, *, with_listener: bool = True) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    app.cleanup_ctx.append(database_ctx)
    if with_listener:
        app.cleanup_ctx.append(listener_ctx)
        app.router.add_get("/healthz", health)
    return app


async def run_app(settings: Settings) -> None:
    """Serve until cancelled (Ctrl-C)."""
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    await site.start()
    log.info("serving on http://%s:%s", settings.http_host, settings.http_port)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
