"""The wallboard's live part: callers waiting in each queue, and each manager's state.

Pure functions over the call tracker's snapshots (:class:`~crm_core.calls.snapshot.CallData`,
as ``CallTracker.live_calls`` returns them), so the board shows exactly what the
tracker concluded and a replayed capture tests it. No clock: the caller passes "now".

A caller waits from the moment his call reached the PBX until a manager answers
(the call's ``answered_at``: the first moment of conversation), which is also how the
stored ``ring_seconds`` of the day's figures count it; the queue is the one the
tracker saw him join (``QueueCallerJoin`` or ``QUEUENAME``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from crm_core.calls.snapshot import CallData, LegData

MANAGER_ROLE = "manager"


@dataclass(frozen=True, slots=True)
class WaitingCaller:
    """An inbound call in a queue that no manager has answered yet."""

    queue: str
    linkedid: str
    number: str | None
    since: datetime
    seconds: float


def waiting_callers(calls: Iterable[CallData], now: datetime) -> dict[str, list[WaitingCaller]]:
    """Callers waiting now, per queue, the longest wait first."""
    out: dict[str, list[WaitingCaller]] = {}
    for call in calls:
        if (call.direction != "inbound" or not call.queue or call.answered_at is not None
                or call.ended_at is not None):
            continue
        seconds = max((now - call.started_at).total_seconds(), 0.0)
        out.setdefault(call.queue, []).append(WaitingCaller(
            queue=call.queue, linkedid=call.linkedid, number=call.client_number,
            since=call.started_at, seconds=seconds))
    for waiting in out.values():
        waiting.sort(key=lambda caller: (-caller.seconds, caller.linkedid))
    return out


class ManagerState(StrEnum):
    TALKING = "talking"
    RINGING = "ringing"
    IDLE = "idle"
    PAUSED = "paused"
    OFFLINE = "offline"


# How the board says it (Russian: the wall is read by the sales floor).
STATE_LABELS = {ManagerState.TALKING: "в разговоре", ManagerState.RINGING: "звонит",
                ManagerState.IDLE: "свободен", ManagerState.PAUSED: "пауза",
                ManagerState.OFFLINE: "не в сети"}


@dataclass(frozen=True, slots=True)
class Activity:
    """A manager's state now, since when (None: not known), and the call it is about."""

    state: ManagerState
    since: datetime | None = None
    linkedid: str | None = None
    direction: str | None = None
    client_number: str | None = None
    reason: str | None = None  # the pause's reason («Обед»), when paused

    @property
    def label(self) -> str:
        if self.state == ManagerState.PAUSED and self.reason:
            return self.reason.lower()
        return STATE_LABELS[self.state]


def _live_legs(extension: str, calls: Iterable[CallData]) -> list[tuple[CallData, LegData]]:
    return [(call, leg) for call in calls for leg in call.legs
            if leg.role == MANAGER_ROLE and leg.extension == extension and leg.ended_at is None]


def manager_state(extension: str | None, calls: Iterable[CallData], *,
                  registered: bool | None = None,
                  pause: tuple[str, datetime | None] | None = None) -> Activity:
    """The one place that decides what the wallboard says a manager is doing.

    A call outranks everything: talking (a live leg of his that has been bridged with
    the other party; hold included) before ringing (a live leg of his not bridged yet:
    his phone rings, or he is dialling out), then «не в сети» when his phone is known
    to be unregistered (``registered=False``; None: not known), then a pause he set
    (``pause``: its reason and since when; crm_core.presence), else free. A manager on a
    break who takes a call is on a call.
    """
    legs = _live_legs(extension, calls) if extension else []
    talking = [(call, leg) for call, leg in legs if leg.bridged_at is not None]
    if talking:
        call, leg = min(talking, key=lambda pair: pair[1].bridged_at or pair[1].started_at)
        return Activity(ManagerState.TALKING, leg.bridged_at, call.linkedid, call.direction,
                        call.client_number)
    if legs:
        call, leg = min(legs, key=lambda pair: pair[1].started_at)
        return Activity(ManagerState.RINGING, leg.started_at, call.linkedid, call.direction,
                        call.client_number)
    if registered is False:
        return Activity(ManagerState.OFFLINE)
    if pause is not None:
        return Activity(ManagerState.PAUSED, pause[1], reason=pause[0])
    return Activity(ManagerState.IDLE)
