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

from sqlalchemy import ColumnElement, and_, exists, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from crm_core.calls.models import Call, CallLeg
from crm_core.errors import DomainError
from crm_core.people.models import Team, User
from crm_core.timestamps import ensure_utc

SORTS = ("newest", "oldest", "longest")
MAX_PAGE = 500  # the most rows one page may ask for


def took_part(user_ids: Sequence[int], extensions: Sequence[str]) -> ColumnElement[bool]:
    """Calls with a leg on one of these users' phones (dialled, rang or talked).

    The extension catches legs written before their user existed (no ``user_id``).
    """
    return exists().where(
        CallLeg.call_id == Call.id,
        or_(CallLeg.user_id.in_(list(user_ids)), CallLeg.extension.in_(list(extensions) or [""])),
    ).correlate(Call)


# A leg starts when its channel is created, at or after its call's start and before the
# call ends. Looking for a person's legs from a day before the period to a day after it
# finds every leg of the period's calls (no call lasts a day) through the index on
# (user_id, started_at), instead of testing each call of the period for his legs.
LEG_SLACK = timedelta(days=1)


def legs_of(user_ids: Sequence[int], extensions: Sequence[str], since: datetime | None,
            until: datetime | None) -> ColumnElement[bool]:
    """Calls with a leg of these people that started around ``[since, until)``.

    The same calls as :func:`took_part` within that period, found from the people's
    side: a manager's week is a few hundred legs, not the week's calls of everyone.
    """
    window: list[ColumnElement[bool]] = []
    if since is not None:
        window.append(CallLeg.started_at >= ensure_utc(since) - LEG_SLACK)
    if until is not None:
        window.append(CallLeg.started_at < ensure_utc(until) + LEG_SLACK)
    by_user = select(CallLeg.call_id).where(CallLeg.user_id.in_(list(user_ids)), *window)
    if not extensions:
        return Call.id.in_(by_user)
    by_extension = select(CallLeg.call_id).where(CallLeg.extension.in_(list(extensions)),
                                                 *window)
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


async def filter_clauses(session: AsyncSession, f: CallLogFilter) -> list[ColumnElement[bool]]:
    """The WHERE clauses of ``f`` (resolving managers' extensions and the team's people)."""
    clauses: list[ColumnElement[bool]] = []
    if f.since is not None:
        clauses.append(Call.started_at >= ensure_utc(f.since))
    if f.until is not None:
        clauses.append(Call.started_at < ensure_utc(f.until))
    if f.manager_ids:
        rows = await session.execute(select(User.id, User.extension)
                                     .where(User.id.in_(f.manager_ids)))
        people = rows.all()
        clauses.append(legs_of([i for i, _ in people], [e for _, e in people if e],
                               f.since, f.until))
    if f.team_id is not None:
        rows = await session.execute(select(User.id, User.extension)
                                     .where(User.team_id == f.team_id))
        people = rows.all()
        team = legs_of([i for i, _ in people], [e for _, e in people if e], f.since, f.until)
        queue = await session.scalar(select(Team.queue).where(Team.id == f.team_id))
        clauses.append(or_(team, Call.queue == queue) if queue else team)
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
    """SELECT calls with what the public shape needs: client, recordings, legs and users."""
    return select(Call).options(
        joinedload(Call.client),
        selectinload(Call.recordings),
        selectinload(Call.legs).joinedload(CallLeg.user),
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

    ``limit`` is clamped to ``1..MAX_PAGE``: the log is never answered unbounded.
    """
    if sort not in SORTS:
        raise DomainError("calls.bad_sort", f"sort must be one of {', '.join(SORTS)}",
                          sort=sort)
    if cursor is not None and cursor.sort != sort:
        raise DomainError("calls.bad_cursor", "the cursor belongs to another sort order")
    limit = max(1, min(limit, MAX_PAGE))
    back = cursor is not None and cursor.back
    stmt = call_query().where(scope, *await filter_clauses(session, f))
    if cursor is not None:
        stmt = stmt.where(_after(cursor))
    stmt = stmt.order_by(*_order(sort, back)).limit(limit + 1)
    rows = list((await session.scalars(stmt)).unique())
    more = len(rows) > limit
    rows = rows[:limit]
    if back:
        rows.reverse()
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
