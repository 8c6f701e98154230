"""Pooled PostgreSQL connections that died: pages go on being served.

A connection is checked before use only where it may have died unnoticed (see
``crm_core.db._check_before_use``): the driver sees a connection the server closed,
and one idle for a while is pinged. These tests kill connections for real (the server
restarted, backends terminated) and ask for pages right after; the one fault that
cannot be caused on loopback, a link that died without the driver seeing it, is
stood in for by a driver that does not notice.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from sqlalchemy import text

import crm_core.db as db
from crm_core.db import create_engine, upgrade
from tests.support.db_fixtures import private_postgres_server_fixture  # noqa: F401
from tests.support.hostile import world_served
from tests.support.pg_server import PostgresServer

pytestmark = [pytest.mark.postgres, pytest.mark.clock("2026-11-20T12:00:00+03:00")]

PAGES = ("/today", "/clients", "/calls", "/tasks")


async def _all_served(base: str, http: aiohttp.ClientSession) -> list[int]:
    """Every page at once (several pooled connections in use), their statuses."""
    async def one(path: str) -> int:
        async with http.get(base + path, allow_redirects=False) as response:
            await response.read()
            return int(response.status)
    return list(await asyncio.gather(*(one(p) for p in PAGES)))


async def _backend_pids(server: PostgresServer, database: str) -> list[int]:
    admin = await asyncpg.connect(server.dsn("postgres"))
    try:
        return [r["pid"] for r in await admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1", database)]
    finally:
        await admin.close()


async def test_pages_are_served_right_after_the_database_restarts(
        private_postgres_server: PostgresServer, tmp_path: Path) -> None:
    server = private_postgres_server
    admin = await asyncpg.connect(server.dsn("postgres"))
    await admin.execute('CREATE DATABASE "crm"')
    await admin.close()
    url = server.url("crm")
    await upgrade(url)
    async with world_served(url, tmp_path, "petrov") as (base, http):
        assert await _all_served(base, http) == [200] * len(PAGES)
        pooled = await _backend_pids(server, "crm")
        assert len(pooled) >= 2  # the pages held several connections, now in the pool
        await asyncio.to_thread(server.halt, "fast")
        await asyncio.to_thread(server.resume)
        assert await _all_served(base, http) == [200] * len(PAGES)
        # every old connection was replaced, none is left to fail a later page
        assert not set(pooled) & set(await _backend_pids(server, "crm"))
        assert await _all_served(base, http) == [200] * len(PAGES)


async def _terminate(url: str, pid: int) -> None:
    admin = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    await asyncio.sleep(0.3)  # the server's goodbye has arrived


async def test_a_connection_that_died_unnoticed_is_pinged_after_idling(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = create_engine(pg_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await _terminate(pg_url, pid)
        # Stand-in (a mock) for a link that died without the driver seeing it: on
        # loopback the server's goodbye always arrives.
        monkeypatch.setattr(asyncpg.connection.Connection, "is_closed", lambda self: False)

        monkeypatch.setattr(db, "IDLE_BEFORE_PING", 0.1)
        await asyncio.sleep(0.2)  # idle long enough: pinged, found dead, replaced
        async with engine.connect() as conn:
            new_pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert new_pid != pid

        # The same death, used within the idle time: the ping is what saved it above.
        await _terminate(pg_url, new_pid)
        monkeypatch.setattr(db, "IDLE_BEFORE_PING", 3600.0)
        with pytest.raises(Exception, match="connection is closed"):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
