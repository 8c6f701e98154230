"""The head of sales' reports recounted the slow way: the period's rows fetched into Python
and every figure worked out there, one client at a time, by the rules' own functions.

``RECOUNTS[name](session, start, end, viewer)`` returns exactly what
``crm_core.sales.reports.REPORTS[name]`` returns for the same arguments (the same rows
are formatted by the same ``present_*`` functions), so it is the reference the reports'
SQL, their indexes and their rollups are checked against (``tests/sales`` asserts the two
equal on SQLite and PostgreSQL) and the honest baseline of ``bench/sales_reports.py``:
the same period, the same figures.

What is fetched is only what a figure needs: the period's calls, payments, tasks, deals;
the whole history only where the figure is about it (the last contact before the period's
end, the first and last payment up to it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.activities.models import CONTACT_KINDS, EMAIL_KINDS, ClientActivity
from crm_core.calls.models import Call, CallLeg, Direction, LegRole
from crm_core.clients.models import Client, ClientStatus
from crm_core.people.models import User
from crm_core.sales.attention import MONTH_BUCKETS, days_at_least, month_bounds
from crm_core.sales.client_status import (
    DEFAULT_TIMEZONE,
    ClientFacts,
    compute_status,
    is_abandoned,
)
from crm_core.sales.models import (
    Deal,
    DealStageChange,
    DealStatus,
    Invoice,
    InvoiceStatus,
    LoseReason,
    Payment,
)
from crm_core.sales.reports import (
    OVER_IDS,
    STATUSES,
    ZERO,
    Report,
    Scope,
    present_activity,
    present_contact_frequency,
    present_deals,
    present_overdue_clients,
    present_qualification,
    present_summary,
    previous_period_start,
    scope_for,
)
from crm_core.sales.settings import StatusRules, rules_by_team
from crm_core.tasks.models import Task, TaskStatus


def _day(moment: datetime, tz: ZoneInfo) -> date:
    return moment.astimezone(tz).date()


def _last_day(end: datetime, tz: ZoneInfo) -> date:
    return _day(end - timedelta(microseconds=1), tz)


async def _rules_of(session: AsyncSession, scope: Scope) -> dict[int | None, StatusRules]:
    """Each visible manager's rules (his team's, else the company's), by his id."""
    company, teams = await rules_by_team(session)
    return {m.id: teams.get(m.team_id, company) if m.team_id is not None else company
            for m in scope.managers}


async def _owner_teams(session: AsyncSession) -> dict[int, int | None]:
    return {uid: team for uid, team in await session.execute(select(User.id, User.team_id))}


async def _last_contacts(session: AsyncSession, before: datetime,
                         clients: Iterable[int] | None = None) -> dict[int, datetime]:
    """Each client's last contact (answered customer call, logged e-mail or meeting)
    before ``before``, from every such row."""
    wanted = set(clients) if clients is not None else None
    last: dict[int, datetime] = {}
    rows = [*await session.execute(
        select(Call.client_id, Call.started_at).where(
            Call.client_id.is_not(None), Call.answered_at.is_not(None),
            Call.direction != Direction.INTERNAL.value, Call.started_at < before)),
        *await session.execute(
            select(ClientActivity.client_id, ClientActivity.happened_at).where(
                ClientActivity.kind.in_(CONTACT_KINDS), ClientActivity.archived_at.is_(None),
                ClientActivity.happened_at < before))]
    for cid, at in rows:
        if cid is None or (wanted is not None and cid not in wanted):
            continue
        if cid not in last or at > last[cid]:
            last[cid] = at
    return last


# -- ЧЧК --------------------------------------------------------------------------------------


