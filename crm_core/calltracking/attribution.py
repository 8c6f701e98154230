"""Where an inbound call came from, decided once per call and kept.

The rules, in order:
1. the DID is a static number: its channel;
2. the DID is a pool number: the visit whose lease on it contains the call's start
   (or ended at most the site's grace before it); several visits at once (only when
   the site shares live leases) make the call ambiguous, with the candidates kept;
3. otherwise the caller's earlier known source (a repeat call);
4. otherwise the number's own channel (the site's, for a pool number without a lease);
5. otherwise unidentified.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import BindParameter, Select, bindparam, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from crm_core.calls.hooks import WrittenCall
from crm_core.calls.models import Call, Direction
from crm_core.calltracking.models import (
    AttributionKind,
    CtAttribution,
    CtLease,
    CtPoolNumber,
    CtSite,
    CtStaticNumber,
    CtVisit,
)

_Tracked = TypeVar("_Tracked", CtStaticNumber, CtPoolNumber)


def _from_visit(visit: CtVisit, site: CtSite) -> dict[str, Any]:
    return {"visit_id": visit.id, "channel": site.channel, "source": visit.utm_source,
            "medium": visit.utm_medium, "campaign": visit.utm_campaign,
            "landing": visit.landing}


async def _by_lease(session: AsyncSession, call: Call, pool: CtPoolNumber
                    ) -> dict[str, Any] | None:
    site = await session.get(CtSite, pool.site_id)
    assert site is not None
    at = call.started_at
    grace = timedelta(seconds=site.grace_seconds)
    stmt = (select(CtLease).options(joinedload(CtLease.visit))
            .where(CtLease.number == pool.number, CtLease.started_at <= at,
                   CtLease.ends_at >= at - grace)
            .order_by(CtLease.ends_at.desc(), CtLease.id))
    leases = list(await session.scalars(stmt))
    if not leases:
        return None
    live = [lease for lease in leases if lease.ends_at >= at]
    if live:
        visits = list(dict.fromkeys(lease.visit for lease in live))
        owner = next((lease.visit for lease in sorted(live, key=lambda x: x.started_at)
                      if not lease.shared), visits[0])
        values = _from_visit(owner, site)
        if len(visits) > 1:
            values["ambiguous"] = True
            values["candidates"] = [visit.session for visit in visits]
        return values
    return _from_visit(leases[0].visit, site)  # ended within the grace: the latest


@dataclass
class _Known:
    """What a batch of calls needs looked up, fetched once: tracked numbers, earlier sources."""

    statics: dict[str, list[CtStaticNumber]] = field(default_factory=dict)
    pools: dict[str, list[CtPoolNumber]] = field(default_factory=dict)
    # per caller: (call start, its static or dynamic attribution), as known so far
    earlier: dict[str, list[tuple[datetime, CtAttribution]]] = field(default_factory=dict)

    def remember(self, call: Call, row: CtAttribution) -> None:
        if call.client_number and row.kind in _FIRM:
            self.earlier.setdefault(call.client_number, []).append((call.started_at, row))


_FIRM = (AttributionKind.STATIC.value, AttributionKind.DYNAMIC.value)


@functools.cache
def _prepare_queries() -> tuple[Select[CtStaticNumber], Select[CtPoolNumber],
                                Select[str | None, datetime, CtAttribution]]:
    """Built once, the numbers bound at each run: every first write of an inbound call
    asks, and building the statements cost more processor time than running them."""
    ids: BindParameter[list[str]] = bindparam("ids", expanding=True)
    return (select(CtStaticNumber).where(CtStaticNumber.did.in_(ids))
            .order_by(CtStaticNumber.id),
            select(CtPoolNumber).where(CtPoolNumber.number.in_(ids)).order_by(CtPoolNumber.id),
            select(Call.client_number, Call.started_at, CtAttribution)
            .join(CtAttribution, CtAttribution.call_id == Call.id)
            .where(Call.client_number.in_(ids), CtAttribution.kind.in_(_FIRM)))


async def _prepare(session: AsyncSession, calls: Sequence[Call]) -> _Known:
    known = _Known()
    dids = sorted({c.did for c in calls if c.did})
    numbers = sorted({c.client_number for c in calls if c.client_number})
    statics, pools, earlier = _prepare_queries()
    if dids:
        known.statics = _by_key(await session.scalars(statics, {"ids": dids}), "did")
        known.pools = _by_key(await session.scalars(pools, {"ids": dids}), "number")
    if numbers:
        rows = await session.execute(earlier, {"ids": numbers})
        for number, started, row in rows:
            if number is not None:
                known.earlier.setdefault(number, []).append((started, row))
    return known


def _by_key(rows: Iterable[_Tracked], key: str) -> dict[str, list[_Tracked]]:
    grouped: dict[str, list[_Tracked]] = {}
    for row in rows:
        grouped.setdefault(getattr(row, key), []).append(row)
    return grouped


def _in_effect(rows: Sequence[_Tracked], at: datetime, *, archived_too: bool
               ) -> _Tracked | None:
    """The row that tracked the number when the call came (a number archived and added
    again has several): the one whose life contains ``at``, else the tracked one, else
    (``archived_too``) the latest."""
    for row in reversed(rows):
        if row.created_at <= at and (row.archived_at is None or at < row.archived_at):
            return row
    live = [row for row in rows if row.archived_at is None]
    if live:
        return live[-1]
    return rows[-1] if archived_too and rows else None


def _earlier_source(known: _Known, call: Call) -> CtAttribution | None:
    if not call.client_number:
        return None
    before = [(started, row) for started, row in known.earlier.get(call.client_number, [])
              if started < call.started_at]
    return max(before, key=lambda pair: pair[0])[1] if before else None


async def decide(session: AsyncSession, call: Call, known: _Known | None = None
                 ) -> dict[str, Any]:
    """The attribution of ``call`` as column values (not stored)."""
    if known is None:
        known = await _prepare(session, [call])
    did = call.did
    at = call.started_at
    static = _in_effect(known.statics.get(did, []), at, archived_too=False) if did else None
    if static is not None:
        return {"kind": AttributionKind.STATIC.value, "channel": static.channel,
                "source": static.source, "medium": static.medium, "campaign": static.campaign}
    pool = _in_effect(known.pools.get(did, []), at, archived_too=True) if did else None
    if pool is not None:
        values = await _by_lease(session, call, pool)
        if values is not None:
            return {"kind": AttributionKind.DYNAMIC.value, **values}
    earlier = _earlier_source(known, call)
    if earlier is not None:
        return {"kind": AttributionKind.REPEAT.value, "visit_id": earlier.visit_id,
                "channel": earlier.channel, "source": earlier.source, "medium": earlier.medium,
                "campaign": earlier.campaign, "landing": earlier.landing}
    if pool is not None:
        site = await session.get(CtSite, pool.site_id)
        assert site is not None
        return {"kind": AttributionKind.STATIC.value, "channel": site.channel}
    return {"kind": AttributionKind.UNIDENTIFIED.value}


def _loaded(call: Call) -> tuple[bool, CtAttribution | None]:
    if "ct_attribution" in inspect(call).unloaded:
        return False, None
    return True, call.ct_attribution  # type: ignore[attr-defined]


async def attribute_call(session: AsyncSession, call: Call) -> CtAttribution | None:
    """Decide and store the call's attribution once (inbound calls only); idempotent."""
    if call.direction != Direction.INBOUND.value:
        return None
    loaded, existing = _loaded(call)
    if not loaded:
        existing = await session.scalar(
            select(CtAttribution).where(CtAttribution.call_id == call.id))
    if existing is not None:
        return existing
    values = await decide(session, call)
    try:
        async with session.begin_nested():
            row = CtAttribution(call_id=call.id, **values)
            session.add(row)
        set_committed_value(call, "ct_attribution", row)  # a later snapshot sees it
    except IntegrityError:  # another writer attributed it first
        return await session.scalar(select(CtAttribution).where(CtAttribution.call_id == call.id))
    return row


