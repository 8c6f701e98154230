"""PostgreSQL keeps each transcribed call's lemmas beside its phrases (migration 0035).

A manager's search may walk his calls newest phrase first through that table, and read
only the phrases of the calls whose lemmas hold the words: a call missing from it, or
holding a word it no longer says, or with a wrong span of phrase ids, would hide hits,
put them out of order or cost reads. The table follows the phrases whatever writes them:
a transcript indexed, indexed again with other words, emptied.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, text

from crm_core.calls.models import Call
from crm_core.db import create_engine, session_factory
from crm_core.speech import search as index
from crm_core.speech.models import TranscriptPhrase
from tests.support.db_fixtures import db_url_fixture  # noqa: F401

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ONLY_POSTGRESQL = pytest.mark.parametrize(
    "db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)


def _transcript(manager: str, client: str) -> dict[str, Any]:
    def words(said: str, start: float) -> list[dict[str, Any]]:
        return [{"word": w, "start": start + i * 0.4, "end": start + i * 0.4 + 0.3,
                 "conf": 0.9} for i, w in enumerate(said.split())]
    return {"duration": 30, "model": "test",
            "speakers": {"manager": words(manager, 0.5), "client": words(client, 10.0)}}


@ONLY_POSTGRESQL
async def test_the_calls_words_follow_their_phrases(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            await session.execute(insert(Call.__table__), [
                {"id": c, "linkedid": f"w.{c}", "direction": "outbound", "status": "answered",
                 "started_at": T0 + timedelta(minutes=c), "managers": ["201"],
                 "created_at": T0, "updated_at": T0} for c in (1, 2, 3)])
            await index.index_transcript(session, 1, _transcript(
                "добрый день у нас есть скидка", "мы работаем с мегафоном"))
            await index.index_transcript(session, 2, _transcript(
                "кто-то из коллег звонил вам", "да мы думаем о билайне"))

        async def holding(query: str) -> list[int]:
            """The calls a manager seeing all three finds holding the words, newest first."""
            async with session_factory(engine)() as session:
                ids = await index._call_walk(session, index.query_terms(query), [1, 2, 3],
                                             None, 100, batch=1)
                return list(dict.fromkeys(await session.scalars(
                    select(TranscriptPhrase.call_id).where(TranscriptPhrase.id.in_(ids))
                    .order_by(TranscriptPhrase.id.desc()))))

        async def row_of(call_id: int) -> tuple[set[str], int, int] | None:
            async with engine.connect() as conn:
                row = (await conn.execute(text(
                    "SELECT search_vector::text, first_phrase_id, last_phrase_id "
                    "FROM transcript_call_words WHERE call_id = :c"), {"c": call_id})).first()
                span = (await conn.execute(text(
                    "SELECT min(id), max(id) FROM transcript_phrases WHERE call_id = :c"),
                    {"c": call_id})).one()
            if row is None:
                return None
            assert (row[1], row[2]) == tuple(span)  # the span of the call's phrase ids
            return {w.strip("'") for w in row[0].split()}, row[1], row[2]

        # one row per transcribed call, holding every lemma of its phrases, either speaker
        assert await row_of(3) is None
        first = await row_of(1)
        assert first is not None and {"добрый", "скидка", "мегафон"} <= first[0]
        assert await holding("мегафоном") == [1]
        assert await holding("билайна") == [2]
        assert await holding("скидки мегафон") == []  # both words, but not in one phrase
        assert await holding("работаем мегафон") == [1]
        assert await holding("кто-то") == [2]  # a lemma of two words, side by side
        assert await holding("то кто") == [2]

        # indexed again with other words: the old ones are gone, the new ones found, and
        # the call is now the newest: walked first, one call at a time
        async with session_factory(engine, writer=True)() as session, session.begin():
            await index.index_transcript(session, 1, _transcript(
                "добрый день", "мы уже работаем с билайном"))
        again = await row_of(1)
        assert again is not None and "мегафон" not in again[0] and again[1] > first[2]
        assert await holding("мегафоном") == []
        assert await holding("билайн") == [1, 2]

        # a transcript with no words left: the call's row goes with its phrases
        async with session_factory(engine, writer=True)() as session, session.begin():
            await index.index_transcript(session, 2, _transcript("", ""))
        assert await row_of(2) is None
        assert await holding("билайн") == [1]

        # two calls written at once, their phrases interleaved (two transcripts stored by
        # two workers at the same moment): the newest matches are still found in order
        async with session_factory(engine, writer=True)() as session, session.begin():
            await session.execute(insert(Call.__table__), [
                {"id": c, "linkedid": f"w.{c}", "direction": "outbound", "status": "answered",
                 "started_at": T0, "managers": ["201"], "created_at": T0, "updated_at": T0}
                for c in (4, 5)])
            await session.execute(insert(TranscriptPhrase), [
                {"call_id": 4 + n % 2, "speaker": "client", "start": n, "end": n + 1,
                 "text": f"билайн {n}", "lemmas": f"билайн {n}"} for n in range(6)])
        async with session_factory(engine)() as session:
            newest = list(await session.scalars(
                select(TranscriptPhrase.id).where(TranscriptPhrase.call_id.in_([4, 5]))
                .order_by(TranscriptPhrase.id.desc())))
            for size in (1, 2, 3, 6):
                assert await index._call_walk(session, index.query_terms("билайн"),
                                              [1, 4, 5], None, size, batch=1) == newest[:size]

        # and the search itself, looking from a manager's side through his calls
        async with session_factory(engine)() as session:
            terms = index.query_terms("билайн")
            hits, more = await index.search(session, terms, visible=Call.id.in_([1, 3]),
                                            viewer_calls=select(Call.id))
        assert [h.call_id for h in hits] == [1] and more is None
        assert "билайном" in hits[0].text
    finally:
        await engine.dispose()
