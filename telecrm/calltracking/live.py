"""The call's source on the live Asterisk channel while it rings.

The writer decides a call's attribution as soon as the call is stored (its first
snapshot, in the same transaction). This sink runs after the store and the live
events: for each new inbound call it reads that attribution and sets
``CRM_SOURCE`` on the caller's channel (AMI ``Setvar``), so the dialplan, the CDR
and the phones can use it. The screen pop asks ``/api/ct/calls/{id}/source``.

A call stored before its visit's lease history (the history follows the public
endpoint by a moment) first gets the site's name; when the call is answered the
sink looks once more, and a visit found by then replaces it on the channel.

Live hints only: failures are logged and never hold up the call log.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.calls.models import Call, Direction, LegRole
from crm_core.calltracking.attribution import source_label
from crm_core.calltracking.models import AttributionKind, CtAttribution
from pbx_bridge.ami import AmiSession
from pbx_bridge.ami_values import ami_value
from pbx_bridge.tracker import Fact, FactKind

log = logging.getLogger(__name__)

FactSink = Callable[[list[Fact]], Awaitable[None]]
SOURCE_VARIABLE = "CRM_SOURCE"
_REMEMBERED = 5000  # calls already handled (a bounded memory)


def setvar_action(channel: str, label: str) -> dict[str, Any]:
    """``Setvar`` of the source on a channel; the label is a visitor's text, so only the
    safe alphabet of :func:`~pbx_bridge.ami_values.ami_value` reaches Asterisk."""
    return {"Action": "Setvar", "Channel": channel, "Variable": SOURCE_VARIABLE,
            "Value": ami_value(label, 80) or "unknown"}


class SourceOnChannel:
    """Puts each new inbound call's source on its Asterisk channel (``CRM_SOURCE``)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession],
                 ami: Callable[[], AmiSession | None], *, timeout: float = 3.0) -> None:
        self.sessions = sessions
        self.ami = ami
        self.timeout = timeout
        self._done: OrderedDict[str, str | None] = OrderedDict()  # linkedid -> label
        self._set: set[str] = set()  # linkedids whose channel has its source
        self._unsure: set[str] = set()  # set from a guess that a late lease may correct
        self.set_on_channels = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def _labels(self, linkedids: list[str]) -> dict[str, tuple[str | None, bool]]:
        """Each call's label, and whether it came from a visit (no later lease changes it)."""
        stmt = (select(Call.linkedid, CtAttribution).join(CtAttribution,
                                                          CtAttribution.call_id == Call.id)
                .where(Call.linkedid.in_(linkedids)))
        async with self.sessions() as session:
            return {linkedid: (source_label(row), row.kind == AttributionKind.DYNAMIC.value)
                    for linkedid, row in await session.execute(stmt)}

    async def __call__(self, facts: list[Fact]) -> None:
        inbound = [f for f in facts if f.call.direction == Direction.INBOUND.value]
        wanted = [f for f in inbound if f.kind in (FactKind.STARTED, FactKind.RINGING)]
        again = [f for f in inbound if f.kind == FactKind.ANSWERED
                 and f.call.linkedid in self._unsure]
        if not wanted and not again:
            return
        try:
            fresh = sorted({f.call.linkedid for f in wanted} - self._done.keys())
            recheck = sorted({f.call.linkedid for f in again})
            self._unsure.difference_update(recheck)  # one more look per call, no more
            labels = await self._labels(fresh + recheck) if fresh or recheck else {}
        except Exception:
            log.warning("call tracking: could not read sources", exc_info=True)
            return
        for linkedid in fresh:
            label, firm = labels.get(linkedid, (None, False))
            self._done[linkedid] = label
            if not firm:
                self._unsure.add(linkedid)
            if len(self._done) > _REMEMBERED:
                gone, _ = self._done.popitem(last=False)
                self._set.discard(gone)
                self._unsure.discard(gone)
        for linkedid in recheck:
            label, _ = labels.get(linkedid, (None, False))
            if label is not None and label != self._done.get(linkedid):
                self._done[linkedid] = label
                self._set.discard(linkedid)  # the better label goes on the channel
        for fact in (*wanted, *again):
            label = self._done.get(fact.call.linkedid)
            if label is not None and fact.call.linkedid not in self._set and any(
                    leg.role == LegRole.CLIENT and leg.ended_at is None for leg in fact.call.legs):
                self._set.add(fact.call.linkedid)  # one attempt per label: never re-sent
                # in the background: the call log never waits for an AMI round trip
                task = asyncio.create_task(self._set_on_channel(fact, label))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _set_on_channel(self, fact: Fact, label: str) -> None:
        session = self.ami()
        channel = next((leg.channel for leg in fact.call.legs
                        if leg.role == LegRole.CLIENT and leg.ended_at is None), None)
        if session is None or channel is None or not session.connected.is_set():
            return
        try:
            await session.action(setvar_action(channel, label), timeout=self.timeout)
            self.set_on_channels += 1
        except Exception as exc:
            log.info("call tracking: %s not set on %s: %s", SOURCE_VARIABLE, channel, exc)


def then(first: FactSink, second: FactSink) -> FactSink:
    """One sink running ``first`` then ``second`` (the second never fails the first)."""

    async def sink(facts: list[Fact]) -> None:
        await first(facts)
        await second(facts)

    return sink
