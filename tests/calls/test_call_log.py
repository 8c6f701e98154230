"""The call log's filters and keyset pages on both backends, against a known sales floor.

Every filter is checked against the truth the seeding wrote (``call_log_world``): it
must find exactly its calls, a strict part of all of them. Paging with the cursor
must return every call exactly once, in order, forwards and backwards, whatever the
page size; and the visibility clause holds under every filter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import ColumnElement, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.log import CallLogFilter, Cursor, call_log_page, iter_call_log
from crm_core.calls.services import call_attempts
from crm_core.calltracking.call_log import channels, from_channel
from crm_core.clients.models import Client
from crm_core.db import create_engine, session_factory
from crm_core.errors import DomainError
from crm_core.people import access
from crm_core.people.models import Team, User
from crm_core.recordings.call_log import has_recording
from crm_core.speech.call_log import has_violation
from tests.calls.call_log_world import (
    BILLBOARD,
    NOW,
    NOW_UTC,
    CallLogWorld,
    call_log_db_fixture,  # noqa: F401
    call_log_template_fixture,  # noqa: F401
    participants,
    visible_to,
)

pytestmark = pytest.mark.clock(NOW)

Truth = dict[str, Any]


@pytest.fixture
async def floor(call_log_db: tuple[str, CallLogWorld, Path]
                ) -> AsyncIterator[tuple[CallLogWorld, AsyncSession]]:
    db_url, world, _ = call_log_db
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            yield world, session
    finally:
        await engine.dispose()


async def every_call(session: AsyncSession, scope: ColumnElement[bool], f: CallLogFilter,
                     sort: str = "newest", limit: int = 50) -> list[int]:
    """All pages of the log, walked with the next cursor."""
    ids: list[int] = []
    cursor = None
    while True:
        page = await call_log_page(session, scope, f, sort=sort, cursor=cursor, limit=limit)
        ids += [call.id for call in page.calls]
        if page.next is None:
            return ids
        cursor = page.next


def expected(world: CallLogWorld, keep: Callable[[Truth], bool]) -> set[int]:
    return {call_id for call_id, truth in world.facts.items() if keep(truth)}


async def user_named(session: AsyncSession, username: str) -> User:
    user = await session.scalar(select(User).where(User.username == username))
    assert user is not None
    return user


async def test_each_filter_finds_exactly_its_calls(floor: tuple[CallLogWorld, AsyncSession]
                                                   ) -> None:
    world, session = floor
    smirnova = await user_named(session, "smirnova")
    sales = await session.scalar(select(Team.id).where(Team.name == "Отдел продаж"))
    romashka = await session.scalar(select(Client.id).where(Client.name == "ООО Ромашка"))
    day = datetime(2026, 11, 16, 21, 0, tzinfo=UTC)  # 17 November in Moscow
    week = NOW_UTC - timedelta(days=7)
    cases: list[tuple[str, CallLogFilter, Callable[[Truth], bool]]] = [
        ("one day", CallLogFilter(since=day, until=day + timedelta(days=1)),
         lambda t: day <= t["started_at"] < day + timedelta(days=1)),
        ("a manager", CallLogFilter(manager_ids=(smirnova.id,)),
         lambda t: "102" in participants(t)),
        ("a manager's week", CallLogFilter(since=week, manager_ids=(smirnova.id,)),
         lambda t: "102" in participants(t) and t["started_at"] >= week),
        ("a team", CallLogFilter(team_id=sales), lambda t: bool(participants(t) & {"101",
                                                                                   "102"})),
        ("inbound", CallLogFilter(direction="inbound"), lambda t: t["direction"] == "inbound"),
        ("busy", CallLogFilter(status="busy"), lambda t: t["status"] == "busy"),
        ("talk >= 60 s", CallLogFilter(min_talk_seconds=60), lambda t: t["talk"] >= 60),
        ("a manager, talk >= 60 s", CallLogFilter(manager_ids=(smirnova.id,),
                                                  min_talk_seconds=60),
         lambda t: "102" in participants(t) and t["talk"] >= 60),
        ("a number", CallLogFilter(number="+79031234567"),
         lambda t: t["number"] == "+79031234567"),
        ("a client", CallLogFilter(client_ids=(romashka,)),
         lambda t: t["number"] == "+79161234567"),
        ("no client matched", CallLogFilter(client_ids=()), lambda t: False),
        ("recorded", CallLogFilter(extra=(has_recording(),)), lambda t: t["recorded"]),
        ("not recorded", CallLogFilter(extra=(has_recording(False),)),
         lambda t: not t["recorded"]),
        ("the billboard", CallLogFilter(extra=(from_channel(BILLBOARD),)),
         lambda t: t["source"] == BILLBOARD),
        ("a script violation", CallLogFilter(extra=(has_violation(),)),
         lambda t: t["violation"]),
        ("no script violation", CallLogFilter(extra=(has_violation(False),)),
         lambda t: not t["violation"]),
    ]
    everything = set(world.facts)
    assert set(await every_call(session, true(), CallLogFilter())) == everything
    for name, f, keep in cases:
        want = expected(world, keep)
        if name != "no client matched":
            assert want and want < everything, f"the seeding must exercise {name!r}"
        assert set(await every_call(session, true(), f)) == want, name
    assert await channels(session) == [BILLBOARD]


@pytest.mark.parametrize("sort", ["newest", "oldest", "longest"])
async def test_cursor_pages_return_every_call_once_in_order(
        floor: tuple[CallLogWorld, AsyncSession], sort: str) -> None:
    world, session = floor
    key: Callable[[int], Any] = {
        "newest": lambda i: (world.facts[i]["started_at"], i),
        "oldest": lambda i: (world.facts[i]["started_at"], i),
        "longest": lambda i: (world.facts[i]["talk"], i)}[sort]
    order = sorted(world.facts, key=key, reverse=sort != "oldest")
    for limit in (1, 7, 50, 500):
        assert await every_call(session, true(), CallLogFilter(), sort, limit) == order, limit
    # Backwards from the last page with the previous cursors: the same calls, reversed.
    pages: list[list[int]] = []
    cursor: Cursor | None = None
    while True:
        page = await call_log_page(session, true(), CallLogFilter(), sort=sort, cursor=cursor,
                                   limit=9)
        pages.append([c.id for c in page.calls])
        if page.next is None:
            break
        cursor = page.next
    back = page.previous
    walked = [pages[-1]]
    while back is not None:
        page = await call_log_page(session, true(), CallLogFilter(), sort=sort, cursor=back,
                                   limit=9)
        walked.insert(0, [c.id for c in page.calls])
        back = page.previous
    assert walked == pages
    streamed = [c.id async for c in iter_call_log(session, true(), CallLogFilter(), sort=sort,
                                                  batch=11)]
    assert streamed == order
    capped = [c.id async for c in iter_call_log(session, true(), CallLogFilter(), sort=sort,
                                                batch=11, max_rows=25)]
    assert capped == order[:25]


async def test_a_call_written_while_paging_shifts_nothing(
        floor: tuple[CallLogWorld, AsyncSession], call_log_db: tuple[str, CallLogWorld, Path]
) -> None:
    from crm_core.calls.services import record_call
    from tests.calls.call_log_world import outbound
    from tests.support.browser import HOOKS

    world, session = floor
    first = await call_log_page(session, true(), CallLogFilter(), limit=10)
    engine = create_engine(call_log_db[0])
    try:
        async with session_factory(engine, writer=True)() as writer, writer.begin():
            await record_call(writer, outbound("late.1", "101", "+79161234567",
                                               NOW_UTC - timedelta(minutes=1), 30.0),
                              hooks=HOOKS)
    finally:
        await engine.dispose()
    rest = await every_call_from(session, first.next)
    seen = [c.id for c in first.calls] + rest
    assert len(seen) == len(set(seen)) == len(world.facts), "no call twice, none skipped"


async def every_call_from(session: AsyncSession, cursor: Cursor | None) -> list[int]:
    ids: list[int] = []
    while cursor is not None:
        page = await call_log_page(session, true(), CallLogFilter(), cursor=cursor, limit=10)
        ids += [c.id for c in page.calls]
        cursor = page.next
    return ids


@pytest.mark.parametrize("username", ["petrov", "smirnova", "kuznetsov", "sokolova", "admin"])
async def test_visibility_holds_under_every_filter(floor: tuple[CallLogWorld, AsyncSession],
                                                   username: str) -> None:
    world, session = floor
    user = await user_named(session, username)
    scope = await access.calls_filter(session, user)
    mine = expected(world, lambda t: visible_to(username, t))
    assert set(await every_call(session, scope, CallLogFilter(), limit=7)) == mine
    others = [u for u in await session.scalars(select(User)) if u.extension]
    teams = list(await session.scalars(select(Team.id)))
    filters = [CallLogFilter(manager_ids=(other.id,)) for other in others]
    filters += [CallLogFilter(team_id=team) for team in teams]
    filters += [CallLogFilter(number=n) for n in ("+79161234567", "+79031234567",
                                                  "+79265550011")]
    filters += [CallLogFilter(extra=(has_recording(),)), CallLogFilter(status="missed"),
                CallLogFilter(extra=(from_channel(BILLBOARD),))]
    for f in filters:
        for sort in ("newest", "longest"):
            found = set(await every_call(session, scope, f, sort, limit=10))
            assert found <= mine, (username, f)
    # Told the period, the scope finds the people's calls from their legs of that period:
    # the same calls.
    for since, until in ((NOW_UTC - timedelta(days=3), NOW_UTC),
                         (NOW_UTC - timedelta(days=12), NOW_UTC - timedelta(days=5))):
        narrow = await access.calls_filter(session, user, since=since, until=until)
        f = CallLogFilter(since=since, until=until)
        want = expected(world, lambda t, a=since, b=until: visible_to(username, t)
                        and a <= t["started_at"] < b)
        assert want, (username, since)
        assert set(await every_call(session, narrow, f, limit=10)) == want, (username, since)


async def test_cursors_are_checked(floor: tuple[CallLogWorld, AsyncSession]) -> None:
    _, session = floor
    page = await call_log_page(session, true(), CallLogFilter(), limit=5)
    assert page.next is not None and page.previous is None
    text = page.next.encode()
    assert Cursor.decode(text, "newest") == page.next
    for bad, sort in [(text, "oldest"), (text, "longest"), ("garbage", "newest"),
                      ("", "newest"), ("W10", "newest"), ("WyJuZXdlc3QiLDEsMiwwXQ", "newest"),
                      (Cursor("longest", 5.0, 3).encode(), "newest"),
                      (Cursor("newest", datetime(2026, 1, 1), 3).encode(), "newest"),
                      (Cursor("newest", NOW_UTC, 0).encode(), "newest")]:
        with pytest.raises(DomainError) as caught:
            Cursor.decode(bad, sort)
        assert caught.value.code == "calls.bad_cursor", bad
    with pytest.raises(DomainError):
        await call_log_page(session, true(), CallLogFilter(), sort="cheapest")


async def test_attempts_say_who_dialled_and_whose_phone_rang(
        floor: tuple[CallLogWorld, AsyncSession]) -> None:
    world, session = floor
    from crm_core.calls.log import call_query
    from crm_core.calls.models import Call

    async def attempts(linkedid: str) -> list[dict[str, Any]]:
        call = await session.scalar(call_query().where(Call.linkedid == linkedid))
        assert call is not None
        return call_attempts(call)

    busy = await attempts("d0.103.busy")
    assert busy == [{"extension": "103", "user_id": world.world.users["kuznetsov"],
                     "name": "Алексей Кузнецов", "kind": "dialled", "talked": False,
                     "talk_seconds": 0.0}]
    missed = await attempts("d0.102.miss")
    assert [(a["name"], a["kind"], a["talked"]) for a in missed] == [
        ("Ольга Смирнова", "rang", False), ("Иван Петров", "rang", False)]
    answered = await attempts("d0.101.out")
    assert [(a["name"], a["kind"], a["talked"]) for a in answered] == [
        ("Иван Петров", "dialled", True)]
    inbound = await attempts("d0.bb")
    assert [(a["kind"], a["talked"]) for a in inbound] == [("rang", True)]

