"""AMI actions and live calls for processes that do not listen: the active listener's.

A web process (``serve --web``) never logs in to Asterisk, yet click-to-call, listening
in and queue pauses need an AMI login, and the wallboard, the live calls to listen in on
and the sticky-routing lookup need the calls in progress. With Redis configured, such a
process sends each action through Redis to whichever process is the PBX's active
listener at that moment (:mod:`telecrm.election`), which runs it on its own AMI session
and sends the answer back, and reads the calls that listener publishes. Only the active
listener takes requests and publishes, so after a failover the new one does.

- requests: a Redis list per PBX, ``telecrm:ami:<pbx>:requests``; each request names
  its reply list and a deadline: a request nobody took in time (no active listener) is
  dropped, so a manager's phone never rings long after his click;
- "connected": a key per PBX the active listener refreshes every second while its AMI
  login is up, so a web process can say at once that the PBX is unreachable;
- "live": the tracker's calls in progress, refreshed every second with the same key's
  life; a web process reads them every second and moves their ring and talk times on
  to the moment it is asked (:class:`RemoteListener` stands where a listener would).

The answer is what :meth:`pbx_bridge.ami.AmiSession.action` returns, as plain dicts
(callers read headers with ``.get``), or the listener's error as :class:`AmiError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from crm_core.calls.snapshot import CallData, LegData, RecordingRef
from crm_core.clock import utcnow
from crm_core.stopping import stop_tasks
from pbx_bridge.ami import AmiError, AmiSession
from pbx_bridge.tracker import CallTracker

log = logging.getLogger(__name__)

PREFIX = "telecrm:ami"
# What web processes send (click-to-call and listening in originate, pauses): nothing
# else is run for them, whoever else may write to Redis.
RELAYED_ACTIONS = frozenset({"originate", "queuepause"})
TAKE_WITHIN = 5.0  # seconds a request may wait for a listener to take it
ALIVE_MS = 3000  # the "connected" key outlives one missed refresh
REFRESH_SECONDS = 1.0
# Deletes the keys only while they still hold this listener's token: a listener that
# stops after its successor took over must not say the PBX is gone.
_DELETE_OWN = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
local live = redis.call('GET', KEYS[2])
if live and cjson.decode(live).by == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 0
"""


def requests_key(pbx: str) -> str:
    return f"{PREFIX}:{pbx}:requests"


def alive_key(pbx: str) -> str:
    return f"{PREFIX}:{pbx}:connected"


def live_key(pbx: str) -> str:
    return f"{PREFIX}:{pbx}:live"


# -- calls in progress as JSON ----------------------------------------------------------

