"""Each client's status at the end of a day, in SQL, and the kept verdicts of finished days
(``sales_client_status``), the sales summary's rollup.

The summary judges every client at the end of its period and of the one before, from all
his payments and contacts. A finished day's verdict cannot change unless a fact dated on
or before it does; so the nightly run stores the verdicts of the days a head of sales
compares (every month's last day and yesterday), and triggers in the database drop a
client's rows from the first day a late write could change (migration 0034). A summary
reads a day from its rows when every client it counts has one judged by his rules of
now, and judges them all live otherwise; so it is right whether the rollup is full,
partial or empty (``tests/sales/test_sales_status_days.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    delete,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.activities.models import ClientActivity
from crm_core.calls.models import Call
from crm_core.clients.models import Client, ClientStatus
from crm_core.clock import utcnow
from crm_core.people.models import User
from crm_core.sales.attention import day_end
from crm_core.sales.client_status import contact_activities, contact_calls
from crm_core.sales.models import Payment, SalesClientStatus
from crm_core.sales.settings import StatusRules, rules_by_team
from crm_core.timestamps import UTCDateTime

MONTHS_KEPT = 13  # month ends kept: a year's months, each beside the one before


def per_team(teams: dict[int, Any], default: Any, type_: Any = None) -> Any:
    """A CASE on the owner's team (``User.team_id``, joined by the query) picking each
    team's value."""
    def value(v: Any) -> Any:
        return type_coerce(literal(v), type_) if type_ is not None else literal(v)

    if not teams:
        return value(default)
    return case(*[(User.team_id == tid, value(v)) for tid, v in teams.items()],
                else_=value(default))


def rule(company: StatusRules, teams: dict[int, StatusRules], field: str) -> Any:
    """One of the rules (``lost_after_days``, ``new_period_days``) per client's team."""
    return per_team({t: getattr(r, field) for t, r in teams.items()}, getattr(company, field))


def verdict(end: datetime, last: date, tz: ZoneInfo, company: StatusRules,
            teams: dict[int, StatusRules], first_paid: Any, last_paid: Any) -> Any:
    """The client's status at ``end`` (the end of his local day ``last``), NULL when he
    was created later; ``first_paid`` / ``last_paid`` are his first and last payment on or
    before ``last`` (NULL without one).

    The rules' verdict (:func:`crm_core.sales.client_status.compute_status`) on the
    payments and contacts with their real dates, in SQL: *potential* without a payment;
    *lost* when the last payment is ``lost_after_days`` or more days old and no contact
    came since; *new* while the first payment is fewer than ``new_period_days`` days old;
    else *regular*.
    """
    def lost_day(r: StatusRules) -> date:
        return last - timedelta(days=r.lost_after_days)

    def new_day(r: StatusRules) -> date:
        return last - timedelta(days=r.new_period_days)

    lost_cut = per_team({t: lost_day(r) for t, r in teams.items()}, lost_day(company))
    new_cut = per_team({t: new_day(r) for t, r in teams.items()}, new_day(company))
    # a contact on a day after lost_day saves him: from that day's midnight up to end
    contact_from = per_team({t: day_end(lost_day(r), tz)
                             for t, r in teams.items()},
                            day_end(lost_day(company), tz), UTCDateTime())
    # The kept last contact answers most clients without reading their calls: none
    # since contact_from at all, or one before end; only a later one needs the calls.
    in_calls = (select(Call.id).where(Call.client_id == Client.id, *contact_calls(),
                                      Call.started_at >= contact_from, Call.started_at < end)
                .exists())
    in_logged = (select(ClientActivity.id).where(
        ClientActivity.client_id == Client.id, *contact_activities(),
        ClientActivity.happened_at >= contact_from, ClientActivity.happened_at < end).exists())
    # never contacted (NULL) is "not talked", not unknown: NOT NULL would keep him
    # from ever being lost
    talked = and_(Client.last_contact_at.is_not(None), or_(
        and_(Client.last_contact_at >= contact_from, Client.last_contact_at < end),
        and_(Client.last_contact_at >= end, or_(in_calls, in_logged))))
    return case(
        (Client.created_at >= end, literal(None)),
        (first_paid.is_(None), literal(ClientStatus.POTENTIAL.value)),
        (and_(last_paid <= lost_cut, ~talked), literal(ClientStatus.LOST.value)),
        (first_paid > new_cut, literal(ClientStatus.NEW.value)),
        else_=literal(ClientStatus.REGULAR.value))


