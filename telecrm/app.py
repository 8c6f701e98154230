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
import functools
import logging
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from aiohttp import web
from redis.asyncio import Redis

from crm_core.calls.snapshot import DEFAULT_PBX
from crm_core.db import create_engine, session_factory, upgrade
from crm_core.people.models import Role
from crm_core.people.sessions import purge_expired
from crm_core.people.users import first_device
from crm_core.stopping import stop_tasks
from pbx_bridge.ami import AmiSession, AmiSettings
from pbx_bridge.channels import PartyRules
from pbx_bridge.pipeline import CaptureWriter, Listener, on_pbx_facts
from pbx_bridge.store import CallStore
from pbx_bridge.tracker import CallTracker
from recordings.config import RecordingsConfig
from recordings.retention import daily as retention_daily
from recordings.store import open_store
from recordings.worker import FinalizeWorker
from telecrm.ami_relay import RelayClient, RelayServer, RemoteAmiSession, RemoteListener
from telecrm.bus import create_bus
from telecrm.calltracking.conversion_upload import conversions_ctx_for
from telecrm.calltracking.live import SourceOnChannel, then
from telecrm.calltracking.public import calltracking_ctx
from telecrm.election import Election, elected, role_lock
from telecrm.integrations.sender import webhooks_ctx
from telecrm.live_events import CALL_FAILED, LiveEventSink, extension_topic, store_then_publish
from telecrm.live_prompts import LivePrompts
from telecrm.messages import phone_refusal, sentence
from telecrm.metrics import setup_metrics
from telecrm.missed.alerts import missed_alerts_ctx
from telecrm.pbxes.targets import PbxTarget, pbx_of_extension, pbx_targets
from telecrm.presence.queue import pauses_ctx
from telecrm.recordings.routes import RECORDINGS_STORE
from telecrm.routing.lookup import routing_ctx
from telecrm.sales import nightly as sales_nightly
from telecrm.settings import Settings
from telecrm.settle import settle
from telecrm.speech.alerts import speech_alerts_ctx
from telecrm.speech.service import SPEECH_QUEUES, speech_ctx
from telecrm.talktime import board as talktime
from telecrm.web import server as http_server
from telecrm.web.clicktocall import TELEPHONY_LOST, Attempt, ClickToCall
from telecrm.web.config import WebConfig
from telecrm.web.keys import (
    BUS,
    CALL_HOOKS,
    CLICK_TO_CALL,
    ELECTIONS,
    EVENT_STREAMS,
    LISTENER,
    LISTENERS,
    LIVE_PROMPTS,
    PBX_ROOTS,
    SESSIONS,
    SETTINGS,
    THROTTLE,
    USER,
    WEB_CONFIG,
    WRITER_SESSIONS,
)
from telecrm.web.site import setup_web
from telecrm.web.throttle import LoginThrottle, MemoryThrottle, RedisThrottle
from telecrm.wiring import call_hooks, party_rules

__all__ = ["LISTENER", "SESSIONS", "SETTINGS", "WRITER_SESSIONS", "create_app", "run_app"]

log = logging.getLogger(__name__)


def ami_settings(settings: Settings) -> AmiSettings:
    return AmiSettings(host=settings.ami_host, port=settings.ami_port,
                       username=settings.ami_user, secret=settings.ami_secret)


# At a peak a process opens up to this many times TELECRM_DB_POOL_SIZE connections.
PEAK_CONNECTIONS = 3


