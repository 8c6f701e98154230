"""What marketers read: calls, visits and money per channel, pool health, the call log.

Everything is computed for a period ``[start, end)`` from stored rows (calls with
their attribution, visits, leases, fallback events, costs), so a report can be
re-run for any past period and gives the same figures.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, selectinload

from crm_core.calls.models import Call, CallStatus, Direction
from crm_core.calltracking.ad_models import CampaignCost
from crm_core.calltracking.attribution import source_label
from crm_core.calltracking.models import (
    AttributionKind,
    CtAdCost,
    CtAttribution,
    CtLead,
    CtLease,
    CtPoolEvent,
    CtSite,
    CtStaticNumber,
    CtVisit,
    LeadKind,
)
from crm_core.errors import DomainError
from crm_core.timestamps import isoformat

GROUPINGS = ("channel", "source", "medium", "campaign")
HEADROOM = 1.25
BUSY_SHARE = 0.75
NONE_LABEL = "(не указан)"
REPORT_COLUMNS = ["key", "visits", "calls", "unique_callers", "first_time_callers",
                  "target_calls", "missed_calls", "missed_percent", "conversion_percent",
                  "new_clients", "deals_won", "revenue", "paid", "cost", "cost_per_call",
                  "cost_per_target_call", "roi", "forms", "callbacks"]


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime  # exclusive

    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400


def _ratio(part: float, whole: float, scale: float = 100.0) -> float | None:
    return round(part / whole * scale, 2) if whole else None


def _month_starts(period: Period) -> list[date]:
    first = period.start.date().replace(day=1)
    months = []
    while datetime.combine(first, datetime.min.time(), period.start.tzinfo) < period.end:
        months.append(first)
        first = (first + timedelta(days=32)).replace(day=1)
    return months


def _month_bounds(month: date, period: Period) -> tuple[datetime, datetime]:
    tz = period.start.tzinfo
    start = datetime.combine(month, datetime.min.time(), tz)
    end = datetime.combine((month + timedelta(days=32)).replace(day=1), datetime.min.time(), tz)
    return start, end


@dataclass(frozen=True)
class CostShare:
    """One month's cost and the part of it a period carries, shown beside the report.

    A month's cost is spread evenly over its days; a report for ten days of a 30-day
    month carries a third of it. The marketer sees each share, so the cost in a row
    is never a surprise.
    """

    key: str  # the report row the money goes to
    channel: str
    number: str | None  # a static number's monthly cost; None for a cost entered by month
    month: date
    month_amount: Decimal
    month_days: int
    days: int  # days of the month inside the period
    amount: Decimal  # what the period carries
    # Where the figure came from: "manual" (typed), "file" (a monthly CSV), "static" (a
    # static number's monthly cost), or the ad system whose export it was imported from
    # ("yandex_direct", "vk_ads", "google_ads": then booked by day, not spread).
    origin: str = "manual"
    campaign: str | None = None  # an imported figure's campaign

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "channel": self.channel, "number": self.number,
                "month": self.month.strftime("%Y-%m"), "month_amount": float(self.month_amount),
                "month_days": self.month_days, "days": self.days, "amount": float(self.amount),
                "origin": self.origin, "campaign": self.campaign}


def _share(key: str, channel: str, number: str | None, month: date, amount: Decimal,
           period: Period, origin: str = "manual") -> CostShare | None:
    start, end = _month_bounds(month, period)
    overlap = max(0.0, (min(end, period.end) - max(start, period.start)).total_seconds())
    if not overlap or not amount:
        return None
    share = Decimal(str(overlap / (end - start).total_seconds()))
    return CostShare(key=key, channel=channel, number=number, month=month, month_amount=amount,
                     month_days=round((end - start).total_seconds() / 86400),
                     days=round(overlap / 86400),
                     amount=(amount * share).quantize(Decimal("0.01")), origin=origin)


async def cost_spread(session: AsyncSession, period: Period, by: str = "channel"
                      ) -> list[CostShare]:
    """Each month's cost (entered costs, static numbers' monthly cost) and its share."""
    months = _month_starts(period)
    out: list[CostShare] = []
    rows = await session.scalars(select(CtAdCost).where(CtAdCost.month.in_(months))
                                 .order_by(CtAdCost.channel, CtAdCost.month))
    for row in rows:
        item = _share(row.channel, row.channel, None, row.month, row.amount, period,
                      row.source)
        if item is not None:
            out.append(item)
    statics = await session.scalars(select(CtStaticNumber).where(
        (CtStaticNumber.archived_at.is_(None)) | (CtStaticNumber.archived_at > period.start))
        .order_by(CtStaticNumber.channel, CtStaticNumber.did))
    for static in statics:
        key = getattr(static, by, None) if by != "channel" else static.channel
        if not key or not static.cost_per_month:
            continue
        for month in months:
            item = _share(key, static.channel, static.did, month, static.cost_per_month, period,
                          "static")
            if item is not None:
                out.append(item)
    out.extend(await _imported_costs(session, period, by))
    return out


IMPORTED_MEDIUM = "cpc"  # the ad systems' traffic, as their utm_medium usually says


async def _imported_costs(session: AsyncSession, period: Period, by: str) -> list[CostShare]:
    """Costs imported from the ad systems' exports: booked on their own days, so the
    period carries exactly the days inside it (no spreading), per campaign and month."""
    first = period.start.date()
    last = (period.end - timedelta(microseconds=1)).date()
    rows = await session.scalars(
        select(CampaignCost).where(CampaignCost.day >= first, CampaignCost.day <= last)
        .order_by(CampaignCost.channel, CampaignCost.campaign, CampaignCost.day))
    groups: dict[tuple[str, str, str, str, date], list[CampaignCost]] = defaultdict(list)
    for row in rows:
        key = {"channel": row.channel, "source": row.source, "medium": IMPORTED_MEDIUM,
               "campaign": row.campaign}[by]
        groups[(key, row.channel, row.system, row.campaign, row.day.replace(day=1))].append(row)
    out = []
    for (key, channel, system, campaign, month), items in groups.items():
        amount = sum((i.amount for i in items), Decimal("0"))
        month_days = ((month + timedelta(days=32)).replace(day=1) - month).days
        out.append(CostShare(key=key, channel=channel, number=None, month=month,
                             month_amount=amount, month_days=month_days,
                             days=len({i.day for i in items}), amount=amount, origin=system,
                             campaign=campaign))
    return out


def _costs(spread: list[CostShare]) -> dict[str, Decimal]:
    """Money per key of the grouping: the sum of the shares shown to the marketer."""
    costs: dict[str, Decimal] = defaultdict(Decimal)
    for item in spread:
        costs[item.key] += item.amount
    return dict(costs)


def _visit_key(visit: CtVisit, site: CtSite, by: str) -> str:
    value = {"channel": site.channel, "source": visit.utm_source, "medium": visit.utm_medium,
             "campaign": visit.utm_campaign}[by]
    return value or NONE_LABEL


async def channel_report(session: AsyncSession, period: Period, *, by: str = "channel",
                         target_seconds: int = 60) -> dict[str, Any]:
    """Per channel (or source, medium, campaign): visits, calls, forms and callback
    requests (:mod:`crm_core.calltracking.leads`), callers, target, cost, ROI.

    The calls are the inbound ones and those a callback request placed (an outbound call
    given the visit's source by ``leads.match_callback_calls``)."""
    if by not in GROUPINGS:
        raise DomainError("calltracking.grouping_invalid",
                          f"group by one of: {', '.join(GROUPINGS)}", groupings=list(GROUPINGS))
    rows: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "visits": 0, "calls": 0, "callers": set(), "first_time": set(), "target_calls": 0,
        "missed_calls": 0, "visits_called": set(), "new_clients": 0, "deals_won": 0,
        "revenue": 0.0, "paid": 0.0, "forms": 0, "callbacks": 0})
    visits = await session.execute(
        select(CtVisit, CtSite).join(CtSite, CtSite.id == CtVisit.site_id)
        .where(CtVisit.first_seen >= period.start, CtVisit.first_seen < period.end,
               CtVisit.is_bot.is_(False)))
    for visit, site in visits:
        rows[_visit_key(visit, site, by)]["visits"] += 1
    earlier = aliased(Call)
    first_call = ~select(earlier.id).where(
        earlier.client_number == Call.client_number, earlier.started_at < Call.started_at
    ).exists()
    calls = await session.execute(
        select(Call, CtAttribution, first_call)
        .join(CtAttribution, CtAttribution.call_id == Call.id)
        .where(Call.started_at >= period.start, Call.started_at < period.end,
               Call.direction.in_([Direction.INBOUND.value, Direction.OUTBOUND.value]),
               Call.status != CallStatus.IN_PROGRESS.value)
        .order_by(Call.started_at, Call.id))
    owner: dict[int, str] = {}  # client -> the group of his first call in the period
    for call, attribution, is_first in calls:
        key = getattr(attribution, by) or NONE_LABEL
        row = rows[key]
        row["calls"] += 1
        caller = call.client_number or f"hidden:{call.id}"
        row["callers"].add(caller)
        if is_first:
            row["first_time"].add(caller)
        answered = call.status == CallStatus.ANSWERED.value
        if answered and call.talk_seconds >= target_seconds:
            row["target_calls"] += 1
        if not answered:
            row["missed_calls"] += 1
        if attribution.visit_id is not None and attribution.kind == AttributionKind.DYNAMIC:
            row["visits_called"].add(attribution.visit_id)
        if call.created_client:
            row["new_clients"] += 1
        if call.client_id is not None:
            owner.setdefault(call.client_id, key)
    leads = await session.scalars(select(CtLead).where(
        CtLead.created_at >= period.start, CtLead.created_at < period.end,
        CtLead.archived_at.is_(None)))
    for lead in leads:
        lead_row = rows[getattr(lead, by) or NONE_LABEL]
        lead_row["forms" if lead.kind == LeadKind.FORM.value else "callbacks"] += 1
    for client_id, (won, revenue) in (await _deals_won(session, list(owner), period)).items():
        rows[owner[client_id]]["deals_won"] += won
        rows[owner[client_id]]["revenue"] += revenue
    for client_id, paid in (await _paid(session, list(owner), period)).items():
        rows[owner[client_id]]["paid"] += paid
    spread = await cost_spread(session, period, by)
    costs = _costs(spread)
    for key in costs:
        rows[key]  # a channel with costs and no calls still shows (its cost is wasted)
    out = [_finish(key, row, costs.get(key, Decimal("0"))) for key, row in rows.items()]
    out.sort(key=lambda r: (-r["calls"], -r["visits"], r["key"]))
    totals = _finish("Итого", _sum(rows), sum(costs.values(), Decimal("0")))
    return {"from": isoformat(period.start), "to": isoformat(period.end), "by": by,
            "target_seconds": target_seconds, "rows": out, "totals": totals,
            "cost_spread": [item.to_dict() for item in spread]}