async def contact_frequency(session: AsyncSession, start: datetime, end: datetime,
                            viewer: User | None, *, tz_name: str = DEFAULT_TIMEZONE
                            ) -> dict[str, Any]:
    scope = await scope_for(session, viewer, tz_name)
    tz = scope.tz
    as_of, first = _last_day(end, tz), _day(start, tz)
    company, teams = await rules_by_team(session)
    team_of = await _owner_teams(session)
    ids = set(scope.ids)
    clients = [row for row in await session.execute(
        select(Client.id, Client.owner_id, Client.abc_group, Client.annual_potential,
               Client.contact_every_days, Client.owner_since, Client.created_at)
        .where(Client.archived_at.is_(None), Client.created_at < end))
        if row.owner_id in ids]
    owner = {c.id: c.owner_id for c in clients}
    last = await _last_contacts(session, end, owner)
    base: dict[int | None, dict[str, Any]] = {}

    def of(manager: int | None) -> dict[str, Any]:
        return base.setdefault(manager, {"clients": 0, "abandoned": 0, "potential": ZERO,
                                         "calls": 0, "talk": 0.0, "unpaid": ZERO,
                                         "paid": ZERO})

    for c in clients:
        b = of(c.owner_id)
        b["clients"] += 1
        b["potential"] += c.annual_potential or ZERO
        team = team_of.get(c.owner_id) if c.owner_id is not None else None
        rules = teams.get(team, company) if team is not None else company
        every = c.contact_every_days or rules.contact_days(c.abc_group)
        since = _day(c.owner_since or c.created_at, tz)
        contact = last.get(c.id)
        if is_abandoned(_day(contact, tz) if contact else None, since, every, as_of):
            b["abandoned"] += 1
    for cid, talk in await session.execute(
            select(Call.client_id, Call.talk_seconds).where(
                Call.client_id.is_not(None), Call.direction != Direction.INTERNAL.value,
                Call.started_at >= start, Call.started_at < end)):
        if cid in owner:
            b = of(owner[cid])
            b["calls"] += 1
            b["talk"] += talk
    for cid, amount, paid in await session.execute(
            select(Invoice.client_id, Invoice.amount, Invoice.paid_amount).where(
                Invoice.status != InvoiceStatus.PAID.value, Invoice.archived_at.is_(None))):
        if cid in owner:
            of(owner[cid])["unpaid"] += amount - paid
    for cid, amount in await session.execute(
            select(Payment.client_id, Payment.amount).where(
                Payment.archived_at.is_(None), Payment.paid_on >= first,
                Payment.paid_on <= as_of)):
        if cid in owner:
            of(owner[cid])["paid"] += amount
    offers: dict[int | None, Any] = {}
    for manager, offer in await session.execute(
            select(Deal.owner_id, Deal.amount).where(
                Deal.status == DealStatus.OPEN.value, Deal.archived_at.is_(None))):
        if manager in ids:
            offers[manager] = offers.get(manager, ZERO) + (offer or ZERO)
    return present_contact_frequency(scope, base, offers, as_of)


# -- overdue clients --------------------------------------------------------------------------


async def overdue_clients(session: AsyncSession, start: datetime, end: datetime,
                          viewer: User | None, *, tz_name: str = DEFAULT_TIMEZONE
                          ) -> dict[str, Any]:
    scope = await scope_for(session, viewer, tz_name)
    tz = scope.tz
    as_of = _last_day(end, tz)
    company, teams = await rules_by_team(session)
    team_of = await _owner_teams(session)
    ids = set(scope.ids)
    bounds = month_bounds(as_of, tz)
    data: dict[tuple[int | None, str], dict[str, Any]] = {}
    for cid, owner, status, owner_since, status_since, created in await session.execute(
            select(Client.id, Client.owner_id, Client.status, Client.owner_since,
                   Client.status_since, Client.created_at)
            .where(Client.archived_at.is_(None),
                   Client.status.in_([ClientStatus.POTENTIAL.value, ClientStatus.NEW.value]))
            .order_by(Client.id)):
        if owner not in ids:
            continue
        since = max(owner_since or created, status_since or created, created)
        months = sum(1 for bound in bounds if since < bound)
        team = team_of.get(owner) if owner is not None else None
        rules = teams.get(team, company) if team is not None else company
        days = rules.max_potential_days if status == ClientStatus.POTENTIAL.value \
            else rules.max_new_days
        row = data.setdefault((owner, status), {"months": [0] * MONTH_BUCKETS, "over": 0,
                                                "ids": []})
        row["months"][months] += 1
        if since < days_at_least(as_of, days + 1, tz):
            row["over"] += 1
            if len(row["ids"]) < OVER_IDS:
                row["ids"].append(cid)
    return present_overdue_clients(scope, company, teams, data, as_of)