def pool_options(settings: Settings) -> dict[str, int]:
    """The connection pool of a process on PostgreSQL: up to three times
    ``TELECRM_DB_POOL_SIZE`` connections, opened as the load asks and then kept; none
    for SQLite.

    Kept, because SQLAlchemy closes the connections beyond its ``pool_size`` as each
    comes back: every burst of pages then opened them again (a new backend, a sign-in,
    each statement prepared anew on it) at the moment the process was busiest, which
    kept the burst's queue from draining (bench/RESULTS.md, the floor's pool).
    """
    if settings.resolved_database_url.startswith("sqlite"):
        return {}
    return {"pool_size": PEAK_CONNECTIONS * settings.db_pool_size, "max_overflow": 0}


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade(url)
    engine = create_engine(url, **pool_options(settings))
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
    then published as live events (screen pop, boards). Several processes may listen to
    the same PBX: they elect one active listener per PBX (:mod:`telecrm.election`); the
    others stand by, connect to nothing, and one of them takes over when it dies.
    """
    settings = app[SETTINGS]
    live = LiveEventSink(app[BUS], app[SESSIONS])
    async with app[SESSIONS]() as session:
        rules = await party_rules(session, settings)
        targets = await pbx_targets(session, settings)
    listeners: dict[str, Listener] = {}  # the PBXs this process is the active listener of
    app[LISTENERS] = listeners
    app[PBX_ROOTS] = {target.name: target.recordings_source for target in targets}
    current = PartyRulesHolder(rules)
    elections = app[ELECTIONS]
    async with contextlib.AsyncExitStack() as stack:
        if settings.live_prompts:  # before the listeners: their facts start the taps
            prompts = LivePrompts(settings, app[BUS], app[SESSIONS])
            await prompts.start()
            stack.push_async_callback(prompts.close)
            app[LIVE_PROMPTS] = prompts
        for target in targets:  # (in pbx_role, a listener replaces any stand-in)
            election = Election(role_lock(settings.resolved_database_url,
                                          f"listener:{target.name}"),
                                functools.partial(pbx_role, app, target, current, live))
            elections[f"listener:{target.name}"] = election
            await stack.enter_async_context(elected(election))
        if listeners:  # active from the start (a lone process): the default one, as before
            app[LISTENER] = listeners.get(DEFAULT_PBX) or next(iter(listeners.values()))
        refresh = asyncio.create_task(refresh_party_rules(app, current), name="party-rules")
        yield
        await stop_tasks(refresh)


class PartyRulesHolder:
    """The users' phones as last read, handed to each listener when it starts."""

    def __init__(self, rules: PartyRules) -> None:
        self.rules = rules


@contextlib.asynccontextmanager
async def pbx_role(app: web.Application, target: PbxTarget, current: PartyRulesHolder,
                   live: LiveEventSink, election: Election) -> AsyncIterator[Listener]:
    """Listen to one PBX while this process holds its lock.

    On shutdown the listener stores what it already received; when the lock was lost it
    stops at once instead (another process is taking over and writes from now on)."""
    listener = pbx_listener(app, target, current.rules, live)
    task = asyncio.create_task(listener.run(), name=f"ami-listener-{target.name}")
    app[LISTENERS][target.name] = listener
    redis_url = app[SETTINGS].redis_url
    redis = Redis.from_url(redis_url, decode_responses=True) if redis_url else None
    relay = (asyncio.create_task(RelayServer(redis, target.name, listener.session,
                                             listener.tracker).run(),
                                 name=f"ami-relay-{target.name}")
             if redis is not None else None)  # AMI actions of web processes
    try:
        yield listener
    finally:
        if relay is not None and redis is not None:
            await stop_tasks(relay)
            await redis.aclose()
        if app[LISTENERS].get(target.name) is listener:
            del app[LISTENERS][target.name]  # a stand-in comes back (telecrm.ami_relay)
        if election.lost:
            await stop_tasks(task)
            await listener.session.stop()
        else:
            await listener.stop()
            await stop_tasks(task)


def pbx_listener(app: web.Application, target: PbxTarget, rules: PartyRules,
                 live: LiveEventSink) -> Listener:
    """The listener of one PBX: its tracker, its capture folder, its recordings source."""
    store = CallStore(app[WRITER_SESSIONS], app[CALL_HOOKS],
                      recordings_root=target.recordings_source, pbx=target.name)
    listener: Listener | None = None
    # call tracking: the call's source on its Asterisk channel while it rings (this PBX's)
    source = SourceOnChannel(app[SESSIONS], lambda: listener.session if listener else None)
    after = then(live, source)
    prompts = app.get(LIVE_PROMPTS)
    if prompts is not None:  # live prompts: tap the answered calls of this PBX
        after = then(after, prompts.tap_sink(lambda: listener.session if listener else None))
    listener = Listener(target.ami,
                        on_pbx_facts(target.name, store_then_publish(store, after)),
                        tracker=CallTracker(rules), close_orphans=store.close_orphans,
                        capture=CaptureWriter(target.capture_dir))
    return listener


PARTY_RULES_REFRESH_SECONDS = 30.0


