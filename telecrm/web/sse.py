"""``GET /api/events``: live call events for this user as Server-Sent Events.

Events come from the bus (in-process, or Redis when several web processes serve
the same floor), so any process can serve any browser. A manager listens to his
phone's topic; supervisors, marketers and admins to all calls, filtered here by
what :mod:`crm_core.people.access` lets them see. These event types reach the browser:

- ``call``: a call fact (started, ringing, answered, ended...) for boards and
  pages that refresh themselves;
- ``missed``: a missed call he must return, or (a supervisor) one nobody returned in
  time: the browser shows a system notification (:mod:`telecrm.missed.alerts`);
- ``alert``: a phrase of a speech alert rule was said in a call he may see (a
  supervisor's or admin's rule): a system notification (:mod:`telecrm.speech.alerts`);
- ``live``: a call he may see, while it goes on: which stages of the client's script are
  done, the next stage's prompt, the objection just raised, the running transcript
  (:mod:`telecrm.live_prompts`);
- ``presence``: a manager he oversees (or he himself) changed his presence;
- ``screenpop``: the user's own phone is ringing with a customer: who is calling
  (the client card's essentials, or a new lead).

A comment line every few seconds keeps proxies from closing the stream. Whether each
stream's session is still valid is checked on a timer of its own, whatever the traffic
(:func:`watch_sessions`: one query a second for all the streams of a process): a stream
ends within a second of its session ending by sign-out, deactivation or expiry, so no
event reaches a browser that is no longer signed in. Signing out in this process ends
that session's streams at once. A user switched off or whose password was reset does
not wait for the timer either: the admin's request ends his streams in its own process
at once, and announces it on the bus's ``people`` topic so that every other web process
does the same (:func:`end_user_streams`, :func:`signed_out_ctx`). Either way the browser
gets a ``signed_out`` event and goes to the sign-in page.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from sqlalchemy import select

from crm_core.people import access
from crm_core.people.models import Role, User, WebSession
from crm_core.stopping import stop_tasks
from crm_core.timestamps import utcnow
from telecrm.bus import LAGGED, BusError, Subscription
from telecrm.live_events import (
    CALL_FAILED,
    CALLS_TOPIC,
    LIVE_PROMPT,
    MISSED_CALL,
    PEOPLE_TOPIC,
    SIGNED_OUT,
    SPEECH_ALERT,
    extension_topic,
    signed_out_message,
)
from telecrm.web.auth import api_user
from telecrm.web.errors import ApiError
from telecrm.web.keys import BUS, EVENT_STREAMS, SESSIONS, WEB_CONFIG, WEB_SESSION
from telecrm.web.present import client_summary, phone

log = logging.getLogger(__name__)

RINGING = "ringing"
PRESENCE = "presence"  # a manager's presence changed (telecrm.presence.queue)
RESUBSCRIBE_SECONDS = 5.0  # the people topic, after the bus failed
SESSION_CHECK_SECONDS = 1.0  # how late a stream may end after its session did


class EventStream:
    """One open event stream, and whose it is, so that signing him out can end it."""

    def __init__(self, user_id: int, session_id: int | None,
                 subscription: Subscription) -> None:
        self.user_id = user_id
        self.session_id = session_id
        self.subscription = subscription
        self.signed_out = False

    async def close(self) -> None:
        """End the stream (shutdown): the browser reconnects to another process."""
        await self.subscription.close()

    async def sign_out(self) -> None:
        """End the stream with a ``signed_out`` event: the browser goes to sign in."""
        self.signed_out = True
        await self.subscription.close()


async def end_local_streams(app: web.Application, user_id: int,
                            keep_session: int | None = None) -> int:
    """Sign out ``user_id``'s streams served by this process; returns how many."""
    ended = 0
    streams: set[EventStream] = app[EVENT_STREAMS]
    for stream in list(streams):
        if stream.user_id == user_id and (keep_session is None
                                          or stream.session_id != keep_session):
            await stream.sign_out()
            ended += 1
    return ended


