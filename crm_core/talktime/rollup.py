"""The per-day rollup of talk time (``talktime_daily``): finished days counted once.

The month table of a large floor would otherwise re-read every leg of the month
on each view. A (manager, day) is stored only once the day is over and no leg of
it is still open; triggers in the database drop the rows a later write could
change (see migration 0009), so a stored figure is always the one a recount
would give. Rows are keyed by the time zone and the minimum call length they were
counted with, so a settings change simply misses the old rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.talktime.models import TalkTimeDaily
from crm_core.timestamps import utcnow

Key = tuple[int, date, int]  # (user id, day, minimum call seconds)


async def read_rollup(session: AsyncSession, user_ids: Sequence[int], first: date, last: date,
                      tz: str) -> dict[Key, tuple[float, int]]:
    """Stored ``(talk_seconds, calls)`` of the managers' days, by (user, day, min length)."""
    if not user_ids:
        return {}
    rows = await session.execute(
        select(TalkTimeDaily.user_id, TalkTimeDaily.day, TalkTimeDaily.min_call_seconds,
               TalkTimeDaily.talk_seconds, TalkTimeDaily.calls)
        .where(TalkTimeDaily.user_id.in_(list(user_ids)), TalkTimeDaily.day >= first,
               TalkTimeDaily.day <= last, TalkTimeDaily.tz == tz))
    return {(uid, day, m): (seconds, calls) for uid, day, m, seconds, calls in rows}


async def write_rollup(session: AsyncSession, user_ids: Sequence[int], first: date, last: date,
                       tz: str, rows: Iterable[tuple[Key, float, int]]) -> int:
    """Replace the stored days of ``user_ids`` from ``first`` to ``last`` with ``rows``."""
    await session.execute(delete(TalkTimeDaily).where(
        TalkTimeDaily.user_id.in_(list(user_ids)), TalkTimeDaily.day >= first,
        TalkTimeDaily.day <= last, TalkTimeDaily.tz == tz))
    now = utcnow()
    values = [{"user_id": uid, "day": day, "tz": tz, "min_call_seconds": m,
               "talk_seconds": seconds, "calls": calls, "computed_at": now}
              for (uid, day, m), seconds, calls in rows]
    if values:
        await session.execute(insert(TalkTimeDaily), values)
    return len(values)
