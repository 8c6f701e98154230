"""The nightly status run inside ``telecrm serve`` (``sales_nightly_ctx``).

Time alone turns a *new* client *regular* and a silent one *lost*, so the rules are
applied to every client at start-up and shortly after each local midnight. The run
is idempotent: a second one on the same day changes nothing. At night it also refills the
contact-frequency report's rollup (``crm_core.sales.rollup``) for the last
``ROLLUP_DAYS`` finished days and the summary's kept verdicts of yesterday and each
month's last day (``crm_core.sales.status_days``): triggers drop what a late write
touches, and a report works out what is missing from the calls and payments until then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.clock import local_now, local_today
from crm_core.sales.client_status import recompute_all
from crm_core.sales.rollup import refresh_days
from crm_core.sales.status_days import (
    days_to_keep,
    forget_other_days,
    refresh_statuses,
    whole_days,
)
from crm_core.stopping import stop_tasks
from telecrm.web.keys import SETTINGS, WRITER_SESSIONS

log = logging.getLogger(__name__)
RUN_AT = time(0, 10)  # after the talk-time day close (00:05), before anyone starts work
ROLLUP_DAYS = 62  # finished days refilled each night: this month and the previous one


async def run_once(sessions: async_sessionmaker[AsyncSession], tz_name: str, *,
                   rollup: bool = True) -> dict[str, int]:
    async with sessions() as session, session.begin():
        counts = await recompute_all(session, actor="nightly", tz_name=tz_name)
    log.info("client statuses judged: %s", counts)
    if rollup:
        await refill_rollup(sessions, ZoneInfo(tz_name))
    return counts


async def refill_rollup(sessions: async_sessionmaker[AsyncSession], tz: ZoneInfo) -> None:
    """The last ``ROLLUP_DAYS`` finished days of the contact-frequency rollup, recounted."""
    today = local_today(tz)
    stored = 0
    # a day a transaction, with a pause between: a writer holds the database (SQLite's
    # one write lock) for one day's count, and the listener's and pages' writes, which
    # wait for the lock by polling, get their turn between two days
    for back in range(ROLLUP_DAYS, 0, -1):
        async with sessions() as session, session.begin():
            day = today - timedelta(days=back)
            stored += await refresh_days(session, day, day, tz)
        await asyncio.sleep(0.05)
    log.info("contact-frequency rollup: %d owner-days stored", stored)
    await refill_statuses(sessions, tz)


async def refill_statuses(sessions: async_sessionmaker[AsyncSession], tz: ZoneInfo) -> None:
    """The summary's kept verdicts (``crm_core.sales.status_days``): yesterday and every
    month's last day, judged again where a late write or a change of rules left a day
    short, one day a transaction; older days dropped."""
    keep = days_to_keep(local_today(tz))
    async with sessions() as session, session.begin():
        await forget_other_days(session, keep, tz)
        whole = await whole_days(session, keep, tz)
    stored = 0
    for day in (d for d in keep if d not in whole):
        async with sessions() as session, session.begin():
            stored += await refresh_statuses(session, [day], tz)
        await asyncio.sleep(0.05)
    log.info("client status days: %d verdicts stored for %d days", stored, len(keep))


async def sales_nightly_ctx(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx`` for the app: judge client statuses at start-up and every night."""
    tz_name = app[SETTINGS].timezone
    tz = ZoneInfo(tz_name)

    async def loop() -> None:
        # at start-up only the statuses: the rollup is refilled at night (a report counts
        # a day missing from it from the calls), not at every deploy beside live calls
        rollup = False
        while True:
            try:
                await run_once(app[WRITER_SESSIONS], tz_name, rollup=rollup)
            except Exception:  # a database outage must not end the job
                log.exception("nightly client status run failed; retrying later")
            rollup = True
            tomorrow = datetime.combine(local_today(tz) + timedelta(days=1), RUN_AT,
                                        tzinfo=tz)
            await asyncio.sleep(max(60.0, (tomorrow - local_now(tz)).total_seconds()))

    task = asyncio.create_task(loop(), name="sales-nightly")
    yield
    await stop_tasks(task)
