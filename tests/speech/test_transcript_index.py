"""The transcript search index on SQLite (FTS5) and PostgreSQL (tsvector): inflected forms
are found through lemmas, a rewritten transcript replaces its phrases, and migration 0024
indexes the transcripts written before it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, true
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import Call
from crm_core.db import create_engine, session_factory, upgrade
from crm_core.speech.models import TranscriptPhrase
from crm_core.speech.search import query_terms, search
from crm_core.speech.transcripts import save_transcript
from tests.support.db_fixtures import (  # noqa: F401
    db_session_fixture,
    db_url_fixture,
    empty_db_url_fixture,
)

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def words(line: str, start: float) -> list[dict[str, Any]]:
    return [{"word": w, "start": round(start + 0.4 * i, 2), "end": round(start + 0.4 * i + 0.3, 2),
             "conf": 0.95} for i, w in enumerate(line.split())]


def transcript(manager: list[tuple[str, float]], client: list[tuple[str, float]]
               ) -> dict[str, Any]:
    return {"duration": 60.0, "model": "test", "speakers": {
        "manager": [w for line, at in manager for w in words(line, at)],
        "client": [w for line, at in client for w in words(line, at)]}}


DISCOUNT = transcript(
    [("добрый день компания ромашка", 0.5), ("могу предложить вам скидки на годовой тариф", 12.0)],
    [("здравствуйте слушаю", 4.0), ("а у конкурентов дешевле", 20.0)])
PRICE = transcript([("наши цены ниже рынка", 1.0)],
                   [("мы подумаем и перезвоним", 6.0)])


async def add_call(session: AsyncSession, linkedid: str, minutes: int = 0) -> int:
    call = Call(linkedid=linkedid, direction="outbound", status="answered",
                started_at=T0 + timedelta(minutes=minutes),
                ended_at=T0 + timedelta(minutes=minutes, seconds=60), managers=["101"])
    session.add(call)
    await session.commit()
    return call.id


async def find(session: AsyncSession, query: str, **kw: Any) -> list[tuple[int, str, float]]:
    hits, _ = await search(session, query_terms(query), visible=true(), **kw)
    return [(h.call_id, h.speaker, h.start) for h in hits]


async def test_inflected_forms_find_phrases_through_lemmas(db_session: AsyncSession) -> None:
    first = await add_call(db_session, "s.1")
    second = await add_call(db_session, "s.2", minutes=5)
    await save_transcript(db_session, first, DISCOUNT)
    await save_transcript(db_session, second, PRICE)
    await db_session.commit()

    # «скидку» (accusative) finds «скидки»; «конкурент» finds «конкурентов»
    assert await find(db_session, "скидку") == [(first, "manager", 12.0)]
    assert await find(db_session, "Конкурент") == [(first, "client", 20.0)]
    # a verb in another person and tense: «подумал» finds «подумаем»
    assert await find(db_session, "подумал") == [(second, "client", 6.0)]
    # every word of the query in one phrase, in any order
    assert await find(db_session, "тариф скидка") == [(first, "manager", 12.0)]
    assert await find(db_session, "скидка перезвонить") == []
    # the speaker filter
    assert await find(db_session, "скидка", speaker="client") == []
    # words said in two phrases (here by two speakers) are not one phrase
    assert await find(db_session, "добрый здравствуйте") == []
    both = await find(db_session, "цена OR скидка")
    assert both == []  # no mini-syntax: «or» is a word like any other

    hits, _ = await search(db_session, query_terms("скидку"), visible=true())
    marked = [piece for piece, found in hits[0].fragments if found]
    assert marked == ["скидки"]


async def test_a_rewritten_transcript_replaces_its_phrases(db_session: AsyncSession) -> None:
    call_id = await add_call(db_session, "r.1")
    await save_transcript(db_session, call_id, DISCOUNT)
    await db_session.commit()
    await save_transcript(db_session, call_id, PRICE)
    await db_session.commit()
    assert await find(db_session, "скидка") == []
    assert await find(db_session, "цена") == [(call_id, "manager", 1.0)]
    count = await db_session.scalar(select(func.count()).select_from(TranscriptPhrase))
    assert count == 2


async def test_pages_follow_each_other_without_repeats(db_session: AsyncSession) -> None:
    ids = [await add_call(db_session, f"p.{i}", minutes=i) for i in range(5)]
    for call_id in ids:
        await save_transcript(db_session, call_id, DISCOUNT)
    await db_session.commit()
    seen: list[int] = []
    cursor = None
    while True:
        hits, cursor = await search(db_session, query_terms("скидок"), visible=true(),
                                    limit=2, before=cursor)
        seen += [h.call_id for h in hits]
        if cursor is None:
            break
    assert seen == ids[::-1]


async def test_the_migration_indexes_transcripts_written_before_it(empty_db_url: str) -> None:
    await upgrade(empty_db_url, "0023_routing_did_override")
    engine = create_engine(empty_db_url)
    try:
        async with engine.begin() as conn:
            for i, minutes in enumerate((10, 0)):  # the later call written first
                await conn.execute(text(
                    "INSERT INTO calls (linkedid, pbx, direction, status, started_at, "
                    "ring_seconds, talk_seconds, transferred, managers, created_client, "
                    "created_at, updated_at) VALUES (:l, 'main', 'outbound', 'answered', :t, "
                    "0, 60, false, '[\"101\"]', false, :t, :t)"),
                    {"l": f"m.{i}", "t": T0 + timedelta(minutes=minutes)})
            ids = (await conn.execute(text("SELECT id FROM calls ORDER BY id"))).scalars().all()
            for call_id in ids:
                await conn.execute(text(
                    "INSERT INTO transcripts (call_id, model, duration, data, created_at) "
                    "VALUES (:c, 'test', 60, :d, :t)"),
                    {"c": call_id, "d": json.dumps(DISCOUNT), "t": T0})
        await upgrade(empty_db_url)
        async with session_factory(engine)() as session:
            found = await find(session, "скидкам")
            assert [c for c, _, _ in found] == [ids[0], ids[1]]  # the later call first
            assert {s for _, s, _ in found} == {"manager"}
    finally:
        await engine.dispose()


async def test_hits_far_behind_the_newest_matches_are_found(db_session: AsyncSession) -> None:
    """A viewer who sees few calls gets his hits from behind many newer ones he may not see."""
    ids = [await add_call(db_session, f"v.{i}", minutes=i) for i in range(40)]
    for call_id in ids:
        await save_transcript(db_session, call_id, DISCOUNT)
    await db_session.commit()
    mine = [ids[0], ids[1], ids[20]]
    seen: list[int] = []
    cursor = None
    while True:
        hits, cursor = await search(db_session, query_terms("скидка"),
                                    visible=Call.id.in_(mine), limit=2, before=cursor)
        seen += [h.call_id for h in hits]
        if cursor is None:
            break
    assert seen == mine[::-1]