# -- summary ----------------------------------------------------------------------------------


async def _funnel(session: AsyncSession, scope: Scope, start: datetime, end: datetime,
                  rules_of: dict[int | None, StatusRules]) -> dict[str, dict[str, Any]]:
    """Clients per status on the period's last day by ``compute_status`` on their facts up
    to it, their potential, and their payments in the period."""
    tz = scope.tz
    first, last = _day(start, tz), _last_day(end, tz)
    clients = [row for row in await session.execute(
        select(Client.id, Client.owner_id, Client.annual_potential)
        .where(Client.archived_at.is_(None), Client.created_at < end))
        if row.owner_id in rules_of]
    ids = {c.id for c in clients}
    first_paid: dict[int, date] = {}
    last_paid: dict[int, date] = {}
    paid: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for cid, amount, day in await session.execute(
            select(Payment.client_id, Payment.amount, Payment.paid_on).where(
                Payment.archived_at.is_(None), Payment.paid_on <= last)):
        if cid not in ids:
            continue
        first_paid[cid] = min(first_paid.get(cid, day), day)
        last_paid[cid] = max(last_paid.get(cid, day), day)
        if day >= first:
            paid[cid] += amount
    contacts = await _last_contacts(session, end, ids)
    out: dict[str, dict[str, Any]] = {
        s: {"clients": 0, "potential": ZERO, "paid": ZERO} for s in STATUSES}
    for c in clients:
        contact = contacts.get(c.id)
        facts = ClientFacts(first_paid.get(c.id), last_paid.get(c.id),
                            _day(contact, tz) if contact else None)
        row = out[compute_status(facts, rules_of[c.owner_id], last).value]
        row["clients"] += 1
        row["potential"] += c.annual_potential or ZERO
        row["paid"] += paid.get(c.id, ZERO)
    return out


async def summary(session: AsyncSession, start: datetime, end: datetime, viewer: User | None,
                  *, tz_name: str = DEFAULT_TIMEZONE) -> dict[str, Any]:
    scope = await scope_for(session, viewer, tz_name)
    rules_of = await _rules_of(session, scope)
    previous_start = previous_period_start(start, end)
    now = await _funnel(session, scope, start, end, rules_of)
    before = await _funnel(session, scope, previous_start, start, rules_of)
    return present_summary(now, before, previous_start, start)


# -- qualification ----------------------------------------------------------------------------


async def qualification(session: AsyncSession, start: datetime, end: datetime,
                        viewer: User | None, *, tz_name: str = DEFAULT_TIMEZONE
                        ) -> dict[str, Any]:
    scope = await scope_for(session, viewer, tz_name)
    ids = set(scope.ids)
    data: dict[int | None, dict[str, Any]] = {}
    for owner, group, created, qualified in await session.execute(
            select(Client.owner_id, Client.abc_group, Client.created_at, Client.qualified_at)
            .where(Client.created_at >= start, Client.created_at < end)):
        if owner not in ids:
            continue
        row = data.setdefault(owner, {"new": 0, "qualified": 0, "A": 0, "B": 0, "C": 0,
                                      "days": []})
        row["new"] += 1
        if qualified is not None and group:
            row["qualified"] += 1
            row[group] += 1
            row["days"].append((qualified - created).total_seconds() / 86400)
    return present_qualification(scope, data)


# -- activity ---------------------------------------------------------------------------------


