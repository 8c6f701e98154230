"""The call's source on the live Asterisk channel while it rings.

The writer decides a call's attribution as soon as the call is stored (its first
snapshot, in the same transaction). This sink runs after the store and the live
events: for each new inbound call it reads that attribution and sets
``CRM_SOURCE`` on the caller's channel (AMI ``Setvar``), so the dialplan, the CDR
and the phones can use it. The screen pop asks ``/api/ct/calls/{id}/source``.

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
from crm_core.calltracking.models import CtAttribution
from pbx_bridge.actions import caller_id_name
from pbx_bridge.ami import AmiSession
from pbx_bridge.tracker import Fact, FactKind

log = logging.getLogger(__name__)

FactSink = Callable[[list[Fact]], Awaitable[None]]
SOURCE_VARIABLE = "CRM_SOURCE"
_REMEMBERED = 5000  # calls already handled (a bounded memory)


def setvar_action(channel: str, label: str) -> dict[str, Any]:
    """``Setvar`` of the source on a channel; the value is ASCII without AMI line breaks."""
    return {"Action": "Setvar", "Channel": channel, "Variable": SOURCE_VARIABLE,
            "Value": caller_id_name(label) or "unknown"}


class SourceOnChannel:
    """Puts each new inbound call's source on its Asterisk channel (``CRM_SOURCE``)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession],
                 ami: Callable[[], AmiSession | None], *, timeout: float = 3.0) -> None:
        self.sessions = sessions
        self.ami = ami
        self.timeout = timeout
        self._done: OrderedDict[str, str | None] = OrderedDict()  # linkedid -> label
        self._set: set[str] = set()  # linkedids whose channel has its source
        self.set_on_channels = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def _labels(self, linkedids: list[str]) -> dict[str, str | None]:
        stmt = (select(Call.linkedid, CtAttribution).join(CtAttribution,
                                                          CtAttribution.call_id == Call.id)
                .where(Call.linkedid.in_(linkedids)))
        async with self.sessions() as session:
            return {linkedid: source_label(row) for linkedid, row in await session.execute(stmt)}

    async def __call__(self, facts: list[Fact]) -> None:
        wanted = [f for f in facts if f.call.direction == Direction.INBOUND.value
                  and f.kind in (FactKind.STARTED, FactKind.RINGING)]
        if not wanted:
            return
        try:
            fresh = sorted({f.call.linkedid for f in wanted} - self._done.keys())
            labels = await self._labels(fresh) if fresh else {}
        except Exception:
            log.warning("call tracking: could not read sources", exc_info=True)
            return
        for linkedid in fresh:
            self._done[linkedid] = labels.get(linkedid)
            if len(self._done) > _REMEMBERED:
                gone, _ = self._done.popitem(last=False)
                self._set.discard(gone)
        for fact in wanted:
            label = self._done.get(fact.call.linkedid)
            if label is not None and fact.call.linkedid not in self._set and any(
                    leg.role == LegRole.CLIENT and leg.ended_at is None for leg in fact.call.legs):
                self._set.add(fact.call.linkedid)  # one attempt per call: never re-sent
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