async def attribute_calls(session: AsyncSession, calls: Sequence[Call]) -> None:
    """``attribute_call`` for a written batch, with a few queries for the whole batch.

    The caller's transaction (the bulk writer's savepoint) takes a concurrent writer's
    IntegrityError and retries the batch, which then finds the attributions written.
    """
    pending: list[Call] = []
    unknown: list[Call] = []
    for call in calls:
        if call.direction != Direction.INBOUND.value or call in pending or call in unknown:
            continue
        loaded, existing = _loaded(call)
        if not loaded:
            unknown.append(call)
        elif existing is None:
            pending.append(call)
    if unknown:
        done = set(await session.scalars(select(CtAttribution.call_id).where(
            CtAttribution.call_id.in_([c.id for c in unknown]))))
        pending.extend(c for c in unknown if c.id not in done)
    if not pending:
        return
    pending.sort(key=lambda c: (c.started_at, c.id))
    known = await _prepare(session, pending)
    for call in pending:
        row = CtAttribution(call_id=call.id, **await decide(session, call, known))
        session.add(row)
        set_committed_value(call, "ct_attribution", row)
        known.remember(call, row)
    await session.flush()


async def attribute_pending(session: AsyncSession, limit: int = 10_000) -> int:
    """Attribute inbound calls that have none yet (after a replay or a backfill)."""
    stmt = (select(Call).outerjoin(CtAttribution, CtAttribution.call_id == Call.id)
            .where(Call.direction == Direction.INBOUND.value, CtAttribution.id.is_(None))
            .order_by(Call.started_at, Call.id).limit(limit))
    calls = list(await session.scalars(stmt))
    for call in calls:
        await attribute_call(session, call)
    return len(calls)