async def activity(session: AsyncSession, start: datetime, end: datetime, viewer: User | None,
                   *, tz_name: str = DEFAULT_TIMEZONE) -> dict[str, Any]:
    scope = await scope_for(session, viewer, tz_name)
    ids = set(scope.ids)
    seen: dict[tuple[int, str], set[int]] = defaultdict(set)
    calls: dict[int | None, dict[str, Any]] = {}
    for uid, call_id, direction, talk in await session.execute(
            select(CallLeg.user_id, CallLeg.call_id, Call.direction, CallLeg.talk_seconds)
            .join(Call, Call.id == CallLeg.call_id)
            .where(CallLeg.role == LegRole.MANAGER.value, CallLeg.started_at >= start,
                   CallLeg.started_at < end)):
        if uid not in ids or not talk or talk <= 0 or direction == Direction.INTERNAL.value:
            continue
        row = calls.setdefault(uid, {"inbound": 0, "outbound": 0, "talk": 0.0})
        if call_id not in seen[(uid, direction)]:
            seen[(uid, direction)].add(call_id)
            row[direction] += 1
        row["talk"] += talk
    tasks: dict[int | None, dict[str, int]] = {}
    for uid, kind in await session.execute(
            select(Task.assignee_id, Task.kind).where(
                Task.status == TaskStatus.DONE.value, Task.done_at >= start,
                Task.done_at < end)):
        if uid in ids:
            per = tasks.setdefault(uid, {})
            per[kind] = per.get(kind, 0) + 1
    logged: dict[int | None, dict[str, int]] = {}
    for uid, kind in await session.execute(
            select(ClientActivity.user_id, ClientActivity.kind).where(
                ClientActivity.kind.in_(CONTACT_KINDS), ClientActivity.archived_at.is_(None),
                ClientActivity.happened_at >= start, ClientActivity.happened_at < end)):
        if uid in ids:
            per = logged.setdefault(uid, {})
            key = "email" if kind in EMAIL_KINDS else kind
            per[key] = per.get(key, 0) + 1
    moves: dict[int | None, int] = {}
    for (uid,) in await session.execute(
            select(DealStageChange.by_id).where(
                DealStageChange.at >= start, DealStageChange.at < end,
                DealStageChange.from_stage_id.is_not(None))):
        if uid in ids:
            moves[uid] = moves.get(uid, 0) + 1
    return present_activity(scope, calls, tasks, logged, moves)


# -- deals ------------------------------------------------------------------------------------


async def deals(session: AsyncSession, start: datetime, end: datetime, viewer: User | None,
                *, tz_name: str = DEFAULT_TIMEZONE) -> dict[str, Any]:
    scope = await scope_for(session, viewer, tz_name)
    ids = set(scope.ids)
    names = {rid: name for rid, name in await session.execute(
        select(LoseReason.id, LoseReason.name))}
    data: dict[int | None, dict[str, Any]] = {}
    reasons: dict[str, list[Any]] = {}
    for owner, status, amount, won, closed, reason in await session.execute(
            select(Deal.owner_id, Deal.status, Deal.amount, Deal.won_amount, Deal.closed_at,
                   Deal.lose_reason_id).where(Deal.archived_at.is_(None))):
        if owner not in ids:
            continue
        closed_in = closed is not None and start <= closed < end
        if status != DealStatus.OPEN.value and not closed_in:
            continue
        row = data.setdefault(owner, {"won": 0, "won_amount": ZERO, "lost": 0,
                                      "lost_amount": ZERO, "open": 0, "open_amount": ZERO})
        row[status] += 1
        row[f"{status}_amount"] += (won if status == "won" else amount) or ZERO
        if status == DealStatus.LOST.value and reason in names:
            total = reasons.setdefault(names[reason], [0, ZERO])
            total[0] += 1
            total[1] += amount or ZERO
    lose = [{"reason": name, "deals": n, "amount": str(Decimal(total).quantize(Decimal("0.01")))}
            for name, (n, total) in sorted(reasons.items(), key=lambda r: (-r[1][0], r[0]))]
    return present_deals(scope, data, lose)


RECOUNTS: dict[str, Report] = {
    "contact-frequency": contact_frequency,
    "overdue-clients": overdue_clients,
    "summary": summary,
    "qualification": qualification,
    "activity": activity,
    "deals": deals,
}