def is_day_end(end: datetime, last: date, tz: ZoneInfo) -> bool:
    """Whether ``end`` is the very end of the local day ``last`` (what a row stores)."""
    return end == day_end(last, tz)


def judged_by_rules_of_now(owners: Sequence[tuple[int, int | None]], company: StatusRules,
                           teams: dict[int, StatusRules]) -> ColumnElement[bool]:
    """A kept row of a client of one of ``owners`` (id, team id), judged by the rules his
    owner's team has now."""
    by_rules: dict[tuple[int, int], list[int]] = {}
    for owner_id, team_id in owners:
        r = teams.get(team_id, company) if team_id is not None else company
        by_rules.setdefault((r.lost_after_days, r.new_period_days), []).append(owner_id)
    kept = SalesClientStatus
    return or_(false(), *[and_(kept.owner_id.in_(ids), kept.lost_after_days == lost,
                               kept.new_period_days == new)
                          for (lost, new), ids in by_rules.items()])


Funnel = dict[str, tuple[int, Decimal, Decimal]]  # status -> clients, potential, paid


async def kept_funnels(session: AsyncSession, managers: Sequence[User], company: StatusRules,
                       teams: dict[int, StatusRules], periods: Sequence[tuple[date, date]],
                       tz: ZoneInfo) -> list[Funnel | None]:
    """For each period of local days ``(first, last)``, per status: the managers' clients
    (not archived) at the end of ``last``, their potential and their payments in the
    period, from the kept verdicts; None for a period unless every such client has one
    judged by his rules of now."""
    if not periods:
        return []
    if not managers:
        return [{} for _ in periods]
    kept = SalesClientStatus
    rules_now = judged_by_rules_of_now([(m.id, m.team_id) for m in managers], company, teams)

    def matching(last: date) -> list[Any]:
        return [kept.day == last, kept.tz == tz.key, kept.archived.is_(False), rules_now]

    counts = [{status: (int(n), Decimal(potential or 0)) for status, n, potential in
               await session.execute(select(kept.status, func.count(), func.sum(kept.potential))
                                     .where(*matching(last)).group_by(kept.status))}
              for _, last in periods]
    # how many clients each period with verdicts counts, in one pass over the clients
    found = [k for k, c in enumerate(counts) if c]
    ends = [day_end(periods[k][1], tz) for k in found]
    expected = (await session.execute(select(
        *[func.count().filter(Client.created_at < end) for end in ends])
        .where(Client.owner_id.in_([m.id for m in managers]), Client.archived_at.is_(None),
               Client.created_at < max(ends)))).one() if found else ()
    funnels: list[Funnel | None] = [None] * len(periods)
    for k, clients in zip(found, expected, strict=True):
        if sum(n for n, _ in counts[k].values()) != clients:
            continue  # one without a verdict by his rules of now: all are judged live
        first, last = periods[k]
        paid = {status: total for status, total in await session.execute(
            select(kept.status, func.sum(Payment.amount)).select_from(Payment)
            .join(kept, and_(kept.client_id == Payment.client_id, *matching(last)))
            .where(Payment.archived_at.is_(None), Payment.paid_on >= first,
                   Payment.paid_on <= last)
            .group_by(kept.status))}
        funnels[k] = {status: (n, potential, Decimal(paid.get(status) or 0))
                      for status, (n, potential) in counts[k].items()}
    return funnels


