"""The call tracker: AMI events in, call facts out. Sans-IO.

Like h11 or wsproto, :class:`CallTracker` owns no socket, no database and no
clock: it is fed AMI events (``dict`` with a ``Timestamp``) and returns the
facts they imply. The live listener and ``telecrm ami-replay`` feed it the same
way, so every scenario can be tested by replaying a capture.

Model (see ``tests/calls/test_tracker_scenarios.py`` for the real AMI behind each rule):

* A call is one customer-facing conversation: every channel sharing a
  ``linkedid``, plus the groups a transfer, a pickup or a supervisor's ChanSpy
  joins to it. Like Wazo's call-logd, groups are merged when they share a
  channel (a ``Uniqueid`` seen under a second ``Linkedid``: Asterisk re-links the
  picker's channel after a pickup) or when an event ties them (``Pickup``,
  ``ChanSpyStart``, ``BlindTransfer``, ``AttendedTransfer``, a ``DialBegin``
  across groups); the smallest linkedid names the merged call.
* A group is *announced* (facts emitted) only once it is a call: its first
  channel is a client, or one of its channels dials, or it bridges, or it ends
  with a client on it. So a manager dialling ``*8`` to pick up, or a
  supervisor's phone originated into ChanSpy, never shows up as a call of its
  own before it is merged.
* Attended transfers made by the CRM (AMI ``Atxfer``) keep one linkedid: the
  consultation (``Local/<ext>@crm-transfer`` pair, the colleague's phone) is part
  of the customer's call, and never counts as talk because no client is
  reachable from it. A consultation placed from a phone's second line has its
  own linkedid and is on record as an internal call; the ``AttendedTransfer``
  event merges it into the customer's call (Wazo's rule): the internal call
  ends there (``call_ended`` at the transfer) and its channels carry on in the
  customer's call.
* A phone is a manager's by its extension, or by a device the users table maps
  to his extension (``SIP/150010001``); a trunk channel that dials a user's
  mobile (the PBX forwarding to it) is his leg too, from its ``DialBegin`` on.
* Every non-Local channel is a leg. A leg talks while its bridge (followed
  through Local channel pairs) holds the client's channel (for an internal
  call: another phone) and neither side is on hold. Call talk is the union of
  its legs' talk intervals: ringing, queue waiting, hold, consultation with a
  colleague and listening in never count.
* Supervisors listening in (ChanSpy) are legs with role ``supervisor`` that
  never talk; they do not keep a call open once its parties have hung up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import ClassVar

from crm_core.calls.snapshot import CallData, LegData, RecordingRef

from .channels import ChannelName, PartyRules, Role, parse_channel

log = logging.getLogger(__name__)

# Hangup causes (Q.850) that tell how an unanswered call ended.
_BUSY_CAUSES = frozenset({17})
_FAILED_CAUSES = frozenset({1, 2, 3, 21, 22, 27, 28, 29, 34, 38, 41, 42, 44, 47, 58, 88, 102, 111})

# Dialplan variables the shipped dialplan sets so the CRM need not guess.
_VAR_DIRECTION = "CRM_DIRECTION"
_VAR_DID = "CRM_DID"
_VAR_CLIENT = "CRM_CLIENT"
_VAR_SPY = "CRM_SPY"
_VAR_QUEUE = "QUEUENAME"
_RECORDING_VARS = ("CRM_REC_MIX", "CRM_REC_MANAGER", "CRM_REC_CLIENT",
                   "CRM_REC_CALLER", "CRM_REC_CALLEE")
# The side of the call each recording variable names (MixMonitor's own: the mix).
_RECORDING_SIDES = {"MIXMONITOR_FILENAME": "mix", **{
    name: name.removeprefix("CRM_REC_").lower() for name in _RECORDING_VARS}}
_KNOWN_VARS = frozenset({_VAR_DIRECTION, _VAR_DID, _VAR_CLIENT, _VAR_SPY, _VAR_QUEUE,
                         "MIXMONITOR_FILENAME", *_RECORDING_VARS})
_DIRECTIONS = frozenset({"inbound", "outbound", "internal"})
# Live prompts (issue 19): the CRM taps a call with Local channels into this context
# (ChanSpy on one half, AudioSocket on the other). They are no party of any call, and
# they are not even part of one: every event about them is ignored.
LIVE_TAP_CONTEXT = "crm-live-tap"
_TAP_KEYS = ("Channel", "SpyerChannel", "DestChannel")


def is_live_tap(channel: str) -> bool:
    """``Local/s@crm-live-tap-0000001a;1`` (or ``;2``): a live-prompt stream's channel."""
    return channel[:6].lower() == "local/" and f"@{LIVE_TAP_CONTEXT}-" in channel


_TAP_MARK = f"@{LIVE_TAP_CONTEXT}-"


def _has_live_tap(event: Mapping[str, str]) -> bool:
    """True when any of the event's channels is a live-prompt tap (``is_live_tap``)."""
    for key in _TAP_KEYS:
        channel = event.get(key)
        if channel and _TAP_MARK in channel and channel[:6].lower() == "local/":
            return True
    return False


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
    call: str  # key of the call it belongs to (its linkedid, or the merged call's)
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
    spy: bool = False  # listening in through ChanSpy: never a party
    dial_status: str = ""
    dial_string: str = ""
    talks: list[list[float]] = field(default_factory=list)  # [start, end]; end = start if open
    talking: bool = False
    holds: float = 0.0
    hold_since: float | None = None


