"""Working hours from the talk-time calendar: when a deadline set by a rule may fall.

A task a rule makes "in N days" (a deal entering a stage) must not land at 23:33 on a
Saturday, when nobody reads it. The calendar the head of sales keeps for the 150-minute
rule already says which weekdays are worked, the day's hours and the holidays (the
company's and each team's); a deadline outside them moves to the next working time.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.talktime.metric import load_calendar
from crm_core.talktime.models import Holiday
from crm_core.timestamps import ensure_utc

LOOKAHEAD_DAYS = 60  # no working day in two months: the calendar is wrong, keep the moment


def _at(day: date, minute: int, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz) + timedelta(minutes=minute)


async def next_working_moment(session: AsyncSession, moment: datetime, *,
                              team_id: int | None, tz_name: str) -> datetime:
    """``moment`` when it is inside the working hours of a working day of ``team_id``;
    otherwise the next working day at the same time of day if that is inside its hours,
    else at the start of its hours (Saturday 23:33 → Monday 09:00; Saturday 14:00 →
    Monday 14:00; Tuesday 03:00 → Tuesday 09:00). Returns UTC."""
    tz = ZoneInfo(tz_name)
    local = ensure_utc(moment).astimezone(tz)
    first = local.date()
    last = first + timedelta(days=LOOKAHEAD_DAYS)
    calendar = await load_calendar(session, [], first, last)
    teams = [Holiday.team_id.is_(None)] + ([Holiday.team_id == team_id] if team_id else [])
    holidays = set(await session.scalars(select(Holiday.day).where(
        Holiday.day >= first, Holiday.day <= last, Holiday.archived_at.is_(None), or_(*teams))))
    for offset in range(LOOKAHEAD_DAYS + 1):
        day = first + timedelta(days=offset)
        rules = calendar.rules(team_id, day)
        if day in holidays or str(day.isoweekday()) not in rules.working_weekdays:
            continue
        start = _at(day, rules.day_start_minute, tz)
        end = _at(day, rules.day_end_minute, tz)
        candidate = local if offset == 0 else datetime.combine(day, local.timetz())
        if candidate < start:
            return ensure_utc(start)
        if candidate < end:
            return ensure_utc(candidate)
        if offset > 0:
            return ensure_utc(start)
    return ensure_utc(moment)