async def refresh_statuses(session: AsyncSession, days: Sequence[date], tz: ZoneInfo, *,
                           now: datetime | None = None) -> int:
    """Judge every client (archived ones too: a restore changes no fact) at the end of each
    finished day of ``days`` and store the verdicts; returns the rows stored. Days not
    over yet are left out."""
    now = now or utcnow()
    company, teams = await rules_by_team(session)
    stored = 0
    for day in sorted(set(days)):
        end = day_end(day, tz)
        if end > now:
            continue
        paid = (select(Payment.client_id.label("cid"), func.min(Payment.paid_on).label("first"),
                       func.max(Payment.paid_on).label("last"))
                .where(Payment.archived_at.is_(None), Payment.paid_on <= day)
                .group_by(Payment.client_id).subquery())
        await session.execute(delete(SalesClientStatus).where(
            SalesClientStatus.day == day, SalesClientStatus.tz == tz.key))
        judged = (select(literal(day), literal(tz.key), Client.id,
                         rule(company, teams, "lost_after_days"),
                         rule(company, teams, "new_period_days"),
                         verdict(end, day, tz, company, teams, paid.c.first, paid.c.last),
                         Client.owner_id, Client.annual_potential, Client.archived_at.is_not(None),
                         type_coerce(literal(utcnow()), UTCDateTime()))
                  .select_from(Client).outerjoin(paid, paid.c.cid == Client.id)
                  .outerjoin(User, User.id == Client.owner_id)
                  .where(Client.created_at < end))
        result = await session.execute(insert(SalesClientStatus).from_select(
            ["day", "tz", "client_id", "lost_after_days", "new_period_days", "status",
             "owner_id", "potential", "archived", "computed_at"], judged))
        stored += max(result.rowcount or 0, 0)  # type: ignore[attr-defined]
    if stored and session.get_bind().dialect.name == "postgresql":
        # A day is a whole new set of rows: planned on the statistics of the table before
        # it (none the first night), a summary walked every row of the day to probe its
        # payments (330 ms instead of 90) until autovacuum came by.
        await session.execute(text(f"ANALYZE {SalesClientStatus.__tablename__}"))
    return stored


async def whole_days(session: AsyncSession, days: Sequence[date], tz: ZoneInfo) -> set[date]:
    """Which of ``days`` hold a verdict for every client created by their end, each judged
    by his rules of now: the nightly run judges only the others again."""
    company, teams = await rules_by_team(session)
    kept = SalesClientStatus
    owners = [(uid, team_id) for uid, team_id in await session.execute(
        select(User.id, User.team_id))]
    rules_now = or_(and_(kept.owner_id.is_(None),
                         kept.lost_after_days == company.lost_after_days,
                         kept.new_period_days == company.new_period_days),
                    judged_by_rules_of_now(owners, company, teams))
    whole = set()
    for day in sorted(set(days)):
        rows = await session.scalar(select(func.count()).select_from(kept).where(
            kept.day == day, kept.tz == tz.key, rules_now))
        clients = await session.scalar(select(func.count()).select_from(Client).where(
            Client.created_at < day_end(day, tz)))
        if rows and rows == clients:
            whole.add(day)
    return whole


def days_to_keep(today: date) -> list[date]:
    """The days whose verdicts the nightly run keeps: yesterday and the last day of each
    of the last ``MONTHS_KEPT`` months (what the summary of a month compares)."""
    days = [today - timedelta(days=1)]
    month_start = today.replace(day=1)
    for _ in range(MONTHS_KEPT):
        days.append(month_start - timedelta(days=1))
        month_start = (month_start - timedelta(days=1)).replace(day=1)
    return sorted(set(days))


async def forget_other_days(session: AsyncSession, keep: Sequence[date], tz: ZoneInfo) -> int:
    """Drop the stored days not in ``keep`` (the table stays a few days of clients)."""
    result = await session.execute(delete(SalesClientStatus).where(
        SalesClientStatus.tz == tz.key, SalesClientStatus.day.not_in(list(keep))))
    return max(result.rowcount or 0, 0)  # type: ignore[attr-defined]
