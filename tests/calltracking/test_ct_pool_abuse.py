"""One visitor cannot take a site's pool (issue 17, item 9), and when the pool does run
out the marketer sees it on the call-tracking page."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_core.calltracking.services import SiteOptions, add_pool_numbers, save_site
from crm_core.db import create_engine, session_factory
from telecrm.calltracking.public import CT
from telecrm.settings import Settings
from tests.calltracking.test_ct_web import BROWSER, ORIGIN, post, signed_in
from tests.support.browser import seed_world, serve_app
from tests.support.hostile import call, login

HOST = "shop.example"
POOL = [f"+7495111002{n}" for n in range(8)]
FALLBACK = "+74951110001"


def visit(**extra: object) -> dict[str, object]:
    return {"site": HOST, "url": f"https://{HOST}/?utm_source=yandex", **extra}


@pytest.fixture
async def served(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed_world(url, tmp_path / "recordings")
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session, session.begin():
            await save_site(session, HOST, SiteOptions(default_numbers=[FALLBACK],
                                                       origins=[ORIGIN]))
            await add_pool_numbers(session, HOST, POOL)
    finally:
        await engine.dispose()
    settings = Settings(data_dir=tmp_path, database_url=url, trusted_proxies="127.0.0.1",
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (app, base):
        yield base, app


async def test_one_address_in_a_loop_takes_only_its_share(served) -> None:
    base, _ = served
    attacker = "203.0.113.66"
    # the review's loop: every request without a token, as fast as allowed
    numbers = [(await post(base, visit(), ip=attacker))[1]["number"] for _ in range(100)]
    taken = set(numbers) - {FALLBACK}
    assert 1 <= len(taken) <= len(POOL) // 4
    # ... also when it sends analytics ids of its own making
    for n in range(30):
        await post(base, visit(client_id=f"fake.{n}"), ip=attacker)
    # real visitors after that still get pool numbers, each his own
    real = [(await post(base, visit(client_id=f"ya.{n}"), ip=f"198.51.100.{n}"))[1]
            for n in range(1, 6)]
    assert all(r["tracked"] for r in real)
    assert len({r["number"] for r in real} | taken) == len(real) + len(taken)


async def test_a_returning_visitor_without_his_token_keeps_his_number(served) -> None:
    base, _ = served
    ip = "198.51.100.7"
    _, first, _ = await post(base, visit(client_id="ya.1"), ip=ip, agent=BROWSER)
    _, again, _ = await post(base, visit(client_id="ya.1"), ip=ip, agent=BROWSER)
    assert first["tracked"] and (again["session"], again["number"]) == (
        first["session"], first["number"])


async def test_the_marketer_sees_when_the_pool_runs_out(served) -> None:
    base, app = served
    for n in range(len(POOL) + 3):  # more real visitors than numbers
        await post(base, visit(client_id=f"ya.{n}"), ip=f"198.51.100.{n + 1}")
    await app[CT].history.drain()
    marketer = await signed_in(base, "marketer")
    try:
        async with marketer.get(f"{base}/calltracking") as response:
            assert response.status == 200
            page = await response.text()
    finally:
        await marketer.close()
    assert "Номера пула сайта shop.example заканчивались" in page
    assert "номер компании вместо номера из пула — 3." in page


async def test_bulk_number_lists_are_refused_before_any_work(served) -> None:
    base, _ = served
    marketer = await login(base, "marketer")
    try:
        numbers = [f"+7495{n:07d}" for n in range(300)]
        status, body = await call(marketer, "POST", f"{base}/api/ct/pool",
                                  {"site": "b.example", "numbers": numbers})
    finally:
        await marketer.close()
    assert status == 400
    assert body["error"] == "За один раз можно добавить не больше 200 номеров."
