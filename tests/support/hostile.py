"""What the hostile-input tests share: signed-in HTTP clients and a latency probe.

The probe asks for a cheap page over and over while an attack runs and reports the
99th percentile, so a test can say "the server kept answering others quickly".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import aiohttp

from telecrm.settings import Settings
from tests.support.browser import PASSWORD, seed_world, serve_app


async def login(base: str, username: str, password: str = PASSWORD) -> aiohttp.ClientSession:
    """A client signed in as ``username``, with the CSRF header every change needs."""
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.post(f"{base}/api/login",
                         json={"username": username, "password": password}) as response:
        assert response.status == 200, await response.text()
        http.headers["X-CSRF-Token"] = (await response.json())["csrf_token"]
    return http


@contextlib.asynccontextmanager
async def world_served(db_url: str, tmp_path: Path, username: str
                       ) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    """The seeded floor (``seed_world``) served on ``db_url``: its base URL and a client
    signed in as ``username``."""
    await seed_world(db_url, tmp_path / "monitor")
    settings = Settings(data_dir=tmp_path, database_url=db_url,
                        recordings_source=tmp_path / "monitor")
    async with serve_app(settings) as (_, base):
        http = await login(base, username)
        try:
            yield base, http
        finally:
            await http.close()


async def call(http: aiohttp.ClientSession, method: str, url: str,
               body: Any = None, **kwargs: Any) -> tuple[int, Any]:
    """Status and JSON body (the text when the answer is not JSON)."""
    async with http.request(method, url, json=body, **kwargs) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def latencies_while(attack: Awaitable[Any], url: str, *, pause: float = 0.02
                          ) -> tuple[Any, list[float]]:
    """Run ``attack`` while another client asks for ``url``; the attack's result and the
    other client's response times (seconds), each request on a fresh connection."""
    samples: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        async with aiohttp.ClientSession() as http:
            while not done.is_set():
                started = time.perf_counter()
                async with http.get(url) as response:
                    await response.read()
                    assert response.status < 500
                samples.append(time.perf_counter() - started)
                await asyncio.sleep(pause)

    prober = asyncio.create_task(probe())
    await asyncio.sleep(0.1)
    try:
        result = await attack
        await asyncio.sleep(0.1)
    finally:
        done.set()
        await prober
    return result, samples
