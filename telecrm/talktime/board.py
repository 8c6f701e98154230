"""Talk time for the fixed ``/api/talktime`` route, the Today bar and the Team page,
and the end-of-day job that ``telecrm serve`` runs (``daily_close_ctx``).

A thin adapter: the counting rules live in :mod:`crm_core.talktime`; this keeps
the signature the older pages call with (a day given by its local bounds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.clock import local_now, local_today
from crm_core.people.models import Role, User
from crm_core.talktime.metric import Rules, close_day, day_report
from crm_core.timestamps import utcnow
from telecrm.web.keys import SETTINGS, WRITER_SESSIONS

log = logging.getLogger(__name__)


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
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