async def attribute_late_leases(session: AsyncSession, leases: Sequence[CtLease]) -> int:
    """Give a visit to the calls that were stored before their lease's history was.

    The public endpoint answers from the lease store and the history follows a
    moment later (``telecrm.calltracking.history``); a visitor who dials at once, on
    a busy server, can be attributed to the site alone. Each lease written re-decides
    the inbound calls on its number within its window that have no dynamic
    attribution yet; only a dynamic result replaces what they have.
    """
    if not leases:
        return 0
    sites = {site.id: site for site in await session.scalars(
        select(CtSite).where(CtSite.id.in_({lease.site_id for lease in leases})))}
    grace = timedelta(seconds=max(site.grace_seconds for site in sites.values()))
    stmt = (select(Call, CtAttribution).join(CtAttribution, CtAttribution.call_id == Call.id)
            .where(Call.direction == Direction.INBOUND.value,
                   Call.did.in_({lease.number for lease in leases}),
                   Call.started_at >= min(lease.started_at for lease in leases),
                   Call.started_at <= max(lease.ends_at for lease in leases) + grace,
                   CtAttribution.kind != AttributionKind.DYNAMIC.value)
            .order_by(Call.started_at, Call.id))
    changed = 0
    for call, row in (await session.execute(stmt)).all():
        values = await decide(session, call)
        if values["kind"] != AttributionKind.DYNAMIC.value:
            continue
        row.ambiguous, row.candidates = False, []
        for name, value in values.items():
            setattr(row, name, value)
        changed += 1
    return changed


def tracking_of(row: CtAttribution | None) -> dict[str, Any] | None:
    """The call's ``tracking`` field (architecture.md), extended with ambiguity.

    None when nothing is known of the call's source (no tracked number, no earlier source).
    """
    if row is None or row.kind == AttributionKind.UNIDENTIFIED.value:
        return None
    return {"kind": row.kind, "channel": row.channel, "source": row.source,
            "medium": row.medium, "campaign": row.campaign, "landing": row.landing,
            "ambiguous": row.ambiguous, "candidates": list(row.candidates or [])}


def source_label(row: CtAttribution | None) -> str | None:
    """A short line for the screen pop and the channel variable: "Сайт: yandex / cpc, spring"."""
    if row is None or row.kind == AttributionKind.UNIDENTIFIED.value:
        return None
    parts = " / ".join(p for p in (row.source, row.medium) if p)
    label = row.channel or ""
    if parts:
        label = f"{label}: {parts}" if label else parts
    if row.campaign:
        label = f"{label}, {row.campaign}"
    if row.kind == AttributionKind.REPEAT.value:
        label = f"{label} (повторный)"
    return label or None


async def attribute_written(session: AsyncSession, written: Sequence[WrittenCall]) -> None:
    """Call tracking as a call hook (``CallHooks.written``): where inbound calls came from."""
    if len(written) == 1:
        await attribute_call(session, written[0].call)
    else:
        await attribute_calls(session, [item.call for item in written])


def describe_tracking(call: Call) -> dict[str, Any]:
    """The call JSON's ``tracking`` (``CallHooks.describers``), if loaded with the call."""
    loaded, row = _loaded(call)
    return {"tracking": tracking_of(row) if loaded else None}
