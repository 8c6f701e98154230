"""The daily retention job: remove recordings older than their team's policy, logging each."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.recordings import jobs
from crm_core.recordings.models import AudioStatus, CallAudio
from crm_core.timestamps import utcnow

from .store import Store, StoreError

log = logging.getLogger(__name__)


async def apply_retention(sessions: async_sessionmaker[AsyncSession], store: Store,
                          default_days: int, now: datetime | None = None) -> list[str]:
    """Delete expired files (store first, then mark the row expired); returns removed keys."""
    now = now or utcnow()
    removed: list[str] = []
    async with sessions() as session:
        policies = await jobs.retention_days(session)
        groups: list[tuple[int | None, int]] = [(None, default_days)]
        groups += [(team, days) for team, days in policies.items()]
        teams_with_policy = set(policies)
        for team_id, days in groups:
            rows = await jobs.stored_before(session, now - timedelta(days=days), team_id)
            for row in rows:
                if await _expire(store, row, f"team {team_id}, {days} days"):
                    removed.append(row.key or "")
        # teams without their own policy follow the default
        for row in await _other_teams(session, now - timedelta(days=default_days),
                                      teams_with_policy):
            if await _expire(store, row, f"team {row.team_id}, default {default_days} days"):
                removed.append(row.key or "")
        await session.commit()
    log.info("retention: %d recording(s) removed", len(removed))
    return removed


async def _expire(store: Store, row: CallAudio, why: str) -> bool:
    """Delete the file, then mark the row; a store that fails keeps the row for next time."""
    if row.key:
        try:
            await asyncio.to_thread(store.delete, row.key)
        except StoreError as exc:
            log.error("retention: could not remove %s (call %s): %s; kept for the next run",
                      row.key, row.call_id, exc.strerror or exc)
            return False
        log.info("retention: removed %s (call %s, %s)", row.key, row.call_id, why)
    row.status = AudioStatus.EXPIRED.value
    return bool(row.key)


async def _other_teams(session: AsyncSession, cutoff: datetime,
                       excluded: set[int]) -> list[CallAudio]:
    stmt = select(CallAudio).where(CallAudio.status == AudioStatus.STORED.value,
                                   CallAudio.finalized_at < cutoff,
                                   CallAudio.team_id.is_not(None))
    if excluded:
        stmt = stmt.where(CallAudio.team_id.not_in(excluded))
    return list(await session.scalars(stmt))


async def daily(sessions: async_sessionmaker[AsyncSession], store: Store,
                default_days: int) -> None:
    """Run once a day for as long as the app runs."""
    while True:
        try:
            await apply_retention(sessions, store, default_days)
        except Exception:
            log.exception("retention job failed; next run in a day")
        await asyncio.sleep(86400)
