"""The client card costs the same number of SQL statements however big the floor is.

The card is the most viewed page: a supervisor with more managers, or a client with more
calls, must not cost more round trips to the database (bench/client_card.py times it).
The «Ответственный» list keeps its rule (crm_core.sales.tasks.check_assignee): only
managers who may open the client are offered. The seeded floor is
tests/support/browser.py: petrov (101) and smirnova (102) with their supervisor sokolova.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Engine

from crm_core.calls.services import record_call
from crm_core.clients.models import Client
from crm_core.db import create_engine, session_factory
from crm_core.people import access
from crm_core.people.models import User
from crm_core.people.users import add_user
from tests.support.browser import CLIENTS, HOOKS, _call
from tests.support.db_fixtures import db_url_fixture  # noqa: F401
from tests.support.floor import Floor, served_floor

pytestmark = pytest.mark.calendar  # the seeded calls are an hour ago: make test-calendar


@pytest.fixture
async def floor(db_url: str, tmp_path: Path) -> AsyncIterator[Floor]:
    async with served_floor(Floor, db_url, tmp_path) as crm:
        yield crm


@contextmanager
def counted() -> Iterator[list[tuple[object, str]]]:
    """The SQL statements sent by any engine of this process while the block runs, with
    the asyncio task that sent each (the app's background jobs share the process)."""
    seen: list[tuple[object, str]] = []

    def record(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append((asyncio.current_task(), statement))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


async def _card(floor: Floor, who: str, client_id: int) -> tuple[int, str]:
    await floor.login(who)  # signing in is not the card's cost
    with counted() as statements:
        status, page = await floor.call(who, "GET", f"/clients/{client_id}")
    assert status == 200, (who, page)
    # the signed-in session's own lookup (and its occasional "last seen") is not the card's
    # the handler's task: of those that read clients, the busiest (a background job of the
    # app may run meanwhile); the signed-in session's lookup (and "last seen") is not the card's
    busy = Counter(task for task, statement in statements)
    card = max({task for task, statement in statements if "FROM clients" in statement},
               key=busy.__getitem__)
    return len([s for task, s in statements if task is card and "web_sessions" not in s]), page


async def _grow(floor: Floor, managers: int, calls: int) -> None:
    """More managers in «Отдел продаж» (every other one talked with petrov's client once)
    and more calls of petrov with his client, a recording on each."""
    engine = create_engine(floor.db_url)
    sessions = session_factory(engine, writer=True)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    try:
        async with sessions() as session, session.begin():
            for i in range(managers):
                await add_user(session, f"extra{i}", name=f"Новый Менеджер {i}",
                               role="manager", extension=str(150 + i), team="Отдел продаж",
                               password_hash=None, created_at=start - timedelta(days=30))
        specs = [_call(f"grow-{i}", "outbound", "answered", CLIENTS[0][1], "101",
                       start + timedelta(minutes=10 * i), 30.0, (f"grow/{i}.wav",))
                 for i in range(calls)]
        specs += [_call(f"talk-{i}", "outbound", "answered", CLIENTS[0][1], str(150 + i),
                        start - timedelta(hours=1 + i), 20.0)
                  for i in range(0, managers, 2)]
        for data in specs:
            async with sessions() as session, session.begin():
                await record_call(session, data, hooks=HOOKS)
    finally:
        await engine.dispose()


async def test_the_card_costs_the_same_statements_on_a_bigger_floor(floor: Floor) -> None:
    petrovs = floor.world.clients["101"]
    before = {who: (await _card(floor, who, petrovs))[0] for who in ("petrov", "sokolova")}
    await _grow(floor, managers=8, calls=40)
    after = {}
    for who in ("petrov", "sokolova"):
        after[who], page = await _card(floor, who, petrovs)
    assert after == before, "more managers or more calls cost more statements"
    assert before["sokolova"] < 40 and before["petrov"] < 40

    # the supervisor offers the managers who may open the client, and only them
    planners = page.split('name="assignee_id"', 1)[1].split("</select>", 1)[0]
    assert "Иван Петров" in planners and "Ольга Смирнова" not in planners
    for i in range(8):
        assert (f"Новый Менеджер {i} (" in planners) == (i % 2 == 0), i
    # the player lists the newest recorded calls (50 at most)
    assert page.count('class="pick') == 41


async def test_who_may_open_a_client_is_may_open_client_for_each(floor: Floor) -> None:
    await _grow(floor, managers=4, calls=1)
    engine = create_engine(floor.db_url)
    try:
        async with session_factory(engine)() as session:
            users = list(await session.scalars(select(User).order_by(User.id)))
            for client_id in await session.scalars(select(Client.id)):
                expected = {u.id for u in users
                            if await access.may_open_client(session, u, client_id)}
                with counted() as statements:
                    got = await access.who_may_open_client(
                        session, [u for u in users if u.role in ("manager", "admin")],
                        client_id)
                # one statement of this task's (the app's recordings job may run meanwhile)
                mine = [s for task, s in statements if task is asyncio.current_task()]
                assert len(mine) == 1, mine
                assert got == {i for i in expected
                               if any(u.id == i and u.role in ("manager", "admin")
                                      for u in users)}, client_id
                assert await access.who_may_open_client(session, users, client_id) \
                    == expected, client_id
    finally:
        await engine.dispose()
