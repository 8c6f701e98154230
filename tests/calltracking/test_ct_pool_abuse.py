"""One visitor cannot take a site's pool (issue 17, item 9), nor can a few addresses
together, nor many addresses of one IPv6 /64; and when the pool does run out the
marketer sees it on the call-tracking page."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_core.calltracking.services import SiteOptions, add_pool_numbers, save_site
from crm_core.db import create_engine, session_factory
from telecrm.calltracking.public import CT, VisitorGuard, visitor_address
from telecrm.calltracking.visitor_limits import RedisVisitorGuard, Refusal
from telecrm.settings import Settings
from tests.calltracking.test_ct_web import BROWSER, ORIGIN, post, signed_in
from tests.support.browser import seed_world, serve_app
from tests.support.hostile import call, login
from tests.support.redis_fixtures import redis_server_fixture, redis_url_fixture  # noqa: F401

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


async def loop(base: str, ip: str, n: int) -> list[dict[str, object]]:
    """The attacker's loop: requests without a token, each with analytics ids of its own
    making (else he is a returning visitor and keeps his one number)."""
    return [(await post(base, visit(client_id=f"fake.{ip}.{i}"), ip=ip))[1] for i in range(n)]


async def page_of(base: str) -> str:
    marketer = await signed_in(base, "marketer")
    try:
        async with marketer.get(f"{base}/calltracking") as response:
            assert response.status == 200
            return await response.text()
    finally:
        await marketer.close()


async def test_four_addresses_together_leave_numbers_for_real_visitors(served) -> None:
    base, app = served
    attackers = ["203.0.113.66", "203.0.113.67", "198.18.0.5", "192.0.2.99"]
    # the review's loop from four addresses: each took a quarter, together every number
    taken: set[object] = set()
    for _ in range(2):
        for attacker in attackers:
            answers = await loop(base, attacker, 12)
            taken |= {a["number"] for a in answers} - {FALLBACK}
            # ... and keeps what it got alive with its tokens, like a page's heartbeat
            for answer in answers:
                if answer["tracked"]:
                    await post(base, visit(session=answer["session"]), ip=attacker)
    assert len(attackers) <= len(taken) <= len(POOL) - 2
    # real visitors, each from his own address, still get pool numbers, none shared
    real = [(await post(base, visit(client_id=f"ya.{n}"), ip=f"198.51.100.{n}"))[1]
            for n in (1, 2)]
    assert all(r["tracked"] for r in real)
    assert len({r["number"] for r in real} | taken) == len(real) + len(taken)
    # the attack is the pool's exhaustion on the marketer's page
    await app[CT].history.drain()
    assert "Номера пула сайта shop.example заканчивались" in await page_of(base)


async def test_many_addresses_of_one_ipv6_64_are_one_visitor(served) -> None:
    base, _ = served
    # a subscriber picks a new address of his /64 for every request
    answers = [(await post(base, visit(client_id=f"fake.{n}"), ip=f"2001:db8:1:2::{n:x}"))[1]
               for n in range(1, 60)]
    taken = {a["number"] for a in answers} - {FALLBACK}
    assert 1 <= len(taken) <= len(POOL) // 4
    # a neighbour on another /64 is another visitor
    _, other, _ = await post(base, visit(client_id="ya.1"), ip="2001:db8:1:3::1")
    assert other["tracked"] and other["number"] not in taken
    # the request limit (120 a minute) is the /64's too
    statuses = [(await post(base, visit(), ip=f"2001:db8:1:2:{n:x}::1"))[0]
                for n in range(1, 80)]
    assert statuses.count(429) >= 10


def test_visitor_addresses() -> None:
    assert visitor_address("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == "2001:db8:1:2::/64"
    assert visitor_address("2001:db8:1:2::1") == visitor_address("2001:db8:1:2:ffff::9")
    assert visitor_address("::ffff:198.51.100.7") == "198.51.100.7"
    assert visitor_address("198.51.100.7") == "198.51.100.7"


async def four_addresses_ask_in_turn(guard: VisitorGuard | RedisVisitorGuard) -> None:
    """Four addresses ask a pool of 12 for numbers in turn: each gets its first, three a
    second (half the pool is then held by addresses with several), then only refusals."""
    now, pool, held = 1000.0, 12, {}
    for round_ in range(5):
        for address in ("a1", "a2", "a3", "a4"):
            token = f"t{round_}{address}"
            if await guard.refusal("s", address, token, pool, now) is None:
                held[token] = address
                await guard.leased("s", address, f"v{token}", token, now + 180, now)
    assert [list(held.values()).count(a) for a in ("a1", "a2", "a3", "a4")] == [2, 2, 2, 1]
    assert await guard.refusal("s", "a4", "new", pool, now) == Refusal.POOL
    assert await guard.refusal("s", "a1", "new", pool, now) == Refusal.POOL
    assert await guard.refusal("s", "a5", "new", pool, now) is None
    # a visit holding a number keeps it; when the leases end, the rule forgets them
    assert await guard.refusal("s", "a1", "t0a1", pool, now) is None
    assert await guard.refusal("s", "a4", "new", pool, now + 181) is None
    # one address alone stops at its quarter
    for n in range(3):
        await guard.leased("s", "b", f"vb{n}", f"b{n}", now + 400, now + 200)
    assert await guard.refusal("s", "b", "b3", pool, now + 200) == Refusal.VISITOR


async def test_the_pool_rule_in_process() -> None:
    await four_addresses_ask_in_turn(VisitorGuard(20))


async def test_the_pool_rule_in_redis(redis_url: str) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)
    try:
        await four_addresses_ask_in_turn(RedisVisitorGuard(redis, 20))
    finally:
        await redis.aclose()


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
