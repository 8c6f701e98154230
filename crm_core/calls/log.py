"""The call log as people search it: filters, three sort orders and keyset pages.

The filters here are the core's own (period, who took part, team, direction, status,
talk time, client, number); a feature adds its own as ready-made WHERE clauses in
``CallLogFilter.extra`` (the call-tracking source, a recording, a script violation),
so the core never imports a feature. Who may see which call is the caller's clause
(``crm_core.people.access.calls_filter``), always ANDed in.

Pages are keyset pages, never OFFSET: the cursor names the last row's sort key and
id, so page 500 costs what page 1 costs, and a call written meanwhile never shifts a
row into the next page twice. The cursor is opaque to clients (base64 of JSON) and
carries nothing secret: a forged one only moves the starting point of the caller's
own visible calls.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from crm_core.calls.models import Call, CallLeg
from crm_core.clients.models import Client
from crm_core.db import plan_for_these_values
from crm_core.errors import DomainError
from crm_core.people.models import Team, User
from crm_core.timestamps import ensure_utc

SORTS = ("newest", "oldest", "longest")
MAX_PAGE = 500  # the most rows one page may ask for


def took_part(user_ids: Sequence[int] | Select[Any], extensions: Sequence[str] | Select[Any],
              since: datetime | None = None, until: datetime | None = None,
              ) -> ColumnElement[bool]:
    """Calls with a leg on one of these users' phones (dialled, rang or talked): lists of
    ids and extensions, or SELECTs of them.

    The extension catches legs written before their user existed (no ``user_id``). A caller
    that looks at the calls of ``[since, until)`` only may say so: the legs are then looked
    for around that period too, so when PostgreSQL hashes the people's legs (for a scan of
    many calls) it hashes those of the period, not every leg they ever had. (SQLite tests
    each call by the legs' call_id instead, and is better left without the period.)
    """
    ids = user_ids if isinstance(user_ids, Select) else list(user_ids)
    exts = extensions if isinstance(extensions, Select) else (list(extensions) or [""])
    return exists().where(
        CallLeg.call_id == Call.id, or_(CallLeg.user_id.in_(ids), CallLeg.extension.in_(exts)),
        *_leg_window(since, until),
    ).correlate(Call)


# A leg starts when its channel is created: at or after its call's start (a call starts
# with its first channel) and before the call ends. Looking for a person's legs from an
# hour before the period to half a day after it finds every leg of the period's calls (a
# phone joining a call after twelve hours of it is not a case) through the index on
# (user_id, started_at), instead of testing each call of the period for his legs.
LEG_SLACK_BEFORE = timedelta(hours=1)
LEG_SLACK_AFTER = timedelta(hours=12)


def _leg_window(since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    """Legs that may belong to calls started in ``[since, until)``."""
    window: list[ColumnElement[bool]] = []
    if since is not None:
        window.append(CallLeg.started_at >= ensure_utc(since) - LEG_SLACK_BEFORE)
    if until is not None:
        window.append(CallLeg.started_at < ensure_utc(until) + LEG_SLACK_AFTER)
    return window


def legs_of(people: Any, since: datetime | None, until: datetime | None
            ) -> ColumnElement[bool]:
    """Calls with a leg of ``people`` (a SELECT of user ids) that started around the period.

    The same calls as :func:`took_part` within ``[since, until)``, found from the people's
    side: a manager's week is a few hundred legs, not the week's calls of everyone. The
    people stay a subquery, so the filter costs the database no extra round trip.
    """
    window = _leg_window(since, until)
    ids = people.subquery()
    extensions = select(User.extension).where(User.id.in_(select(ids.c.id)),
                                              User.extension.is_not(None)).correlate(None)
    by_user = select(CallLeg.call_id).where(CallLeg.user_id.in_(select(ids.c.id)),
                                            *window).correlate(None)
    by_extension = select(CallLeg.call_id).where(CallLeg.extension.in_(extensions),
                                                 *window).correlate(None)
    return Call.id.in_(by_user.union(by_extension))


@dataclass(frozen=True, eq=False)
class CallLogFilter:
    """What narrows the call log; every field left at its default narrows nothing."""

    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    manager_ids: tuple[int, ...] = ()  # calls any of them took part in
    team_id: int | None = None  # calls a member took part in, or through the team's queue
    direction: str | None = None
    status: str | None = None
    min_talk_seconds: float | None = None
    client_ids: tuple[int, ...] | None = None  # None: any client; (): matches nothing
    number: str | None = None  # the client's number, E.164
    extra: tuple[ColumnElement[bool], ...] = field(default=())  # features' clauses


def _period(f: CallLogFilter) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if f.since is not None:
        clauses.append(Call.started_at >= ensure_utc(f.since))
    if f.until is not None:
        clauses.append(Call.started_at < ensure_utc(f.until))
    return clauses


def filter_clauses(f: CallLogFilter) -> list[ColumnElement[bool]]:
    """The WHERE clauses of ``f``; people and teams stay subqueries (one round trip)."""
    clauses = _period(f)
    if f.manager_ids:
        people = select(User.id).where(User.id.in_(f.manager_ids))
        clauses.append(legs_of(people, f.since, f.until))
    if f.team_id is not None:
        members = select(User.id).where(User.team_id == f.team_id)
        queue = select(Team.queue).where(Team.id == f.team_id, Team.queue.is_not(None))
        # The period inside the OR too: each side is then one range of an index, whatever
        # the planner knows of the data (SQLite without ANALYZE statistics included).
        through_queue = and_(Call.queue.in_(queue), *_period(f))
        clauses.append(or_(legs_of(members, f.since, f.until), through_queue))
    if f.direction is not None:
        clauses.append(Call.direction == f.direction)
    if f.status is not None:
        clauses.append(Call.status == f.status)
    if f.min_talk_seconds:
        clauses.append(Call.talk_seconds >= f.min_talk_seconds)
    if f.client_ids is not None:
        clauses.append(Call.client_id.in_(f.client_ids) if f.client_ids else false())
    if f.number is not None:
        clauses.append(Call.client_number == f.number)
    clauses.extend(f.extra)
    return clauses


# -- cursors ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: just past (or, ``back``, just before) this row in ``sort`` order."""

    sort: str
    value: datetime | float
    id: int
    back: bool = False

    def encode(self) -> str:
        value = self.value.isoformat() if isinstance(self.value, datetime) else self.value
        raw = json.dumps([self.sort, value, self.id, int(self.back)], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, sort: str) -> Cursor:
        """The cursor ``text`` for a page in ``sort`` order; DomainError if it is not one."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            kind, value, row_id, back = json.loads(raw)
            if kind != sort:
                raise ValueError("another sort order")
            if not isinstance(row_id, int) or isinstance(row_id, bool) or row_id < 1:
                raise ValueError("bad id")
            if kind == "longest":
                if not isinstance(value, int | float) or isinstance(value, bool):
                    raise ValueError("bad talk time")
                moment: datetime | float = float(value)
            else:
                moment = ensure_utc(datetime.fromisoformat(value))
            return cls(kind, moment, row_id, bool(back))
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, OverflowError):
            raise DomainError("calls.bad_cursor", "the cursor is not one this list gave") from None


def _key(call: Call, sort: str) -> datetime | float:
    return call.talk_seconds if sort == "longest" else call.started_at


def _order(sort: str, back: bool) -> list[Any]:
    """ORDER BY for ``sort``; ``back`` walks the same order in reverse (a previous page)."""
    column = Call.talk_seconds if sort == "longest" else Call.started_at
    descending = (sort != "oldest") != back
    if descending:
        return [column.desc(), Call.id.desc()]
    return [column.asc(), Call.id.asc()]


def _after(cursor: Cursor) -> ColumnElement[bool]:
    """Rows strictly past the cursor in its walking direction.

    The redundant bound on the sort column alone lets the planner use the index range.
    """
    column = Call.talk_seconds if cursor.sort == "longest" else Call.started_at
    value = cursor.value
    descending = (cursor.sort != "oldest") != cursor.back
    if descending:
        return and_(column <= value, or_(column < value, Call.id < cursor.id))
    return and_(column >= value, or_(column > value, Call.id > cursor.id))


def call_query() -> Any:
    """SELECT calls with what the public shape needs: client, recordings, legs and users.

    Of the client and the users only the names are read (the call JSON needs no more, and
    loading whole rows was a fifth of a log page's time); touching another of their
    attributes would need a lazy load, which async sessions refuse loudly.
    """
    return select(Call).options(
        joinedload(Call.client).load_only(Client.id, Client.name),
        selectinload(Call.recordings),
        selectinload(Call.legs).joinedload(CallLeg.user).load_only(User.id, User.name),
    )


@dataclass(frozen=True)
class Page:
    """One page of the log, and the cursors to the next and previous pages (None: none)."""

    calls: list[Call]
    next: Cursor | None
    previous: Cursor | None


async def call_log_page(
    session: AsyncSession,
    scope: ColumnElement[bool],
    f: CallLogFilter,
    *,
    sort: str = "newest",
    cursor: Cursor | None = None,
    limit: int = 50,
) -> Page:
    """The calls matching ``f`` within ``scope`` (who may see them), one page in ``sort`` order.

    ``limit`` is clamped to ``1..MAX_PAGE``: the log is never answered unbounded. The page's
    ids are found first, in narrow rows; only those calls are then loaded whole, with their
    client, legs and recordings (joining for every candidate row cost more than the trip).
    """
    if sort not in SORTS:
        raise DomainError("calls.bad_sort", f"sort must be one of {', '.join(SORTS)}",
                          sort=sort)
    if cursor is not None and cursor.sort != sort:
        raise DomainError("calls.bad_cursor", "the cursor belongs to another sort order")
    limit = max(1, min(limit, MAX_PAGE))
    back = cursor is not None and cursor.back
    await plan_for_these_values(session)
    stmt = select(Call.id).where(scope, *filter_clauses(f))
    if cursor is not None:
        stmt = stmt.where(_after(cursor))
    ids = list(await session.scalars(stmt.order_by(*_order(sort, back)).limit(limit + 1)))
    more = len(ids) > limit
    ids = ids[:limit]
    if back:
        ids.reverse()
    if not ids:
        return Page([], None, None)
    loaded = {call.id: call for call in
              (await session.scalars(call_query().where(Call.id.in_(ids)))).unique()}
    rows = [loaded[call_id] for call_id in ids if call_id in loaded]  # none gone: no deletes
    if not rows:
        return Page([], None, None)
    first, last = rows[0], rows[-1]
    following = Cursor(sort, _key(last, sort), last.id) if (more or back) else None
    preceding = (Cursor(sort, _key(first, sort), first.id, back=True)
                 if (cursor is not None and (more or not back)) else None)
    return Page(rows, following, preceding)


async def iter_call_log(
    session: AsyncSession,
    scope: ColumnElement[bool],
    f: CallLogFilter,
    *,
    sort: str = "newest",
    batch: int = 500,
    max_rows: int | None = None,
) -> AsyncIterator[Call]:
    """Every call matching ``f`` in ``sort`` order, fetched in keyset batches (flat memory)."""
    cursor: Cursor | None = None
    sent = 0
    while True:
        size = batch if max_rows is None else min(batch, max_rows - sent)
        if size <= 0:
            return
        page = await call_log_page(session, scope, f, sort=sort, cursor=cursor, limit=size)
        for call in page.calls:
            yield call
        sent += len(page.calls)
        if page.next is None:
            return
        cursor = page.next