async def refresh_party_rules(app: web.Application, current: PartyRulesHolder) -> None:
    """Re-read users' devices and mobiles, so a phone added by an admin counts within 30 s.

    The tracker reads its rules as each channel appears; a call already ringing keeps
    the owners it was given.
    """
    while True:
        await asyncio.sleep(PARTY_RULES_REFRESH_SECONDS)
        try:
            async with app[SESSIONS]() as session:
                current.rules = await party_rules(session, app[SETTINGS])
            for listener in list(app[LISTENERS].values()):
                listener.tracker.rules = current.rules
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
    await stop_tasks(*tasks)


Ctx = Callable[[web.Application], AsyncIterator[None]]


def jobs_ctx(parts: Sequence[Ctx]) -> Ctx:
    """The background jobs of the listener role (recordings, nightly rules, transcription,
    missed-call notices), run by one process at a time: the holder of the ``jobs`` lock.

    Each part is an ordinary ``cleanup_ctx`` generator, entered in order when this process
    becomes the holder and left in reverse order when it stops or loses the lock."""
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        @contextlib.asynccontextmanager
        async def role(election: Election) -> AsyncIterator[None]:
            async with contextlib.AsyncExitStack() as stack:
                for part in parts:
                    await stack.enter_async_context(contextlib.asynccontextmanager(part)(app))
                yield

        election = Election(role_lock(app[SETTINGS].resolved_database_url, "jobs"), role)
        app[ELECTIONS]["jobs"] = election
        async with elected(election):
            yield

    return ctx


async def click_to_call_ctx(app: web.Application) -> AsyncIterator[None]:
    """Click-to-call (and listening in, queue pauses) goes through an AMI login: this
    process's listener of the PBX when it is the active one, else, with Redis, the active
    listener's in another process (:mod:`telecrm.ami_relay`); with several PBXs, the one
    where the manager's extension was last seen on a call."""
    settings = app[SETTINGS]
    async with app[SESSIONS]() as session:
        names = [target.name for target in await pbx_targets(session, settings)]
    relay = RelayClient(settings.redis_url, names) if settings.redis_url else None
    if relay is not None:
        # The pages see every PBX's calls in progress: the PBXs this process is not the
        # active listener of (all, in a web process) through Redis.
        if LISTENERS not in app:
            app[LISTENERS] = {}
        relay.stand_in(app[LISTENERS])  # type: ignore[arg-type]
        await relay.start()

    def ami(pbx: str | None = None) -> AmiSession | RemoteAmiSession | None:
        listener = app.get(LISTENERS, {}).get(pbx) if pbx else default_listener(app)
        if listener is not None:
            return listener.session
        if relay is None or not names:
            return None
        return relay.session(pbx or (DEFAULT_PBX if DEFAULT_PBX in names else names[0]))

    async def pbx_of(extension: str) -> str | None:
        if len(names) < 2:
            return None  # one PBX: nothing to choose
        async with app[SESSIONS]() as session:
            return await pbx_of_extension(session, extension)

    async def device_of(extension: str) -> str | None:
        async with app[SESSIONS]() as session:
            return await first_device(session, extension)

    async def tell_manager(attempt: Attempt, kind: str) -> None:
        """His phone did not take the call after the page had been told «Звоним»: his
        browser (any web process serving his stream) shows why."""
        bus = app.get(BUS)
        if bus is None:
            return
        await bus.publish(extension_topic(attempt.extension), {
            "kind": CALL_FAILED, "extension": attempt.extension, "number": attempt.number,
            "action_id": attempt.action_id,
            "message": sentence("telephony.unavailable") if kind == TELEPHONY_LOST
            else sentence("calls.originate_failed", {"reason": phone_refusal(kind)})})

    service = ClickToCall(ami, pbx_of=pbx_of, device_of=device_of,
                          context=settings.dial_context, ring_timeout=settings.ring_seconds,
                          on_late_failure=tell_manager)
    app[CLICK_TO_CALL] = service
    yield
    await service.close()
    if relay is not None:
        await relay.close()


def default_listener(app: web.Application) -> Listener | None:
    """The running listener of the default PBX, else of any PBX (None on a standby)."""
    listeners = app.get(LISTENERS)
    if listeners is None:  # an app built without listener_ctx (tests hand one in)
        return app.get(LISTENER)
    return listeners.get(DEFAULT_PBX) or next(iter(listeners.values()), None)


def _listener_health(listener: Listener) -> dict[str, Any]:
    return {"ami_connected": listener.session.connected.is_set(),
            "ami_error": listener.session.last_error,
            "calls_in_progress": len(listener.tracker.live_calls()),
            "events_seen": listener.tracker.events_seen}


