"""Two web processes' worth of the app on one Redis: the visitor limits of call tracking
count across them, as the leases do (a balancer may send each request elsewhere)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from telecrm.settings import Settings
from tests.calltracking.sites import seeded_site
from tests.calltracking.test_ct_web import post as post_visit
from tests.calltracking.test_ct_web import visit
from tests.support.browser import serve_app

pytestmark = pytest.mark.calendar  # visits dated today

POOL = [f"+7495111002{n}" for n in range(8)]


@pytest.fixture
async def two_processes(tmp_path: Path, redis_url: str) -> AsyncIterator[tuple[str, str]]:
    url = await seeded_site(tmp_path, POOL)
    settings = Settings(data_dir=tmp_path, database_url=url, redis_url=redis_url,
                        recordings_source=tmp_path / "recordings", trusted_proxies="127.0.0.1",
                        ct_rate_per_minute=6, ct_new_visits_per_minute=4)
    async with serve_app(settings) as (_, base_a), serve_app(settings) as (_, base_b):
        yield base_a, base_b


async def test_a_visitor_who_lost_his_token_gets_his_number_back_from_the_other_process(
        two_processes: tuple[str, str]) -> None:
    a, b = two_processes
    status, first, _ = await post_visit(a, visit(), ip="203.0.113.7")
    assert status == 200 and first["tracked"]
    # The same browser, its token lost (a cleared storage), lands on the other process.
    status, again, _ = await post_visit(b, visit(), ip="203.0.113.7")
    assert status == 200
    assert (again["session"], again["number"]) == (first["session"], first["number"])


async def test_one_address_is_limited_across_processes(
        two_processes: tuple[str, str]) -> None:
    a, b = two_processes
    # A quarter of the pool (2 numbers) per address, whichever process leased them.
    numbers = []
    for base, agent in ((a, "A"), (b, "B"), (a, "C")):
        _, body, _ = await post_visit(base, visit(), ip="203.0.113.8",
                                      agent=f"Mozilla/5.0 Chrome/120.0 {agent}")
        numbers.append(body["number"] if body["tracked"] else None)
    assert numbers[0] and numbers[1] and numbers[0] != numbers[1]
    assert numbers[2] is None, "a third number for the same address is refused"
    # Requests per address per minute (6) are counted by both processes together.
    answers = [(await post_visit(base, visit(), ip="203.0.113.9"))[0]
               for base in (a, b, a, b, a, b, a, b)]
    assert answers[:6] == [200] * 6
    assert answers[6:] == [429, 429]
