"""Bulk requests cannot hold the write lock: ``POST /api/clients/reassign`` with the
review's ``[1]*6000`` (issue 17, item 6) is refused before any transaction."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from telecrm.settings import Settings
from tests.support.browser import seed_world, serve_app
from tests.support.db_fixtures import db_url_fixture, postgres_server_fixture  # noqa: F401
from tests.support.hostile import call, login

pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")


async def test_a_huge_reassign_is_refused_fast_and_sign_in_goes_on(
        db_url: str, tmp_path: Path) -> None:
    world = await seed_world(db_url, tmp_path / "monitor")
    settings = Settings(data_dir=tmp_path, database_url=db_url,
                        recordings_source=tmp_path / "monitor")
    async with serve_app(settings) as (_, base):
        petrov, boss = await login(base, "petrov"), await login(base, "sokolova")
        url = f"{base}/api/clients/reassign"
        try:
            async def attack() -> list[tuple[int, object]]:
                return list(await asyncio.gather(*(
                    call(petrov, "POST", url, {"client_ids": [1] * 6000,
                                               "owner_id": world.users["petrov"]})
                    for _ in range(5))))

            async def sign_in() -> float:
                started = time.perf_counter()
                other = await login(base, "smirnova")
                await other.close()
                return time.perf_counter() - started

            started = time.perf_counter()
            answers, signed_in = await asyncio.gather(attack(), sign_in())
            assert time.perf_counter() - started < 2
            assert signed_in < 2
            for status, body in answers:
                assert status == 400
                assert body == {"error": "За один раз можно передать не больше 1000 клиентов.",
                                "code": "sales.client.reassign_too_many"}

            # the role is checked before any transaction: a manager's short list is a 403
            mine = world.clients["101"]
            status, body = await call(petrov, "POST", url, {
                "client_ids": [mine, mine], "owner_id": world.users["smirnova"]})
            assert status == 403 and body["code"] == "sales.bosses_only"
            # another team's client is not found, in one query, and nothing moves
            theirs = world.clients["103"]
            status, body = await call(boss, "POST", url, {
                "client_ids": [mine, theirs], "owner_id": world.users["smirnova"]})
            assert status == 404
            status, body = await call(boss, "POST", url, {
                "client_ids": [mine, mine, mine], "owner_id": world.users["smirnova"]})
            assert (status, body["reassigned"]) == (200, 1)
        finally:
            await petrov.close()
            await boss.close()
