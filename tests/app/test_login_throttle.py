"""The sign-in throttle (issue 17, item 8): keyed on the account as sign-in reads it,
limited per account, per IP and per (account, IP), shared through Redis between app
instances, bounded in memory without forgetting the account under attack."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from telecrm.settings import Settings
from telecrm.web.throttle import MemoryThrottle
from tests.support.browser import PASSWORD, seed_world, serve_app
from tests.support.db_fixtures import db_url_fixture  # noqa: F401
from tests.support.redis_fixtures import redis_server_fixture, redis_url_fixture  # noqa: F401

pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")


async def sign_in(base: str, username: str, password: str, ip: str | None = None) -> int:
    headers = {"X-Forwarded-For": ip} if ip else {}
    async with aiohttp.ClientSession() as http, http.post(
            f"{base}/api/login", json={"username": username, "password": password},
            headers=headers) as response:
        return response.status


async def test_the_account_is_the_name_sign_in_reads(db_url: str, tmp_path: Path) -> None:
    await seed_world(db_url, tmp_path / "monitor")
    settings = Settings(data_dir=tmp_path, database_url=db_url)
    async with serve_app(settings) as (_, base):
        for _ in range(5):
            assert await sign_in(base, "smirnova", "wrong-password") == 401
        # the review's request: a trailing space used to get a fresh budget
        assert await sign_in(base, "smirnova ", PASSWORD) == 429
        assert await sign_in(base, " SMIRNOVA", PASSWORD) == 429
        # without a trusted proxy a client's own X-Forwarded-For changes nothing
        assert await sign_in(base, "smirnova", PASSWORD, ip="203.0.113.9") == 429
        assert await sign_in(base, "petrov", PASSWORD) == 200


async def test_one_account_has_one_budget_across_addresses(db_url: str, tmp_path: Path) -> None:
    await seed_world(db_url, tmp_path / "monitor")
    settings = Settings(data_dir=tmp_path, database_url=db_url, trusted_proxies="127.0.0.1")
    async with serve_app(settings) as (_, base):
        # a botnet: twenty addresses, one guess each
        for n in range(20):
            assert await sign_in(base, "smirnova", "wrong-password", ip=f"198.51.100.{n}") == 401
        assert await sign_in(base, "smirnova", PASSWORD, ip="198.51.100.200") == 429
        # the address behind the proxy is the client's: others at the proxy are not blocked
        for _ in range(5):
            assert await sign_in(base, "petrov", "wrong-password",
                                 ip="10.9.9.9, 192.0.2.1") == 401
        assert await sign_in(base, "petrov", PASSWORD, ip="192.0.2.1") == 429
        assert await sign_in(base, "petrov", PASSWORD, ip="192.0.2.2") == 200


async def test_the_throttle_is_shared_through_redis(
        db_url: str, redis_url: str, tmp_path: Path) -> None:
    await seed_world(db_url, tmp_path / "monitor")
    settings = Settings(data_dir=tmp_path, database_url=db_url, redis_url=redis_url)
    async with serve_app(settings) as (_, first), serve_app(settings) as (_, second):
        for base in (first, second, first, second, first):
            assert await sign_in(base, "smirnova", "wrong-password") == 401
        assert await sign_in(second, "smirnova ", PASSWORD) == 429
        assert await sign_in(first, "smirnova", PASSWORD) == 429
        assert await sign_in(second, "petrov", PASSWORD) == 200


async def test_a_flood_of_names_does_not_free_the_account_under_attack() -> None:
    now = [1000.0]
    throttle = MemoryThrottle(per_pair=5, per_ip=30, per_account=20, window=900,
                              clock=lambda: now[0], max_keys=300)
    for _ in range(5):
        await throttle.failed("mgr2", "192.0.2.7")
    for n in range(5000):
        await throttle.failed(f"invented-{n}", f"198.51.{n // 250}.{n % 250}")
    assert len(throttle._failures) <= 300 + 100
    assert await throttle.retry_after("mgr2 ", "192.0.2.7") > 0
    now[0] += 901
    assert await throttle.retry_after("mgr2", "192.0.2.7") == 0
