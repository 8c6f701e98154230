"""Transcript search gives the pages one plain query would give, for every viewer.

The search takes its matches in chunks and, for a manager or a supervisor, may look from
his side first (his calls' phrases, or the matches among his calls). Whatever way it
takes, the hits, their order and the pages must be those of the straightforward query:
every phrase holding the words in a call the viewer may see, newest phrase first.
The data mixes what could trip a shortcut: calls seen through a leg, through a client's
owner, through a leg written before its user existed (extension only), through the
team's queue; transcripts indexed out of the calls' order and rewritten later (so a
phrase's id does not follow its call's), words in most phrases and in a few.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import ColumnElement, Select, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import Call, CallLeg
from crm_core.clients.models import Client
from crm_core.db import create_engine, session_factory
from crm_core.people import access
from crm_core.people.models import Team, User
from crm_core.speech import search as index
from crm_core.speech.models import TranscriptPhrase
from tests.support.db_fixtures import db_url_fixture  # noqa: F401

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CALLS = 240
COMMON = "скидка цена добрый день"  # in most phrases
MIDDLING = "договор подписать"
RARE = "расторгнуть"
FILLER = "хорошо понятно давайте посмотрим завтра вечером отправлю письмо".split()

# who takes each call: (the leg's user id, its extension); 201 = manager A, 202 = B (team 1),
# 203 = C (team 2), 209 = supervisor of team 1
A, B, C, SUP, ADMIN = 1, 2, 3, 4, 5


def _said(rng: random.Random) -> str:
    words = rng.sample(FILLER, 4)
    roll = rng.random()
    if roll < 0.6:
        words.append(rng.choice(COMMON.split()))
    if roll < 0.12:
        words += MIDDLING.split()
    if roll < 0.015:
        words.append(RARE)
    rng.shuffle(words)
    return " ".join(words)


def _transcript(rng: random.Random) -> dict[str, Any]:
    sides: dict[str, list[dict[str, Any]]] = {"manager": [], "client": []}
    at = 0.5
    for turn in range(6):
        for word in _said(rng).split():
            sides["client" if turn % 2 else "manager"].append(
                {"word": word, "start": round(at, 2), "end": round(at + 0.3, 2), "conf": 0.9})
            at += 0.4
        at += 1.0
    return {"duration": at, "model": "test", "speakers": sides}


async def _seed(db_url: str) -> None:
    rng = random.Random(19)
    engine = create_engine(db_url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            await session.execute(insert(Team), [
                {"id": 1, "name": "Отдел 1", "queue": "q1", "created_at": T0},
                {"id": 2, "name": "Отдел 2", "queue": "q2", "created_at": T0}])
            await session.execute(insert(User), [
                {"id": A, "username": "a", "name": "А", "role": "manager", "extension": "201",
                 "team_id": 1, "created_at": T0},
                {"id": B, "username": "b", "name": "Б", "role": "manager", "extension": "202",
                 "team_id": 1, "created_at": T0},
                {"id": C, "username": "c", "name": "В", "role": "manager", "extension": "203",
                 "team_id": 2, "created_at": T0},
                {"id": SUP, "username": "s", "name": "С", "role": "supervisor",
                 "extension": "209", "team_id": 1, "created_at": T0},
                {"id": ADMIN, "username": "adm", "name": "Адм", "role": "admin",
                 "created_at": T0}])
            await session.execute(insert(Client), [
                {"id": 1, "name": "Клиент А", "owner_id": A, "created_at": T0},
                {"id": 2, "name": "Клиент В", "owner_id": C, "created_at": T0}])
            calls, legs = [], []
            for c in range(1, CALLS + 1):
                at = T0 + timedelta(minutes=7 * c)
                roll = c % 24
                # A: a few of his own, one with only his extension, one of his client's
                # taken by C; the supervisor also sees team 1's queue calls nobody took
                user, ext = {0: (A, "201"), 5: (None, "201"), 11: (B, "202"),
                             13: (B, "202")}.get(roll, (C, "203"))
                client = 1 if roll in (0, 7) else (2 if roll == 9 else None)
                queue = "q1" if roll in (3, 17) else ("q2" if roll == 4 else None)
                calls.append({"id": c, "linkedid": f"e.{c}", "direction": "outbound",
                              "status": "answered", "started_at": at,
                              "ended_at": at + timedelta(minutes=2), "managers": [ext],
                              "client_id": client, "queue": queue, "created_at": at,
                              "updated_at": at})
                if queue != "q1":
                    legs.append({"call_id": c, "uniqueid": f"e.{c}-m", "channel": "PJSIP/x",
                                 "role": "manager", "extension": ext, "user_id": user,
                                 "started_at": at})
            await session.execute(insert(Call.__table__), calls)
            await session.execute(insert(CallLeg.__table__), legs)
        order = list(range(1, CALLS + 1))
        rng.shuffle(order)  # transcribed out of order, and some transcribed again later
        order += rng.sample(order, 30)
        for start in range(0, len(order), 40):
            async with session_factory(engine, writer=True)() as session, session.begin():
                for call_id in order[start:start + 40]:
                    await index.index_transcript(session, call_id, _transcript(rng))
        async with engine.connect() as conn:  # the statistics search may read first
            await conn.execute(text("ANALYZE"))
            await conn.commit()
    finally:
        await engine.dispose()


async def _reference(session: AsyncSession, terms: index.Terms, visible: ColumnElement[bool],
                     where: list[ColumnElement[bool]], speaker: str | None) -> list[int]:
    stmt = (select(TranscriptPhrase.id).join(Call, Call.id == TranscriptPhrase.call_id)
            .where(index.matches(session, [terms]), visible, *where)
            .order_by(TranscriptPhrase.id.desc()))
    if speaker is not None:
        stmt = stmt.where(TranscriptPhrase.speaker == speaker)
    return list(await session.scalars(stmt))


PAGES_WALKED = 12  # from the start and up to the end, at each page size


async def walk(session: AsyncSession, terms: index.Terms, visible: ColumnElement[bool],
               where: list[ColumnElement[bool]], speaker: str | None, cursor: int | None,
               limit: int, theirs: Select[int] | None, pages: int) -> list[list[int]]:
    """Up to ``pages`` pages of the search from ``cursor``, as a reader pages on: each
    next page from the cursor the last one gave."""
    out: list[list[int]] = []
    while len(out) < pages:
        hits, cursor = await index.search(session, terms, visible=visible, where=where,
                                          speaker=speaker, before=cursor, limit=limit,
                                          viewer_calls=theirs)
        out.append([h.phrase_id for h in hits])
        if cursor is None:
            break
        assert cursor == hits[-1].phrase_id
    return out


@pytest.mark.parametrize("way", ["as_it_chooses", "walk", "call_walk", "matches",
                                 "too_many_calls", "too_many_calls_walked"])
async def test_every_page_is_the_plain_querys_page(db_url: str, way: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Admin, supervisor and manager; rare to common words; a filter and a speaker; small
    and large pages: each page of the search is the same slice of the plain query,
    whichever way it looks from the viewer's side. Pages are checked from the start and
    up to the end (hundreds of one-phrase pages would repeat the same steps)."""
    if way in ("walk", "call_walk", "matches"):
        monkeypatch.setattr(index, "_cheapest_way", lambda *_args: way)
    elif way.startswith("too_many_calls"):  # his calls not listed: checked by his clause
        monkeypatch.setattr(index, "MAX_VIEWER_CALLS", 3)
        monkeypatch.setattr(index, "_clause_walk_reads",
                            lambda *_args: 0.0 if way.endswith("walked") else 1e18)
    await _seed(db_url)
    engine = create_engine(db_url)
    checked = 0
    try:
        async with session_factory(engine)() as session:
            for viewer_id in (ADMIN, SUP, A):
                viewer = await session.get(User, viewer_id)
                assert viewer is not None
                visible = await access.calls_filter(session, viewer)
                theirs = await access.call_ids_seen_by(session, viewer)
                assert (theirs is None) == (viewer_id == ADMIN)
                for query in ("скидкой", "договор подписали", "расторгнуть", "ценами днём"):
                    terms = index.query_terms(query)
                    for where, speaker in (([], None),
                                           ([Call.started_at >= T0 + timedelta(hours=9)],
                                            "client")):
                        expected = await _reference(session, terms, visible, where, speaker)
                        for limit in (1, 3, 50):
                            want = [expected[i:i + limit]
                                    for i in range(0, len(expected), limit)] or [[]]
                            # the first pages, and the last ones from the cursor a reader
                            # paging on would hold there (a common word has hundreds)
                            tail = max(len(want) - PAGES_WALKED, PAGES_WALKED)
                            first = await walk(session, terms, visible, where, speaker, None,
                                               limit, theirs, PAGES_WALKED + 1)
                            assert first == want[:PAGES_WALKED + 1], (viewer_id, query, where,
                                                                      limit)
                            if tail < len(want):
                                last = await walk(session, terms, visible, where, speaker,
                                                  want[tail - 1][-1], limit, theirs,
                                                  len(want))
                                assert last == want[tail:], (viewer_id, query, where, limit)
                            checked += 1
                        if viewer_id == A:  # never another team's call
                            calls = set(await session.scalars(
                                select(TranscriptPhrase.call_id)
                                .where(TranscriptPhrase.id.in_(expected))))
                            assert all(c % 24 in (0, 5, 7) for c in calls)
    finally:
        await engine.dispose()
    assert checked == 3 * 4 * 2 * 3


async def test_the_viewers_calls_are_the_calls_he_sees(db_url: str) -> None:
    """call_ids_seen_by names every call calls_filter lets through, and no other."""
    await _seed(db_url)
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            for viewer_id in (SUP, A, B, C):
                viewer = await session.get(User, viewer_id)
                assert viewer is not None
                theirs = await access.call_ids_seen_by(session, viewer)
                assert theirs is not None
                visible = await access.calls_filter(session, viewer)
                seen = set(await session.scalars(select(Call.id).where(visible)))
                assert set(await session.scalars(theirs)) == seen
                assert seen
            assert await access.call_ids_seen_by(
                session, User(username="x", name="x", role="admin")) is None
    finally:
        await engine.dispose()