async def health(request: web.Request) -> web.Response:
    """``GET /healthz``: ``{"status": "ok"}`` (200) or ``"degraded"`` (503, a PBX's AMI is
    down) for anyone, such as a load balancer; the details (each listener's connection,
    last error, which names the PBX's host and port, and which roles this process holds
    or stands by for) only for a signed-in admin. A standby is healthy: it is ready."""
    listener = default_listener(request.app)
    # A web process's view of other processes' listeners is not its own health.
    listeners = {name: each for name, each in request.app.get(LISTENERS, {}).items()
                 if not isinstance(each, RemoteListener)}
    if isinstance(listener, RemoteListener):
        listener = None
    if listener is not None and not listeners and LISTENERS not in request.app:
        listeners = {DEFAULT_PBX: listener}
    healthy = all(each.session.connected.is_set() for each in listeners.values())
    body: dict[str, Any] = {"status": "ok" if healthy else "degraded"}
    user = request.get(USER)
    if user is not None and user.role == Role.ADMIN:
        # The default PBX's listener at the top level (as before), every PBX's under pbxes.
        body.update(_listener_health(listener) if listener is not None
                    else {"ami_connected": False, "ami_error": "no AMI listener"})
        body["pbxes"] = {name: _listener_health(each) for name, each in listeners.items()}
        body["roles"] = {name: "active" if election.active.is_set() else "standby"
                         for name, election in request.app.get(ELECTIONS, {}).items()}
    return web.json_response(body, status=200 if healthy else 503,
                             headers={"Cache-Control": "no-store"})


def login_throttle(settings: Settings, config: WebConfig) -> LoginThrottle:
    """Shared through Redis when it is configured (several web processes count together),
    else in this process's memory."""
    limits = (config.login_failures_per_user, config.login_failures_per_ip,
              config.login_failures_per_account, config.login_window_seconds)
    if settings.redis_url:
        return RedisThrottle(settings.redis_url, *limits)
    return MemoryThrottle(*limits)


async def _close_throttle(app: web.Application) -> None:
    await app[THROTTLE].close()


def create_app(settings: Settings, *, with_listener: bool = True, with_web: bool = True,
               web_config: WebConfig | None = None,
               missed_alerts: bool | None = None,
               webhooks: bool | None = None) -> web.Application:
    """The CRM's process: the web role (pages, JSON API, live events) and the listener role
    (AMI listeners and background jobs, each elected among the processes that run it).

    ``with_listener=False`` serves without touching Asterisk (``serve --web``);
    ``with_web=False`` serves only ``/healthz`` (``serve --listener``). Missed-call notices
    run with the listener role unless ``missed_alerts`` says otherwise, and so does the
    webhook sender unless ``webhooks`` does."""
    config = web_config or WebConfig.from_settings(settings)
    app = web.Application(client_max_size=config.max_body_bytes)
    app[SETTINGS] = settings
    app[CALL_HOOKS] = call_hooks()
    app[WEB_CONFIG] = config
    app[ELECTIONS] = {}
    app[SPEECH_QUEUES] = []  # filled by the jobs role, which may start long after start-up
    app[RECORDINGS_STORE] = open_store(recordings_config(settings))  # player and finalizer
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(bus_ctx)
    alerts = with_listener if missed_alerts is None else missed_alerts
    sender = with_listener if webhooks is None else webhooks
    if with_listener:
        app.cleanup_ctx.append(listener_ctx)
        jobs: list[Ctx] = [recordings_ctx, talktime.daily_close_ctx,
                           sales_nightly.sales_nightly_ctx,
                           speech_ctx]  # transcription, when TELECRM_VOSK_MODEL is set
        if alerts:
            jobs.append(missed_alerts_ctx)  # owners and supervisors told of misses
            jobs.append(speech_alerts_ctx)  # and of phrases their alert rules watch for
            jobs.append(conversions_ctx_for(settings))  # calls and deals to the ad systems
        if sender:
            jobs.append(webhooks_ctx)  # other systems told of calls, deals, script checks
        app.cleanup_ctx.append(jobs_ctx(jobs))
    else:
        if alerts:
            app.cleanup_ctx.append(missed_alerts_ctx)
            app.cleanup_ctx.append(speech_alerts_ctx)
            app.cleanup_ctx.append(conversions_ctx_for(settings))
        if sender:
            app.cleanup_ctx.append(webhooks_ctx)
    app.cleanup_ctx.append(click_to_call_ctx)  # through this process's listeners, if any
    if with_listener:
        app.cleanup_ctx.append(pauses_ctx)  # pauses again after Asterisk (re)connects
    app.router.add_get("/healthz", health)
    if with_web:
        app[THROTTLE] = login_throttle(settings, config)
        app.on_cleanup.append(_close_throttle)
        app.cleanup_ctx.append(calltracking_ctx)  # call-tracking leases (Redis or in-process)
        app.cleanup_ctx.append(routing_ctx)  # sticky routing: the dialplan's owner lookup
        app.on_shutdown.append(close_event_streams)
        setup_web(app)
    setup_metrics(app, for_people=with_web)  # last: it observes the listeners above
    return app


