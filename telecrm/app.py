"""The aiohttp application factory: explicit wiring, no globals.

Each long-lived resource (database engine, live-event bus, AMI listener,
click-to-call) is one ``cleanup_ctx`` generator, so start-up and shutdown order
is visible in one place and tests can build an app with exactly the parts they
need. The web layer (pages, JSON API, live events) is wired by
:func:`telecrm.web.site.setup_web`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from crm_core.calls.snapshot import DEFAULT_PBX
from crm_core.db import create_engine, session_factory, upgrade
from crm_core.people.sessions import purge_expired
from pbx_bridge.ami import AmiSession, AmiSettings
from pbx_bridge.channels import PartyRules
from pbx_bridge.pipeline import CaptureWriter, Listener, on_pbx_facts
from pbx_bridge.store import CallStore
from pbx_bridge.tracker import CallTracker
from recordings.config import RecordingsConfig
from recordings.retention import daily as retention_daily
from recordings.store import open_store
from recordings.worker import FinalizeWorker
from telecrm.bus import create_bus
from telecrm.calltracking.live import SourceOnChannel, then
from telecrm.calltracking.public import calltracking_ctx
from telecrm.live_events import LiveEventSink, store_then_publish
from telecrm.pbxes.targets import PbxTarget, pbx_of_extension, pbx_targets
from telecrm.recordings.routes import RECORDINGS_STORE
from telecrm.sales import nightly as sales_nightly
from telecrm.settings import Settings
from telecrm.speech.service import speech_ctx
from telecrm.talktime import board as talktime
from telecrm.web.clicktocall import ClickToCall
from telecrm.web.config import WebConfig
from telecrm.web.keys import (
    BUS,
    CALL_HOOKS,
    CLICK_TO_CALL,
    EVENT_STREAMS,
    LISTENER,
    LISTENERS,
    PBX_ROOTS,
    SESSIONS,
    SETTINGS,
    THROTTLE,
    WEB_CONFIG,
    WRITER_SESSIONS,
)
from telecrm.web.site import setup_web
from telecrm.web.throttle import LoginThrottle
from telecrm.wiring import call_hooks, party_rules

__all__ = ["LISTENER", "SESSIONS", "SETTINGS", "WRITER_SESSIONS", "create_app", "run_app"]

log = logging.getLogger(__name__)


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
    async with app[WRITER_SESSIONS]() as session, session.begin():
        await purge_expired(session)
    yield
    await engine.dispose()


async def bus_ctx(app: web.Application) -> AsyncIterator[None]:
    """Live events: in-process by default, Redis when several web processes serve."""
    bus = create_bus(app[SETTINGS])
    app[BUS] = bus
    app[EVENT_STREAMS] = set()
    yield
    await bus.close()


async def close_event_streams(app: web.Application) -> None:
    """On shutdown, end open SSE streams so the server stops without waiting for browsers."""
    for stream in list(app[EVENT_STREAMS]):
        with contextlib.suppress(Exception):
            await stream.close()


async def listener_ctx(app: web.Application) -> AsyncIterator[None]:
    """One AMI listener per enabled PBX beside the web app; Asterisk being down never stops
    the app.

    Each PBX has its own tracker, capture files and recordings source; its facts are
    labelled with the PBX (so two PBXs' equal linkedids stay two calls), stored first,
    then published as live events (screen pop, boards).
    """
    settings = app[SETTINGS]
    live = LiveEventSink(app[BUS], app[SESSIONS])
    async with app[SESSIONS]() as session:
        rules = await party_rules(session, settings)
        targets = await pbx_targets(session, settings)
    listeners: dict[str, Listener] = {}
    tasks: list[asyncio.Task[None]] = []
    for target in targets:
        listener = pbx_listener(app, target, rules, live)
        listeners[target.name] = listener
        tasks.append(asyncio.create_task(listener.run(), name=f"ami-listener-{target.name}"))
    app[LISTENERS] = listeners
    app[PBX_ROOTS] = {target.name: target.recordings_source for target in targets}
    if listeners:
        app[LISTENER] = listeners.get(DEFAULT_PBX) or next(iter(listeners.values()))
    trackers = [listener.tracker for listener in listeners.values()]
    refresh = asyncio.create_task(refresh_party_rules(app, trackers), name="party-rules")
    yield
    refresh.cancel()
    await asyncio.gather(*(listener.stop() for listener in listeners.values()))
    for task in tasks:
        task.cancel()
    for running in (refresh, *tasks):
        with contextlib.suppress(asyncio.CancelledError):
            await running


def pbx_listener(app: web.Application, target: PbxTarget, rules: PartyRules,
                 live: LiveEventSink) -> Listener:
    """The listener of one PBX: its tracker, its capture folder, its recordings source."""
    store = CallStore(app[WRITER_SESSIONS], app[CALL_HOOKS],
                      recordings_root=target.recordings_source, pbx=target.name)
    listener: Listener | None = None
    # call tracking: the call's source on its Asterisk channel while it rings (this PBX's)
    source = SourceOnChannel(app[SESSIONS], lambda: listener.session if listener else None)
    listener = Listener(target.ami,
                        on_pbx_facts(target.name, store_then_publish(store, then(live, source))),
                        tracker=CallTracker(rules), close_orphans=store.close_orphans,
                        capture=CaptureWriter(target.capture_dir))
    return listener


PARTY_RULES_REFRESH_SECONDS = 30.0


async def refresh_party_rules(app: web.Application, trackers: list[CallTracker]) -> None:
    """Re-read users' devices and mobiles, so a phone added by an admin counts within 30 s.

    The tracker reads its rules as each channel appears; a call already ringing keeps
    the owners it was given.
    """
    while True:
        await asyncio.sleep(PARTY_RULES_REFRESH_SECONDS)
        try:
            async with app[SESSIONS]() as session:
                rules = await party_rules(session, app[SETTINGS])
            for tracker in trackers:
                tracker.rules = rules
        except Exception:  # a database hiccup: keep the rules we have, try again later
            log.warning("could not re-read users' phones; keeping the previous ones",
                        exc_info=True)


def recordings_config(settings: Settings) -> RecordingsConfig:
    return RecordingsConfig(
        store_dir=settings.recordings_store_dir, audio_format=settings.recordings_format,
        retention_days=settings.recordings_retention_days, workers=settings.recordings_workers,
        store_url=settings.recordings_store, s3_endpoint_url=settings.recordings_s3_endpoint,
        s3_access_key=settings.recordings_s3_access_key,
        s3_secret_key=settings.recordings_s3_secret_key, s3_region=settings.recordings_s3_region,
        s3_ranged_get=settings.recordings_s3_ranged_get)


async def recordings_ctx(app: web.Application) -> AsyncIterator[None]:
    """Finalizes recordings of ended calls, and applies retention once a day."""
    settings = app[SETTINGS]
    config = recordings_config(settings)
    store = app[RECORDINGS_STORE]
    # Each PBX's recordings are read where that PBX writes them (listener_ctx ran first).
    roots = app.get(PBX_ROOTS, {})
    worker = FinalizeWorker(app[WRITER_SESSIONS], settings.recordings_source, store, config,
                            pbx_roots=roots)
    tasks = [asyncio.create_task(worker.run(), name="recordings-finalize"),
             asyncio.create_task(retention_daily(app[WRITER_SESSIONS], store,
                                                 config.retention_days), name="retention")]
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def click_to_call_ctx(app: web.Application) -> AsyncIterator[None]:
    """Click-to-call goes through a listener's AMI login (none without a listener): with
    several PBXs, the one where the manager's extension was last seen on a call."""
    def ami(pbx: str | None = None) -> AmiSession | None:
        listener = app.get(LISTENERS, {}).get(pbx) if pbx else app.get(LISTENER)
        return listener.session if listener is not None else None

    async def pbx_of(extension: str) -> str | None:
        if len(app.get(LISTENERS, {})) < 2:
            return None  # one PBX: nothing to choose
        async with app[SESSIONS]() as session:
            return await pbx_of_extension(session, extension)

    service = ClickToCall(ami, pbx_of=pbx_of)
    app[CLICK_TO_CALL] = service
    yield
    await service.close()


def _listener_health(listener: Listener) -> dict[str, Any]:
    return {"ami_connected": listener.session.connected.is_set(),
            "ami_error": listener.session.last_error,
            "calls_in_progress": len(listener.tracker.live_calls()),
            "events_seen": listener.tracker.events_seen}


async def health(request: web.Request) -> web.Response:
    """The default PBX's listener at the top level (as before), every PBX's under ``pbxes``."""
    listener = request.app.get(LISTENER)
    if listener is None:
        return web.json_response({"ami_connected": False, "ami_error": "no AMI listener"})
    return web.json_response({
        **_listener_health(listener),
        "pbxes": {name: _listener_health(each)
                  for name, each in request.app.get(LISTENERS, {}).items()},
    })


def create_app(settings: Settings, *, with_listener: bool = True,
               web_config: WebConfig | None = None) -> web.Application:
    """The whole CRM web app; ``with_listener=False`` serves without touching Asterisk."""
    config = web_config or WebConfig.from_settings(settings)
    app = web.Application(client_max_size=config.max_body_bytes)
    app[SETTINGS] = settings
    app[CALL_HOOKS] = call_hooks()
    app[WEB_CONFIG] = config
    app[RECORDINGS_STORE] = open_store(recordings_config(settings))  # player and finalizer
    app[THROTTLE] = LoginThrottle(config.login_failures_per_user, config.login_failures_per_ip,
                                  config.login_window_seconds)
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(bus_ctx)
    if with_listener:
        app.cleanup_ctx.append(listener_ctx)
        app.cleanup_ctx.append(recordings_ctx)
        app.cleanup_ctx.append(talktime.daily_close_ctx)
        app.cleanup_ctx.append(sales_nightly.sales_nightly_ctx)
        app.cleanup_ctx.append(speech_ctx)  # transcription, when TELECRM_VOSK_MODEL is set
    app.cleanup_ctx.append(click_to_call_ctx)
    app.cleanup_ctx.append(calltracking_ctx)  # call-tracking leases (Redis or in-process)
    app.on_shutdown.append(close_event_streams)
    app.router.add_get("/healthz", health)
    setup_web(app)
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
