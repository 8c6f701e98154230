"""The missed-calls report: per manager and per queue, how many were missed and how fast
they were returned (within 5/15/60 minutes, the median, never).

A call counts once in the total, and in its manager's row (the owner the callback
task went to) and its queue's row. A manager sees his own row, a supervisor his team's
managers and queue, an admin (and the command line) everyone.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import Call
from crm_core.errors import NotAllowedError
from crm_core.missed.services import callback_seconds, callbacks_for, missed_filter
from crm_core.people.models import Role, Team, User
from crm_core.tasks.models import Task, TaskKind

FIGURES = ("missed", "called_back_5m", "called_back_15m", "called_back_60m",
           "never_called_back", "median_callback_seconds")
LIMIT_CALLS = 100_000


@dataclass
class _Tally:
    delays: list[float] = field(default_factory=list)
    missed: int = 0

    def add(self, delay: float | None) -> None:
        self.missed += 1
        if delay is not None:
            self.delays.append(delay)

    def figures(self) -> dict[str, Any]:
        return {
            "missed": self.missed,
            "called_back_5m": sum(1 for d in self.delays if d <= 300),
            "called_back_15m": sum(1 for d in self.delays if d <= 900),
            "called_back_60m": sum(1 for d in self.delays if d <= 3600),
            "never_called_back": self.missed - len(self.delays),
            "median_callback_seconds": (round(statistics.median(self.delays), 1)
                                        if self.delays else None),
        }


def manager_key(user: User) -> str:
    """How a manager is named in the report's JSON: his extension (as in the call JSON)."""
    return user.extension or user.username


@dataclass
class MissedReport:
    """The JSON body, and the managers' full names by key for the page."""

    body: dict[str, Any]
    names: dict[str, str]


async def missed_report(session: AsyncSession, start: datetime, end: datetime,
                        viewer: User | None) -> MissedReport:
    """Missed calls started in ``[start, end)``, as ``viewer`` may see them (None: all)."""
    if viewer is not None and viewer.role == Role.MARKETER:
        raise NotAllowedError("missed.report_not_allowed", "marketers do not see missed calls")
    stmt = (select(Call, Task.assignee_id)
            .outerjoin(Task, (Task.call_id == Call.id) & (Task.kind == TaskKind.CALLBACK.value))
            .where(missed_filter(), Call.started_at >= start, Call.started_at < end)
            .order_by(Call.started_at, Call.id).limit(LIMIT_CALLS))
    rows: Sequence[tuple[Call, int | None]] = [(row[0], row[1])
                                               for row in await session.execute(stmt)]
    owner_ids = {owner for _, owner in rows if owner is not None}
    users = ({u.id: u for u in await session.scalars(select(User).where(User.id.in_(owner_ids)))}
             if owner_ids else {})
    queue_scope: str | None = None
    if viewer is None or viewer.role == Role.ADMIN:
        def visible(call: Call, owner: User | None) -> tuple[bool, bool]:
            return True, True
    elif viewer.role == Role.SUPERVISOR:
        if viewer.team_id is not None:
            queue_scope = await session.scalar(select(Team.queue)
                                               .where(Team.id == viewer.team_id))

        def visible(call: Call, owner: User | None) -> tuple[bool, bool]:
            mine = owner is not None and owner.team_id == viewer.team_id \
                and viewer.team_id is not None
            return mine, bool(queue_scope) and call.queue == queue_scope
    else:
        def visible(call: Call, owner: User | None) -> tuple[bool, bool]:
            return owner is not None and owner.id == viewer.id, False

    chosen: list[tuple[Call, User | None, bool, bool]] = []
    for call, owner_id in rows:
        owner = users.get(owner_id) if owner_id is not None else None
        by_owner, by_queue = visible(call, owner)
        if by_owner or by_queue:
            chosen.append((call, owner, by_owner, by_queue))
    returned = await callbacks_for(session, [call for call, *_ in chosen])
    managers: dict[str, _Tally] = {}
    queues: dict[str, _Tally] = {}
    total = _Tally()
    names: dict[str, str] = {}
    for call, owner, by_owner, by_queue in chosen:
        back = returned.get(call.id)
        delay = callback_seconds(call, back) if back is not None else None
        total.add(delay)
        if by_owner and owner is not None:
            key = manager_key(owner)
            names[key] = owner.name
            managers.setdefault(key, _Tally()).add(delay)
        if by_queue and call.queue:
            queues.setdefault(call.queue, _Tally()).add(delay)
    out = [{"manager": key, **managers[key].figures()} for key in sorted(managers)]
    out += [{"queue": key, **queues[key].figures()} for key in sorted(queues)]
    return MissedReport({"rows": out, "total": total.figures()}, names)
