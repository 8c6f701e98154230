"""Speech storage on SQLite and PostgreSQL: writes keyed by the call are idempotent."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import Call, Recording
from crm_core.speech.models import KkpResult, Transcript
from crm_core.speech.transcripts import (
    calls_without_transcript,
    recording_paths,
    save_kkp_result,
    save_transcript,
)
from tests.support.db_fixtures import (  # noqa: F401
    db_session_fixture,
    db_url_fixture,
)

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TRANSCRIPT = {"duration": 63.1, "model": "vosk-model-small-ru-0.22",
              "speakers": {"manager": [{"word": "добрый", "start": 0.42, "end": 0.71,
                                        "conf": 0.98}], "client": []}}
RESULT = {"score": 50, "stages": [],
          "violations": [{"kind": "missing_stage", "id": "needs", "evidence": [],
                          "needs_review": True}]}


async def add_call(session: AsyncSession, linkedid: str, paths: Sequence[str] = (),
                   *, ended: bool = True) -> int:
    """An answered call with recording files (relative to the recordings root)."""
    call = Call(linkedid=linkedid, direction="inbound", status="answered", started_at=T0,
                ended_at=T0 + timedelta(seconds=60) if ended else None, managers=["101"])
    call.recordings = [Recording(path=p, position=i) for i, p in enumerate(paths)]
    session.add(call)
    await session.commit()
    return call.id


async def rows(session: AsyncSession, model: type[Transcript] | type[KkpResult]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_transcript_is_written_once_per_call(db_session: AsyncSession) -> None:
    call_id = await add_call(db_session, "1.1", ["a-manager.wav"])
    first = await save_transcript(db_session, call_id, TRANSCRIPT)
    await db_session.commit()
    again = await save_transcript(db_session, call_id, {**TRANSCRIPT, "duration": 64.0})
    await db_session.commit()
    assert again.id == first.id and again.created_at == first.created_at
    assert again.duration == 64.0 and again.model == "vosk-model-small-ru-0.22"
    assert again.data["speakers"]["manager"][0]["word"] == "добрый"
    assert await rows(db_session, Transcript) == 1


async def test_kkp_result_is_unique_per_call_and_script_version(
        db_session: AsyncSession) -> None:
    call_id = await add_call(db_session, "1.2", ["a-manager.wav"])
    first = await save_kkp_result(db_session, call_id, "Холодный звонок", "v1", RESULT)
    await save_kkp_result(db_session, call_id, "Холодный звонок", "v1", RESULT)
    await db_session.commit()
    assert first.needs_review is True and first.score == 50
    assert await rows(db_session, KkpResult) == 1
    clean = {**RESULT, "score": 100, "violations": []}
    second = await save_kkp_result(db_session, call_id, "Холодный звонок", "v2", clean)
    await db_session.commit()
    assert second.id != first.id and second.needs_review is False
    assert await rows(db_session, KkpResult) == 2


async def test_calls_without_transcript(db_session: AsyncSession) -> None:
    done = await add_call(db_session, "2.1", ["x-manager.wav"])
    todo = await add_call(db_session, "2.2", ["y-client.wav", "y-manager.wav"])
    await add_call(db_session, "2.3", [])  # nothing to transcribe
    await add_call(db_session, "2.4", ["z-manager.wav"], ended=False)  # still talking
    await save_transcript(db_session, done, TRANSCRIPT)
    await db_session.commit()
    assert await calls_without_transcript(db_session) == [todo]
    assert await recording_paths(db_session, todo) == ["y-client.wav", "y-manager.wav"]
