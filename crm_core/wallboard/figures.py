"""A queue's day so far, from the stored calls: answered, abandoned, service level, wait.

Counted over the inbound calls that went through the queue, began on the local day
and have ended (a caller still waiting is the live part's, :mod:`.live`):

- *answered*: a manager talked with the caller; *abandoned*: nobody did (he hung up,
  or the queue gave up on him);
- *service level*: the share of all those calls answered within the threshold (20 s
  by default), in percent: abandoned calls count against it, as in Asterisk's
  ``ServicelevelPerf2``; None on a day without calls;
- *average wait*: how long callers waited on average, answered or not (the call's
  ``ring_seconds``: from reaching the PBX to the answer, or to hanging up).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import Call, CallStatus, Direction

DEFAULT_SERVICE_LEVEL_SECONDS = 20


@dataclass(frozen=True, slots=True)
class QueueDay:
    """One queue's figures for a day so far."""

    queue: str
    answered: int = 0
    abandoned: int = 0
    answered_within: int = 0  # answered within the service-level threshold
    wait_seconds: float = 0.0  # the sum over answered and abandoned calls

    @property
    def offered(self) -> int:
        return self.answered + self.abandoned

    @property
    def service_level(self) -> float | None:
        """Percent of the calls answered within the threshold; None without calls."""
        return round(100.0 * self.answered_within / self.offered, 1) if self.offered else None

    @property
    def average_wait_seconds(self) -> float | None:
        return round(self.wait_seconds / self.offered, 1) if self.offered else None


def local_day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The local day as a half-open UTC interval (a DST day stays whole)."""
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


async def queue_days(session: AsyncSession, queues: Sequence[str], day: date, tz: ZoneInfo, *,
                     threshold_seconds: float = DEFAULT_SERVICE_LEVEL_SECONDS,
                     ) -> dict[str, QueueDay]:
    """Figures per queue for the local ``day``; every queue asked for has an entry."""
    out = {queue: QueueDay(queue) for queue in queues}
    if not out:
        return out
    start, end = local_day_bounds(day, tz)
    answered = Call.answered_at.is_not(None)
    stmt = (
        select(Call.queue,
               func.sum(case((answered, 1), else_=0)),
               func.sum(case((answered, 0), else_=1)),
               func.sum(case((answered & (Call.ring_seconds <= threshold_seconds), 1),
                             else_=0)),
               func.sum(Call.ring_seconds))
        .where(Call.queue.in_(list(out)), Call.direction == Direction.INBOUND.value,
               Call.status != CallStatus.IN_PROGRESS.value,
               Call.started_at >= start, Call.started_at < end)
        .group_by(Call.queue)
    )
    for queue, n_answered, n_abandoned, within, wait in await session.execute(stmt):
        out[queue] = QueueDay(queue, answered=int(n_answered or 0),
                              abandoned=int(n_abandoned or 0),
                              answered_within=int(within or 0),
                              wait_seconds=float(wait or 0.0))
    return out
