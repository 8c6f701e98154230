"""The database's side of the metrics: recordings and transcripts still to do, and failed.

Counted at scrape time (cached a few seconds by :mod:`telecrm.metrics.registry`), never
per event: a scrape every 15 s costs three indexed counts, whatever the call rate.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import Call, Recording
from crm_core.recordings.models import AudioStatus, CallAudio
from crm_core.speech.models import Transcript


@dataclass(frozen=True)
class Backlog:
    recordings_waiting: int = 0  # ended calls whose recordings are not yet stored
    recordings_failed: int = 0  # finalize gave up: a supervisor must look
    untranscribed: int = 0  # ended calls with recordings and no transcript


async def count_backlog(session: AsyncSession) -> Backlog:
    """The three counts in one round trip each."""
    recorded_and_ended = (Call.ended_at.is_not(None),
                          exists().where(Recording.call_id == Call.id))
    waiting = await session.scalar(
        select(func.count(Call.id)).outerjoin(CallAudio, CallAudio.call_id == Call.id).where(
            *recorded_and_ended,
            or_(CallAudio.id.is_(None), CallAudio.status == AudioStatus.PENDING.value)))
    failed = await session.scalar(select(func.count(CallAudio.id)).where(
        CallAudio.status == AudioStatus.FAILED.value))
    untranscribed = await session.scalar(select(func.count(Call.id)).where(
        *recorded_and_ended, ~exists().where(Transcript.call_id == Call.id)))
    return Backlog(recordings_waiting=waiting or 0, recordings_failed=failed or 0,
                   untranscribed=untranscribed or 0)
