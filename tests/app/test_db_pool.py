"""``TELECRM_DB_POOL_SIZE``: how many PostgreSQL connections a process may use.

A web process holding hundreds of event streams and page views queues for its pool
(bench/RESULTS.md, floor_load); the administrator sizes it to the server's
``max_connections`` divided among the processes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from crm_core.errors import DomainError
from telecrm.settings import Settings
from telecrm.web.keys import SESSIONS
from tests.support.browser import serve_app


def test_the_pool_size_is_a_setting_of_one_or_more() -> None:
    assert Settings.load({}).db_pool_size == 5
    assert Settings.load({"TELECRM_DB_POOL_SIZE": "20"}).db_pool_size == 20
    for bad in ("0", "-3", "many"):
        with pytest.raises(DomainError) as refused:
            Settings.load({"TELECRM_DB_POOL_SIZE": bad})
        assert refused.value.code == "settings.bad_value"


@pytest.mark.postgres
async def test_a_process_opens_as_many_connections_as_it_is_allowed(
        pg_url: str, tmp_path: Path) -> None:
    """Size 2: 2 + 4 at a peak. Seven sessions at once: six hold a connection, the
    seventh waits for one (SQLAlchemy's pool timeout), as the bench saw at 15."""
    settings = Settings(data_dir=tmp_path, database_url=pg_url, db_pool_size=2)
    async with serve_app(settings) as (app, _):
        held: list[object] = []
        started = asyncio.Event()

        async def hold() -> None:
            async with app[SESSIONS]() as session:
                await session.execute(text("SELECT 1"))
                held.append(session)
                if len(held) == 6:
                    started.set()
                await asyncio.sleep(3)

        tasks = [asyncio.create_task(hold()) for _ in range(7)]
        await asyncio.wait_for(started.wait(), 10)
        await asyncio.sleep(0.5)
        assert len(held) == 6  # the seventh is still waiting for a connection
        await asyncio.gather(*tasks)
        assert len(held) == 7  # and got one when the others were done


@pytest.mark.postgres
async def test_the_connections_a_peak_opened_stay_open_for_the_next(
        pg_url: str, tmp_path: Path) -> None:
    """Size 2: a burst of six sessions opens six connections; the next burst finds them
    open and opens none (the same six server processes answer). Closing those beyond 2
    as each came back made every burst pay for new connections at its busiest."""
    settings = Settings(data_dir=tmp_path, database_url=pg_url, db_pool_size=2)
    async with serve_app(settings) as (app, _):

        async def burst() -> set[int]:
            together = asyncio.Barrier(6)

            async def backend() -> int:
                async with app[SESSIONS]() as session:
                    pid = await session.scalar(text("SELECT pg_backend_pid()"))
                    await together.wait()  # all six hold a connection at once
                    assert isinstance(pid, int)
                    return pid

            return set(await asyncio.gather(*(backend() for _ in range(6))))

        first = await burst()
        assert len(first) == 6
        assert await burst() == first
