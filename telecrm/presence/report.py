"""Time in each presence state per manager and day, beside his talk time.

Presence is counted within the working hours of his talk-time rules (the same hours
the 150-minute projection spreads the target over), up to now for today: the night
before and after is nobody's «на месте».
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.people.models import User
from crm_core.presence.models import PresenceReason
from crm_core.presence.services import (
    PRESENT,
    PRESENT_KEY,
    current_states,
    list_reasons,
    paused_seconds,
    seconds_by_state,
)
from crm_core.talktime.metric import Rules, day_report, minute_time, projection


def working_span(row: dict[str, Any], day: date, tz: ZoneInfo, now: datetime
                 ) -> tuple[datetime, datetime]:
    """The working hours of a :func:`day_report` row, cut at ``now``."""
    begin = datetime.combine(day, minute_time(row["day_start_minute"]), tzinfo=tz)
    end = datetime.combine(day, minute_time(row["day_end_minute"]), tzinfo=tz)
    return begin, max(begin, min(end, now.astimezone(tz)))


async def add_presence(session: AsyncSession, rows: list[dict[str, Any]], day: date,
                       tz: ZoneInfo, now: datetime) -> None:
    """Add ``presence`` (state now), ``states`` (seconds per state) and ``working_seconds``.

    ``rows`` are :func:`~crm_core.talktime.metric.day_report` rows (``user_id`` and the
    working hours); the non-working days of a manager count no states at all.
    """
    spans = {row["user_id"]: working_span(row, day, tz, now) for row in rows
             if row.get("working", True)}
    seconds = await seconds_by_state(session, spans)
    states = await current_states(session, [row["user_id"] for row in rows])
    reasons = {str(r.id): r.name for r in await list_reasons(session, archived=True)}
    for row in rows:
        totals = seconds.get(row["user_id"], {})
        row["presence"] = states[row["user_id"]].as_dict()
        row["states"] = [{"state": key, "name": PRESENT if key == PRESENT_KEY
                          else reasons.get(key, key), "seconds": round(value, 1)}
                         for key, value in sorted(totals.items(),
                                                  key=lambda kv: (kv[0] != PRESENT_KEY, kv[0]))]
        row["paused_seconds"] = round(paused_seconds(totals), 1)
        row["working_seconds"] = round(totals.get(PRESENT_KEY, 0.0), 1)


def pace(row: dict[str, Any], now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """The projection toward the target of a :func:`presence_day` row, pauses left out.

    Every page that projects (the talk-time board, the Today bar, the dialer) asks here,
    so a lunch break cannot lower one figure and not another; a row without
    ``paused_seconds`` is a caller that forgot :func:`add_presence`, and fails loudly.
    """
    return projection(row["talk_seconds"], row["target_seconds"], now, tz,
                      minute_time(row["day_start_minute"]), minute_time(row["day_end_minute"]),
                      paused_seconds=row["paused_seconds"])


async def presence_day(session: AsyncSession, managers: Sequence[User], day: date,
                       tz: ZoneInfo, now: datetime, default: Rules) -> list[dict[str, Any]]:
    """Per manager: talk time of the day (as ``telecrm talktime``) and his states."""
    rows = await day_report(session, managers, day, tz, now=now, default=default)
    await add_presence(session, rows, day, tz, now)
    return rows


def reason_dict(reason: PresenceReason) -> dict[str, Any]:
    return {"id": reason.id, "name": reason.name, "pauses_queue": reason.pauses_queue,
            "archived": reason.archived_at is not None}
