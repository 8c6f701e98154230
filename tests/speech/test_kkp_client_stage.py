"""A call is checked against the script of its client's deal stage at the call's start.

Russian transcripts from tests/kkp_cases go through the speech worker (its transcript
already stored, so no audio is needed): two calls of one client, before and after the
supervisor moves his deal, are judged by two different scripts, even when both are
checked after the move; a stage without a script of its own, and a call before any
deal, fall back to the script for any stage.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.calls.models import Call
from crm_core.clients.services import create_client
from crm_core.db import create_engine, session_factory
from crm_core.people.users import add_user
from crm_core.sales.deals import StageSpec, client_stage_at, create_deal, create_pipeline, move_deal
from crm_core.speech import scripts as kkp_scripts
from crm_core.speech.models import KkpResult
from crm_core.speech.transcripts import save_transcript
from crm_core.timestamps import utcnow
from speech.worker import SpeechWorker
from tests.support.db_fixtures import migrated

CASES = Path(__file__).resolve().parents[1] / "kkp_cases"
GREETING = """\
  - id: greeting
    title: Приветствие
    phrases: ["добрый день", "меня зовут", "компания"]
    min_matches: 2
"""
FIRST_CALL = "name: Первый звонок\nstages:\n" + GREETING + """\
  - id: needs
    title: Выявление потребностей
    phrases: ["какие задачи", "что для вас важно"]
"""
OFFER = "name: Презентация КП\nstages:\n" + GREETING + """\
  - id: presentation
    title: Презентация
    phrases: ["мы предлагаем", "наше решение", "коммерческое предложение"]
"""
ANY_STAGE = "name: Общий\nstages:\n" + GREETING


class _EveryWord:
    """The model's vocabulary stand-in: the transcripts here are stored, not recognised."""

    def knows(self, word: str) -> bool:
        return True


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.db'}"
    await migrated(url)
    engine = create_engine(url)
    try:
        yield session_factory(engine, writer=True)
    finally:
        await engine.dispose()


def transcript(name: str) -> dict[str, Any]:
    (path,) = CASES.glob(f"[0-9][0-9]-{name}.json")
    return json.loads(path.read_text("utf-8"))["transcript"]


async def a_call(session: AsyncSession, linkedid: str, client_id: int,
                 case: str = "missing-presentation") -> int:
    """A call of manager 101 with the client starting now, its transcript stored."""
    now = utcnow()
    call = Call(linkedid=linkedid, direction="outbound", status="answered", started_at=now,
                answered_at=now, ended_at=now + timedelta(minutes=2), managers=["101"],
                client_id=client_id)
    session.add(call)
    await session.flush()
    await save_transcript(session, call.id, transcript(case))
    await session.commit()
    return call.id


@pytest.mark.clock("2026-11-24T10:00:00+03:00")
async def test_calls_before_and_after_a_stage_change_are_checked_by_their_stage_scripts(
        sessions: async_sessionmaker[AsyncSession], tmp_path: Path,
        _clock_of_the_test: Any) -> None:
    clock = _clock_of_the_test
    async with sessions() as session:
        boss = await add_user(session, "boss", name="Мария", role="supervisor", extension="201",
                              team="Продажи")
        ivan = await add_user(session, "ivan", name="Иван", role="manager", extension="101",
                              team="Продажи")
        client = await create_client(session, "ООО Вектор", owner_id=ivan.id, actor="test")
        other = await create_client(session, "ООО Ромашка", owner_id=ivan.id, actor="test")
        pipeline = await create_pipeline(
            session, "B2B новые", [StageSpec.parse(s) for s in (
                "Квалификация:call:1", "Коммерческое предложение:call:3", "Встреча:meeting:5",
                "Выиграна:won", "Проиграна:lost")], by=boss)
        stages = {s.name: s for s in await pipeline.awaitable_attrs.stages}
        for name, text, stage in [("Общий", ANY_STAGE, None),
                                  ("Первый звонок", FIRST_CALL, stages["Квалификация"].code),
                                  ("Презентация КП", OFFER,
                                   stages["Коммерческое предложение"].code)]:
            await kkp_scripts.add_version(session, name=name, text=text, team_id=None,
                                          stage=stage, effective_from=utcnow() - timedelta(days=1),
                                          fine_amount=0, actor="test")
        await session.commit()
        calls = {"before any deal": await a_call(session, "1.1", client.id)}
        clock.shift(timedelta(hours=1))
        deal = await create_deal(session, client_id=client.id, pipeline_id=pipeline.id,
                                 title="Облачная АТС", by=ivan)
        await session.commit()
        clock.shift(timedelta(hours=1))
        calls["qualification"] = await a_call(session, "1.2", client.id)
        calls["no deal"] = await a_call(session, "1.3", other.id)
        clock.shift(timedelta(days=1))
        await move_deal(session, deal, stages["Коммерческое предложение"].id, by=boss)
        await session.commit()
        clock.shift(timedelta(hours=2))
        calls["offer"] = await a_call(session, "1.4", client.id)
        clock.shift(timedelta(days=1))
        await move_deal(session, deal, stages["Встреча"].id, by=boss)
        await session.commit()
        clock.shift(timedelta(hours=2))
        calls["meeting"] = await a_call(session, "1.5", client.id)
        # The stage history answers for any moment, the present one included.
        first_call = await session.get(Call, calls["qualification"])
        assert first_call is not None
        at_first = await client_stage_at(session, client.id, first_call.started_at)
        assert at_first is not None and at_first.name == "Квалификация"
        now_stage = await client_stage_at(session, client.id, utcnow())
        assert now_stage is not None and now_stage.name == "Встреча"

    # Every call is checked only now, after both moves: each by the stage of its start.
    worker = SpeechWorker(sessions, None, _EveryWord(), tmp_path)  # type: ignore[arg-type]
    try:
        for call_id in calls.values():
            await worker.do_call(call_id)
    finally:
        worker.close()
    async with sessions() as session:
        results = {r.call_id: r for r in await session.scalars(select(KkpResult))}
    judged = {what: results[call_id] for what, call_id in calls.items()}
    assert {what: r.script_name for what, r in judged.items()} == {
        "before any deal": "Общий", "qualification": "Первый звонок", "no deal": "Общий",
        "offer": "Презентация КП", "meeting": "Общий"}

    # The same words: fine at qualification, the presentation missing once an offer is due.
    assert judged["qualification"].score == 100
    assert judged["qualification"].result["violations"] == []
    missing = [v["id"] for v in judged["offer"].result["violations"]
               if v["kind"] == "missing_stage"]
    assert missing == ["presentation"] and judged["offer"].score < 100
