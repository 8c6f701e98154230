"""Clients that need the head of sales' attention, as SQL conditions on ``Client``.

One definition for the reports that count them and the client list that shows them,
so every figure of the contact-frequency (ЧЧК) and overdue-clients reports opens a
list of exactly those clients:

- *abandoned* on a day: without a contact for longer than his planned frequency (his
  own, else his ABC group's by his owner's team rules), counted from his last answered
  call before the day's end, or from when he came to his manager;
- *stay* with the manager: full months (30 days) since the later of getting the
  manager and getting the status, and *over the maximum* stay for his status;
- *no open task*: nothing planned with him (requests to stop work do not count).

Conditions that depend on the owner's team take the team column (``team``) of the
owner row the caller joined in, so the report's grouped query and the client list
use the same expressions.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, exists, false, func, literal, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.activities.models import ClientActivity
from crm_core.calls.models import Call, Direction
from crm_core.clients.models import Client, ClientStatus
from crm_core.sales.client_status import contact_activities
from crm_core.sales.models import ClientStop
from crm_core.sales.settings import StatusRules, rules_by_team
from crm_core.tasks.models import Task, TaskStatus
from crm_core.timestamps import UTCDateTime, aggregate_utc, utcnow

MONTH_BUCKETS = 7  # 0, 1, ... 5 full months with the manager, and 6 or more


def midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def day_end(day: date, tz: ZoneInfo) -> datetime:
    """The instant the local day ``day`` ends (a report period's ``end``)."""
    return midnight(day + timedelta(days=1), tz)


def days_at_least(as_of: date, days: int, tz: ZoneInfo) -> datetime:
    """The moment before which a local day is at least ``days`` days before ``as_of``."""
    return midnight(as_of - timedelta(days=days - 1), tz)


def local_day(moment: datetime, tz: ZoneInfo) -> date:
    return moment.astimezone(tz).date()



def _contact_clauses() -> list[Any]:
    return [Call.client_id.is_not(None), Call.answered_at.is_not(None),
            Call.direction != Direction.INTERNAL.value]


def _per_team(team: Any, teams: dict[int, Any], default: Any) -> Any:
    """A CASE on the owner's team picking each team's moment."""
    value = type_coerce(literal(default), UTCDateTime())
    if not teams:
        return value
    return case(*[(team == tid, type_coerce(literal(v), UTCDateTime()))
                  for tid, v in teams.items()], else_=value)


# -- abandoned (ЧЧК) --------------------------------------------------------------------------


def later_of(a: Any, b: Any) -> Any:
    """The later of two nullable timestamps, in SQL (GREATEST and SQLite's max() both
    give NULL when either is NULL)."""
    return type_coerce(case((a.is_(None), b), (b.is_(None), a), (a > b, a), else_=b),
                       UTCDateTime())


def contact_reference(end: datetime) -> Any:
    """From when a client's silence counts as of ``end``: his last contact before ``end``
    (the kept ``last_contact_at`` while the period reaches now), or when he came to his
    manager if that is later or there was none."""
    if end > utcnow():
        contact: Any = Client.last_contact_at
    else:
        call_before = (select(func.max(Call.started_at))
                       .where(Call.client_id == Client.id, *_contact_clauses(),
                              Call.started_at < end).correlate(Client).scalar_subquery())
        logged_before = (select(func.max(ClientActivity.happened_at))
                         .where(ClientActivity.client_id == Client.id, *contact_activities(),
                                ClientActivity.happened_at < end)
                         .correlate(Client).scalar_subquery())
        before_end = later_of(call_before, logged_before)
        contact = type_coerce(case((Client.last_contact_at < end, Client.last_contact_at),
                                   (Client.last_contact_at.is_(None), None),
                                   else_=before_end), UTCDateTime())
    since = func.coalesce(Client.owner_since, Client.created_at)
    return case((contact.is_(None), since), (contact < since, since), else_=contact)


def planned_cutoff(as_of: date, tz: ZoneInfo, company: StatusRules,
                   teams: dict[int, StatusRules], team: Any) -> Any:
    """The moment a contact must be after, by the client's group and his owner's team."""

    def cutoff(rules: StatusRules, group: str | None) -> datetime:
        return days_at_least(as_of, rules.contact_days(group) + 1, tz)

    whens = [(and_(team == tid, Client.abc_group == g), cutoff(r, g))
             for tid, r in teams.items() for g in "ABC"]
    whens += [(team == tid, cutoff(r, None)) for tid, r in teams.items()]
    whens += [(Client.abc_group == g, cutoff(company, g)) for g in "ABC"]
    return case(*[(cond, type_coerce(literal(v), UTCDateTime())) for cond, v in whens],
                else_=type_coerce(literal(cutoff(company, None)), UTCDateTime()))


def abandoned_by_group(reference: Any, planned: Any) -> ColumnElement[bool]:
    """Abandoned, for the clients judged by their group's frequency (most of them)."""
    return and_(Client.contact_every_days.is_(None), reference < planned)


async def abandoned_own_frequency(session: AsyncSession, where: list[Any], reference: Any,
                                  as_of: date, tz: ZoneInfo, source: Any = Client
                                  ) -> list[tuple[int, int | None]]:
    """(client, owner) of the abandoned among clients with a frequency of their own (few:
    judged one by one in whole local days)."""
    found = []
    for cid, owner, every, raw in await session.execute(
            select(Client.id, Client.owner_id, Client.contact_every_days,
                   type_coerce(reference, UTCDateTime()))
            .select_from(source).where(*where, Client.contact_every_days.is_not(None))):
        ref = aggregate_utc(raw)
        if ref is not None and every is not None and (
                local_day(ref, tz) < as_of - timedelta(days=every)):
            found.append((cid, owner))
    return found


async def abandoned_clause(session: AsyncSession, as_of: date, tz: ZoneInfo, team: Any
                           ) -> ColumnElement[bool]:
    """Clients abandoned on ``as_of`` that existed then (archived ones are never judged)."""
    end = day_end(as_of, tz)
    company, teams = await rules_by_team(session)
    reference = contact_reference(end)
    existed = Client.created_at < end
    own = [cid for cid, _ in await abandoned_own_frequency(
        session, [existed, Client.archived_at.is_(None)], reference, as_of, tz)]
    planned = planned_cutoff(as_of, tz, company, teams, team)
    by_group = abandoned_by_group(reference, planned)
    return and_(existed, by_group | (Client.id.in_(own) if own else false()))


# -- stay with the manager (overdue clients) --------------------------------------------------


def stay_since(session: AsyncSession) -> Any:
    """Since when the client is with his manager in his status (the later of the two)."""
    columns = (func.coalesce(Client.owner_since, Client.created_at),
               func.coalesce(Client.status_since, Client.created_at), Client.created_at)
    name = session.get_bind().dialect.name
    expr = func.greatest(*columns) if name == "postgresql" else func.max(*columns)
    return type_coerce(expr, UTCDateTime())


def month_bounds(as_of: date, tz: ZoneInfo) -> list[datetime]:
    """``bounds[k-1]``: a stay began before it when it has lasted at least k full months."""
    return [days_at_least(as_of, 30 * k, tz) for k in range(1, MONTH_BUCKETS)]


def over_maximum(since: Any, as_of: date, tz: ZoneInfo, company: StatusRules,
                 teams: dict[int, StatusRules], team: Any) -> Any:
    """Over the longest stay his status allows (potential or new), by his owner's team."""

    def limit(status: str) -> Any:
        def cut(rules: StatusRules) -> datetime:
            days = rules.max_potential_days if status == "potential" else rules.max_new_days
            return days_at_least(as_of, days + 1, tz)
        return _per_team(team, {tid: cut(r) for tid, r in teams.items()}, cut(company))

    return case((Client.status == ClientStatus.POTENTIAL.value, since < limit("potential")),
                else_=since < limit("new"))


def stay_clause(session: AsyncSession, months: int, as_of: date, tz: ZoneInfo
                ) -> ColumnElement[bool]:
    """Clients with ``months`` full months of stay (6 meaning six or more) on ``as_of``."""
    since, bounds = stay_since(session), month_bounds(as_of, tz)
    months = max(0, min(months, MONTH_BUCKETS - 1))
    clauses = []
    if months > 0:
        clauses.append(since < bounds[months - 1])
    if months < MONTH_BUCKETS - 1:
        clauses.append(~(since < bounds[months]))
    return and_(Client.status.in_([ClientStatus.POTENTIAL.value, ClientStatus.NEW.value]),
                *clauses)


async def over_maximum_clause(session: AsyncSession, as_of: date, tz: ZoneInfo, team: Any
                              ) -> ColumnElement[bool]:
    """Potential and new clients over their status' maximum stay on ``as_of``."""
    company, teams = await rules_by_team(session)
    over = over_maximum(stay_since(session), as_of, tz, company, teams, team)
    return and_(Client.status.in_([ClientStatus.POTENTIAL.value, ClientStatus.NEW.value]),
                over)


# -- no next task -----------------------------------------------------------------------------


def no_open_task() -> ColumnElement[bool]:
    """Nothing planned with the client: no open task but requests to stop work with him."""
    request = exists().where(ClientStop.request_task_id == Task.id)
    return ~exists().where(Task.client_id == Client.id, Task.status == TaskStatus.OPEN.value,
                           ~request)

