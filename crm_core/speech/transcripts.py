"""Services of the speech feature: transcripts and KKP results, written once per call.

A transcription job may run twice (a crashed worker's job is claimed by another),
so every write is an upsert keyed by the call: a second run changes nothing that a
reader could tell apart from the first.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import Call, Recording
from crm_core.integrations.outbox import queue_event
from crm_core.recordings.models import CallAudio
from crm_core.speech.alerts import record_alerts
from crm_core.speech.models import KkpResult, Transcript
from crm_core.speech.search import index_transcript


def _insert(session: AsyncSession, model: type[Any]) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (both backends support it)."""
    dialect = session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(model)


async def save_transcript(session: AsyncSession, call_id: int,
                          transcript: dict[str, Any]) -> Transcript:
    """Store the call's transcript, replacing a previous one, its phrases in the search
    index, and the alerts its phrases raise (each rule once per call), in one transaction
    (not committed): an alert is never lost nor recorded for a transcript that was not."""
    values = {"model": str(transcript.get("model") or ""),
              "duration": float(transcript.get("duration") or 0.0), "data": transcript}
    stmt = _insert(session, Transcript).values(call_id=call_id, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["call_id"], set_=values))
    await index_transcript(session, call_id, transcript)
    await record_alerts(session, call_id)
    row = await session.scalar(select(Transcript).where(Transcript.call_id == call_id)
                               .execution_options(populate_existing=True))
    assert row is not None
    return row


async def get_transcript(session: AsyncSession, call_id: int) -> Transcript | None:
    """The call's transcript, if it has been made."""
    return await session.scalar(select(Transcript).where(Transcript.call_id == call_id))


def needs_review(result: dict[str, Any]) -> bool:
    """Whether a person must look at the result before it may count against anyone."""
    return any(v.get("needs_review") for v in result.get("violations") or [])


async def save_kkp_result(session: AsyncSession, call_id: int, script_name: str,
                          script_version: str, result: dict[str, Any], *,
                          script_id: int | None = None) -> KkpResult:
    """Store the call's result for this script version, replacing a previous one."""
    values = {"script_name": script_name, "score": int(result.get("score") or 0),
              "result": result, "needs_review": needs_review(result), "script_id": script_id}
    stmt = _insert(session, KkpResult).values(call_id=call_id, script_version=script_version,
                                              **values)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=["call_id", "script_version"], set_=values))
    row = await session.scalar(
        select(KkpResult).where(KkpResult.call_id == call_id,
                                KkpResult.script_version == script_version)
        .execution_options(populate_existing=True))
    assert row is not None
    # other systems hear it (webhooks), once per call and script version
    await queue_event(session, "kkp.result",
                      {"call_id": call_id, "result_id": row.id, "script": script_name,
                       "script_version": script_version, "score": row.score,
                       "needs_review": row.needs_review, "result": result},
                      key=f"{call_id}:{script_version}")
    return row


async def calls_without_transcript(session: AsyncSession, limit: int = 1000) -> list[int]:
    """Ended calls with recordings and no transcript yet, oldest first (the worker's scan).

    Scanning rather than listening for "call ended" means a restart never loses a job.
    """
    stmt = (select(Call.id)
            .where(Call.ended_at.is_not(None),
                   exists().where(Recording.call_id == Call.id),
                   ~exists().where(Transcript.call_id == Call.id))
            .order_by(Call.id).limit(limit))
    return list(await session.scalars(stmt))


async def recording_paths(session: AsyncSession, call_id: int) -> list[str]:
    """The call's recording files, relative to the recordings root, in order."""
    stmt = (select(Recording.path).where(Recording.call_id == call_id)
            .order_by(Recording.position, Recording.id))
    return list(await session.scalars(stmt))


async def stored_audio(session: AsyncSession, call_id: int) -> dict[str, Any] | None:
    """The call's finalized recording as the recordings feature stored it, if any.

    ``sides`` names the channels left to right; ``direction`` tells who a caller was.
    """
    audio = await session.scalar(select(CallAudio).where(CallAudio.call_id == call_id))
    if audio is None:
        return None
    direction = await session.scalar(select(Call.direction).where(Call.id == call_id))
    return {"status": audio.status, "key": audio.key, "channels": audio.channels or 0,
            "sides": list((audio.activity or {}).keys()), "direction": direction or ""}


async def audio_seconds(session: AsyncSession, call_ids: list[int]) -> dict[int, float]:
    """Audio length per call (the stored file's, else the talk time): for progress and ETA."""
    out: dict[int, float] = {}
    for start in range(0, len(call_ids), 500):
        chunk = call_ids[start:start + 500]
        rows = await session.execute(
            select(Call.id, Call.talk_seconds, CallAudio.duration_seconds)
            .outerjoin(CallAudio, CallAudio.call_id == Call.id).where(Call.id.in_(chunk)))
        for call_id, talk, stored in rows:
            out[call_id] = float(stored or talk or 0.0)
    return out