async def _deals_won(session: AsyncSession, client_ids: list[int], period: Period
                     ) -> dict[int, tuple[int, float]]:
    """Deals won (and their money) by these clients within the period, per client.

    A client counts for the group of his first call in the period, so money is never
    counted twice. A deal's money is what it was won for (else its expected amount);
    archived deals do not count. Reads 0 where the deals feature is not installed.
    """
    try:
        from crm_core.sales.models import Deal
    except ImportError:
        return {}
    if not client_ids:
        return {}
    money = func.coalesce(Deal.won_amount, Deal.amount, 0)
    stmt = (select(Deal.client_id, func.count(), func.sum(money))
            .where(Deal.client_id.in_(client_ids), Deal.status == "won",
                   Deal.closed_at >= period.start, Deal.closed_at < period.end,
                   Deal.archived_at.is_(None))
            .group_by(Deal.client_id))
    return {client_id: (int(won), float(total or 0))
            for client_id, won, total in await session.execute(stmt)}


async def _paid(session: AsyncSession, client_ids: list[int], period: Period
                ) -> dict[int, float]:
    """Money these clients actually paid on days of the period (payments, not archived)."""
    try:
        from crm_core.sales.models import Payment
    except ImportError:
        return {}
    if not client_ids:
        return {}
    first = period.start.date()
    last = (period.end - timedelta(microseconds=1)).date()
    stmt = (select(Payment.client_id, func.sum(Payment.amount))
            .where(Payment.client_id.in_(client_ids), Payment.paid_on >= first,
                   Payment.paid_on <= last, Payment.archived_at.is_(None))
            .group_by(Payment.client_id))
    return {client_id: float(total or 0) for client_id, total in await session.execute(stmt)}


