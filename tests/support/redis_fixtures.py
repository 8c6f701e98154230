"""Redis fixtures: the Redis-backed parts run against a real server started here.

- ``redis_server`` (session): one throwaway ``redis-server`` for the run, started on
  first use. If it cannot start, the tests are skipped with the reason, except under
  ``CI=true`` where they fail: CI must never go green by skipping.
- ``redis_url`` (function): the URL of a database flushed for this test.

Import them under their ``*_fixture`` names so a test's ``redis_url`` parameter does
not shadow an import (ruff F811):
``from tests.support.redis_fixtures import redis_server_fixture, redis_url_fixture  # noqa: F401``.
``conftest.py`` can use the short aliases: ``from tests.support.redis_fixtures import redis_url,
redis_server``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import NoReturn

import pytest

from tests.support.redis_server import RedisServer, RedisUnavailable


def _unavailable(reason: str) -> NoReturn:
    message = f"Redis server unavailable: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: Redis tests must run)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session", name="redis_server")
def redis_server_fixture() -> Iterator[RedisServer]:
    """A real Redis server for the session (skips, or fails under CI=true, if it can't)."""
    try:
        server = RedisServer().start()
    except RedisUnavailable as exc:
        _unavailable(str(exc))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(name="redis_url")
async def redis_url_fixture(redis_server: RedisServer) -> AsyncIterator[str]:
    """URL of the session server, emptied for this test (and restarted if a test stopped it)."""
    from redis.asyncio import Redis

    redis_server.start()
    url = redis_server.url(0)
    client = Redis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
    yield url


# Aliases for conftest.py (``from tests.support.redis_fixtures import redis_server, redis_url``).
redis_server = redis_server_fixture
redis_url = redis_url_fixture
