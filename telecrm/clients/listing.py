"""The client list's filters, read from a query string the same way for the page and the API.

``q`` (name, INN, contact, e-mail or a phone in any written form), ``status``, ``abc``
(A, B, C, none), ``owner`` (ids, repeatable), ``team``, ``abandoned=1`` and
``stay=0..6`` / ``over_max=1`` judged on ``as_of`` (a day, today by default; the
contact-frequency and overdue reports link here with their period's last day),
``no_task=1``, ``created_to=D``, ``archived=1``, ``sort`` (name, last_contact,
status), ``cursor`` and ``limit``. Who sees which clients is
:func:`crm_core.people.access.clients_filter`'s answer, never the query's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from multidict import MultiMapping
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.clients.search import (
    OWNER,
    SORTS,
    ClientPage,
    ClientQuery,
    count_clients,
    search_clients,
)
from crm_core.clock import local_today
from crm_core.errors import DomainError, NotAllowedError
from crm_core.people import access
from crm_core.people.models import User
from crm_core.sales.attention import (
    MONTH_BUCKETS,
    abandoned_clause,
    day_end,
    no_open_task,
    over_maximum_clause,
    stay_clause,
)
from crm_core.tasks.models import Task, TaskStatus

STATUSES = ("potential", "new", "regular", "lost")
GROUPS = ("A", "B", "C", "none")
PAGE = 50


@dataclass
class Filters:
    """A parsed query string: the core query and the sales conditions."""

    query: ClientQuery
    as_of: date
    as_of_given: bool = False
    abandoned: bool = False
    no_task: bool = False
    stay: int | None = None
    over_max: bool = False
    created_to: date | None = None
    raw: dict[str, list[str]] = field(default_factory=dict)

    @property
    def narrowed(self) -> bool:
        """True when anything beyond the text narrows the list."""
        q = self.query
        return bool(q.statuses or q.abc or q.owner_ids or q.team_id or q.archived
                    or self.abandoned or self.no_task or self.stay is not None
                    or self.over_max or self.created_to)


def _bad(name: str) -> DomainError:
    return DomainError("clients.bad_filter", f"bad value of {name}", field=name)


def _day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _bad(name) from None


def _ints(values: Sequence[str], name: str) -> tuple[int, ...]:
    out = []
    for value in values:
        if not value:
            continue
        if not value.isascii() or not value.isdigit() or len(value) > 10:
            raise _bad(name)
        out.append(int(value))
    return tuple(dict.fromkeys(out))


def _flag(params: MultiMapping[str], name: str) -> bool:
    return params.get(name, "") in ("1", "on", "true", "yes")


def parse_filters(params: MultiMapping[str], tz: ZoneInfo) -> Filters:
    """The filters of a query string; a value that makes no sense is ``clients.bad_filter``."""
    statuses = tuple(v for v in params.getall("status", []) if v)
    if any(s not in STATUSES for s in statuses):
        raise _bad("status")
    groups = tuple(v for v in params.getall("abc", []) if v)
    if any(g not in GROUPS for g in groups):
        raise _bad("abc")
    sort = params.get("sort") or "name"
    if sort not in SORTS:
        raise _bad("sort")
    team = _ints([params.get("team", "")], "team")
    limit = _ints([params.get("limit", "")], "limit")
    stay = params.get("stay", "")
    if stay and (not stay.isdigit() or int(stay) >= MONTH_BUCKETS):
        raise _bad("stay")
    as_of_raw = params.get("as_of", "")
    created_raw = params.get("created_to", "")
    created_to = _day(created_raw, "created_to") if created_raw else None
    query = ClientQuery(
        text=params.get("q", "")[:200], statuses=statuses, abc=groups,
        owner_ids=_ints(params.getall("owner", []), "owner"),
        team_id=team[0] if team else None,
        created_before=day_end(created_to, tz) if created_to else None,
        archived=_flag(params, "archived"), sort=sort, cursor=params.get("cursor") or None,
        limit=min(limit[0], 200) if limit else PAGE)
    return Filters(
        query=query, as_of=_day(as_of_raw, "as_of") if as_of_raw else local_today(tz),
        as_of_given=bool(as_of_raw), abandoned=_flag(params, "abandoned"),
        no_task=_flag(params, "no_task"), stay=int(stay) if stay else None,
        over_max=_flag(params, "over_max"), created_to=created_to,
        raw={k: params.getall(k) for k in set(params.keys())})


async def sales_clauses(session: AsyncSession, filters: Filters, tz: ZoneInfo
                        ) -> list[ColumnElement[bool]]:
    """The conditions of the sales rules the filters ask for."""
    extra: list[ColumnElement[bool]] = []
    if filters.abandoned:
        extra.append(await abandoned_clause(session, filters.as_of, tz, OWNER.team_id))
    if filters.no_task:
        extra.append(no_open_task())
    if filters.stay is not None:
        extra.append(stay_clause(session, filters.stay, filters.as_of, tz))
    if filters.over_max:
        extra.append(await over_maximum_clause(session, filters.as_of, tz, OWNER.team_id))
    return extra


async def visible_clause(session: AsyncSession, user: User) -> ColumnElement[bool]:
    if not access.may_see_clients(user):
        raise NotAllowedError("clients.not_for_role", "your role has no access to clients")
    return await access.clients_filter(session, user)


async def find(session: AsyncSession, user: User, filters: Filters, tz: ZoneInfo, *,
               with_count: bool = False) -> tuple[ClientPage, int | None]:
    """One page of the clients ``user`` may open that match ``filters`` (and their count)."""
    visible = await visible_clause(session, user)
    extra = await sales_clauses(session, filters, tz)
    page = await search_clients(session, filters.query, visible=visible, extra=extra)
    total = None
    if with_count:
        total = await count_clients(session, filters.query, visible=visible, extra=extra)
    return page, total


async def next_tasks(session: AsyncSession, client_ids: Sequence[int]) -> dict[int, datetime]:
    """The earliest open task's due time per client (one query for a page)."""
    if not client_ids:
        return {}
    rows = await session.execute(
        select(Task.client_id, func.min(Task.due_at))
        .where(Task.client_id.in_(list(client_ids)), Task.status == TaskStatus.OPEN.value)
        .group_by(Task.client_id))
    out: dict[int, datetime] = {}
    for cid, due in rows:
        if due is None:
            continue
        if isinstance(due, str):  # SQLite's min() of a timestamp comes back as text
            due = datetime.fromisoformat(due)
        out[cid] = due if due.tzinfo else due.replace(tzinfo=ZoneInfo("UTC"))
    return out


def query_string(raw: dict[str, list[str]], **changes: Any) -> str:
    """The filters' query string with some parameters replaced (None drops one)."""
    from urllib.parse import urlencode

    params = {k: v for k, v in raw.items() if k not in changes}
    for key, value in changes.items():
        if value is not None:
            params[key] = [str(value)]
    return urlencode([(k, v) for k, values in sorted(params.items()) for v in values])