def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _at(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def encode_call(call: CallData) -> dict[str, Any]:
    data = dataclasses.asdict(call)
    for key in ("started_at", "answered_at", "ended_at"):
        data[key] = _when(getattr(call, key))
    data["legs"] = [{**dataclasses.asdict(leg), "started_at": _when(leg.started_at),
                     "answered_at": _when(leg.answered_at), "ended_at": _when(leg.ended_at),
                     "bridged_at": _when(leg.bridged_at)} for leg in call.legs]
    return data


def decode_call(data: dict[str, Any]) -> CallData:
    legs = tuple(LegData(**{**leg, "started_at": _at(leg["started_at"]),
                            "answered_at": _at(leg["answered_at"]),
                            "ended_at": _at(leg["ended_at"]),
                            "bridged_at": _at(leg["bridged_at"])}) for leg in data["legs"])
    return CallData(**{
        **data, "started_at": _at(data["started_at"]), "answered_at": _at(data["answered_at"]),
        "ended_at": _at(data["ended_at"]), "legs": legs,
        "managers": tuple(data["managers"]), "recordings": tuple(data["recordings"]),
        "rang": tuple(data["rang"]),
        "recording_details": tuple(RecordingRef(**ref) for ref in data["recording_details"])})


def moved_on(call: CallData, seconds: float) -> CallData:
    """The call ``seconds`` later, nothing else having happened: it rang or talked on."""
    if seconds <= 0:
        return call
    legs = tuple(dataclasses.replace(leg, talk_seconds=leg.talk_seconds + seconds)
                 if leg.bridged_at is not None and leg.ended_at is None else leg
                 for leg in call.legs)
    if call.answered_at is not None:
        return dataclasses.replace(call, talk_seconds=call.talk_seconds + seconds, legs=legs)
    return dataclasses.replace(call, ring_seconds=call.ring_seconds + seconds, legs=legs)


def _plain(response: Any) -> Any:
    if isinstance(response, list):
        return [dict(message) for message in response]
    return dict(response)


class RelayServer:
    """The active listener's side: runs the requests of one PBX on its AMI session."""

    def __init__(self, redis: Redis, pbx: str, session: AmiSession,
                 tracker: CallTracker | None = None) -> None:
        self.redis = redis
        self.pbx = pbx
        self.session = session
        self.tracker = tracker
        self.served = 0
        self.token = uuid.uuid4().hex  # what this listener writes in the "connected" key
        self._running: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Until cancelled: keep the "connected" key fresh and serve the requests."""
        beat = asyncio.create_task(self._beat(), name=f"ami-relay-beat-{self.pbx}")
        try:
            while True:
                try:
                    item = await self.redis.blpop([requests_key(self.pbx)], timeout=1)
                except (OSError, RedisError) as exc:
                    log.warning("AMI relay of %s: Redis is unreachable (%s)", self.pbx, exc)
                    await asyncio.sleep(REFRESH_SECONDS)
                    continue
                if item is None:
                    continue
                try:
                    request = json.loads(item[1])
                    name = str(request["action"]["Action"])
                    late = float(request["deadline"]) < utcnow().timestamp()
                    str(request["reply"])
                except (ValueError, KeyError, TypeError):
                    log.warning("AMI relay of %s: ignored a malformed request", self.pbx)
                    continue
                if name.lower() not in RELAYED_ACTIONS:
                    log.warning("AMI relay of %s: refused to relay a %s", self.pbx, name)
                    await self._answer(request, {"ok": False,
                                                 "error": f"{name} is not relayed"})
                    continue
                if late:
                    log.warning("AMI relay of %s: dropped a %s nobody took in time", self.pbx,
                                name)
                    continue
                task = asyncio.create_task(self._serve(request))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
        finally:
            await stop_tasks(beat, *self._running)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._delete_own(), REFRESH_SECONDS)

    async def _delete_own(self) -> None:
        await self.redis.eval(_DELETE_OWN, 2, alive_key(self.pbx), live_key(self.pbx),
                              self.token)

    async def _beat(self) -> None:
        while True:
            with contextlib.suppress(OSError, RedisError):
                if self.session.connected.is_set():
                    await self.redis.set(alive_key(self.pbx), self.token, px=ALIVE_MS)
                    await self._publish_live()
                else:
                    await self._delete_own()
            if self.session.connected.is_set():
                await asyncio.sleep(REFRESH_SECONDS)
            else:  # say so as soon as the login is up
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.session.connected.wait(), REFRESH_SECONDS)

    async def _publish_live(self) -> None:
        if self.tracker is None:
            return
        now = utcnow().timestamp()
        calls = [encode_call(call) for call in self.tracker.live_calls(at=now)]
        await self.redis.set(live_key(self.pbx), json.dumps({"at": now, "calls": calls,
                                                            "by": self.token}),
                             px=ALIVE_MS)

    async def _serve(self, request: dict[str, Any]) -> None:
        try:
            response = await self.session.action(request["action"],
                                                  timeout=float(request["timeout"]))
            answer: dict[str, Any] = {"ok": True, "response": _plain(response)}
        except (AmiError, ValueError) as exc:
            answer = {"ok": False, "error": str(exc)}
        self.served += 1
        await self._answer(request, answer)

    async def _answer(self, request: dict[str, Any], answer: dict[str, Any]) -> None:
        reply = str(request["reply"])
        try:
            await self.redis.rpush(reply, json.dumps(answer, ensure_ascii=False))
            await self.redis.expire(reply, 60)
        except (OSError, RedisError) as exc:  # the web process gives up on its own
            log.warning("AMI relay of %s: could not answer (%s)", self.pbx, exc)


class RemoteConnected:
    """``is_set()`` like the ``connected`` event of a local session, as last refreshed."""

    def __init__(self) -> None:
        self.up = False

    def is_set(self) -> bool:
        return self.up


class RemoteAmiSession:
    """What click-to-call, listening in and pauses use of an :class:`AmiSession`."""

    def __init__(self, redis: Redis, pbx: str) -> None:
        self.redis = redis
        self.pbx = pbx
        self.connected = RemoteConnected()
        self.last_error: str | None = None

    async def refresh(self) -> None:
        try:
            self.connected.up = bool(await self.redis.exists(alive_key(self.pbx)))
        except (OSError, RedisError) as exc:
            self.connected.up = False
            self.last_error = f"Redis is unreachable: {exc}"

    async def action(self, action: dict[str, Any], timeout: float | None = None) -> Any:
        """Send one action to the PBX's active listener and wait for its answer."""
        wait = timeout or 10.0
        reply = f"{PREFIX}:reply:{uuid.uuid4().hex}"
        request = {"action": action, "timeout": wait, "reply": reply,
                   "deadline": utcnow().timestamp() + TAKE_WITHIN}
        try:
            await self.redis.rpush(requests_key(self.pbx), json.dumps(request))
            await self.redis.expire(requests_key(self.pbx), 60)
            # The client has no read timeout (an Originate waits for the phone to answer):
            # the server's BLPOP timeout ends the wait, and this deadline a dead socket.
            item = await asyncio.wait_for(self.redis.blpop([reply], timeout=wait + TAKE_WITHIN),
                                          wait + TAKE_WITHIN + 5)
        except (OSError, RedisError, TimeoutError) as exc:
            raise AmiError(f"Redis is unreachable: {exc}") from exc
        if item is None:
            raise AmiError(f"no active listener of PBX {self.pbx} answered")
        answer = json.loads(item[1])
        if not answer.get("ok"):
            raise AmiError(str(answer.get("error") or "the listener could not send the action"))
        return answer["response"]


class RemoteTracker:
    """The active listener's calls in progress, as last read."""

    def __init__(self) -> None:
        self.calls: list[CallData] = []
        self.taken_at = 0.0

    def live_calls(self, at: float | None = None) -> list[CallData]:
        """As :meth:`CallTracker.live_calls`: at the moment read, or at ``at`` if later."""
        later = (at - self.taken_at) if at is not None else 0.0
        return [moved_on(call, later) for call in self.calls]

    async def refresh(self, redis: Redis, pbx: str) -> None:
        try:
            raw = await redis.get(live_key(pbx))
        except (OSError, RedisError):
            raw = None
        if raw is None:
            self.calls, self.taken_at = [], 0.0
            return
        snapshot = json.loads(raw)
        self.calls = [decode_call(call) for call in snapshot["calls"]]
        self.taken_at = float(snapshot["at"])


class RemoteListener:
    """Where a web process's code looks for a PBX's listener: its session and tracker."""

    def __init__(self, redis: Redis, pbx: str) -> None:
        self.pbx = pbx
        self.session = RemoteAmiSession(redis, pbx)
        self.tracker = RemoteTracker()

    async def refresh(self) -> None:
        await self.session.refresh()
        await self.tracker.refresh(self.session.redis, self.pbx)


class RelayClient:
    """A web process's remote listeners, one per PBX, with their state kept fresh."""

    def __init__(self, redis_url: str, pbxes: Iterable[str]) -> None:
        self.redis: Redis = Redis.from_url(redis_url, decode_responses=True,
                                           socket_timeout=None)
        self.listeners = {pbx: RemoteListener(self.redis, pbx) for pbx in pbxes}
        self._task: asyncio.Task[None] | None = None
        self._fill: dict[str, Any] | None = None

    def stand_in(self, listeners: dict[str, Any]) -> None:
        """Keep a remote listener in ``listeners`` for every PBX this process does not
        listen to itself (now, or after it stops being the active listener)."""
        self._fill = listeners
        self._stand_in()

    def _stand_in(self) -> None:
        if self._fill is not None:
            for pbx, remote in self.listeners.items():
                self._fill.setdefault(pbx, remote)

    def session(self, pbx: str) -> RemoteAmiSession | None:
        listener = self.listeners.get(pbx)
        return listener.session if listener is not None else None

    async def start(self) -> None:
        await self._refresh_all()
        self._task = asyncio.create_task(self._refresh(), name="ami-relay-state")

    async def _refresh_all(self) -> None:
        self._stand_in()
        await asyncio.gather(*(each.refresh() for each in self.listeners.values()))

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            await self._refresh_all()

    async def close(self) -> None:
        if self._task is not None:
            await stop_tasks(self._task)
        await self.redis.aclose()