async def run_app(settings: Settings, *, web_role: bool = True,
                  listener_role: bool = True) -> int | None:
    """Serve until asked to stop: SIGTERM (systemd, Docker) or SIGINT (Ctrl-C), with the
    roles asked for (both by default). Both signals take the same clean way out, batches
    written, the listener's log in order, child processes ended: Ctrl-C no longer cancels
    the main task mid-await (asyncio's own SIGINT handling), which under load left a
    shutdown waiting for ever. Returns the signal that stopped it."""
    app = create_app(settings, with_listener=listener_role, with_web=web_role)
    runner = await http_server.start(app, settings.http_host, settings.http_port,
                                     shutdown_timeout=REQUEST_GRACE_SECONDS,
                                     before_listening=settle)
    roles = " and ".join(name for name, on in (("web", web_role), ("listener", listener_role))
                         if on)
    log.info("serving (%s) on http://%s:%s", roles, settings.http_host, settings.http_port)
    stop = asyncio.Event()
    received: list[int] = []
    loop = asyncio.get_running_loop()

    def ask_to_stop(signum: int) -> None:
        received.append(signum)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, ask_to_stop, signum)
    try:
        await stop.wait()
        log.info("asked to stop (%s): shutting down", signal.Signals(received[0]).name)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        watchdog = asyncio.ensure_future(_report_slow_shutdown(asyncio.current_task()))
        try:
            await runner.cleanup()
        finally:
            watchdog.cancel()
    return received[0] if received else None


SLOW_SHUTDOWN_SECONDS = 15.0
# On a stop, requests in flight get this long to finish (event streams are closed at
# once); well inside systemd's TimeoutStopSec (30 s, deploy/systemd/), so the batches
# and the history writer still end cleanly after them.
REQUEST_GRACE_SECONDS = 10.0


def _awaiting(coro: Any) -> list[str]:
    """Where a coroutine waits: its frame, then what it awaits, down the chain."""
    where: list[str] = []
    while coro is not None and len(where) < 40:
        frame = (getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
                 or getattr(coro, "ag_frame", None))
        if frame is None:
            break
        name = frame.f_code.co_filename.rsplit("/", 2)
        where.append(f"{'/'.join(name[-2:])}:{frame.f_lineno} {frame.f_code.co_name}")
        coro = (getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
                or getattr(coro, "ag_await", None))
    return where


async def _report_slow_shutdown(main: asyncio.Task[Any] | None) -> None:
    """Log what a shutdown still waits for once it has taken SLOW_SHUTDOWN_SECONDS, every
    task with where it waits, so an operator (or a test) sees why a stop hangs."""
    await asyncio.sleep(SLOW_SHUTDOWN_SECONDS)
    waiting = [task for task in asyncio.all_tasks()
               if task is not asyncio.current_task() and not task.done()]
    lines = [f"{'[main] ' if task is main else ''}{task.get_name()}: "
             f"{' -> '.join(_awaiting(task.get_coro())) or '(not started)'}"
             for task in waiting]
    # A cleanup context waits inside its async generator, which a task's chain does not
    # reach (it awaits the generator's ``asend``): the generators still running, too.
    import gc
    import types

    lines += [f"context: {' -> '.join(_awaiting(gen))}" for gen in gc.get_objects()
              if isinstance(gen, types.AsyncGeneratorType) and gen.ag_running]
    log.warning("stopping takes over %.0f s; still waiting for:\n  %s",
                SLOW_SHUTDOWN_SECONDS, "\n  ".join(lines))
