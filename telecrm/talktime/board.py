"""Talk time for the fixed ``/api/talktime`` route, the Today bar and the Team page,
and the end-of-day job that ``telecrm serve`` runs (``daily_close_ctx``).

The Today bar (:func:`today_bar`) says the manager's talk time once, in whole
minutes: talked rounded down, left rounded up, so the two always add up to the target.

A thin adapter: the counting rules live in :mod:`crm_core.talktime`; this keeps
the signature the older pages call with (a day given by its local bounds).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.clock import local_now, local_today
from crm_core.people.models import Role, User
from crm_core.stopping import stop_tasks
from crm_core.talktime.metric import Rules, close_day, day_report, minute_time
from crm_core.timestamps import utcnow
from telecrm.presence.report import pace
from telecrm.web.keys import SETTINGS, WRITER_SESSIONS

log = logging.getLogger(__name__)

# Why a day is not judged, as the pages say it.
EXCLUDED_NAMES = {"weekend": "выходной", "holiday": "праздник", "day_off": "отгул",
                  "sick": "больничный", "vacation": "отпуск", "not_hired": "ещё не работал",
                  "first_day": "первый день", "deactivated": "учётная запись отключена",
                  "not_manager": "не менеджер"}


@dataclass(frozen=True)
class TodayBar:
    """A manager's talk time today as his Today page shows it (whole minutes)."""

    talk_minutes: int  # rounded down: what he has fully talked
    target_minutes: int
    left_minutes: int  # rounded up: talk_minutes + left_minutes == target_minutes
    progress: int  # percent of the target, at most 100
    met: bool
    calls: int
    excluded: str | None  # why today is not judged (Russian), None on a working day
    day_end: str  # "18:00"
    projected_minutes: int | None  # at the pace so far, by day end; None outside the hours
    on_track: bool


def today_bar(row: dict[str, Any], now: datetime, tz: ZoneInfo) -> TodayBar:
    """The Today bar from a :func:`~telecrm.presence.report.presence_day` row.

    The projection is :func:`~telecrm.presence.report.pace`'s, like the talk-time board's
    and the dialer's: breaks and lunch do not make him look behind. The bar shows it only
    while it can still change something (a working day, within the hours, target not met).
    """
    seconds, target = float(row["talk_seconds"]), int(row["target_seconds"])
    day = date.fromisoformat(row["date"])
    begin = datetime.combine(day, minute_time(row["day_start_minute"]), tzinfo=tz)
    end = datetime.combine(day, minute_time(row["day_end_minute"]), tzinfo=tz)
    local = now.astimezone(tz)
    projected: float | None = None
    if row["working"] and begin < local < end and seconds < target:
        projected = float(pace(row, now, tz)["projected_seconds"])
    excluded = row["excluded"]
    return TodayBar(
        talk_minutes=int(seconds // 60), target_minutes=math.ceil(target / 60),
        left_minutes=math.ceil(max(0.0, target - seconds) / 60),
        progress=min(100, int(100 * seconds / target)) if target else 100,
        met=seconds >= target, calls=int(row["calls"]),
        excluded=None if excluded is None else EXCLUDED_NAMES.get(excluded, "нерабочий день"),
        day_end=end.strftime("%H:%M"),
        projected_minutes=None if projected is None else int(projected // 60),
        on_track=projected is not None and projected >= target)


async def talk_time(session: AsyncSession, managers: Sequence[User], since: datetime,
                    until: datetime, target_seconds: int) -> list[dict[str, Any]]:
    """``extension, name, talk_seconds, calls, target_seconds, met`` per manager, by extension.

    ``since`` is the local midnight of the day (its tzinfo is the workday timezone);
    ``target_seconds`` applies where no talk-time rule has been configured.
    """
    if not managers:
        return []
    tz = since.tzinfo if isinstance(since.tzinfo, ZoneInfo) else UTC
    day = since.astimezone(tz).date()
    return await day_report(session, managers, day, tz,  # type: ignore[arg-type]
                            now=utcnow(), default=Rules(target_seconds=target_seconds))


# -- the end-of-day job inside ``telecrm serve`` ------------------------------------------

CATCH_UP_DAYS = 7  # after downtime, judge the finished days missed meanwhile


async def close_finished_days(sessions: async_sessionmaker[AsyncSession], tz: ZoneInfo,
                              today: date) -> int:
    """Close the last few finished days (idempotent: a judged day stays as it was)."""
    created = 0
    for back in range(CATCH_UP_DAYS, 0, -1):
        async with sessions() as session, session.begin():
            managers = list(await session.scalars(select(User).where(
                User.role == Role.MANAGER.value, User.active.is_(True))))
            created += len(await close_day(session, managers, today - timedelta(days=back), tz,
                                           actor="close-day"))
    return created


async def daily_close_ctx(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx`` for the app: close finished days at start-up and after each midnight."""
    tz = ZoneInfo(app[SETTINGS].timezone)

    async def loop() -> None:
        while True:
            try:
                await close_finished_days(app[WRITER_SESSIONS], tz, local_today(tz))
            except Exception:  # a database outage must not end the job
                log.exception("talk-time end-of-day job failed; retrying later")
            tomorrow = datetime.combine(local_today(tz) + timedelta(days=1),
                                        time(0, 5), tzinfo=tz)
            await asyncio.sleep(max(60.0, (tomorrow - local_now(tz)).total_seconds()))

    task = asyncio.create_task(loop(), name="talktime-close-day")
    yield
    await stop_tasks(task)
