"""The per-day rollup of the contact-frequency report's calls (``sales_contact_daily``).

The report's calls and talk minutes per manager would otherwise re-read every call of
the period and join it to its client. A finished local day is counted once per client
owner and stored; triggers in the database drop the rows a later write could change
(see migration 0031), so a stored figure is always the one a recount would give
(``tests/sales/test_sales_rollup.py`` checks it). Days missing from the rollup are
counted from the calls, so a report is right whether the rollup is full, partial or
empty. Rows are keyed by time zone.

A day is stored only once it is over, and only when every client with a call on it was
created before the day's end (a call linked to a client created later counts in some
periods and not in others; such a day is always counted live).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, delete, func, insert, literal, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import Call, Direction
from crm_core.clients.models import Client
from crm_core.clock import utcnow
from crm_core.people.models import User
from crm_core.sales.attention import midnight
from crm_core.sales.models import SalesContactDaily
from crm_core.timestamps import UTCDateTime

Figures = tuple[int, float]  # calls, talk seconds
LIVE_CHUNK_DAYS = 62  # days missing from the rollup are counted this many at a time


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=k) for k in range((last - first).days + 1)]


def whole_days(start: datetime, end: datetime, tz: ZoneInfo) -> tuple[date, date] | None:
    """The local days ``[start, end)`` spans when both ends are local midnights, else None."""
    first, after = start.astimezone(tz), end.astimezone(tz)
    if (first.time(), after.time()) != (datetime.min.time(), datetime.min.time()):
        return None
    last = after.date() - timedelta(days=1)
    return (first.date(), last) if last >= first.date() else None


def _call_clauses(start: datetime, end: datetime) -> list[Any]:
    return [Call.client_id.is_not(None), Call.direction != Direction.INTERNAL.value,
            Call.started_at >= start, Call.started_at < end, Client.archived_at.is_(None)]


async def calls_by_owner(session: AsyncSession, owner_ids: Sequence[int], start: datetime,
                         end: datetime) -> dict[int | None, Figures]:
    """Calls with the owners' clients in ``[start, end)`` counted from the calls (clients
    not archived and created before ``end``)."""
    if not owner_ids:
        return {}
    rows = await session.execute(
        select(Client.owner_id, func.count(Call.id), func.sum(Call.talk_seconds))
        .select_from(Call).join(Client, Client.id == Call.client_id)
        .where(*_call_clauses(start, end), Client.owner_id.in_(list(owner_ids)),
               Client.created_at < end)
        .group_by(Client.owner_id))
    return {owner: (int(n), float(talk or 0)) for owner, n, talk in rows}


async def _count_days(session: AsyncSession, owner_ids: Sequence[int], first: date, last: date,
                      tz: ZoneInfo, created_before: datetime | None = None
                      ) -> tuple[dict[tuple[int, date], Figures], set[tuple[int, date]]]:
    """Per (owner, day) from the calls (of clients created before ``created_before``, when
    given), and the (owner, day) pairs that may not be stored (a call of a client created
    after the day's end)."""
    days = _days(first, last)
    bounds = [midnight(d + timedelta(days=1), tz) for d in days]
    index = case(*[(Call.started_at < b, literal(k)) for k, b in enumerate(bounds)],
                 else_=literal(len(days)))
    day_end = case(*[(Call.started_at < b, type_coerce(literal(b), UTCDateTime()))
                     for b in bounds], else_=type_coerce(literal(bounds[-1]), UTCDateTime()))
    late = func.max(case((Client.created_at >= day_end, 1), else_=0))
    where = [*_call_clauses(midnight(first, tz), bounds[-1]),
             Client.owner_id.in_(list(owner_ids))]
    if created_before is not None:
        where.append(Client.created_at < created_before)
    figures: dict[tuple[int, date], Figures] = {}
    unstorable: set[tuple[int, date]] = set()
    for owner, k, n, talk, is_late in await session.execute(
            select(Client.owner_id, index, func.count(Call.id), func.sum(Call.talk_seconds),
                   late)
            .select_from(Call).join(Client, Client.id == Call.client_id).where(*where)
            .group_by(Client.owner_id, index)):
        key = (owner, days[int(k)])
        figures[key] = (int(n), float(talk or 0))
        if is_late:
            unstorable.add(key)
    return figures, unstorable


async def read_days(session: AsyncSession, owner_ids: Sequence[int], first: date, last: date,
                    tz: ZoneInfo) -> dict[tuple[int, date], Figures]:
    rows = await session.execute(
        select(SalesContactDaily.owner_id, SalesContactDaily.day, SalesContactDaily.calls,
               SalesContactDaily.talk_seconds)
        .where(SalesContactDaily.owner_id.in_(list(owner_ids)), SalesContactDaily.day >= first,
               SalesContactDaily.day <= last, SalesContactDaily.tz == tz.key))
    return {(owner, day): (calls, talk) for owner, day, calls, talk in rows}


async def calls_by_owner_days(session: AsyncSession, owner_ids: Sequence[int], first: date,
                              last: date, tz: ZoneInfo) -> dict[int | None, Figures]:
    """Calls with the owners' clients (not archived, created before the last day's end) on
    the local days ``first``..``last``: stored days from the rollup, the others counted
    from the calls."""
    if not owner_ids:
        return {}
    stored = await read_days(session, owner_ids, first, last, tz)
    created_before = midnight(last + timedelta(days=1), tz)
    missing = [(o, d) for o in owner_ids for d in _days(first, last) if (o, d) not in stored]
    totals: dict[int | None, list[float]] = {}
    for (owner, _), (n, talk) in stored.items():
        acc = totals.setdefault(owner, [0, 0.0])
        acc[0] += n
        acc[1] += talk
    stored_owners = {o for o, _ in stored}
    # owners with nothing stored: the whole period in one count, no day split
    bare = [o for o in owner_ids if o not in stored_owners]
    for holder, (count, seconds) in (await calls_by_owner(
            session, bare, midnight(first, tz), created_before)).items():
        acc = totals.setdefault(holder, [0, 0.0])
        acc[0] += count
        acc[1] += seconds
    missing = [(o, d) for o, d in missing if o in stored_owners]
    wanted = set(missing)
    days_missing = sorted({d for _, d in missing})
    while days_missing:
        lo = days_missing[0]
        hi = max(d for d in days_missing if (d - lo).days < LIVE_CHUNK_DAYS)
        days_missing = [d for d in days_missing if d > hi]
        owners = sorted({o for o, d in missing if lo <= d <= hi})
        live, _ = await _count_days(session, owners, lo, hi, tz, created_before)
        for key, (n, talk) in live.items():
            if key in wanted:
                acc = totals.setdefault(key[0], [0, 0.0])
                acc[0] += n
                acc[1] += talk
    return {owner: (int(n), float(talk)) for owner, (n, talk) in totals.items()}


async def refresh_days(session: AsyncSession, first: date, last: date, tz: ZoneInfo, *,
                       now: datetime | None = None) -> int:
    """Count the finished days ``first``..``last`` afresh for every user and store them;
    returns the rows stored. Days not over yet are left out."""
    now = now or utcnow()
    while last >= first and midnight(last + timedelta(days=1), tz) > now:
        last -= timedelta(days=1)
    if last < first:
        return 0
    owners = list(await session.scalars(select(User.id)))
    if not owners:
        return 0
    figures, unstorable = await _count_days(session, owners, first, last, tz)
    await session.execute(delete(SalesContactDaily).where(
        SalesContactDaily.day >= first, SalesContactDaily.day <= last,
        SalesContactDaily.tz == tz.key))
    stamp = utcnow()
    values = [{"owner_id": o, "day": d, "tz": tz.key, "calls": figures.get((o, d), (0, 0.0))[0],
               "talk_seconds": figures.get((o, d), (0, 0.0))[1], "computed_at": stamp}
              for o in owners for d in _days(first, last) if (o, d) not in unstorable]
    if values:
        await session.execute(insert(SalesContactDaily), values)
    return len(values)