def _sum(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {"visits": 0, "calls": 0, "callers": set(), "first_time": set(),
                             "target_calls": 0, "missed_calls": 0, "visits_called": set(),
                             "new_clients": 0, "deals_won": 0, "revenue": 0.0, "paid": 0.0,
                             "forms": 0, "callbacks": 0}
    for row in rows.values():
        for key, value in row.items():
            if isinstance(value, set):
                total[key] |= value
            else:
                total[key] += value
    return total


def _finish(key: str, row: dict[str, Any], cost: Decimal) -> dict[str, Any]:
    calls, target = row["calls"], row["target_calls"]
    revenue = round(float(row["revenue"]), 2)
    cost_f = float(cost)
    return {
        "key": key, "visits": row["visits"], "calls": calls,
        "unique_callers": len(row["callers"]), "first_time_callers": len(row["first_time"]),
        "target_calls": target, "missed_calls": row["missed_calls"],
        "missed_percent": _ratio(row["missed_calls"], calls),
        "conversion_percent": _ratio(len(row["visits_called"]), row["visits"]),
        "new_clients": row["new_clients"], "deals_won": row["deals_won"], "revenue": revenue,
        "paid": round(float(row["paid"]), 2),
        "cost": round(cost_f, 2),
        "cost_per_call": round(cost_f / calls, 2) if calls else None,
        "cost_per_target_call": round(cost_f / target, 2) if target else None,
        "roi": round((revenue - cost_f) / cost_f, 4) if cost_f else None,
        "forms": row["forms"], "callbacks": row["callbacks"],  # leads (forms, callbacks)
    }


# -- pool health ----------------------------------------------------------------------------------


def _peak(intervals: list[tuple[datetime, datetime]]) -> int:
    points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals],
                    key=lambda p: (p[0], p[1]))
    live = peak = 0
    for _, delta in points:
        live += delta
        peak = max(peak, live)
    return peak


