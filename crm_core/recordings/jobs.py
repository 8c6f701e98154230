"""Services of the recordings feature: finalize jobs, their outcome, retention policies.

Pure database work; the audio and the files are :mod:`recordings`' business.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.calls.models import Call, Recording
from crm_core.errors import DomainError
from crm_core.people.models import User
from crm_core.recordings.models import AudioStatus, CallAudio, RetentionPolicy


async def create_missing_jobs(session: AsyncSession) -> int:
    """A pending job for every ended call with recordings and no job yet (the durable hook).

    Scanning rather than listening for "call ended" means a crash or restart never
    loses a recording: whatever was not finalized is found again.
    """
    stmt = select(Call.id).where(
        Call.ended_at.is_not(None),
        exists().where(Recording.call_id == Call.id),
        ~exists().where(CallAudio.call_id == Call.id),
    )
    ids = list(await session.scalars(stmt))
    for call_id in ids:
        session.add(CallAudio(call_id=call_id, status=AudioStatus.PENDING.value))
    await session.commit()
    return len(ids)


async def due_jobs(session: AsyncSession, now: datetime, limit: int = 1000) -> list[int]:
    """Call ids whose pending job may run now (never tried, or its back-off has passed)."""
    stmt = (select(CallAudio.call_id)
            .where(CallAudio.status == AudioStatus.PENDING.value,
                   (CallAudio.next_attempt_at.is_(None)) | (CallAudio.next_attempt_at <= now))
            .order_by(CallAudio.id).limit(limit))
    return list(await session.scalars(stmt))


async def load_job(session: AsyncSession, call_id: int) -> tuple[Call, CallAudio] | None:
    """The call (recordings loaded) and its job, created when missing."""
    call = await session.scalar(select(Call).where(Call.id == call_id)
                                .options(selectinload(Call.recordings),
                                         selectinload(Call.legs)))
    if call is None:
        return None
    audio = await session.scalar(select(CallAudio).where(CallAudio.call_id == call_id))
    if audio is None:
        audio = CallAudio(call_id=call_id, status=AudioStatus.PENDING.value, attempts=0)
        session.add(audio)
        await session.flush()
    return call, audio


async def manager_of(session: AsyncSession, call: Call) -> tuple[str | None, int | None]:
    """(extension, team id) of the call's first manager: the folder and the retention."""
    if not call.managers:
        return None, None
    ext = call.managers[0]
    team_id = await session.scalar(select(User.team_id).where(User.extension == ext))
    return ext, team_id


def schedule_retry(audio: CallAudio, error: str, now: datetime, *, max_attempts: int,
                   base_seconds: float) -> None:
    """Count a failed attempt: back off, or give up and mark the call for a supervisor."""
    audio.attempts = (audio.attempts or 0) + 1
    audio.error = error[:2000]
    if audio.attempts >= max_attempts:
        audio.status = AudioStatus.FAILED.value
        audio.next_attempt_at = None
    else:
        audio.next_attempt_at = now + timedelta(seconds=base_seconds * 2 ** (audio.attempts - 1))


async def retry_failed(session: AsyncSession, call_id: int | None = None) -> int:
    """Put failed jobs back in the queue (a supervisor fixed the cause)."""
    stmt = select(CallAudio).where(CallAudio.status == AudioStatus.FAILED.value)
    if call_id is not None:
        stmt = stmt.where(CallAudio.call_id == call_id)
    rows = list(await session.scalars(stmt))
    for audio in rows:
        audio.status, audio.attempts, audio.next_attempt_at = AudioStatus.PENDING.value, 0, None
    await session.commit()
    return len(rows)


async def audio_of(session: AsyncSession, call_id: int) -> CallAudio | None:
    return await session.scalar(select(CallAudio).where(CallAudio.call_id == call_id))


async def retention_days(session: AsyncSession) -> dict[int, int]:
    """Team id -> days, for teams with their own policy."""
    rows = await session.execute(select(RetentionPolicy.team_id, RetentionPolicy.days))
    return {team_id: days for team_id, days in rows}


async def set_retention(session: AsyncSession, team_id: int, days: int, *,
                        actor: str = "system") -> None:
    """A team's retention policy (audited); recordings older than ``days`` are removed."""
    if days < 1:
        raise DomainError("recordings.retention_too_short", "retention must be at least one day")
    policy = await session.scalar(select(RetentionPolicy).where(RetentionPolicy.team_id == team_id))
    old = None if policy is None else policy.days
    if policy is None:
        policy = RetentionPolicy(team_id=team_id, days=days)
        session.add(policy)
    else:
        policy.days = days
    await session.flush()
    changes: dict[str, list[int | None]] = {"days": [old, days]}
    if old is None:
        changes["team_id"] = [None, team_id]
    write_audit(session, actor=actor, entity="recording_retention", entity_id=policy.id,
                action=ACTION_CREATE if old is None else ACTION_UPDATE, changes=changes)
    await session.commit()


async def stored_before(session: AsyncSession, cutoff: datetime,
                        team_id: int | None) -> list[CallAudio]:
    stmt = select(CallAudio).where(CallAudio.status == AudioStatus.STORED.value,
                                   CallAudio.finalized_at < cutoff)
    stmt = stmt.where(CallAudio.team_id.is_(None) if team_id is None
                      else CallAudio.team_id == team_id)
    return list(await session.scalars(stmt))


async def status_counts(session: AsyncSession) -> dict[str, int]:
    """How many recorded, ended calls are in each state; "waiting" when no job exists yet."""
    rows = await session.execute(select(CallAudio.status, func.count()).group_by(CallAudio.status))
    counts = {status: n for status, n in rows}
    waiting = await session.scalar(select(func.count(Call.id)).where(
        Call.ended_at.is_not(None), exists().where(Recording.call_id == Call.id),
        ~exists().where(CallAudio.call_id == Call.id)))
    if waiting:
        counts["waiting"] = waiting
    return counts


async def problems(session: AsyncSession, team_id: int | None = None,
                   limit: int = 200) -> list[tuple[CallAudio, Call]]:
    """Recordings that failed (originals kept on the PBX), newest first: what a supervisor
    must look at. ``team_id`` limits them to one team's calls."""
    stmt = (select(CallAudio, Call).join(Call, Call.id == CallAudio.call_id)
            .where(CallAudio.status == AudioStatus.FAILED.value)
            .order_by(Call.started_at.desc()).limit(limit))
    if team_id is not None:
        stmt = stmt.where(CallAudio.team_id == team_id)
    return [(audio, call) for audio, call in (await session.execute(stmt)).all()]
