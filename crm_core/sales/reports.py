"""The head of sales' reports as pure queries: ``REPORTS[name](session, start, end, viewer)``.

Each report returns ``{"rows": [...], "totals": {...}, ...}`` (JSON-safe: money as
strings, minutes as numbers) for the half-open period ``[start, end)``. Who sees what
is decided here, once for the page, the API and the CSV: a manager his own row, a
supervisor his team's managers, an admin (or the command line: ``viewer`` None)
everyone; a marketer nothing (``ReportNotAllowedError``).

Reports: ``contact-frequency`` (ЧЧК), ``overdue-clients``, ``summary`` (with the
previous period of the same length), ``qualification``, ``activity``, ``deals``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Numeric,
    and_,
    case,
    func,
    literal,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.activities.models import EMAIL_KINDS, ActivityKind, ClientActivity
from crm_core.calls.models import Call, CallLeg, Direction, LegRole
from crm_core.clients.models import Client, ClientStatus
from crm_core.db import plan_for_these_values
from crm_core.errors import NotAllowedError
from crm_core.people import access
from crm_core.people.models import Role, User
from crm_core.sales.attention import (
    MONTH_BUCKETS,
    abandoned_by_group,
    abandoned_own_frequency,
    contact_reference,
    month_bounds,
    over_maximum,
    planned_cutoff,
    stay_since,
)
from crm_core.sales.client_status import DEFAULT_TIMEZONE, contact_activities
from crm_core.sales.models import (
    Deal,
    DealStageChange,
    DealStatus,
    Invoice,
    InvoiceStatus,
    LoseReason,
    Payment,
)
from crm_core.sales.rollup import calls_by_owner, calls_by_owner_days, whole_days
from crm_core.sales.settings import StatusRules, rules_by_team
from crm_core.sales.status_days import is_day_end, kept_funnels, verdict
from crm_core.tasks.models import Task, TaskStatus

ZERO = Decimal(0)


class ReportNotAllowedError(NotAllowedError):
    """The viewer's role has no access to sales reports."""


@dataclass(frozen=True)
class Scope:
    """Whose figures a report shows, and the rules and clock it judges by."""

    managers: list[User]
    tz: ZoneInfo

    @property
    def ids(self) -> list[int]:
        return [m.id for m in self.managers]


Report = Callable[..., Awaitable[dict[str, Any]]]


async def scope_for(session: AsyncSession, viewer: User | None,
                    tz_name: str = DEFAULT_TIMEZONE) -> Scope:
    """The managers ``viewer`` may see in reports (None: everyone, for the command line).

    Every report starts here, so here its statements are planned for their own dates
    and owners (:func:`crm_core.db.plan_for_these_values`).
    """
    await plan_for_these_values(session)
    if viewer is not None and viewer.role == Role.MARKETER:
        raise ReportNotAllowedError("sales.reports.not_for_marketers",
                                    "Sales reports are not available to marketers.")
    if viewer is None:
        managers = list(await session.scalars(select(User).where(
            User.role == Role.MANAGER.value, User.active.is_(True))
            .order_by(User.extension, User.id)))
    else:
        managers = await access.visible_managers(session, viewer)
    return Scope(managers, ZoneInfo(tz_name))


def _money(value: Any) -> str:
    return str(Decimal(value or 0).quantize(Decimal("0.01")))