@dataclass(slots=True)
class _Call:
    key: str  # the smallest linkedid of its groups
    started: float
    legs: list[str] = field(default_factory=list)  # non-Local uniqueids, in order of creation
    channels: list[str] = field(default_factory=list)  # every uniqueid, Local ones too
    live: set[str] = field(default_factory=set)  # uniqueids not yet hung up (spies excluded)
    linkedids: set[str] = field(default_factory=set)
    variables: dict[str, str] = field(default_factory=dict)
    recordings: list[str] = field(default_factory=list)
    recording_refs: list[RecordingRef] = field(default_factory=list)  # one per path above
    rang: list[str] = field(default_factory=list)
    queue: str | None = None
    answered: float | None = None
    ended: float | None = None
    last: float = 0.0  # newest event time applied to this call
    announced: bool = False
    transferred: bool = False
    joined: list[str] = field(default_factory=list)  # extensions LEG_JOINED/ANSWERED told
    merged_into: str | None = None  # the call that absorbed this one (its channels live on there)


# Timestamps datetime can represent (up to 9999-12-31); anything else is junk.
_MAX_TS = 253_402_300_799.0


def _at(ts: float) -> datetime:
    try:
        return datetime.fromtimestamp(ts, UTC)
    except (OverflowError, OSError, ValueError):
        return datetime.fromtimestamp(0, UTC)


def _to_dt(ts: float | None) -> datetime | None:
    return None if ts is None else _at(ts)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _id_order(linkedid: str) -> tuple[int, int, int, str]:
    """Asterisk ids are ``[system-]epoch.sequence``: order by epoch, then sequence, as
    integers (``.9`` before ``.10``; a float of the epoch cannot hold the sequence), and
    ids of any other shape after them, by text."""
    head, _, tail = linkedid.rpartition("-")[2].partition(".")
    if not head.isdigit():
        return (1, 0, 0, linkedid)
    return (0, int(head), int(tail) if tail.isdigit() else 0, linkedid)


def _uid_epoch(uniqueid: str) -> float | None:
    """Creation second embedded in a Uniqueid (``[system-]epoch.sequence``), if any."""
    head = uniqueid.rpartition("-")[2].partition(".")[0]
    if len(head) < 9 or not head.isdigit():
        return None
    return float(head)


def _duration(value: str | None) -> float:
    """``HH:MM:SS`` (CoreShowChannel Duration) in seconds; 0 when unreadable."""
    try:
        parts = [int(p) for p in (value or "").split(":")]
    except ValueError:
        return 0.0
    total = 0
    for part in parts:
        total = total * 60 + part
    return float(max(total, 0))


def _listing_floor(listing: Iterable[Mapping[str, str]]) -> list[float]:
    """Lower bounds of a listing's time: each channel's creation second + its Duration."""
    out = []
    for item in listing:
        epoch = _uid_epoch(item.get("Uniqueid", "") or "")
        if epoch is not None and item.get("Duration"):
            out.append(epoch + _duration(item.get("Duration")))
    return out


_Handler = Callable[["CallTracker", Mapping[str, str], float], list[Fact]]


