"""What a change of presence does outside the database: Asterisk's queues and live screens.

Both happen after the change is committed, and neither can undo it: with AMI down the
state is still his (the answer says the queue was not reached), with the bus down the
supervisor's page catches up on its next refresh. Each time a listener's AMI session
connects (Asterisk restarted, or the CRM), the pauses are applied again
(:func:`pauses_ctx`): Asterisk does not keep a static member's pause over a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from crm_core.people.models import User
from crm_core.presence.services import State, current_states
from crm_core.stopping import stop_tasks
from crm_core.timestamps import isoformat
from pbx_bridge.actions import queue_pause
from pbx_bridge.ami import AmiError
from pbx_bridge.pipeline import Listener
from telecrm.live_events import CALLS_TOPIC, extension_topic
from telecrm.web.keys import BUS, CLICK_TO_CALL, LISTENERS, SESSIONS

log = logging.getLogger(__name__)

PRESENCE = "presence"  # the live event's kind and its SSE event type

# What happened to his queue membership, as the answer says it.
PAUSED, UNPAUSED, UNREACHABLE, NOT_MEMBER = "paused", "unpaused", "unreachable", "not_member"


def interfaces(extension: str | None, devices: list[str]) -> list[str]:
    """Where the queues may know him: ``PJSIP/<extension>`` and each device of his."""
    found = [f"PJSIP/{extension}"] if extension else []
    return list(dict.fromkeys([*found, *devices]))


async def apply_to_queues(app: web.Application, extension: str | None, devices: list[str],
                          state: State) -> str:
    """Pause (or unpause) every interface of his in every queue, through the PBX he is on."""
    paused = not state.present and state.pauses_queue
    if not extension:
        return NOT_MEMBER
    session = await app[CLICK_TO_CALL].session_for(extension)
    if session is None or not session.connected.is_set():
        log.warning("presence of %s: AMI is not connected, queues not %s", extension,
                    "paused" if paused else "unpaused")
        return UNREACHABLE
    member = False
    try:
        for interface in interfaces(extension, devices):
            member = await queue_pause(session, interface, paused, reason=state.name) or member
    except AmiError as exc:
        log.warning("presence of %s: QueuePause failed: %s", extension, exc)
        return UNREACHABLE
    if not member:
        return NOT_MEMBER
    return PAUSED if paused else UNPAUSED


def presence_event(manager: User, state: State, queue: str) -> dict[str, Any]:
    """The live event: who, which state since when, and what his queues did."""
    return {"kind": PRESENCE, "extension": manager.extension, "user_id": manager.id,
            "name": manager.name, "state": state.key, "state_name": state.name,
            "present": state.present, "since": isoformat(state.since), "queue": queue}


async def publish(app: web.Application, manager: User, state: State, queue: str) -> None:
    """To his supervisors' boards (``calls``) and his own other tabs (``ext:<extension>``)."""
    event = presence_event(manager, state, queue)
    topics = [CALLS_TOPIC] + ([extension_topic(manager.extension)] if manager.extension else [])
    try:
        for topic in topics:
            await app[BUS].publish(topic, event)
    except Exception as exc:  # a hint for screens: never fail the change for it
        log.warning("presence event of %s not published: %s", manager.extension, exc)


# -- after Asterisk (re)connects -----------------------------------------------------------

WATCH_SECONDS = 2.0


async def reapply_pauses(app: web.Application) -> int:
    """Pause again everyone paused in the CRM; returns how many managers were reached.

    Asterisk forgets a static queue member's pause when it restarts, and pauses made
    while AMI was down never reached it: the CRM's state is the one that counts.
    """
    async with app[SESSIONS]() as session:
        users = list(await session.scalars(
            select(User).options(selectinload(User.phones))
            .where(User.active.is_(True), User.extension.is_not(None))))
        states = await current_states(session, [u.id for u in users])
    reached = 0
    for user in users:
        state = states[user.id]
        if state.present or not state.pauses_queue:
            continue
        if await apply_to_queues(app, user.extension, list(user.devices), state) == PAUSED:
            reached += 1
    return reached


async def pauses_ctx(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx`` (after the listeners'): re-apply pauses each time AMI connects."""
    async def watch() -> None:
        seen: dict[str, bool] = {}
        while True:
            for name, listener in app.get(LISTENERS, {}).items():
                if not isinstance(listener, Listener):
                    continue  # another process's listener: it re-applies them itself
                up = listener.session.connected.is_set()
                if up and not seen.get(name, False):
                    try:
                        reached = await reapply_pauses(app)
                        if reached:
                            log.info("presence: %d paused managers paused again on %s",
                                     reached, name)
                    except Exception:  # next connection tries again
                        log.warning("presence: could not re-apply pauses", exc_info=True)
                seen[name] = up
            await asyncio.sleep(WATCH_SECONDS)

    task = asyncio.create_task(watch(), name="presence-pauses")
    yield
    await stop_tasks(task)