async def end_user_streams(app: web.Application, user_id: int,
                           keep_session: int | None = None) -> int:
    """End ``user_id``'s event streams here at once, and in every other web process.

    Call it after the transaction that ended his sessions has committed. A bus that is
    down costs only the other processes' promptness: their :func:`watch_sessions` still
    ends the streams within ``SESSION_CHECK_SECONDS``.
    """
    ended = await end_local_streams(app, user_id, keep_session)
    try:
        await app[BUS].publish(PEOPLE_TOPIC, signed_out_message(user_id, keep_session))
    except BusError as exc:
        log.warning("could not announce that user %s signed out: %s", user_id, exc)
    return ended


async def _follow_people(app: web.Application) -> None:
    """End the streams of users signed out by any process (the ``people`` topic)."""
    while True:
        try:
            subscription = await app[BUS].subscribe(PEOPLE_TOPIC)
            async with subscription:
                async for message in subscription:
                    user_id, keep = message.get("user_id"), message.get("keep_session")
                    if message.get("kind") == SIGNED_OUT and isinstance(user_id, int):
                        await end_local_streams(app, user_id,
                                                keep if isinstance(keep, int) else None)
        except BusError as exc:
            log.warning("sign-outs from other processes unavailable: %s", exc)
        except Exception:  # never let one bad message end the follower for good
            log.exception("following sign-outs failed; following again")
        await asyncio.sleep(RESUBSCRIBE_SECONDS)


async def end_lapsed_streams(app: web.Application) -> int:
    """Sign out every stream of this process whose session or user is no longer valid
    (signed out, expired, user switched off); one query for all. Returns how many."""
    streams: list[EventStream] = list(app[EVENT_STREAMS])
    if not streams:
        return 0
    session_ids = {s.session_id for s in streams if s.session_id is not None}
    user_ids = {s.user_id for s in streams}
    async with app[SESSIONS]() as session:
        live_sessions = set(await session.scalars(
            select(WebSession.id).join(User, User.id == WebSession.user_id).where(
                WebSession.id.in_(session_ids), WebSession.expires_at > utcnow(),
                User.active.is_(True)))) if session_ids else set()
        active_users = set(await session.scalars(
            select(User.id).where(User.id.in_(user_ids), User.active.is_(True))))
    ended = 0
    for stream in streams:
        valid = stream.user_id in active_users and (
            stream.session_id is None or stream.session_id in live_sessions)
        if not valid and not stream.signed_out:
            await stream.sign_out()
            ended += 1
    return ended


async def watch_sessions(app: web.Application, every: float = SESSION_CHECK_SECONDS) -> None:
    """End streams whose session ended, on a timer that events cannot postpone."""
    while True:
        await asyncio.sleep(every)
        try:
            await end_lapsed_streams(app)
        except Exception:  # a database hiccup: check again at the next tick
            log.exception("checking the sessions of event streams failed")