def _episodes(moments: list[datetime], gap: timedelta) -> int:
    episodes, last = 0, None
    for moment in sorted(moments):
        if last is None or moment - last > gap:
            episodes += 1
        last = moment
    return episodes


async def pool_health(session: AsyncSession, period: Period) -> list[dict[str, Any]]:
    """Per site: size, peak concurrent visitors, utilisation, overloads and the advised size.

    Advised size by Little's law: peak visitors per hour × (session + hold minutes) / 60
    × headroom; more than ``BUSY_SHARE`` of the pool busy in an hour means add numbers.
    """
    sites = await session.scalars(select(CtSite).where(CtSite.archived_at.is_(None))
                                  .options(selectinload(CtSite.numbers)).order_by(CtSite.host))
    out = []
    for site in sites:
        size = sum(1 for n in site.numbers if n.archived_at is None)
        leases = list(await session.execute(
            select(CtLease.started_at, CtLease.ends_at, CtLease.visit_id)
            .where(CtLease.site_id == site.id, CtLease.started_at < period.end,
                   CtLease.ends_at > period.start, CtLease.shared.is_(False))))
        intervals = [(max(s, period.start), min(e, period.end)) for s, e, _ in leases]
        peak = _peak(intervals)
        per_hour: dict[datetime, set[int]] = defaultdict(set)
        hourly: dict[datetime, list[tuple[datetime, datetime]]] = defaultdict(list)
        for start, end, visit_id in leases:
            hour = start.replace(minute=0, second=0, microsecond=0)
            per_hour[hour].add(visit_id)
            hourly[hour].append((start, end))
        busy_hours = sum(1 for spans in hourly.values()
                         if size and _peak(spans) > BUSY_SHARE * size)
        durations = list(await session.execute(
            select(CtVisit.first_seen, CtVisit.last_seen).where(
                CtVisit.id.in_({visit_id for _, _, visit_id in leases} or {-1}))))
        session_minutes = (sum((last - first).total_seconds() for first, last in durations)
                           / len(durations) / 60 if durations else 0.0)
        events = list(await session.scalars(
            select(CtPoolEvent.at).where(CtPoolEvent.site_id == site.id,
                                         CtPoolEvent.at >= period.start,
                                         CtPoolEvent.at < period.end)))
        for index, moment in enumerate(events):  # visitors shown the fallback wanted one too
            per_hour[moment.replace(minute=0, second=0, microsecond=0)].add(-index - 1)
        visitors_peak_hour = max((len(v) for v in per_hour.values()), default=0)
        hold_minutes = site.hold_seconds / 60
        advised = math.ceil(visitors_peak_hour * (session_minutes + hold_minutes) / 60 * HEADROOM)
        if events:  # an overloaded pool needs at least one more number than it has
            advised = max(advised, size + 1)
        pool_numbers = [n.number for n in site.numbers]
        no_lease = await session.scalar(
            select(func.count()).select_from(Call)
            .join(CtAttribution, CtAttribution.call_id == Call.id)
            .where(Call.did.in_(pool_numbers or ["-"]), Call.started_at >= period.start,
                   Call.started_at < period.end,
                   CtAttribution.kind != AttributionKind.DYNAMIC.value)) or 0
        out.append({
            "site": site.host, "size": size, "peak_concurrent_visitors": peak,
            "utilisation_percent": _ratio(peak, size), "busy_hours": busy_hours,
            "overload_events": _episodes(events, timedelta(seconds=site.hold_seconds)),
            "fallback_impressions": len(events), "calls_without_lease": int(no_lease),
            "peak_visitors_per_hour": visitors_peak_hour,
            "session_minutes": round(session_minutes, 2),
            "advised_size": max(advised, 1) if leases or events else size,
            "add_numbers": bool(size and peak > BUSY_SHARE * size),
        })
    return out


