"""Call facts as live events on the bus: the screen pop and the supervisor board.

``fact_to_event`` turns a tracker fact into a JSON-safe dict. ``LiveEventSink``
runs as a second sink after ``CallStore`` (see ``store_then_publish``): the call is
in the database by then, so it adds the call's id and the client's id and name,
which the tracker cannot know. Topics:

- ``calls``: every event (the supervisor board; the web layer filters per user);
- ``ext:<extension>``: events of calls that involve that phone (ringing, answered
  by a colleague, ended), for the screen pop in that manager's browser;
- ``calls`` and ``ext:<extension>`` also carry ``missed_call`` notices, each naming the
  users it is for (``user_ids``; see :mod:`telecrm.missed.alerts`), and ``speech_alert``
  notices likewise (:mod:`telecrm.speech.alerts`), and ``live_prompt`` events: a call's
  script progress and running transcript while it goes on (:mod:`telecrm.live_prompts`);
- ``ext:<extension>`` also carries ``call_failed``: a call placed from the CRM that his
  phone did not take after the web answer had gone (it did not answer in time, it was
  rejected), so his browser says so (:mod:`telecrm.web.clicktocall`);
- ``people``: a user signed out by an admin (switched off, password reset), so that
  every web process ends his event streams at once (:func:`signed_out_message`).

Live events are hints: a bus that is down costs events, never the call log. So
the sink never raises (``deliver()`` would otherwise retry the whole batch, and
stall the call log behind a pub/sub outage).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.calls.models import Call, LegRole
from crm_core.clients.models import Client
from crm_core.clients.phones import is_withheld, normalize_phone
from crm_core.timestamps import isoformat
from pbx_bridge.tracker import Fact
from telecrm.bus import Bus

log = logging.getLogger(__name__)

CALLS_TOPIC = "calls"
PEOPLE_TOPIC = "people"
SIGNED_OUT = "signed_out"
MISSED_CALL = "missed_call"  # a missed-call notice for the users it names (telecrm.missed)
SPEECH_ALERT = "speech_alert"  # a dictionary said in a call, for the users it names
LIVE_PROMPT = "live_prompt"  # a live call's script progress and transcript (telecrm.live_prompts)
CALL_FAILED = "call_failed"  # a click-to-call the manager's phone did not take, told late
FactSink = Callable[[list[Fact]], Awaitable[None]]
Identity = tuple[int, int | None, str | None]  # call id, client id, client name


def extension_topic(extension: str) -> str:
    """The topic a manager's browser subscribes to for its phone's screen pop."""
    return f"ext:{extension}"


def signed_out_message(user_id: int, keep_session: int | None = None) -> dict[str, Any]:
    """``people`` topic: end ``user_id``'s event streams (but the session ``keep_session``'s)."""
    return {"kind": SIGNED_OUT, "user_id": user_id, "keep_session": keep_session}


def _number(raw: str | None) -> str | None:
    """E.164 when the PBX gave a real number, else what it gave; None when withheld."""
    if not raw or is_withheld(raw):
        return None
    return normalize_phone(raw) or raw


def fact_to_event(fact: Fact) -> dict[str, Any]:
    """A fact as a JSON-safe event; ``call_id``/``client_id``/``client_name`` left None.

    The snapshot is the call's whole state at that moment, so a browser that missed
    earlier events can still draw the call from any one event.
    """
    call = fact.call
    internal = call.direction == "internal"
    return {
        "kind": str(fact.kind),
        "linkedid": call.linkedid,
        "at": isoformat(fact.at),
        "extension": fact.extension,
        "direction": call.direction,
        "status": call.status,
        "client_number": None if internal else _number(call.client_number),
        "did": _number(call.did),
        "queue": call.queue,
        "managers": list(call.managers),
        "rang": list(call.rang),
        "started_at": isoformat(call.started_at),
        "answered_at": isoformat(call.answered_at),
        "ended_at": isoformat(call.ended_at),
        "ring_seconds": round(call.ring_seconds, 3),
        "talk_seconds": round(call.talk_seconds, 3),
        "transferred": call.transferred,
        "recording": bool(call.recordings),
        "call_id": None,
        "client_id": None,
        "client_name": None,
    }


def event_extensions(fact: Fact) -> list[str]:
    """Extensions whose screens care about this fact: the one it names, who rang, who talked."""
    call = fact.call
    legs = (leg.extension for leg in call.legs if leg.role == LegRole.MANAGER)
    ordered = dict.fromkeys(e for e in (fact.extension, *call.rang, *call.managers, *legs) if e)
    return list(ordered)


class LiveEventSink:
    """Publishes facts to the bus, enriched with the stored call's and client's identity.

    ``sessions`` may be a read-only session factory: one query per batch.
    """

    def __init__(self, bus: Bus, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.bus = bus
        self.sessions = sessions
        self.published = 0
        self.failed = 0

    async def _identities(self, linkedids: Iterable[str]) -> dict[str, Identity]:
        wanted = set(linkedids)
        if not wanted:
            return {}
        stmt = (
            select(Call.linkedid, Call.id, Call.client_id, Client.name)
            .outerjoin(Client, Client.id == Call.client_id)
            .where(Call.linkedid.in_(wanted))
        )
        async with self.sessions() as session:
            rows = await session.execute(stmt)
            return {row[0]: (row[1], row[2], row[3]) for row in rows}

    async def __call__(self, facts: list[Fact]) -> None:
        if not facts:
            return
        try:
            known = await self._identities(fact.call.linkedid for fact in facts)
        except Exception:  # publish without the client rather than not at all
            log.warning("live events: could not look up %d calls", len(facts), exc_info=True)
            known = {}
        for fact in facts:
            event = fact_to_event(fact)
            identity = known.get(fact.call.linkedid)
            if identity is not None:
                event["call_id"], event["client_id"], event["client_name"] = identity
            topics = [CALLS_TOPIC, *(extension_topic(e) for e in event_extensions(fact))]
            try:
                for topic in topics:
                    await self.bus.publish(topic, event)
            except Exception as exc:
                self.failed += 1
                log.warning("live event %s of call %s not published: %s",
                            event["kind"], event["linkedid"], exc)  # fmt: skip
                continue
            self.published += 1


def store_then_publish(store: FactSink, live: FactSink) -> FactSink:
    """One sink for ``deliver()``: the store first (may raise: retried), then live events.

    A retried batch is stored again (idempotent) and published only once it is stored.
    """

    async def sink(facts: list[Fact]) -> None:
        await store(facts)
        await live(facts)

    return sink
