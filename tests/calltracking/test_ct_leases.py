"""Lease rules of dynamic call tracking, on the in-process store and on a real Redis.

Time is passed in, so every scenario is a replay at chosen moments; the same
scenario runs on both stores (the engine is the specification).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from crm_core.calltracking.leases import (
    LeaseEngine,
    LeaseStore,
    MemoryLeaseStore,
    Outcome,
    PoolRules,
)
from telecrm.calltracking.lease_store import RedisLeaseStore

POOL = ["+74951110011", "+74951110012"]
RULES = PoolRules(hold=180, cooldown=60)
T0 = 1_795_000_000.0


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[LeaseStore]:
    if request.param == "memory":
        yield MemoryLeaseStore()
        return
    server = request.getfixturevalue("redis_server")  # sync fixture: usable from here
    server.start()
    redis_store = RedisLeaseStore.from_url(server.url(0))
    await redis_store.redis.flushdb()
    try:
        yield redis_store
    finally:
        await redis_store.close()


async def lease(store: LeaseStore, session: str, at: float, rules: PoolRules = RULES,
                pool: list[str] = POOL) -> tuple[str | None, Outcome]:
    decision = await store.acquire("shop.example", pool, rules, session, T0 + at)
    return decision.number, decision.outcome


async def test_concurrent_visits_get_different_numbers(store: LeaseStore) -> None:
    a, b = await lease(store, "a", 0), await lease(store, "b", 1)
    assert a[1] == b[1] == Outcome.LEASED
    assert {a[0], b[0]} == set(POOL)
    assert await store.live("shop.example", T0 + 2) == 2


async def test_heartbeat_keeps_the_number_past_the_hold(store: LeaseStore) -> None:
    first, _ = await lease(store, "a", 0)
    for at in (60, 120, 180, 240):  # heartbeats every 60 s
        assert await lease(store, "a", at) == (first, Outcome.RENEWED)
    # b arrives while a is still active: he gets the other number, never a's
    assert (await lease(store, "b", 250))[0] != first


async def test_expiry_after_hold_then_cooldown_before_reuse(store: LeaseStore) -> None:
    single = ["+74951110011"]
    assert (await lease(store, "a", 0, pool=single))[0] == single[0]
    # within the hold: exhausted for others
    assert await lease(store, "b", 179, pool=single) == (None, Outcome.FALLBACK)
    # hold over (180 s after the last activity), but the number rests 60 s
    assert await lease(store, "b", 200, pool=single) == (None, Outcome.FALLBACK)
    assert await lease(store, "b", 239, pool=single) == (None, Outcome.FALLBACK)
    assert await lease(store, "b", 241, pool=single) == (single[0], Outcome.LEASED)


async def test_returning_visitor_gets_his_number_back(store: LeaseStore) -> None:
    first, _ = await lease(store, "a", 0)
    await lease(store, "b", 1)
    # a leaves; his lease ends at 180 and the number cools down until 240
    assert await lease(store, "a", 200) == (first, Outcome.RETURNED)  # his own, even cooling
    # the returning visitor's number taken by someone else: he gets another one
    await lease(store, "a", 200)
    assert (await lease(store, "c", 1000))[1] == Outcome.LEASED
    assert (await lease(store, "d", 1001))[1] == Outcome.LEASED
    number, outcome = await lease(store, "a", 1002)
    assert (number, outcome) == (None, Outcome.FALLBACK)


async def test_least_recently_used_number_is_chosen(store: LeaseStore) -> None:
    await lease(store, "a", 0)  # takes POOL[0] (never used numbers in pool order)
    await lease(store, "b", 100)  # POOL[1]
    # both expire (a at 180, b at 280) and cool down (240, 340); c at 400 gets the one
    # that rested longest: a's
    assert (await lease(store, "c", 400))[0] == POOL[0]


async def test_exhausted_pool_falls_back_and_reports_live_count(store: LeaseStore) -> None:
    await lease(store, "a", 0)
    await lease(store, "b", 0)
    decision = await store.acquire("shop.example", POOL, RULES, "c", T0 + 5)
    assert decision.number is None and decision.outcome == Outcome.FALLBACK
    assert decision.live == 2


async def test_reuse_of_live_leases_when_the_site_allows_it(store: LeaseStore) -> None:
    rules = PoolRules(hold=180, cooldown=60, reuse_live=True)
    a, _ = await lease(store, "a", 0, rules)
    await lease(store, "b", 10, rules)
    shared, outcome = await lease(store, "c", 20, rules)
    assert outcome == Outcome.SHARED and shared == a  # the least recently active lease
    # sharing does not take the number from a
    assert await lease(store, "a", 30, rules) == (a, Outcome.RENEWED)


async def test_sites_are_separate(store: LeaseStore) -> None:
    one = await store.acquire("one.example", ["+74951110021"], RULES, "a", T0)
    two = await store.acquire("two.example", ["+74951110022"], RULES, "a", T0)
    assert (one.number, two.number) == ("+74951110021", "+74951110022")


async def test_many_visitors_at_once_never_share_a_number(redis_url: str) -> None:
    """Two web processes (two Redis clients) lease concurrently: no number twice."""
    pool = [f"+7495111{i:04d}" for i in range(50)]
    stores = [RedisLeaseStore.from_url(redis_url) for _ in range(2)]
    try:
        decisions = await asyncio.gather(*(
            stores[i % 2].acquire("shop.example", pool, RULES, f"s{i}", T0) for i in range(80)))
    finally:
        for s in stores:
            await s.close()
    numbers = [d.number for d in decisions if d.number is not None]
    assert len(numbers) == 50 and len(set(numbers)) == 50
    assert sum(d.outcome == Outcome.FALLBACK for d in decisions) == 30


def test_engine_replay_reports_releases() -> None:
    engine = LeaseEngine(POOL, RULES)
    engine.visit("a", 0)
    engine.visit("b", 100)
    assert engine.expire(200) == [(POOL[0], "a")]
    assert engine.holder(POOL[1], 200) == "b"
    assert engine.expire(400) == [(POOL[1], "b")]
    assert engine.live(400) == 0
