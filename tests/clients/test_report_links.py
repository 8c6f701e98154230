"""Every figure of the contact-frequency (ЧЧК) and overdue-clients reports opens the client
list filtered to exactly the clients it counts: for a past month and for the month under way,
with a team's own rules and a client with a frequency of his own.

The floor is the hand-computed November 2026 of tests/sales/test_sales_reports.py.
"""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select, update

from crm_core.clients.models import Client
from crm_core.db import create_engine, session_factory
from crm_core.people.models import Team, User
from crm_core.people.users import add_user
from crm_core.sales.settings import save_rules
from telecrm.settings import Settings
from tests.sales.test_sales_reports import _seed
from tests.support.browser import PASSWORD, seeded_password_hash, serve_app
from tests.support.db_fixtures import migrated

CELL = re.compile(r'<td[^>]*data-key="(\w+)"[^>]*><a href="([^"]+)"[^>]*>([^<]+)</a></td>')


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await migrated(url)
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session, session.begin():
            await _seed(session)
            await add_user(session, "admin", name="Админ", role="admin")
            hashed = seeded_password_hash()
            await session.execute(update(User).values(password_hash=hashed))
            team = await session.scalar(select(Team.id).where(Team.name == "Продажи"))
            await save_rules(session, team, {"contact_days_c": 5, "max_potential_days": 30},
                             by=None)
            beta = await session.get(Client, 2)
            assert beta is not None
            beta.contact_every_days = 10  # a frequency of his own, judged day by day
    finally:
        await engine.dispose()
    async with serve_app(Settings(data_dir=tmp_path, database_url=url)) as (_, base):
        yield base


async def _count(http: aiohttp.ClientSession, base: str, href: str) -> int:
    query = href.split("?", 1)[1]
    total, cursor = 0, ""
    while True:
        async with http.get(f"{base}/api/clients?{query}&limit=2{cursor}") as response:
            assert response.status == 200, href
            body = await response.json()
        total += len(body["clients"])
        if body["next"] is None:
            return total
        cursor = f"&cursor={body['next']}"


@pytest.mark.parametrize("moment", [
    pytest.param("2026-12-05T12:00:00+03:00", id="past-month",
                 marks=pytest.mark.clock("2026-12-05T12:00:00+03:00")),
    pytest.param("2026-11-30T12:00:00+03:00", id="month-under-way",
                 marks=pytest.mark.clock("2026-11-30T12:00:00+03:00")),
])
async def test_each_figure_lists_exactly_its_clients(served: str, moment: str) -> None:
    for who in ("boss", "ivan", "admin"):
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        try:
            async with http.post(f"{served}/api/login",
                                 json={"username": who, "password": PASSWORD}) as response:
                assert response.status == 200
            checked = 0
            for report in ("contact-frequency", "overdue-clients"):
                url = f"{served}/reports/{report}?from=2026-11-01&to=2026-11-30"
                async with http.get(url) as response:
                    page = await response.text()
                cells = CELL.findall(page)
                assert cells, (who, report)
                for key, href, text in cells:
                    href = htmllib.unescape(href)
                    figure = int(text.replace("\u00a0", "").replace(" ", ""))
                    assert await _count(http, served, href) == figure, (who, report, key, href)
                    checked += 1
                    if figure:
                        nonzero = href
            # the list page says the same
            async with http.get(served + nonzero) as response:
                listed = await response.text()
            found = re.search(r'id="found-count">([^<]+)<', listed)
            assert found and int(found.group(1)) == await _count(http, served, nonzero)
            assert "Из отчёта:" in listed
            assert checked >= (10 if who == "ivan" else 20), (who, moment)
        finally:
            await http.close()


async def test_abandoned_figures_are_not_all_zero(served: str) -> None:
    """The check above would pass on empty reports: the seed does have abandoned clients."""
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    try:
        async with http.post(f"{served}/api/login",
                             json={"username": "admin", "password": PASSWORD}) as response:
            assert response.status == 200
        async with http.get(f"{served}/api/reports/contact-frequency?from=2026-11-01"
                            "&to=2026-11-30") as response:
            body = await response.json()
        assert body["totals"]["abandoned"] >= 2
        async with http.get(f"{served}/api/reports/overdue-clients?from=2026-11-01"
                            "&to=2026-11-30") as response:
            body = await response.json()
        assert body["totals"]["over_max"] >= 1
    finally:
        await http.close()
