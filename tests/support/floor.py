"""The seeded sales floor served by the real app, with a signed-in HTTP client per user.

Route tests of several features (the card, sales pages) sign people in by name and
read the database behind the pages; the feature's test subclasses :class:`Floor` with
the requests it makes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from crm_core.db import create_engine, session_factory
from telecrm.settings import Settings
from tests.support.browser import PASSWORD, World, seed_world, serve_app

F = TypeVar("F", bound="Floor")


class Floor:
    """Signed-in HTTP clients by username, and a reader of the database."""

    def __init__(self, base: str, db_url: str, world: World) -> None:
        self.base, self.db_url, self.world = base, db_url, world
        self.http: dict[str, aiohttp.ClientSession] = {}
        self.csrf: dict[str, str] = {}

    async def login(self, who: str) -> aiohttp.ClientSession:
        """``who``'s client, signed in on first use (its CSRF token in ``self.csrf``)."""
        if who not in self.http:
            http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
            async with http.post(f"{self.base}/api/login",
                                 json={"username": who, "password": PASSWORD}) as response:
                assert response.status == 200
                self.csrf[who] = (await response.json())["csrf_token"]
            self.http[who] = http
        return self.http[who]

    async def call(self, who: str | None, method: str, path: str, body: Any = None,
                   *, csrf: bool = True) -> tuple[int, Any]:
        """A JSON request as ``who`` (None: nobody signed in), with his CSRF token unless
        ``csrf=False``; the status and the JSON (or text) answer."""
        if who is None:
            async with aiohttp.ClientSession() as http, http.request(
                    method, self.base + path, json=body) as response:
                return response.status, await response.json()
        http = await self.login(who)
        headers = {"X-CSRF-Token": self.csrf[who]} if csrf else {}
        async with http.request(method, self.base + path, json=body,
                                headers=headers) as response:
            kind = response.content_type
            return response.status, (await response.json() if kind == "application/json"
                                     else await response.text())

    async def form(self, who: str, path: str, data: dict[str, str]) -> tuple[int, str]:
        """A page's form posted as ``who`` (signed in, with his CSRF token)."""
        await self.call(who, "GET", "/api/me")
        async with self.http[who].post(self.base + path,
                                       data={"csrf_token": self.csrf[who], **data}) as r:
            return r.status, await r.text()

    async def rows(self, stmt: Any) -> list[Any]:
        engine = create_engine(self.db_url)
        try:
            async with session_factory(engine)() as session:
                return list((await session.execute(stmt)).all())
        finally:
            await engine.dispose()

    async def close(self) -> None:
        for http in self.http.values():
            await http.close()


@contextlib.asynccontextmanager
async def served_floor(kind: type[F], db_url: str, tmp_path: Path) -> AsyncIterator[F]:
    """The seeded world (tests/support/browser.py) behind a running app."""
    world = await seed_world(db_url, tmp_path / "recordings")
    settings = Settings(data_dir=tmp_path, database_url=db_url,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (_, base):
        crm = kind(base, db_url, world)
        try:
            yield crm
        finally:
            await crm.close()
