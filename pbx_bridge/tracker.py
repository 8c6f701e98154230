"""The call tracker: AMI events in, call facts out. Sans-IO.

Like h11 or wsproto, :class:`CallTracker` owns no socket, no database and no
clock: it is fed AMI events (``dict`` with a ``Timestamp``) and returns the
facts they imply. The live listener and ``telecrm ami-replay`` feed it the same
way, so every scenario can be tested by replaying a capture.

Model: one call per ``linkedid``. Every non-Local channel is a leg. Talk time is
measured from bridges, not from CDR: a leg talks while its bridge (followed
through Local channel pairs) holds a real counterpart that is not on hold.
For a customer-facing call the counterpart must be the client's channel, so
ringing, queue music and consultation with a colleague never count.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import ClassVar

from crm_core.calls import CallData, LegData

from .channels import ChannelName, PartyRules, Role, parse_channel

log = logging.getLogger(__name__)

# Hangup causes (Q.850) that tell how an unanswered call ended.
_BUSY_CAUSES = frozenset({17})
_NO_ANSWER_CAUSES = frozenset({18, 19, 20, 31})
_FAILED_CAUSES = frozenset({1, 2, 3, 21, 22, 27, 28, 29, 34, 38, 41, 42, 44, 47, 58, 88, 102, 111})

# Dialplan variables the shipped dialplan sets so the CRM need not guess.
_VAR_DIRECTION = "CRM_DIRECTION"
_VAR_DID = "CRM_DID"
_VAR_CLIENT = "CRM_CLIENT"
_RECORDING_VARS = ("CRM_REC_MIX", "CRM_REC_MANAGER", "CRM_REC_CLIENT",
                   "CRM_REC_CALLER", "CRM_REC_CALLEE")
_KNOWN_VARS = frozenset({_VAR_DIRECTION, _VAR_DID, _VAR_CLIENT, "MIXMONITOR_FILENAME",
                         *_RECORDING_VARS})
_DIRECTIONS = frozenset({"inbound", "outbound", "internal"})


class FactKind(StrEnum):
    STARTED = "call_started"
    RINGING = "ringing"  # an internal phone started ringing (screen pop)
    ANSWERED = "answered"  # the first moment of conversation
    LEG_JOINED = "leg_joined"  # a further manager started talking (transfer)
    RECORDING = "recording_started"
    ENDED = "call_ended"


@dataclass(frozen=True, slots=True)
class Fact:
    """Something that happened to a call; ``call`` is its state at that moment."""

    kind: FactKind
    at: datetime
    call: CallData
    extension: str | None = None


@dataclass(slots=True)
class _Channel:
    uniqueid: str
    linkedid: str
    name: str
    parsed: ChannelName
    role: Role
    extension: str | None
    created: float
    callerid: str = ""
    exten: str = ""
    answered: float | None = None
    hungup: float | None = None
    cause: int | None = None
    bridge: str | None = None
    on_hold: bool = False
    dial_status: str = ""
    dial_string: str = ""
    talk: float = 0.0
    talk_since: float | None = None
    first_talk: float | None = None


@dataclass(slots=True)
class _Call:
    linkedid: str
    started: float
    legs: list[str] = field(default_factory=list)  # non-Local uniqueids, in order of creation
    channels: list[str] = field(default_factory=list)  # every uniqueid, Local ones too
    live: set[str] = field(default_factory=set)  # uniqueids not yet hung up
    variables: dict[str, str] = field(default_factory=dict)
    recordings: list[str] = field(default_factory=list)
    rang: list[str] = field(default_factory=list)
    dial_strings: list[str] = field(default_factory=list)
    talk: float = 0.0
    talk_since: float | None = None
    answered: float | None = None
    ended: float | None = None
    last: float = 0.0
    managers_talked: list[str] = field(default_factory=list)


def _to_dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


_Handler = Callable[["CallTracker", Mapping[str, str], float], list[Fact]]


class CallTracker:
    """Feed AMI events with :meth:`feed`; read facts and live calls back."""

    def __init__(self, rules: PartyRules | None = None) -> None:
        self.rules = rules or PartyRules()
        self._channels: dict[str, _Channel] = {}
        self._calls: dict[str, _Call] = {}
        self._bridges: dict[str, set[str]] = {}
        self._local_pairs: dict[str, set[str]] = {}
        self._clock = 0.0
        self.events_seen = 0
        self.events_skipped = 0

    # -- public ---------------------------------------------------------------

    @property
    def clock(self) -> datetime | None:
        """Time of the newest event fed, the tracker's only clock."""
        return _to_dt(self._clock) if self._clock else None

    def live_calls(self) -> list[CallData]:
        """Calls in progress, as they stand at the newest event."""
        return [self._snapshot(call) for call in self._calls.values()]

    def feed(self, event: Mapping[str, str]) -> list[Fact]:
        """Apply one AMI event; never raises on odd or incomplete input."""
        self.events_seen += 1
        name = event.get("Event")
        handler = self._handlers.get(name) if isinstance(name, str) else None
        if handler is None:
            return []
        ts = self._timestamp(event)
        try:
            return handler(self, event, ts)
        except (KeyError, ValueError, TypeError, AttributeError):
            self.events_skipped += 1
            log.warning("skipped malformed %s event", name, exc_info=True)
            return []

    def feed_all(self, events: Iterable[Mapping[str, str]]) -> list[Fact]:
        facts: list[Fact] = []
        for event in events:
            facts.extend(self.feed(event))
        return facts

    # -- clock ----------------------------------------------------------------

    def _timestamp(self, event: Mapping[str, str]) -> float:
        raw = event.get("Timestamp")
        try:
            ts = float(raw) if raw else self._clock
        except (TypeError, ValueError):
            ts = self._clock
        if ts != ts or ts in (float("inf"), float("-inf")):  # NaN or infinite
            ts = self._clock
        # Clamp to the newest time seen: events may interleave by microseconds,
        # and negative durations must never appear.
        self._clock = max(self._clock, ts)
        return self._clock

    # -- handlers ---------------------------------------------------------------

    def _on_newchannel(self, ev: Mapping[str, str], ts: float) -> list[Fact]:
        uid = ev.get("Uniqueid")
        if not uid or uid in self._channels:
            return []
        linkedid = ev.get("Linkedid") or uid
        name = ev.get("Channel", "")
        parsed = parse_channel(name)
        role = self.rules.role(parsed)
        chan = _Channel(
            uniqueid=uid, linkedid=linkedid, name=name, parsed=parsed, role=role,
            extension=self.rules.extension(parsed), created=ts,
            callerid=ev.get("CallerIDNum", ""), exten=ev.get("Exten", ""),
        )
        self._channels[uid] = chan
        pair = parsed.local_pair
        if pair is not None:
            self._local_pairs.setdefault(pair, set()).add(uid)
        call = self._calls.get(linkedid)
        facts: list[Fact] = []
        new_call = call is None
        if call is None:
            call = self._calls[linkedid] = _Call(linkedid=linkedid, started=ts)
        call.last = ts
        call.live.add(uid)
        call.channels.append(uid)
        if role is not Role.LOCAL:
            call.legs.append(uid)
        if new_call:
            facts.append(self._fact(FactKind.STARTED, call, ts))
        return facts

    def _on_newstate(self, ev: Mapping[str, str], ts: float) -> list[Fact]:
        chan = self._channels.get(ev.get("Uniqueid", ""))
        if chan is None:
            return []
        if ev.get("ChannelState") == "6" and chan.answered is None:
            chan.answered = ts
        return []

    def _on_callerid(self, ev: Mapping[str, str], ts: float) -> list[Fact]:
        chan = self._channels.get(ev.get("Uniqueid", ""))
        if chan is not None and ev.get("CallerIDNum"):
            chan.callerid = ev["CallerIDNum"]
        return []

    def _on_dial_begin(self, ev: Mapping[str, str], ts: float) -> list[Fact]:
        dest = self._channels.get(ev.get("DestUniqueid", ""))
        caller = self._channels.get(ev.get("Uniqueid", ""))
        dial_string = ev.get("DialString", "")
        if dest is not None:
            dest.dial_string = dial_string
        call = self._call_of(caller or dest)
        if call is None:
            return []
        if dial_string:
            call.dial_strings.append(dial_string)
        if dest is not None and dest.role is Role.MANAGER and dest.extension:
            if dest.extension not in call.rang:
                call.rang.append(dest.extension)
            return [self._fact(FactKind.RINGING, call, ts, dest.extension)]
        return []

    def _on_dial_end(self, ev: Mapping[str, str], ts: float) -> list[Fact]:
        dest = self._channels.get(ev.get("DestUniqueid", ""))
        if dest is not None:
            dest.dial_status = ev.get("DialStatus", "")
        return []

    def _on_bridge_enter(self, ev: Mapping[str, str], ts: float) -> list[Fact]:
        chan = self._channels.get(ev.get("Uniqueid", ""))
        bridge = ev.get("BridgeUniqueid", "")
        if chan is None or not bridge:
            return []
        if chan.bridge and chan.bridge != bridge:
            self._bridges.get(chan.bridge, set()).discard(chan.uniqueid)
        chan.bridge = bridge
        members = self._bridges.setdefault(bridge, set())
        members.add(chan.uniqueid)
        return self._recompute(ts, self._calls_near(members))

    def _on_bridge_leave(self, ev: Mapping[str, str], ts: float) -> list[Fact]:
        chan = self._channels.get(ev.get("Uniqueid", ""))
        if chan is None:
            return []
        bridge = ev.get("BridgeUniqueid") or chan.bridge
        affected = {chan.linkedid}
        if bridge:
            members = self._bridges.get(bridge)
            if members is not None:
                members.discard(chan.uniqueid)
                affected |= self._calls_near(members)
                if not members:
                    del self._bridges[bridge]
        if chan.bridge == bridge:
            chan.bridge = None
        return self._recompute(ts, affected)

    def _on_bridge_destroy(self, ev: Mapping[str, str], ts: float) -> list[Fact]:
        members = self._bridges.pop(ev.get("BridgeUniqueid", ""), set())
        affected = self._calls_near(members)
        for uid in members:
            chan = self._channels.get(uid)
            if chan is not None:
                chan.bridge = None
        return self._recompute(ts, affected) if members else []

    def _on_hold(self, ev: Mapping[str, str], ts: float) -> list[Fact]:
        chan = self._channels.get(ev.get("Uniqueid", ""))
        if chan is None:
            return []
        chan.on_hold = ev.get("Event") in ("Hold", "MusicOnHoldStart")
        near = self._bridges.get(chan.bridge, set()) if chan.bridge else set()
        return self._recompute(ts, {chan.linkedid} | self._calls_near(near))

    def _on_varset(self, ev: Mapping[str, str], ts: float) -> list[Fact]:
        variable = ev.get("Variable", "").lstrip("_")
        if variable not in _KNOWN_VARS:
            return []
        chan = self._channels.get(ev.get("Uniqueid", ""))
        call = self._call_of(chan) or self._calls.get(ev.get("Linkedid", ""))
        if call is None:
            return []
        value = ev.get("Value", "")
        if variable in _RECORDING_VARS or variable == "MIXMONITOR_FILENAME":
            if variable == "MIXMONITOR_FILENAME" and any(
                    v in call.variables for v in _RECORDING_VARS):
                return []  # the per-leg names already cover this file
            if value and value not in call.recordings:
                call.recordings.append(value)
                call.variables[variable] = value
                return [self._fact(FactKind.RECORDING, call, ts)]
            return []
        if value:
            call.variables.setdefault(variable, value)
        return []

    def _on_hangup(self, ev: Mapping[str, str], ts: float) -> list[Fact]:
        uid = ev.get("Uniqueid", "")
        chan = self._channels.get(uid)
        if chan is None or chan.hungup is not None:
            return []
        chan.hungup = ts
        chan.cause = _int(ev.get("Cause"))
        affected = {chan.linkedid}
        if chan.bridge:
            members = self._bridges.get(chan.bridge)
            if members is not None:
                members.discard(uid)
                affected |= self._calls_near(members)
            chan.bridge = None
        facts = self._recompute(ts, affected)
        call = self._calls.get(chan.linkedid)
        if call is None:
            return facts
        call.live.discard(uid)
        if not call.live:
            call.ended = ts
            facts.append(self._fact(FactKind.ENDED, call, ts))
            self._forget(call)
        return facts

    _handlers: ClassVar[dict[str, _Handler]] = {
        "Newchannel": _on_newchannel,
        "Newstate": _on_newstate,
        "NewCallerid": _on_callerid,
        "DialBegin": _on_dial_begin,
        "DialEnd": _on_dial_end,
        "BridgeEnter": _on_bridge_enter,
        "BridgeLeave": _on_bridge_leave,
        "BridgeDestroy": _on_bridge_destroy,
        "Hold": _on_hold,
        "Unhold": _on_hold,
        "MusicOnHoldStart": _on_hold,
        "MusicOnHoldStop": _on_hold,
        "VarSet": _on_varset,
        "Hangup": _on_hangup,
    }

    # -- talk time ------------------------------------------------------------

    def _call_of(self, chan: _Channel | None) -> _Call | None:
        return None if chan is None else self._calls.get(chan.linkedid)

    def _reach(self, chan: _Channel) -> set[str]:
        """Live real parties connected to ``chan`` through bridges and Local pairs."""
        seen_bridges: set[str] = set()
        seen_chans: set[str] = {chan.uniqueid}
        parties: set[str] = set()
        stack = [chan.bridge] if chan.bridge else []
        while stack:
            bridge = stack.pop()
            if bridge in seen_bridges:
                continue
            seen_bridges.add(bridge)
            for uid in self._bridges.get(bridge, ()):
                if uid in seen_chans:
                    continue
                seen_chans.add(uid)
                other = self._channels.get(uid)
                if other is None or other.hungup is not None:
                    continue
                if other.role is Role.LOCAL:
                    pair = other.parsed.local_pair or ""
                    for mate_uid in self._local_pairs.get(pair, ()):
                        mate = self._channels.get(mate_uid)
                        if mate is not None and mate_uid not in seen_chans:
                            seen_chans.add(mate_uid)
                            if mate.bridge:
                                stack.append(mate.bridge)
                elif not other.on_hold:
                    parties.add(uid)
        return parties

    def _talking(self, chan: _Channel, call: _Call, has_client: bool) -> bool:
        if chan.hungup is not None or chan.on_hold or chan.bridge is None:
            return False
        for uid in self._reach(chan):
            other = self._channels[uid]
            if has_client and other.role is Role.CLIENT:
                return True
            if not has_client and other.role is Role.MANAGER:
                return True
        return False

    def _calls_near(self, uids: Iterable[str]) -> set[str]:
        """Calls whose channels are among ``uids`` (and, through Local pairs, beyond)."""
        linked: set[str] = set()
        for uid in uids:
            chan = self._channels.get(uid)
            if chan is None:
                continue
            linked.add(chan.linkedid)
            if chan.role is Role.LOCAL:
                for mate in self._local_pairs.get(chan.parsed.local_pair or "", ()):
                    mate_chan = self._channels.get(mate)
                    if mate_chan is not None:
                        linked.add(mate_chan.linkedid)
                        if mate_chan.bridge:
                            linked |= {self._channels[u].linkedid
                                       for u in self._bridges.get(mate_chan.bridge, ())
                                       if u in self._channels}
        return linked

    def _recompute(self, ts: float, linkedids: Iterable[str]) -> list[Fact]:
        """Open or close talk intervals of these calls after the topology changed."""
        facts: list[Fact] = []
        for linkedid in sorted(linkedids):
            call = self._calls.get(linkedid)
            if call is None or call.ended is not None:
                continue
            has_client = any(self._channels[u].role is Role.CLIENT for u in call.legs
                             if u in self._channels)
            any_talking = False
            for uid in call.legs:
                chan = self._channels.get(uid)
                if chan is None or chan.role is not Role.MANAGER:
                    continue
                talking = self._talking(chan, call, has_client)
                if talking and chan.talk_since is None:
                    chan.talk_since = ts
                    if chan.first_talk is None:
                        chan.first_talk = ts
                    if chan.extension and chan.extension not in call.managers_talked:
                        call.managers_talked.append(chan.extension)
                        if call.answered is not None:
                            facts.append(self._fact(FactKind.LEG_JOINED, call, ts,
                                                    chan.extension))
                elif not talking and chan.talk_since is not None:
                    chan.talk += ts - chan.talk_since
                    chan.talk_since = None
                any_talking = any_talking or talking
            if any_talking and call.talk_since is None:
                call.talk_since = ts
                if call.answered is None:
                    call.answered = ts
                    first = call.managers_talked[0] if call.managers_talked else None
                    facts.append(self._fact(FactKind.ANSWERED, call, ts, first))
            elif not any_talking and call.talk_since is not None:
                call.talk += ts - call.talk_since
                call.talk_since = None
            call.last = max(call.last, ts)
        return facts

    # -- snapshots ------------------------------------------------------------

    def _fact(self, kind: FactKind, call: _Call, ts: float,
              extension: str | None = None) -> Fact:
        return Fact(kind=kind, at=_to_dt(ts) or datetime.fromtimestamp(0, UTC),
                    call=self._snapshot(call), extension=extension)

    def _direction(self, call: _Call, chans: list[_Channel]) -> str:
        declared = call.variables.get(_VAR_DIRECTION, "").lower()
        if declared in _DIRECTIONS:
            return declared
        first = self._channels.get(call.linkedid) or (chans[0] if chans else None)
        if first is not None and first.role is Role.CLIENT:
            return "inbound"
        if any(c.role is Role.CLIENT for c in chans):
            return "outbound"
        return "internal"

    def _client_number(self, call: _Call, direction: str, chans: list[_Channel]) -> str | None:
        if direction == "internal":
            return None
        declared = call.variables.get(_VAR_CLIENT)
        if declared:
            return declared
        clients = [c for c in chans if c.role is Role.CLIENT]
        if direction == "inbound":
            return clients[0].callerid or None if clients else None
        for chan in clients:
            if chan.dial_string:
                return chan.dial_string.split("@", 1)[0].rpartition("/")[2] or None
        return None

    def _status(self, call: _Call, direction: str, chans: list[_Channel]) -> str:
        if call.answered is not None:
            return "answered"
        if call.ended is None:
            return "in_progress"
        if direction == "inbound":
            return "missed"
        # The far side's dial status says most; its hangup cause says the rest.
        far = [c for c in chans if c.uniqueid != call.linkedid and (
            c.role is Role.CLIENT if direction == "outbound" else c.role is Role.MANAGER)]
        statuses = {c.dial_status for c in far}
        causes = {c.cause for c in far if c.cause is not None}
        if "BUSY" in statuses or causes & _BUSY_CAUSES:
            return "busy"
        if statuses & {"CONGESTION", "CHANUNAVAIL"} or (causes & _FAILED_CAUSES):
            return "failed"
        if not far:
            return "failed"
        return "no_answer"

    def _snapshot(self, call: _Call) -> CallData:
        now = call.ended if call.ended is not None else self._clock
        chans = [self._channels[u] for u in call.legs if u in self._channels]
        direction = self._direction(call, chans)
        legs = []
        for chan in chans:
            talk = chan.talk + (now - chan.talk_since if chan.talk_since is not None else 0.0)
            legs.append(LegData(
                uniqueid=chan.uniqueid, channel=chan.name, role=str(chan.role),
                extension=chan.extension, started_at=_to_dt(chan.created),
                answered_at=_to_dt(chan.answered), ended_at=_to_dt(chan.hungup),
                talk_seconds=round(max(talk, 0.0), 3), hangup_cause=chan.cause,
            ))
        talk = call.talk + (now - call.talk_since if call.talk_since is not None else 0.0)
        ring_end = call.answered if call.answered is not None else now
        return CallData(
            linkedid=call.linkedid,
            direction=direction,
            status=self._status(call, direction, chans),
            client_number=self._client_number(call, direction, chans),
            did=call.variables.get(_VAR_DID) or (
                (self._channels[call.linkedid].exten or None)
                if direction == "inbound" and call.linkedid in self._channels else None),
            started_at=_to_dt(call.started),
            answered_at=_to_dt(call.answered),
            ended_at=_to_dt(call.ended),
            ring_seconds=round(max(ring_end - call.started, 0.0), 3),
            talk_seconds=round(max(talk, 0.0), 3),
            transferred=len(call.managers_talked) > 1,
            managers=tuple(call.managers_talked),
            recordings=tuple(call.recordings) if call.answered is not None else (),
            legs=tuple(legs),
            rang=tuple(call.rang),
        )

    def _forget(self, call: _Call) -> None:
        """Drop a finished call so memory stays flat over long runs."""
        del self._calls[call.linkedid]
        for uid in call.channels:
            chan = self._channels.get(uid)
            if chan is not None and chan.hungup is not None:
                del self._channels[uid]
                pair = chan.parsed.local_pair
                if pair is not None:
                    mates = self._local_pairs.get(pair)
                    if mates is not None:
                        mates.discard(uid)
                        if not mates:
                            del self._local_pairs[pair]