class CallTracker:
    """Feed AMI events with :meth:`feed`; read facts and live calls back."""

    def __init__(self, rules: PartyRules | None = None) -> None:
        self.rules = rules or PartyRules()
        self._channels: dict[str, _Channel] = {}
        self._calls: dict[str, _Call] = {}
        self._call_of_linkedid: dict[str, str] = {}
        self._bridges: dict[str, set[str]] = {}
        self._local_pairs: dict[str, set[str]] = {}
        self._by_name: dict[str, str] = {}
        self._clock = 0.0
        self._pending_listing: list[Mapping[str, str]] | None = None
        self.events_seen = 0
        self.events_skipped = 0

    # -- public ---------------------------------------------------------------

    @property
    def clock(self) -> datetime | None:
        """Time of the newest event fed, the tracker's only clock."""
        return _to_dt(self._clock) if self._clock else None

    def live_calls(self, at: float | None = None) -> list[CallData]:
        """Calls in progress, as they stand at the newest event (or at ``at``, if later).

        A live board passes the wall clock as ``at`` so talk time grows between
        events; the tracker itself never reads a clock.
        """
        now = max(self._clock, at) if at is not None else self._clock
        return [self._snapshot(call, now) for call in self._calls.values() if call.announced]

    def feed(self, event: Mapping[str, str]) -> list[Fact]:
        """Apply one AMI event; never raises on odd or incomplete input."""
        try:
            # Only text values count: a panoramisk message may carry lists for
            # repeated keys, a hand-built dict anything at all.
            text = {k: v for k, v in event.items() if type(k) is str and type(v) is str}
        except Exception:  # the tracker must survive any input
            self.events_seen += 1
            self.events_skipped += 1
            log.warning("skipped malformed %r event", event.get("Event") if hasattr(
                event, "get") else event, exc_info=True)
            return []
        return self.feed_text(text)

    def feed_text(self, event: Mapping[str, str]) -> list[Fact]:
        """:meth:`feed` for an event that is text only (every key and value a ``str``),
        which it reads as given.

        ``FrameParser`` gives such dicts, so the replay skips :meth:`feed`'s copy. The
        tracker never changes an event it is given.
        """
        self.events_seen += 1
        try:
            name = event.get("Event")
            handler = self._handlers.get(name) if isinstance(name, str) else None
            if handler is None:
                return []
            if _has_live_tap(event):
                return []
            ts = self._timestamp(event)
            # Time never runs backwards within a call (events interleave by
            # microseconds); a stray timestamp elsewhere never touches this call.
            call = self._call_of(self._channels.get(event.get("Uniqueid", "")))
            if call is not None:
                ts = call.last = max(ts, call.last)
            facts = self._apply_pending_listing()
            facts += self._relink(event, ts)
            return facts + handler(self, event, ts)
        except Exception:  # the tracker must survive any input
            self.events_skipped += 1
            log.warning("skipped malformed %r event", event.get("Event") if hasattr(
                event, "get") else event, exc_info=True)
            return []

    def feed_all(self, events: Iterable[Mapping[str, str]]) -> list[Fact]:
        facts: list[Fact] = []
        for event in events:
            facts.extend(self.feed(event))
        return facts

    def reconcile(self, listing: list[Mapping[str, str]], at: float) -> list[Fact]:
        """Bring the tracker in line with a ``CoreShowChannels`` listing taken at ``at``.

        Called after every AMI (re)connect, since events may have been lost:

        * a known live channel absent from the listing hung up while the CRM was
          away: it ends at ``at`` (a call whose channels are all gone ends at
          ``at``; nothing else about it is invented);
        * a channel the tracker does not know is created at the second its
          ``Uniqueid`` carries (``epoch.sequence``; + 0.5 s, the middle of that
          second), else at ``at - Duration``; if it is bridged (``BridgeId``) its
          talk starts at the best estimate available, the creation of the
          youngest channel of its bridge (the manager's leg, dialled last: its
          ringing is the error), and its call counts as answered from then on;
        * a known channel whose ``BridgeId`` changed is moved to that bridge.

        Asterisk stamps no ``Timestamp`` on a listing, and after an outage the
        newest event is old, so the listing dates itself too: no earlier than
        any listed channel's creation second plus its ``Duration``. The time
        used is the latest of ``at``, the newest event and that. When nothing
        at all is known the listing waits for the first stamped event.
        """
        try:
            at = at if isinstance(at, int | float) and at == at and at > 0 else 0.0
            listing = [item for item in listing
                       if not is_live_tap(str(item.get("Channel", "")))]
            at = max([at, self._clock, *_listing_floor(listing)])
            if not at:
                self._pending_listing = list(listing)
                return []
            self._pending_listing = None
            return self._reconcile(listing, at)
        except Exception:
            self.events_skipped += 1
            log.warning("could not reconcile with a channel listing", exc_info=True)
            return []

    def _apply_pending_listing(self) -> list[Fact]:
        if self._pending_listing is None or not self._clock:
            return []
        listing, self._pending_listing = self._pending_listing, None
        return self.reconcile(listing, self._clock)

    # -- clock ----------------------------------------------------------------

    def _timestamp(self, event: Mapping[str, str]) -> float:
        raw = event.get("Timestamp")
        try:
            ts = float(raw) if raw else self._clock
        except (TypeError, ValueError):
            ts = self._clock
        if not 0 < ts <= _MAX_TS:  # NaN, infinite, negative or unrepresentable: no time
            return self._clock
        # The clock is the newest time seen; each call keeps its own time (see feed),
        # so one corrupted or stepped Timestamp cannot zero the durations of
        # every later call.
        self._clock = max(self._clock, ts)
        return ts

    # -- groups -------------------------------------------------------------------

    def _call_of(self, chan: _Channel | None) -> _Call | None:
        return None if chan is None else self._calls.get(chan.call)

    def _call_by_linkedid(self, linkedid: str | None) -> _Call | None:
        if not linkedid:
            return None
        key = self._call_of_linkedid.get(linkedid)
        return self._calls.get(key) if key else None

    def _relink(self, ev: Mapping[str, str], ts: float) -> list[Fact]:
        """A known channel seen under another Linkedid: merge the two groups."""
        chan = self._channels.get(ev.get("Uniqueid", ""))
        linkedid = ev.get("Linkedid", "")
        if chan is None or not linkedid or linkedid == chan.linkedid:
            return []
        chan.linkedid = linkedid
        other = self._call_by_linkedid(linkedid)
        mine = self._call_of(chan)
        if other is None:
            if mine is not None:
                mine.linkedids.add(linkedid)
                self._call_of_linkedid[linkedid] = mine.key
            return []
        return self._merge(mine, other, ts)

    def _merge(self, a: _Call | None, b: _Call | None, ts: float) -> list[Fact]:
        """Join two calls into the one with the smaller linkedid."""
        if a is None or b is None or a is b or a.ended is not None or b.ended is not None:
            return []
        keep, gone = (a, b) if _id_order(a.key) <= _id_order(b.key) else (b, a)
        facts: list[Fact] = []
        if gone.announced and keep.announced:
            # Both are on record already (a consultation from a phone's second
            # line): close the absorbed one as it stood; its channels live on here
            # (the writer moves a leg whose uniqueid shows up under another call).
            gone.ended = ts
            gone.merged_into = keep.key
            facts.append(self._fact(FactKind.ENDED, gone, ts))
        for uid in gone.channels:
            chan = self._channels.get(uid)
            if chan is not None:
                chan.call = keep.key
            if uid not in keep.channels:
                keep.channels.append(uid)
        keep.legs = sorted({*keep.legs, *gone.legs},
                           key=lambda u: self._channels[u].created if u in self._channels else 0)
        keep.live |= gone.live
        keep.linkedids |= gone.linkedids
        for linkedid in keep.linkedids:
            self._call_of_linkedid[linkedid] = keep.key
        for name, value in gone.variables.items():
            keep.variables.setdefault(name, value)
        keep.recording_refs += [r for r in gone.recording_refs if r.path not in keep.recordings]
        keep.recordings += [r for r in gone.recordings if r not in keep.recordings]
        keep.rang += [r for r in gone.rang if r not in keep.rang]
        keep.queue = keep.queue or gone.queue
        keep.started = min(keep.started, gone.started)
        if gone.answered is not None:
            keep.answered = min(keep.answered or gone.answered, gone.answered)
        keep.transferred = keep.transferred or gone.transferred
        keep.joined += [e for e in gone.joined if e not in keep.joined]
        if gone.announced and not keep.announced:
            keep.announced = True  # its facts continue under the surviving linkedid
        del self._calls[gone.key]
        return facts + self._recompute(ts, {keep.key})

    def _announce(self, call: _Call | None, ts: float) -> list[Fact]:
        # A group of Local channels alone (no phone, no trunk yet) is plumbing, not a
        # call: it is announced once a real channel joins it.
        if call is None or call.announced or call.ended is not None or not call.legs:
            return []
        call.announced = True
        return [self._fact(FactKind.STARTED, call, ts)]

    # -- handlers ---------------------------------------------------------------

    def _add_channel(self, uid: str, linkedid: str, name: str, ts: float,
                     callerid: str = "", exten: str = "") -> tuple[_Channel, _Call, bool]:
        parsed = parse_channel(name)
        role = self.rules.role(parsed)
        call = self._call_by_linkedid(linkedid)
        new_call = call is None
        if call is None:
            call = self._calls[linkedid] = _Call(key=linkedid, started=ts, linkedids={linkedid})
            self._call_of_linkedid[linkedid] = linkedid
        ts = call.last = max(ts, call.last)
        chan = _Channel(
            uniqueid=uid, linkedid=linkedid, call=call.key, name=name, parsed=parsed,
            role=role, extension=self.rules.extension(parsed), created=ts,
            callerid=callerid, exten=exten,
        )
        self._channels[uid] = chan
        self._by_name[name] = uid
        pair = parsed.local_pair
        if pair is not None:
            self._local_pairs.setdefault(pair, set()).add(uid)
        call.live.add(uid)
        call.channels.append(uid)
        if role is not Role.LOCAL:
            call.legs.append(uid)
        return chan, call, new_call

    def _on_newchannel(self, ev: Mapping[str, str], ts: float) -> list[Fact]:
        uid = ev.get("Uniqueid")
        if not uid or uid in self._channels:
            return []
        chan, call, new_call = self._add_channel(
            uid, ev.get("Linkedid") or uid, ev.get("Channel", ""), ts,
            ev.get("CallerIDNum", ""), ev.get("Exten", ""))
        if new_call and chan.role is Role.CLIENT:
            return self._announce(call, ts)  # an inbound call: screen pop at once
        # Both halves of a Local pair belong to one call. Asterisk gives them one
        # Linkedid; an Asterisk that sends no Linkedid (13) needs this said.
        mates = sorted(self._local_pairs.get(chan.parsed.local_pair or "", set()) - {uid})
        return self._merge(call, self._call_of(self._channels.get(mates[0]))
                           if mates else None, ts)

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

    def _on_rename(self, ev: Mapping[str, str], ts: float) -> list[Fact]:
        chan = self._channels.get(ev.get("Uniqueid", ""))
        new = ev.get("Newname", "")
        if chan is None or not new:
            return []
        self._by_name.pop(chan.name, None)
        chan.name, chan.parsed = new, parse_channel(new)
        self._by_name[new] = chan.uniqueid
        return []

    def _on_dial_begin(self, ev: Mapping[str, str], ts: float) -> list[Fact]:
        dest = self._channels.get(ev.get("DestUniqueid", ""))
        caller = self._channels.get(ev.get("Uniqueid", ""))
        dial_string = ev.get("DialString", "")
        if dest is not None:
            dest.dial_string = dial_string
            if dest.role is Role.CLIENT:
                self._claim_mobile(dest, dial_string, ev.get("DestExten", ""))
        facts: list[Fact] = []
        if caller is not None and dest is not None and caller.call != dest.call:
            facts += self._merge(self._call_of(caller), self._call_of(dest), ts)
        call = self._call_of(caller) if caller is not None else None
        if call is None:
            return facts  # an AMI Originate dialling a phone: not a call yet
        facts += self._announce(call, ts)
        if dest is not None and dest.role.internal and dest.extension and not dest.spy:
            if dest.extension not in call.rang:
                call.rang.append(dest.extension)
            facts.append(self._fact(FactKind.RINGING, call, ts, dest.extension))
        return facts

    def _claim_mobile(self, dest: _Channel, dial_string: str, exten: str) -> None:
        """A trunk channel dialling a user's mobile (follow-me, ring group) is his leg."""
        owner = self.rules.mobile_owner(dial_string) or self.rules.mobile_owner(exten)
        if owner is None:
            return
        dest.role = Role.SUPERVISOR if owner in self.rules.supervisors else Role.MANAGER
        dest.extension = owner

    def _on_dial_end(self, ev: Mapping[str, str], ts: float) -> list[Fact]:
        dest = self._channels.get(ev.get("DestUniqueid", ""))
        if dest is not None:
            dest.dial_status = ev.get("DialStatus", "")
        return []

    def _on_queue_join(self, ev: Mapping[str, str], ts: float) -> list[Fact]:
        call = self._call_of(self._channels.get(ev.get("Uniqueid", "")))
        if call is not None and ev.get("Queue"):
            call.queue = call.queue or ev["Queue"]
        return self._announce(call, ts)

    def _join_bridge(self, chan: _Channel, bridge: str) -> None:
        if chan.bridge and chan.bridge != bridge:
            # A BridgeEnter without the BridgeLeave of the old bridge (lost, reordered).
            old = self._bridges.get(chan.bridge)
            if old is not None:
                old.discard(chan.uniqueid)
                if not old:
                    del self._bridges[chan.bridge]
        chan.bridge = bridge
        self._bridges.setdefault(bridge, set()).add(chan.uniqueid)

    def _leave_bridge(self, chan: _Channel, bridge: str | None = None) -> set[str]:
        """Take ``chan`` out of its bridge; return the calls near that bridge."""
        bridge = bridge or chan.bridge
        affected = {chan.call}
        if bridge:
            members = self._bridges.get(bridge)
            if members is not None:
                members.discard(chan.uniqueid)
                affected |= self._calls_near(members)
                if not members:
                    del self._bridges[bridge]
        if chan.bridge == bridge:
            chan.bridge = None
        return affected

    def _on_bridge_enter(self, ev: Mapping[str, str], ts: float) -> list[Fact]:
        chan = self._channels.get(ev.get("Uniqueid", ""))
        bridge = ev.get("BridgeUniqueid", "")
        if chan is None or not bridge:
            return []
        self._join_bridge(chan, bridge)
        facts: list[Fact] = []
        if "Linkedid" not in ev:
            # Asterisk 13 names no Linkedid, so nothing but the bridge says that a
            # channel joined another group's conversation (an attended transfer's
            # consultation): channels bridged together are one call.
            for uid in sorted(self._bridges[bridge]):
                other = self._call_of(self._channels.get(uid))
                facts += self._merge(self._call_of(chan), other, ts)
        affected = self._calls_near(self._bridges[bridge])
        for key in affected:
            facts += self._announce(self._calls.get(key), ts)
        return facts + self._recompute(ts, affected)

    def _on_bridge_leave(self, ev: Mapping[str, str], ts: float) -> list[Fact]:
        chan = self._channels.get(ev.get("Uniqueid", ""))
        if chan is None:
            return []
        return self._recompute(ts, self._leave_bridge(chan, ev.get("BridgeUniqueid")))

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
        return self._recompute(ts, {chan.call} | self._calls_near(near))

    def _on_pickup(self, ev: Mapping[str, str], ts: float) -> list[Fact]:
        picker = self._channels.get(ev.get("Uniqueid", ""))
        target = self._channels.get(ev.get("TargetUniqueid", "")) or self._channels.get(
            self._by_name.get(ev.get("TargetChannel", ""), ""))
        if picker is None or target is None:
            return []
        return self._merge(self._call_of(picker), self._call_of(target), ts)

    def _on_spy_start(self, ev: Mapping[str, str], ts: float) -> list[Fact]:
        spyer = self._channels.get(ev.get("SpyerUniqueid", "")) or self._channels.get(
            self._by_name.get(ev.get("SpyerChannel", ""), ""))
        spyee = self._channels.get(ev.get("SpyeeUniqueid", "")) or self._channels.get(
            self._by_name.get(ev.get("SpyeeChannel", ""), ""))
        if spyer is None:
            return []
        self._make_spy(spyer)
        if spyee is None:
            return []
        return self._merge(self._call_of(spyer), self._call_of(spyee), ts)

    def _make_spy(self, chan: _Channel) -> None:
        chan.spy = True
        if chan.role is not Role.LOCAL:
            chan.role = Role.SUPERVISOR
        call = self._call_of(chan)
        if call is not None:
            call.live.discard(chan.uniqueid)

    def _on_transfer(self, ev: Mapping[str, str], ts: float) -> list[Fact]:
        """BlindTransfer / AttendedTransfer: one call, now transferred."""
        if ev.get("Result", "Success") != "Success":
            return []
        calls: list[_Call] = []
        for key, value in ev.items():
            if key.endswith("Linkedid") or key.endswith("Uniqueid"):
                call = (self._call_by_linkedid(value) if key.endswith("Linkedid")
                        else self._call_of(self._channels.get(value)))
                if call is not None and call not in calls:
                    calls.append(call)
        facts: list[Fact] = []
        base = calls[0] if calls else None
        for other in calls[1:]:
            if base is None:
                break
            facts += self._merge(base, other, ts)
            base = base if base.key in self._calls else self._calls.get(other.key)
        if base is not None:
            base.transferred = True
        return facts

    def _on_varset(self, ev: Mapping[str, str], ts: float) -> list[Fact]:
        variable = ev.get("Variable", "").lstrip("_")
        if variable not in _KNOWN_VARS:
            return []
        chan = self._channels.get(ev.get("Uniqueid", ""))
        call = self._call_of(chan) or self._call_by_linkedid(ev.get("Linkedid"))
        if call is None:
            return []
        value = ev.get("Value", "")
        if variable == _VAR_SPY:
            if chan is not None and value:
                self._make_spy(chan)
            return []
        if variable == _VAR_QUEUE:
            call.queue = call.queue or value or None
            return []
        if variable in _RECORDING_VARS or variable == "MIXMONITOR_FILENAME":
            if variable == "MIXMONITOR_FILENAME" and any(
                    v in call.variables for v in _RECORDING_VARS):
                return []  # the per-leg names already cover this file
            if value and value not in call.recordings:
                call.recordings.append(value)
                # The channel whose VarSet announced the file is the one running MixMonitor.
                call.recording_refs.append(RecordingRef(
                    path=value, side=_RECORDING_SIDES[variable],
                    uniqueid=ev.get("Uniqueid") or None))
                call.variables[variable] = value
                return [self._fact(FactKind.RECORDING, call, ts)] if call.announced else []
            return []
        if value:
            call.variables.setdefault(variable, value)
        return []

    def _on_hangup(self, ev: Mapping[str, str], ts: float) -> list[Fact]:
        chan = self._channels.get(ev.get("Uniqueid", ""))
        if chan is None or chan.hungup is not None:
            return []
        chan.cause = _int(ev.get("Cause"))
        return self._hang_up(chan, ts)

    def _hang_up(self, chan: _Channel, ts: float) -> list[Fact]:
        call = self._call_of(chan)
        if call is not None:
            ts = call.last = max(ts, call.last, chan.created)
        chan.hungup = ts
        affected = self._leave_bridge(chan) if chan.bridge else {chan.call}
        facts = self._recompute(ts, affected)
        call = self._call_of(chan)
        if call is None:
            return facts
        call.live.discard(chan.uniqueid)
        if not call.live:
            facts += self._end(call, ts)
        return facts

    def _end(self, call: _Call, ts: float) -> list[Fact]:
        ts = call.last = max(ts, call.last, call.started)
        for uid in call.channels:  # spies still listening are let go with the call
            chan = self._channels.get(uid)
            if chan is not None and chan.hungup is None:
                chan.hungup = ts
                self._leave_bridge(chan)
                self._close_intervals(chan, ts)
        call.ended = ts
        facts: list[Fact] = []
        chans = [self._channels[u] for u in call.legs if u in self._channels]
        # A group never announced is a call only if a client was on it; a phone
        # that dialled a feature code (*8 with nothing ringing) or a supervisor's
        # phone originated into ChanSpy with nobody to listen to is no call.
        if not call.announced and any(c.role is Role.CLIENT for c in chans):
            facts += self._announce_at_end(call, ts)
        if call.announced:
            facts.append(self._fact(FactKind.ENDED, call, ts))
        self._forget(call)
        return facts

    def _announce_at_end(self, call: _Call, ts: float) -> list[Fact]:
        call.announced = True
        return [self._fact(FactKind.STARTED, call, ts)]

    _handlers: ClassVar[dict[str, _Handler]] = {
        "Newchannel": _on_newchannel,
        "Newstate": _on_newstate,
        "NewCallerid": _on_callerid,
        "Rename": _on_rename,
        "DialBegin": _on_dial_begin,
        "DialEnd": _on_dial_end,
        "QueueCallerJoin": _on_queue_join,
        "BridgeEnter": _on_bridge_enter,
        "BridgeLeave": _on_bridge_leave,
        "BridgeDestroy": _on_bridge_destroy,
        "Hold": _on_hold,
        "Unhold": _on_hold,
        "MusicOnHoldStart": _on_hold,
        "MusicOnHoldStop": _on_hold,
        "Pickup": _on_pickup,
        "ChanSpyStart": _on_spy_start,
        "BlindTransfer": _on_transfer,
        "AttendedTransfer": _on_transfer,
        "VarSet": _on_varset,
        "Hangup": _on_hangup,
    }

    # -- reconciliation -------------------------------------------------------------

    def _reconcile(self, listing: list[Mapping[str, str]], at: float) -> list[Fact]:
        at = max(self._clock, at)
        self._clock = at
        listed = {item.get("Uniqueid", ""): item for item in listing if item.get("Uniqueid")}
        facts: list[Fact] = []
        # 1. Known channels gone from the listing hung up while we were away.
        for call in list(self._calls.values()):
            for uid in sorted(call.live | {u for u in call.channels
                                           if u in self._channels and self._channels[u].spy
                                           and self._channels[u].hungup is None}):
                chan = self._channels.get(uid)
                if chan is not None and chan.hungup is None and uid not in listed:
                    if call.key in self._calls:
                        facts += self._hang_up(chan, at)
        # 2. Unknown channels: calls that started while we were away.
        estimated: dict[str, float] = {}
        for uid, item in listed.items():
            if uid in self._channels:
                continue
            epoch = _uid_epoch(uid)
            created = min(epoch + 0.5, at) if epoch is not None else (
                at - _duration(item.get("Duration")))
            chan, _, _ = self._add_channel(
                uid, item.get("Linkedid") or uid, item.get("Channel", ""), created,
                item.get("CallerIDNum", ""), item.get("Exten", ""))
            owner = self._call_of(chan)
            if owner is not None:
                owner.started = min(owner.started, created)
            if item.get("ChannelState") == "6":
                chan.answered = created
            estimated[uid] = created
        # 3. Bridges as they are now, for new and known channels alike.
        affected: set[str] = set()
        for uid, item in listed.items():
            chan = self._channels.get(uid)
            if chan is None:
                continue
            bridge = item.get("BridgeId", "")
            if bridge and bridge != chan.bridge:
                self._join_bridge(chan, bridge)
                affected |= self._calls_near(self._bridges[bridge])
            elif not bridge and chan.bridge:
                affected |= self._leave_bridge(chan)
        for key in sorted(affected | {self._channels[u].call for u in estimated}):
            touched = self._calls.get(key)
            if touched is not None:
                facts += self._announce(touched, at)
        facts += self._recompute(at, affected | {self._channels[u].call for u in estimated},
                                 since=self._talk_estimates(estimated))
        return facts

    def _talk_estimates(self, estimated: Mapping[str, float]) -> dict[str, float]:
        """When each newly listed channel started talking: its bridge's youngest channel."""
        out: dict[str, float] = {}
        for uid, created in estimated.items():
            chan = self._channels[uid]
            members = self._bridges.get(chan.bridge or "", set())
            starts = [self._channels[m].created for m in members if m in self._channels]
            out[uid] = max([created, *starts])
        return out

    # -- talk time ------------------------------------------------------------

    def _reach(self, chan: _Channel) -> list[_Channel]:
        """Live real parties connected to ``chan`` through bridges and Local pairs."""
        seen_bridges: set[str] = set()
        seen_chans: set[str] = {chan.uniqueid}
        parties: list[_Channel] = []
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
                elif not other.spy:
                    parties.append(other)
        return parties

    def _state(self, chan: _Channel, has_client: bool) -> str:
        """``talk``, ``hold`` (bridged to the counterpart, but held) or ``none``."""
        if chan.hungup is not None or chan.bridge is None or chan.spy:
            return "none"
        counterparts = [o for o in self._reach(chan)
                        if (o.role is Role.CLIENT if has_client else o.role.internal)]
        if not counterparts:
            return "none"
        if chan.on_hold or all(o.on_hold for o in counterparts):
            return "hold"
        return "talk"

    def _calls_near(self, uids: Iterable[str]) -> set[str]:
        """Calls whose channels are among ``uids`` (and, through Local pairs, beyond)."""
        linked: set[str] = set()
        for uid in uids:
            chan = self._channels.get(uid)
            if chan is None:
                continue
            linked.add(chan.call)
            if chan.role is Role.LOCAL:
                for mate in self._local_pairs.get(chan.parsed.local_pair or "", ()):
                    mate_chan = self._channels.get(mate)
                    if mate_chan is not None:
                        linked.add(mate_chan.call)
                        if mate_chan.bridge:
                            linked |= {self._channels[u].call
                                       for u in self._bridges.get(mate_chan.bridge, ())
                                       if u in self._channels}
        return linked

    @staticmethod
    def _close_intervals(chan: _Channel, ts: float) -> None:
        if chan.talking and chan.talks:
            chan.talks[-1][1] = max(ts, chan.talks[-1][0])
        chan.talking = False
        if chan.hold_since is not None:
            chan.holds += max(ts - chan.hold_since, 0.0)
            chan.hold_since = None

    def _recompute(self, ts: float, keys: Iterable[str],
                   since: Mapping[str, float] | None = None) -> list[Fact]:
        """Open or close talk intervals of these calls after the topology changed."""
        facts: list[Fact] = []
        for key in sorted(set(keys)):
            call = self._calls.get(key)
            if call is None or call.ended is not None:
                continue
            ts_call = call.last = max(ts, call.last, call.started)
            chans = [self._channels[u] for u in call.legs if u in self._channels]
            has_client = any(c.role is Role.CLIENT for c in chans)
            first_talk: str | None = None
            joined: list[str] = []
            for chan in chans:
                if not chan.role.internal:
                    continue
                state = self._state(chan, has_client)
                start = (since or {}).get(chan.uniqueid, ts_call)
                if state == "talk" and not chan.talking:
                    chan.talking = True
                    chan.talks.append([start, start])
                elif state != "talk" and chan.talking:
                    chan.talks[-1][1] = max(ts_call, chan.talks[-1][0])
                    chan.talking = False
                if state == "hold" and chan.hold_since is None:
                    chan.hold_since = ts_call
                elif state != "hold" and chan.hold_since is not None:
                    chan.holds += max(ts_call - chan.hold_since, 0.0)
                    chan.hold_since = None
                if chan.talking and chan.extension and chan.extension not in call.joined:
                    call.joined.append(chan.extension)
                    if call.answered is None:
                        call.answered = chan.talks[-1][0]
                        first_talk = chan.extension
                    elif first_talk is None:  # not both parties of an internal call
                        joined.append(chan.extension)
            if first_talk is not None and call.announced:
                facts.append(self._fact(FactKind.ANSWERED, call, ts_call, first_talk))
            if call.announced:
                facts += [self._fact(FactKind.LEG_JOINED, call, ts_call, ext) for ext in joined]
        return facts

    # -- snapshots ------------------------------------------------------------

    def _fact(self, kind: FactKind, call: _Call, ts: float,
              extension: str | None = None) -> Fact:
        ts = max(ts, call.started)
        return Fact(kind=kind, at=_at(ts),
                    call=self._snapshot(call, None if call.ended is not None else ts),
                    extension=extension)

    def _direction(self, call: _Call, chans: list[_Channel]) -> str:
        declared = call.variables.get(_VAR_DIRECTION, "").lower()
        if declared in _DIRECTIONS:
            return declared
        parties = [c for c in chans if not c.spy]
        first = self._channels.get(call.key) or (parties[0] if parties else None)
        if first is not None and first.role is Role.CLIENT:
            return "inbound"
        if any(c.role is Role.CLIENT for c in parties):
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
        if call.ended is None:
            return "in_progress"  # answered or not: answered_at tells
        if call.answered is not None:
            return "answered"
        if direction == "inbound":
            return "missed"
        # The far side's dial status says most; its hangup cause says the rest.
        far = [c for c in chans if c.uniqueid != call.key and not c.spy and (
            c.role is Role.CLIENT if direction == "outbound" else c.role.internal)]
        statuses = {c.dial_status for c in far}
        causes = {c.cause for c in far if c.cause is not None}
        if "BUSY" in statuses or causes & _BUSY_CAUSES:
            return "busy"
        if statuses & {"CONGESTION", "CHANUNAVAIL"} or (causes & _FAILED_CAUSES):
            return "failed"
        if not far:
            return "failed"
        return "no_answer"

    @staticmethod
    def _talk_of(chan: _Channel, now: float) -> list[tuple[float, float]]:
        out = []
        for i, (start, end) in enumerate(chan.talks):
            if chan.talking and i == len(chan.talks) - 1:
                end = now
            out.append((start, max(end, start)))
        return out

    def _snapshot(self, call: _Call, now: float | None = None) -> CallData:
        if now is None:
            now = call.ended if call.ended is not None else self._clock
        chans = [self._channels[u] for u in call.legs if u in self._channels]
        direction = self._direction(call, chans)
        legs = []
        intervals: list[tuple[float, float]] = []
        talked: list[tuple[float, float, str]] = []
        for chan in chans:
            spans = self._talk_of(chan, now)
            talk = sum(end - start for start, end in spans)
            hold = chan.holds + (now - chan.hold_since if chan.hold_since is not None else 0.0)
            if chan.role.internal:
                intervals += spans
                # A party is whoever was bridged with the client, however long: a PBX
                # that stamps no time (or a replay at one instant) still has parties.
                if spans and chan.extension:
                    talked.append((spans[0][0], chan.created, chan.extension))
            legs.append(LegData(
                uniqueid=chan.uniqueid, channel=chan.name, role=str(chan.role),
                extension=chan.extension, started_at=_at(chan.created),
                answered_at=_to_dt(chan.answered), ended_at=_to_dt(chan.hungup),
                talk_seconds=round(max(talk, 0.0), 3), hangup_cause=chan.cause,
                hold_seconds=round(max(hold, 0.0), 3),
                bridged_at=_to_dt(spans[0][0]) if spans else None,
            ))
        managers: list[str] = []
        for _, _, ext in sorted(talked):
            if ext not in managers:
                managers.append(ext)
        talk = 0.0
        cursor = float("-inf")
        for start, end in sorted(intervals):  # the union: overlapping legs count once
            start = max(start, cursor)
            if end > start:
                talk += end - start
                cursor = end
        ring_end = call.answered if call.answered is not None else (
            call.ended if call.ended is not None else now)
        customer_facing = direction != "internal"
        return CallData(
            linkedid=call.key,
            direction=direction,
            status=self._status(call, direction, chans),
            client_number=self._client_number(call, direction, chans),
            did=call.variables.get(_VAR_DID) or (
                (self._channels[call.key].exten or None)
                if direction == "inbound" and call.key in self._channels else None),
            started_at=_at(call.started),
            answered_at=_to_dt(call.answered),
            ended_at=_to_dt(call.ended),
            ring_seconds=round(max(ring_end - call.started, 0.0), 3),
            talk_seconds=round(max(talk, 0.0), 3),
            transferred=call.transferred or (customer_facing and len(managers) > 1),
            managers=tuple(managers),
            recordings=tuple(call.recordings) if call.answered is not None else (),
            recording_details=(
                tuple(call.recording_refs) if call.answered is not None else ()),
            legs=tuple(legs),
            rang=tuple(call.rang),
            queue=call.queue,
            merged_into=call.merged_into,
        )

    def _forget(self, call: _Call) -> None:
        """Drop a finished call so memory stays flat over long runs."""
        self._calls.pop(call.key, None)
        for linkedid in call.linkedids:
            if self._call_of_linkedid.get(linkedid) == call.key:
                del self._call_of_linkedid[linkedid]
        for uid in call.channels:
            chan = self._channels.get(uid)
            if chan is None or chan.call != call.key:
                continue
            del self._channels[uid]
            if self._by_name.get(chan.name) == uid:
                del self._by_name[chan.name]
            if chan.bridge:
                self._leave_bridge(chan)
            pair = chan.parsed.local_pair
            if pair is not None:
                mates = self._local_pairs.get(pair)
                if mates is not None:
                    mates.discard(uid)
                    if not mates:
                        del self._local_pairs[pair]


# What the tracker reads (pbx_bridge.feed builds the parser's EventFilter from these):
# events of any other name return at once, and of a VarSet whose variable is not one of
# these only Uniqueid, Linkedid and Timestamp are read (time, and a changed Linkedid).
HANDLED_EVENTS = frozenset(CallTracker._handlers)
KNOWN_VARIABLES = _KNOWN_VARS