# -- call log -------------------------------------------------------------------------------------


async def call_log(session: AsyncSession, period: Period, *, target_seconds: int = 60,
                   limit: int = 500) -> list[dict[str, Any]]:
    """Inbound calls with their source, the visit's pages, first or repeat, target or not."""
    earlier = aliased(Call)
    repeat = select(earlier.id).where(
        and_(earlier.client_number == Call.client_number,
             earlier.started_at < Call.started_at)).exists()
    stmt = (select(Call, CtAttribution, CtVisit, repeat)
            .join(CtAttribution, CtAttribution.call_id == Call.id)
            .outerjoin(CtVisit, CtVisit.id == CtAttribution.visit_id)
            .where(Call.started_at >= period.start, Call.started_at < period.end)
            .order_by(Call.started_at.desc()).limit(limit))
    out = []
    for call, attribution, visit, is_repeat in await session.execute(stmt):
        answered = call.status == CallStatus.ANSWERED.value
        out.append({
            "call_id": call.id, "started_at": isoformat(call.started_at),
            "client_number": call.client_number, "did": call.did, "status": call.status,
            "talk_seconds": round(call.talk_seconds, 1), "kind": attribution.kind,
            "source": source_label(attribution), "channel": attribution.channel,
            "campaign": attribution.campaign, "landing": attribution.landing,
            "ambiguous": attribution.ambiguous,
            "pages": list(visit.pages) if visit is not None else [],
            "first_call": not is_repeat,
            "target": answered and call.talk_seconds >= target_seconds,
        })
    return out