def _pct(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None



def _local_day(moment: datetime, tz: ZoneInfo) -> date:
    return moment.astimezone(tz).date()


def _base(manager: User) -> dict[str, Any]:
    return {"user_id": manager.id, "extension": manager.extension, "name": manager.name}


async def _rules(session: AsyncSession) -> Callable[[int | None], StatusRules]:
    company, teams = await rules_by_team(session)
    return lambda team_id: teams.get(team_id, company) if team_id is not None else company


MANY_OWNERS = 10  # more owners than this: their clients are most of the table


def _owner(ids: list[int]) -> Any:
    """The owner column to filter and group these owners' clients by. For many owners (a
    supervisor's team, an admin) an expression no index serves, so the clients are read
    in one sequential pass and hashed by owner: through the owner index PostgreSQL
    visits most of the table's pages one at a time, in owner order, to save a hash of a
    few dozen groups (three times slower on the benchmark's 100,000 clients)."""
    return Client.owner_id if len(ids) <= MANY_OWNERS else Client.owner_id + 0


def _owned_by(ids: list[int]) -> ColumnElement[bool]:
    return _owner(ids).in_(ids)


# -- ЧЧК: contact frequency -------------------------------------------------------------------


async def contact_frequency(session: AsyncSession, start: datetime, end: datetime,
                            viewer: User | None, *, tz_name: str = DEFAULT_TIMEZONE
                            ) -> dict[str, Any]:
    """Per manager: his clients, the abandoned ones (as of the period's last day) and %,
    calls and talk minutes with his clients in the period (and per client), the
    potential of his base, open offers (open deals), unpaid invoices and payments."""
    scope = await scope_for(session, viewer, tz_name)
    company, teams = await rules_by_team(session)
    as_of = _local_day(end - timedelta(microseconds=1), scope.tz)
    ids = scope.ids or [-1]
    reference = contact_reference(end)
    planned = planned_cutoff(as_of, scope.tz, company, teams, User.team_id)
    mine = [_owned_by(ids), Client.archived_at.is_(None), Client.created_at < end]
    # The clients per owner in one pass (a hash of 50 owners: no sort), then their unpaid
    # invoices and the period's payments per owner in a second one over those rows
    # joined to their clients: no per-client sums of 33k invoices to hash, sort and spill.
    first, last = _local_day(start, scope.tz), as_of
    base: dict[int | None, dict[str, Any]] = defaultdict(lambda: {
        "clients": 0, "abandoned": 0, "potential": ZERO, "calls": 0, "talk": 0.0,
        "unpaid": ZERO, "paid": ZERO})
    own_frequency = 0
    owner_key = _owner(ids)
    for owner, n, potential, abandoned, own in await session.execute(
            select(owner_key, func.count(Client.id), func.sum(Client.annual_potential),
                   func.sum(case((abandoned_by_group(reference, planned), 1), else_=0)),
                   func.count(Client.contact_every_days))
            .select_from(Client).outerjoin(User, User.id == Client.owner_id).where(*mine)
            .group_by(owner_key)):
        base[owner].update({"clients": int(n), "potential": Decimal(potential or 0),
                            "abandoned": int(abandoned or 0)})
        own_frequency += int(own or 0)
    money = union_all(
        select(Invoice.client_id.label("cid"),
               (Invoice.amount - Invoice.paid_amount).label("unpaid"),
               literal(0).label("paid"))
        .where(Invoice.status != InvoiceStatus.PAID.value, Invoice.archived_at.is_(None)),
        select(Payment.client_id, literal(0), Payment.amount)
        .where(Payment.archived_at.is_(None), Payment.paid_on >= first,
               Payment.paid_on <= last)).subquery()
    for owner, owed, got in await session.execute(
            select(owner_key, type_coerce(func.sum(money.c.unpaid), Numeric(16, 2)),
                   type_coerce(func.sum(money.c.paid), Numeric(16, 2)))
            .select_from(money).join(Client, Client.id == money.c.cid).where(*mine)
            .group_by(owner_key)):
        base[owner].update({"unpaid": Decimal(owed or 0), "paid": Decimal(got or 0)})
    # calls and talk: finished days from the rollup, the rest counted from the calls
    days = whole_days(start, end, scope.tz)
    calls = (await calls_by_owner_days(session, ids, *days, scope.tz) if days is not None
             else await calls_by_owner(session, ids, start, end))
    for owner, (n_calls, talk) in calls.items():
        base[owner].update({"calls": n_calls, "talk": talk})
    # clients with a frequency of their own (few, often none): judged one by one
    if own_frequency:
        for _, owner in await abandoned_own_frequency(session, mine, reference, as_of,
                                                      scope.tz):
            base[owner]["abandoned"] += 1
    offers = {owner: total for owner, total in await session.execute(
        select(Deal.owner_id, func.sum(Deal.amount)).where(
            Deal.owner_id.in_(ids), Deal.status == DealStatus.OPEN.value,
            Deal.archived_at.is_(None)).group_by(Deal.owner_id))}
    return present_contact_frequency(scope, base, offers, as_of)


def present_contact_frequency(scope: Scope, base: dict[int | None, dict[str, Any]],
                              offers: dict[int | None, Any], as_of: date) -> dict[str, Any]:
    """The report from its figures per manager (``base``: clients, abandoned, potential,
    calls, talk seconds, unpaid, paid; ``offers``: open deals' amount)."""
    rows = []
    for manager in scope.managers:
        b = base.get(manager.id) or {"clients": 0, "abandoned": 0, "potential": ZERO,
                                     "calls": 0, "talk": 0.0, "unpaid": ZERO, "paid": ZERO}
        n_calls, minutes = b["calls"], round(b["talk"] / 60, 1)
        rows.append({**_base(manager), "clients": b["clients"], "abandoned": b["abandoned"],
                     "abandoned_pct": _pct(b["abandoned"], b["clients"]), "calls": n_calls,
                     "talk_minutes": minutes,
                     "calls_per_client": round(n_calls / b["clients"], 2) if b["clients"] else None,
                     "minutes_per_client": round(minutes / b["clients"], 1) if b["clients"]
                     else None,
                     "potential": _money(b["potential"]),
                     "open_offers": _money(offers.get(manager.id)),
                     "unpaid_invoices": _money(b["unpaid"]), "payments": _money(b["paid"])})
    clients_total = sum(r["clients"] for r in rows)
    abandoned_total = sum(r["abandoned"] for r in rows)
    totals = {"name": "Итого", "clients": clients_total, "abandoned": abandoned_total,
              "abandoned_pct": _pct(abandoned_total, clients_total),
              "calls": sum(r["calls"] for r in rows),
              "talk_minutes": round(sum(r["talk_minutes"] for r in rows), 1),
              **{k: _money(sum(Decimal(r[k]) for r in rows))
                 for k in ("potential", "open_offers", "unpaid_invoices", "payments")}}
    return {"report": "contact-frequency", "as_of": as_of.isoformat(), "rows": rows,
            "totals": totals}


# -- overdue clients by month -----------------------------------------------------------------

OVER_IDS = 20  # ids shown per row of clients over the maximum


async def overdue_clients(session: AsyncSession, start: datetime, end: datetime,
                          viewer: User | None, *, tz_name: str = DEFAULT_TIMEZONE
                          ) -> dict[str, Any]:
    """Per manager and group (potential; new): clients by full months (30 days) of their
    stay with the manager (since the later of getting him and getting the status), as
    of the period's last day, and how many exceed the configured maximum (with the
    first ids, so the supervisor can take them away). Counted in the database."""
    scope = await scope_for(session, viewer, tz_name)
    company, teams = await rules_by_team(session)
    as_of = _local_day(end - timedelta(microseconds=1), scope.tz)
    since = stay_since(session)
    over = over_maximum(since, as_of, scope.tz, company, teams, User.team_id)
    bounds = month_bounds(as_of, scope.tz)
    where = [Client.owner_id.in_(scope.ids or [-1]), Client.archived_at.is_(None),
             Client.status.in_([ClientStatus.POTENTIAL.value, ClientStatus.NEW.value])]
    counts = [func.count(Client.id)] + [
        func.sum(case((since < bound, 1), else_=0)) for bound in bounds] + [
        func.sum(case((over, 1), else_=0))]
    data: dict[tuple[int | None, str], dict[str, Any]] = {}
    for owner, status, total, *rest in await session.execute(
            select(Client.owner_id, Client.status, *counts).select_from(Client)
            .outerjoin(User, User.id == Client.owner_id).where(*where)
            .group_by(Client.owner_id, Client.status)):
        at_least = [int(total), *(int(n or 0) for n in rest[:-1])]  # >= 0, 1, ... 6 months
        months = [at_least[k] - at_least[k + 1] for k in range(MONTH_BUCKETS - 1)]
        data[(owner, status)] = {"months": [*months, at_least[-1]], "over": int(rest[-1] or 0),
                                 "ids": []}
    for cid, owner, status in await session.execute(
            select(Client.id, Client.owner_id, Client.status).select_from(Client)
            .outerjoin(User, User.id == Client.owner_id).where(*where, over)
            .order_by(Client.id).limit(OVER_IDS * max(1, len(scope.ids)) * 2)):
        ids = data[(owner, status)]["ids"]
        if len(ids) < OVER_IDS:
            ids.append(cid)
    return present_overdue_clients(scope, company, teams, data, as_of)


def present_overdue_clients(scope: Scope, company: StatusRules, teams: dict[int, StatusRules],
                            data: dict[tuple[int | None, str], dict[str, Any]], as_of: date
                            ) -> dict[str, Any]:
    """The report from its figures per (manager, status): clients per month of stay
    (``months``), how many over the maximum (``over``) and their first ids."""
    empty = {"months": [0] * MONTH_BUCKETS, "over": 0, "ids": []}
    rows = []
    for manager in scope.managers:
        rules = teams.get(manager.team_id, company) if manager.team_id else company
        for status in ("potential", "new"):
            row = data.get((manager.id, status), empty)
            rows.append({**_base(manager), "group": status,
                         "max_days": rules.max_potential_days if status == "potential"
                         else rules.max_new_days,
                         "clients": sum(row["months"]),
                         **{f"m{i}": n for i, n in enumerate(row["months"])},
                         "over_max": row["over"],
                         "over_max_ids": " ".join(map(str, row["ids"]))
                         + (" …" if row["over"] > len(row["ids"]) else "")})
    totals = {"name": "Итого", "clients": sum(r["clients"] for r in rows),
              "over_max": sum(r["over_max"] for r in rows)}
    return {"report": "overdue-clients", "as_of": as_of.isoformat(), "rows": rows,
            "totals": totals}


# -- summary (the financial funnel) -----------------------------------------------------------

STATUSES = [s.value for s in ClientStatus]


async def _funnels(session: AsyncSession, scope: Scope, periods: list[tuple[datetime, datetime]]
                   ) -> list[dict[str, dict[str, Any]]]:
    """For each period: clients per status at its end, their potential and their payments
    in it.

    The status is the rules' verdict (:func:`crm_core.sales.status_days.verdict`) on the
    payments and contacts with their real dates up to the period's last day, not the
    transitions as the CRM recorded them: a payment imported today with an October date
    makes October right. A period ending at the end of a day whose verdicts are kept for
    every client it counts is read from them (:func:`crm_core.sales.status_days.kept_funnels`);
    the others are judged live, all in one query.
    """
    company, teams = await rules_by_team(session)
    outs: list[dict[str, dict[str, Any]]] = [
        {s: {"clients": 0, "potential": ZERO, "paid": ZERO} for s in STATUSES}
        for _ in periods]
    days = [(_local_day(start, scope.tz), _local_day(end - timedelta(microseconds=1), scope.tz))
            for start, end in periods]
    at_day_end = [k for k, ((_, end), (_, last)) in enumerate(zip(periods, days, strict=True))
                  if is_day_end(end, last, scope.tz)]
    kept = await kept_funnels(session, scope.managers, company, teams,
                              [days[k] for k in at_day_end], scope.tz)
    read = {k: funnel for k, funnel in zip(at_day_end, kept, strict=True) if funnel is not None}
    for k, funnel in read.items():
        for status, (n, potential, paid) in funnel.items():
            outs[k][status] = {"clients": n, "potential": potential, "paid": paid}
    live = [k for k in range(len(periods)) if k not in read]
    if live:
        judged = await _live_funnels(session, scope, company, teams, [periods[k] for k in live])
        for k, out in zip(live, judged, strict=True):
            outs[k] = out
    return outs


async def _live_funnels(session: AsyncSession, scope: Scope, company: StatusRules,
                        teams: dict[int, StatusRules], periods: list[tuple[datetime, datetime]]
                        ) -> list[dict[str, dict[str, Any]]]:
    """:func:`_funnels` judged from every payment and the contacts: all periods in one
    query (one pass over payments and clients)."""
    latest = max(end for _, end in periods)
    bounds = [(_local_day(start, scope.tz), _local_day(end - timedelta(microseconds=1), scope.tz))
              for start, end in periods]
    latest_day = max(last for _, last in bounds)
    # Per client: his first payment, his last payment up to each period's last day (plain
    # for the latest) and each period's money; one pass over every payment.
    last_cols = [func.max(Payment.paid_on) if last == latest_day
                 else func.max(Payment.paid_on).filter(Payment.paid_on <= last)
                 for _, last in bounds]
    money_cols = [func.sum(Payment.amount).filter(Payment.paid_on >= first,
                                                  Payment.paid_on <= last)
                  for first, last in bounds]
    paid = (select(Payment.client_id.label("cid"), func.min(Payment.paid_on).label("first"),
                   *[c.label(f"l{k}") for k, c in enumerate(last_cols)],
                   *[c.label(f"m{k}") for k, c in enumerate(money_cols)])
            .where(Payment.archived_at.is_(None), Payment.paid_on <= latest_day)
            .group_by(Payment.client_id).subquery())
    statuses = [verdict(end, last, scope.tz, company, teams,
                        case((paid.c.first <= last, paid.c.first)), paid.c[f"l{k}"])
                for k, ((_, end), (_, last)) in enumerate(zip(periods, bounds, strict=True))]
    # Per client his status and money in each period, grouped by the statuses outside: in
    # the same query PostgreSQL, which cannot count the groups of a CASE, sorted 92k rows
    # on disk to find ten groups; over a subquery it hashes them. OFFSET 0 keeps the
    # subquery whole (not merged into the outer query), so each client's CASEs and their
    # probes of his calls are worked out once, not once per use.
    per_client = (select(*[c.label(f"s{k}") for k, c in enumerate(statuses)],
                         *[paid.c[f"m{k}"] for k in range(len(periods))],
                         Client.annual_potential.label("potential"))
                  .select_from(Client).outerjoin(paid, paid.c.cid == Client.id)
                  .outerjoin(User, User.id == Client.owner_id)
                  .where(Client.owner_id.in_(scope.ids or [-1]), Client.archived_at.is_(None),
                         Client.created_at < latest)
                  .offset(0).subquery())
    groups = [per_client.c[f"s{k}"] for k in range(len(periods))]
    outs: list[dict[str, dict[str, Any]]] = [
        {s: {"clients": 0, "potential": ZERO, "paid": ZERO} for s in STATUSES}
        for _ in periods]
    for row in await session.execute(
            select(*groups, func.count(), func.sum(per_client.c.potential),
                   *[func.sum(per_client.c[f"m{k}"]) for k in range(len(periods))])
            .group_by(*groups)):
        n, potential = int(row[len(periods)]), Decimal(row[len(periods) + 1] or 0)
        for k, out in enumerate(outs):
            st = row[k]
            if st is None:
                continue
            out[st]["clients"] += n
            out[st]["potential"] += potential
            out[st]["paid"] += Decimal(row[len(periods) + 2 + k] or 0)
    return outs


def previous_period_start(start: datetime, end: datetime) -> datetime:
    """Where the period compared with ``[start, end)`` begins.

    Whole calendar months are compared with the same number of whole months before
    (November with October, not with 2-31 October, as a head of sales reads a month);
    any other period with the period of the same length just before it.
    """
    whole_months = (start.day == 1 and end.day == 1 and start.time() == end.time() == time(0)
                    and end > start)
    if not whole_months:
        return start - (end - start)
    months = (end.year - start.year) * 12 + end.month - start.month
    index = start.year * 12 + start.month - 1 - months
    return start.replace(year=index // 12, month=index % 12 + 1)


def _trend(now: Any, before: Any) -> str:
    return "up" if now > before else "down" if now < before else "same"


async def summary(session: AsyncSession, start: datetime, end: datetime, viewer: User | None,
                  *, tz_name: str = DEFAULT_TIMEZONE) -> dict[str, Any]:
    """Clients per status at the period's end, their potential and their payments in the
    period, each beside the previous period (:func:`previous_period_start`) and its trend."""
    scope = await scope_for(session, viewer, tz_name)
    previous_start = previous_period_start(start, end)
    now, before = await _funnels(session, scope, [(start, end), (previous_start, start)])
    return present_summary(now, before, previous_start, start)


def present_summary(now: dict[str, dict[str, Any]], before: dict[str, dict[str, Any]],
                    previous_start: datetime, start: datetime) -> dict[str, Any]:
    """The report from both periods' funnels (per status: clients, potential, paid)."""
    rows = []
    for status in STATUSES:
        a, b = now[status], before[status]
        rows.append({"status": status, "clients": a["clients"], "clients_prev": b["clients"],
                     "clients_trend": _trend(a["clients"], b["clients"]),
                     "potential": _money(a["potential"]), "potential_prev": _money(b["potential"]),
                     "potential_trend": _trend(a["potential"], b["potential"]),
                     "paid": _money(a["paid"]), "paid_prev": _money(b["paid"]),
                     "paid_trend": _trend(a["paid"], b["paid"])})
    totals = {"status": "total", "clients": sum(r["clients"] for r in rows),
              "clients_prev": sum(r["clients_prev"] for r in rows),
              **{k: _money(sum(Decimal(r[k]) for r in rows))
                 for k in ("potential", "potential_prev", "paid", "paid_prev")}}
    return {"report": "summary", "previous": {"from": previous_start.isoformat(),
                                              "to": start.isoformat()},
            "rows": rows, "totals": totals}


# -- qualification ----------------------------------------------------------------------------


async def qualification(session: AsyncSession, start: datetime, end: datetime,
                        viewer: User | None, *, tz_name: str = DEFAULT_TIMEZONE
                        ) -> dict[str, Any]:
    """Per manager, of the clients that came in the period: how many are qualified (ABC
    set), the share, the groups, and the average days it took."""
    scope = await scope_for(session, viewer, tz_name)
    data: dict[int | None, dict[str, Any]] = defaultdict(lambda: {"new": 0, "qualified": 0, "A": 0,
                                                           "B": 0, "C": 0, "days": []})
    for owner, group, created, qualified in await session.execute(
            select(Client.owner_id, Client.abc_group, Client.created_at, Client.qualified_at)
            .where(Client.owner_id.in_(scope.ids or [-1]), Client.created_at >= start,
                   Client.created_at < end)):
        row = data[owner]
        row["new"] += 1
        if qualified is not None and group:
            row["qualified"] += 1
            row[group] += 1
            row["days"].append((qualified - created).total_seconds() / 86400)
    return present_qualification(scope, data)


def present_qualification(scope: Scope, data: dict[int | None, dict[str, Any]]
                          ) -> dict[str, Any]:
    """The report from its figures per manager (new, qualified, A, B, C, days)."""
    rows = []
    for manager in scope.managers:
        d = data.get(manager.id) or {"new": 0, "qualified": 0, "A": 0, "B": 0, "C": 0,
                                     "days": []}
        rows.append({**_base(manager), "new_clients": d["new"], "qualified": d["qualified"],
                     "qualified_pct": _pct(d["qualified"], d["new"]), "a": d["A"], "b": d["B"],
                     "c": d["C"], "avg_days_to_qualify": round(sum(d["days"]) / len(d["days"]), 1)
                     if d["days"] else None})
    new_total = sum(r["new_clients"] for r in rows)
    qualified_total = sum(r["qualified"] for r in rows)
    return {"report": "qualification", "rows": rows,
            "totals": {"name": "Итого", "new_clients": new_total, "qualified": qualified_total,
                       "qualified_pct": _pct(qualified_total, new_total)}}


# -- activity ---------------------------------------------------------------------------------


async def activity(session: AsyncSession, start: datetime, end: datetime, viewer: User | None,
                   *, tz_name: str = DEFAULT_TIMEZONE) -> dict[str, Any]:
    """Per manager: inbound and outbound calls he talked on, talk minutes, tasks done, the
    e-mails and meetings (logged on the client card, and done e-mail and meeting tasks),
    deal stage moves; ranked by talk minutes."""
    scope = await scope_for(session, viewer, tz_name)
    ids = scope.ids or [-1]
    calls: dict[int | None, dict[str, Any]] = defaultdict(lambda: {"inbound": 0, "outbound": 0,
                                                            "talk": 0.0})
    for uid, direction, n, talk in await session.execute(
            select(CallLeg.user_id, Call.direction, func.count(func.distinct(Call.id)),
                   func.coalesce(func.sum(CallLeg.talk_seconds), 0))
            .join(Call, Call.id == CallLeg.call_id)
            .where(CallLeg.user_id.in_(ids), CallLeg.role == LegRole.MANAGER.value,
                   CallLeg.talk_seconds > 0, Call.direction != Direction.INTERNAL.value,
                   CallLeg.started_at >= start, CallLeg.started_at < end,
                   Call.started_at >= start - timedelta(days=1), Call.started_at < end)
            .group_by(CallLeg.user_id, Call.direction)):
        calls[uid][direction] += n
        calls[uid]["talk"] += float(talk)
    tasks: dict[int | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for uid, kind, n in await session.execute(
            select(Task.assignee_id, Task.kind, func.count(Task.id))
            .where(Task.assignee_id.in_(ids), Task.status == TaskStatus.DONE.value,
                   Task.done_at >= start, Task.done_at < end)
            .group_by(Task.assignee_id, Task.kind)):
        tasks[uid][kind] += n
    logged: dict[int | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for uid, kind, n in await session.execute(
            select(ClientActivity.user_id, ClientActivity.kind, func.count(ClientActivity.id))
            .where(ClientActivity.user_id.in_(ids), *contact_activities(),
                   ClientActivity.happened_at >= start, ClientActivity.happened_at < end)
            .group_by(ClientActivity.user_id, ClientActivity.kind)):
        logged[uid]["email" if kind in EMAIL_KINDS else kind] += n
    moves = {uid: n for uid, n in await session.execute(
        select(DealStageChange.by_id, func.count(DealStageChange.id))
        .where(DealStageChange.by_id.in_(ids), DealStageChange.at >= start,
               DealStageChange.at < end, DealStageChange.from_stage_id.is_not(None))
        .group_by(DealStageChange.by_id))}
    return present_activity(scope, calls, tasks, logged, moves)


def present_activity(scope: Scope, calls: dict[int | None, dict[str, Any]],
                     tasks: dict[int | None, dict[str, int]],
                     logged: dict[int | None, dict[str, int]], moves: dict[int | None, int]
                     ) -> dict[str, Any]:
    """The report from its figures per manager: calls (inbound, outbound, talk seconds),
    tasks done by kind, logged contacts by kind (email, meeting), deal stage moves."""
    rows = []
    for manager in scope.managers:
        c = calls.get(manager.id) or {"inbound": 0, "outbound": 0, "talk": 0.0}
        t, lg = tasks.get(manager.id) or {}, logged.get(manager.id) or {}
        meeting = ActivityKind.MEETING.value
        rows.append({**_base(manager), "inbound_calls": c["inbound"],
                     "outbound_calls": c["outbound"], "talk_minutes": round(c["talk"] / 60, 1),
                     "tasks_done": sum(t.values()),
                     "emails": t.get("email", 0) + lg.get("email", 0),
                     "meetings": t.get(meeting, 0) + lg.get(meeting, 0),
                     "deals_moved": moves.get(manager.id, 0)})
    rows.sort(key=lambda r: (-r["talk_minutes"], -r["tasks_done"], r["name"]))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return {"report": "activity", "rows": rows, "totals": {
        "name": "Итого", **{k: sum(r[k] for r in rows) for k in (
            "inbound_calls", "outbound_calls", "tasks_done", "emails", "meetings",
            "deals_moved")}, "talk_minutes": round(sum(r["talk_minutes"] for r in rows), 1)}}


# -- deals ------------------------------------------------------------------------------------


async def deals(session: AsyncSession, start: datetime, end: datetime, viewer: User | None,
                *, tz_name: str = DEFAULT_TIMEZONE) -> dict[str, Any]:
    """Per manager: deals won and lost in the period (count, amount) and in progress now;
    and the lose reasons of the period."""
    scope = await scope_for(session, viewer, tz_name)
    ids = scope.ids or [-1]
    closed_in = and_(Deal.closed_at >= start, Deal.closed_at < end)
    data: dict[int | None, dict[str, Any]] = defaultdict(lambda: {
        "won": 0, "won_amount": ZERO, "lost": 0, "lost_amount": ZERO, "open": 0,
        "open_amount": ZERO})
    for owner, status, n, expected, won in await session.execute(
            select(Deal.owner_id, Deal.status, func.count(Deal.id), func.sum(Deal.amount),
                   func.sum(Deal.won_amount))
            .where(Deal.owner_id.in_(ids), Deal.archived_at.is_(None),
                   (Deal.status == DealStatus.OPEN.value) | closed_in)
            .group_by(Deal.owner_id, Deal.status)):
        row = data[owner]
        row[status] += n
        row[f"{status}_amount"] += Decimal((won if status == "won" else expected) or 0)
    reasons = [{"reason": name, "deals": n, "amount": _money(total)}
               for name, n, total in await session.execute(
                   select(LoseReason.name, func.count(Deal.id), func.sum(Deal.amount))
                   .join(Deal, Deal.lose_reason_id == LoseReason.id)
                   .where(Deal.owner_id.in_(ids), Deal.status == DealStatus.LOST.value,
                          closed_in, Deal.archived_at.is_(None))
                   .group_by(LoseReason.name)
                   .order_by(func.count(Deal.id).desc(), LoseReason.name))]
    return present_deals(scope, data, reasons)


def present_deals(scope: Scope, data: dict[int | None, dict[str, Any]],
                  reasons: list[dict[str, Any]]) -> dict[str, Any]:
    """The report from its figures per manager (won, lost, open: count and amount) and
    the period's lose reasons."""
    empty: dict[str, Any] = {"won": 0, "won_amount": ZERO, "lost": 0, "lost_amount": ZERO,
                             "open": 0, "open_amount": ZERO}
    rows = []
    for manager in scope.managers:
        d = data.get(manager.id) or empty
        rows.append({**_base(manager), "won": d["won"], "won_amount": _money(d["won_amount"]),
                     "in_progress": d["open"], "in_progress_amount": _money(d["open_amount"]),
                     "lost": d["lost"], "lost_amount": _money(d["lost_amount"]),
                     "win_rate_pct": _pct(d["won"], d["won"] + d["lost"])})
    totals = {"name": "Итого", **{k: sum(r[k] for r in rows) for k in
                                  ("won", "in_progress", "lost")},
              **{k: _money(sum(Decimal(r[k]) for r in rows)) for k in
                 ("won_amount", "in_progress_amount", "lost_amount")}}
    return {"report": "deals", "rows": rows, "totals": totals, "lose_reasons": reasons}


REPORTS: dict[str, Report] = {
    "contact-frequency": contact_frequency,
    "overdue-clients": overdue_clients,
    "summary": summary,
    "qualification": qualification,
    "activity": activity,
    "deals": deals,
}

TITLES = {
    "contact-frequency": "Частота контактов с клиентами",
    "overdue-clients": "Просроченные клиенты по месяцам",
    "summary": "Сводный отчёт (финансовая воронка)",
    "qualification": "Квалификация клиентов",
    "activity": "Активность менеджеров",
    "deals": "Сделки",
}