async def signed_out_ctx(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: follow the ``people`` topic and watch the streams' sessions while
    the app runs."""
    tasks = [asyncio.create_task(_follow_people(app), name="sse-signed-out"),
             asyncio.create_task(watch_sessions(app), name="sse-sessions")]
    yield
    await stop_tasks(*tasks)


class Audience:
    """Which call events one user may receive."""

    def __init__(self, user: User, extensions: set[str], queue: str | None) -> None:
        self.user = user
        self.extensions = extensions
        self.queue = queue

    @property
    def topic(self) -> str:
        if self.user.role == Role.MANAGER and self.user.extension:
            return extension_topic(self.user.extension)
        return CALLS_TOPIC

    def admits(self, event: dict[str, Any]) -> bool:
        role = self.user.role
        if role == Role.ADMIN:
            return True
        if role == Role.MARKETER:
            return event.get("direction") != "internal"
        involved = {event.get("extension"), *event.get("rang", ()), *event.get("managers", ())}
        if involved & self.extensions:
            return True
        return bool(self.queue) and event.get("queue") == self.queue

    def sees_presence(self, event: dict[str, Any]) -> bool:
        """A manager's own change (his other tabs), his team's for a supervisor, all for admins."""
        if self.user.role == Role.ADMIN:
            return True
        if self.user.role == Role.MARKETER:
            return False
        return event.get("extension") in self.extensions

    def pops(self, event: dict[str, Any]) -> bool:
        """Is this his own phone ringing with a customer?"""
        return (event.get("kind") == RINGING and bool(self.user.extension)
                and event.get("extension") == self.user.extension
                and event.get("direction") != "internal")


async def audience_for(request: web.Request, user: User) -> Audience:
    async with request.app[SESSIONS]() as session:
        people = await access.team_members(session, user)
        queue = await access.team_queue(session, user)
    return Audience(user, {p.extension for p in people if p.extension}, queue)


async def screen_pop(request: web.Request, user: User, event: dict[str, Any]) -> dict[str, Any]:
    """The caller's card essentials, or a new lead when the number is unknown."""
    number = event.get("client_number")
    pop: dict[str, Any] = {"call_id": event.get("call_id"), "linkedid": event.get("linkedid"),
                           "number": number, "number_display": phone(number) if number else None,
                           "did": event.get("did"),
                           "client": None, "is_new_lead": number is not None}
    client_id = event.get("client_id")
    if isinstance(client_id, int):
        async with request.app[SESSIONS]() as session:
            client = await access.visible_client(session, user, client_id)
        if client is not None:
            summary = client_summary(client)
            pop["client"] = summary
            pop["is_new_lead"] = summary["is_new_lead"]
    return pop


def _frame(kind: str, data: dict[str, Any]) -> bytes:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {kind}\ndata: {text}\n\n".encode()


async def events(request: web.Request) -> web.StreamResponse:
    user = api_user(request)
    audience = await audience_for(request, user)
    try:
        subscription = await request.app[BUS].subscribe(audience.topic)
    except BusError as exc:
        log.warning("live events unavailable: %s", exc)
        raise ApiError(503, "live.unavailable") from None
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-cache, no-store",
        "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
    })
    streams = request.app[EVENT_STREAMS]
    web_session = request.get(WEB_SESSION)
    stream = EventStream(user.id, web_session.id if web_session is not None else None,
                         subscription)
    streams.add(stream)
    heartbeat = request.app[WEB_CONFIG].sse_heartbeat_seconds
    try:
        await response.prepare(request)
        await response.write(b"retry: 2000\n: connected\n\n")
        iterator = aiter(subscription)
        while True:
            try:
                event = await asyncio.wait_for(anext(iterator), heartbeat)
            except TimeoutError:
                # no session query here: watch_sessions checks every stream's at once
                await response.write(b": ping\n\n")
                continue
            except (StopAsyncIteration, BusError):
                if stream.signed_out:
                    await response.write(_frame(SIGNED_OUT, {}))
                break
            if stream.signed_out:  # an event that arrived as the session ended: not his
                await response.write(_frame(SIGNED_OUT, {}))
                break
            if event.get("kind") == LAGGED:
                await response.write(_frame("reload", {"dropped": event.get("dropped")}))
                continue
            if event.get("kind") == MISSED_CALL:  # a notice for the users it names only
                if user.id in event.get("user_ids", ()):
                    await response.write(_frame("missed", event))
                continue
            if event.get("kind") == SPEECH_ALERT:  # likewise, for the users it names
                if user.id in event.get("user_ids", ()):
                    await response.write(_frame("alert", event))
                continue
            if event.get("kind") == LIVE_PROMPT:  # a live call's prompts, for who sees the call
                if audience.admits(event):
                    await response.write(_frame("live", event))
                continue
            if event.get("kind") == CALL_FAILED:  # his own click-to-call, told late
                if user.extension and event.get("extension") == user.extension:
                    await response.write(_frame("callfailed", event))
                continue
            if event.get("kind") == PRESENCE:
                if audience.sees_presence(event):
                    await response.write(_frame(PRESENCE, event))
                continue
            if not audience.admits(event):
                continue
            if audience.pops(event):
                await response.write(_frame("screenpop", await screen_pop(request, user, event)))
            await response.write(_frame("call", event))
    except ConnectionResetError:
        pass  # the browser went away
    finally:
        streams.discard(stream)
        with contextlib.suppress(Exception):
            await subscription.close()
    return response
