"""The reports marketers ask for beyond channels: keyword, landing page, lost leads and
first against last touch.

Like :mod:`crm_core.calltracking.report`, each is computed for a period ``[start, end)``
from stored rows, so a past period gives the same figures again:

- ``keyword_report`` and ``landing_report``: site visits, the calls that came from
  them (an inbound call attributed to a visit), forms and callback requests per
  ``utm_term`` or landing page (its address without the query string);
- ``lost_leads``: per channel, missed calls and forms/callbacks, how many were never
  called back, and the median time to the call back of those that were;
- ``touches``: clients who came more than once from different sources in the period,
  their first and last touch side by side, and per source how many clients it brought
  first and how many it brought last.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import Call, CallStatus, Direction
from crm_core.calltracking.models import (
    AttributionKind,
    CtAttribution,
    CtLead,
    CtVisit,
    LeadKind,
)
from crm_core.calltracking.report import NONE_LABEL, Period
from crm_core.clients.models import Client
from crm_core.missed.services import callback_seconds, callbacks_for, missed_filter
from crm_core.timestamps import ensure_utc, isoformat


def landing_key(url: str | None) -> str:
    """A landing page without its query and fragment: the UTM tags make every visit's
    address different, the page is the same."""
    if not url:
        return NONE_LABEL
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url[:300]
    return f"{parts.scheme}://{parts.netloc}{parts.path or '/'}"


def _term(value: str | None) -> str:
    return (value or "").strip() or NONE_LABEL


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole * 100, 2) if whole else None


async def _by_visit_key(session: AsyncSession, period: Period,
                        visit_key: Callable[[CtVisit], str],
                        lead_key: Callable[[CtLead], str]) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, int]] = defaultdict(
        lambda: {"visits": 0, "calls": 0, "forms": 0, "callbacks": 0})
    visits = await session.scalars(select(CtVisit).where(
        CtVisit.first_seen >= period.start, CtVisit.first_seen < period.end,
        CtVisit.is_bot.is_(False)))
    for visit in visits:
        rows[visit_key(visit)]["visits"] += 1
    calls = await session.scalars(
        select(CtVisit).join(CtAttribution, CtAttribution.visit_id == CtVisit.id)
        .join(Call, Call.id == CtAttribution.call_id)
        .where(Call.started_at >= period.start, Call.started_at < period.end,
               Call.direction == Direction.INBOUND.value,
               Call.status != CallStatus.IN_PROGRESS.value,
               CtAttribution.kind == AttributionKind.DYNAMIC.value))
    for visit in calls:
        rows[visit_key(visit)]["calls"] += 1
    leads = await session.scalars(select(CtLead).where(
        CtLead.created_at >= period.start, CtLead.created_at < period.end,
        CtLead.archived_at.is_(None), CtLead.visit_id.is_not(None)))
    for lead in leads:
        rows[lead_key(lead)]["forms" if lead.kind == LeadKind.FORM.value else "callbacks"] += 1
    out: list[dict[str, Any]] = []
    for key, row in rows.items():
        leads_n = row["calls"] + row["forms"] + row["callbacks"]
        out.append({"key": key, **row, "leads": leads_n,
                    "conversion_percent": _ratio(leads_n, row["visits"])})
    out.sort(key=lambda r: (-r["leads"], -r["visits"], r["key"]))
    return out


async def keyword_report(session: AsyncSession, period: Period) -> list[dict[str, Any]]:
    """Per keyword (``utm_term``): visits, calls from them, forms, callbacks, conversion."""
    return await _by_visit_key(session, period, lambda v: _term(v.utm_term),
                               lambda lead: _term(lead.utm_term))


async def landing_report(session: AsyncSession, period: Period) -> list[dict[str, Any]]:
    """Per landing page: visits, calls from them, forms, callbacks, conversion."""
    return await _by_visit_key(session, period, lambda v: landing_key(v.landing),
                               lambda lead: landing_key(lead.landing))


# -- lost leads -----------------------------------------------------------------------------------


def _returning() -> Any:
    return or_(Call.direction == Direction.OUTBOUND.value,
               and_(Call.direction == Direction.INBOUND.value, Call.answered_at.is_not(None)))


async def first_callbacks(session: AsyncSession, leads: list[CtLead]
                          ) -> dict[int, datetime | None]:
    """When each lead was first called back: its callback call, else the first outbound
    call to its phone (or answered call from it) after it came; None when never."""
    out: dict[int, datetime | None] = {lead.id: None for lead in leads}
    phones = sorted({lead.phone for lead in leads if lead.phone})
    if not phones:
        return out
    earliest = min(lead.created_at for lead in leads)
    later: dict[str, list[datetime]] = defaultdict(list)
    stmt = (select(Call.client_number, Call.started_at)
            .where(Call.client_number.in_(phones), Call.started_at >= earliest, _returning())
            .order_by(Call.started_at))
    for number, started in await session.execute(stmt):
        later[number or ""].append(ensure_utc(started))
    for lead in leads:
        created = ensure_utc(lead.created_at)
        out[lead.id] = next((t for t in later.get(lead.phone or "", []) if t >= created), None)
    return out


async def lost_leads(session: AsyncSession, period: Period) -> dict[str, Any]:
    """Per channel: missed calls, forms and callbacks, those never called back, and the
    median seconds to the call back (of those called back)."""
    blank = {"missed_calls": 0, "missed_lost": 0, "forms": 0, "forms_lost": 0,
             "callbacks": 0, "callbacks_lost": 0}
    rows: dict[str, dict[str, int]] = defaultdict(lambda: dict(blank))
    waits: dict[str, list[float]] = defaultdict(list)
    missed = list((await session.execute(
        select(Call, CtAttribution.channel)
        .outerjoin(CtAttribution, CtAttribution.call_id == Call.id)
        .where(missed_filter(), Call.started_at >= period.start,
               Call.started_at < period.end)
        .order_by(Call.started_at, Call.id))).all())
    returned = await callbacks_for(session, [call for call, _ in missed])
    for call, channel in missed:
        key = channel or NONE_LABEL
        rows[key]["missed_calls"] += 1
        back = returned.get(call.id)
        if back is None:
            rows[key]["missed_lost"] += 1
        else:
            waits[key].append(callback_seconds(call, back))
    leads = list(await session.scalars(select(CtLead).where(
        CtLead.created_at >= period.start, CtLead.created_at < period.end,
        CtLead.archived_at.is_(None)).order_by(CtLead.created_at, CtLead.id)))
    called = await first_callbacks(session, leads)
    for lead in leads:
        key = lead.channel or NONE_LABEL
        what = "forms" if lead.kind == LeadKind.FORM.value else "callbacks"
        rows[key][what] += 1
        at = called.get(lead.id)
        if at is None:
            rows[key][f"{what}_lost"] += 1
        else:
            waits[key].append(max(0.0, (at - ensure_utc(lead.created_at)).total_seconds()))
    out = [_lost_row(key, row, waits[key]) for key, row in rows.items()]
    out.sort(key=lambda r: (-r["lost"], r["key"]))
    total: dict[str, int] = dict(blank)
    for row in rows.values():
        for name, value in row.items():
            total[name] += value
    every = [w for values in waits.values() for w in values]
    return {"rows": out, "totals": _lost_row("Итого", total, every)}


def _lost_row(key: str, row: dict[str, int], waits: list[float]) -> dict[str, Any]:
    leads = row["missed_calls"] + row["forms"] + row["callbacks"]
    lost = row["missed_lost"] + row["forms_lost"] + row["callbacks_lost"]
    return {"key": key, **row, "leads": leads, "lost": lost,
            "lost_percent": _ratio(lost, leads), "called_back": len(waits),
            "median_callback_seconds": round(statistics.median(waits), 1) if waits else None}


# -- first and last touch --------------------------------------------------------------------------


@dataclass(frozen=True)
class Touch:
    at: datetime
    what: str  # «звонок», «заявка», «обратный звонок»
    source: str  # the touch's source, as the report names it


def touch_label(channel: str | None, source: str | None, medium: str | None) -> str:
    """«Сайт: yandex / cpc», «Билборд», «(не указан)»."""
    tags = " / ".join(p for p in (source, medium) if p)
    label = channel or ""
    if tags:
        label = f"{label}: {tags}" if label else tags
    return label or NONE_LABEL


async def touches(session: AsyncSession, period: Period) -> dict[str, Any]:
    """Clients who came at least twice in the period from different sources: each one's
    first and last touch, and per source the clients it brought first and last.

    A touch is an inbound call whose source is known (a static number or a visit: a
    repeat call's source is only the earlier one's, so it is not a new touch), a form or
    a callback request.
    """
    by_client: dict[int, list[Touch]] = defaultdict(list)
    calls = await session.execute(
        select(Call.client_id, Call.started_at, CtAttribution)
        .join(CtAttribution, CtAttribution.call_id == Call.id)
        .where(Call.started_at >= period.start, Call.started_at < period.end,
               Call.client_id.is_not(None), Call.direction == Direction.INBOUND.value,
               CtAttribution.kind.in_([AttributionKind.STATIC.value,
                                       AttributionKind.DYNAMIC.value])))
    for client_id, started, row in calls:
        assert client_id is not None
        by_client[client_id].append(Touch(ensure_utc(started), "звонок",
                                          touch_label(row.channel, row.source, row.medium)))
    leads = await session.scalars(select(CtLead).where(
        CtLead.created_at >= period.start, CtLead.created_at < period.end,
        CtLead.archived_at.is_(None), CtLead.client_id.is_not(None)))
    for lead in leads:
        assert lead.client_id is not None
        what = "заявка" if lead.kind == LeadKind.FORM.value else "обратный звонок"
        by_client[lead.client_id].append(Touch(ensure_utc(lead.created_at), what,
                                               touch_label(lead.channel, lead.source,
                                                           lead.medium)))
    chosen = {cid: sorted(items, key=lambda t: t.at) for cid, items in by_client.items()
              if len({t.source for t in items}) > 1}
    names = dict((await session.execute(select(Client.id, Client.name).where(
        Client.id.in_(list(chosen) or [-1])))).all())
    clients: list[dict[str, Any]] = []
    per_source: dict[str, dict[str, int]] = defaultdict(lambda: {"first": 0, "last": 0})
    for cid, items in chosen.items():
        first, last = items[0], items[-1]
        per_source[first.source]["first"] += 1
        per_source[last.source]["last"] += 1
        clients.append({"client_id": cid, "client": names.get(cid, ""), "touches": len(items),
                        "first": _touch(first), "last": _touch(last)})
    clients.sort(key=lambda c: (c["last"]["at"], c["client_id"]), reverse=True)
    sources: list[dict[str, Any]] = [
        {"key": key, **counts, "difference": counts["last"] - counts["first"]}
        for key, counts in per_source.items()]
    sources.sort(key=lambda r: (-(r["first"] + r["last"]), r["key"]))
    return {"clients": clients, "sources": sources}


def _touch(touch: Touch) -> dict[str, Any]:
    return {"at": isoformat(touch.at), "what": touch.what, "source": touch.source}


async def marketing_reports(session: AsyncSession, period: Period) -> dict[str, Any]:
    """All four, as ``GET /api/ct/marketing`` answers them."""
    return {"from": isoformat(period.start), "to": isoformat(period.end),
            "keywords": await keyword_report(session, period),
            "landings": await landing_report(session, period),
            "lost": await lost_leads(session, period),
            "touches": await touches(session, period)}
