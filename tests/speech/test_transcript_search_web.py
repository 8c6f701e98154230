"""``GET /api/transcripts/search`` and its page on SQLite and PostgreSQL: inflected forms,
filters, and who finds what (a manager never finds another team's call).

The floor of tests/support/browser.py with transcripts from tests/speech/search_world.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from telecrm.settings import Settings
from tests.speech.search_world import seed_transcripts
from tests.speech.test_speech_web import call, login
from tests.support.browser import seed_world as seed_floor
from tests.support.browser import serve_app
from tests.support.db_fixtures import db_url_fixture  # noqa: F401

pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")


async def hits(http: aiohttp.ClientSession, base: str, query: str) -> tuple[int, Any]:
    return await call(http, "GET", f"{base}/api/transcripts/search?{query}")


def calls_of(body: Any) -> list[int]:
    return [h["call_id"] for h in body["hits"]]


async def test_search_finds_inflected_forms_within_what_each_user_may_see(
        db_url: str, tmp_path: Path) -> None:
    world = await seed_floor(db_url, tmp_path / "monitor")
    await seed_transcripts(db_url, world)
    c101, c102, c103 = (world.calls[n] for n in ("romashka_101", "sidorov_102", "vector_103b"))
    settings = Settings(data_dir=tmp_path, database_url=db_url,
                        recordings_source=tmp_path / "monitor")
    opened: list[aiohttp.ClientSession] = []
    async with serve_app(settings) as (_, base):
        try:
            petrov, kuznetsov, boss, admin, marketer = [
                await login(base, name)
                for name in ("petrov", "kuznetsov", "sokolova", "admin", "marketer")]
            opened += [petrov, kuznetsov, boss, admin, marketer]

            # «скидку» finds «скидки» (101's manager) and «скидка» (103's client): the admin
            # sees both, newest transcript first, with the words found marked
            status, body = await hits(admin, base, "q=" + quote("скидку"))
            assert status == 200, body
            assert calls_of(body) == [c103, c101]
            offer = body["hits"][1]
            assert offer["speaker"] == "manager" and offer["start"] == 12.0
            assert offer["text"] == "могу предложить вам скидки на годовой тариф"
            assert [f["text"] for f in offer["fragments"] if f["hit"]] == ["скидки"]
            assert offer["manager"] == {"extension": "101", "name": "Иван Петров"}
            assert offer["client"]["name"] == "ООО Ромашка"
            assert offer["url"] == f"/calls/{c101}#t=12"
            assert offer["when"].count(".") == 2  # 20.11.2026 10:00, in Russian order

            # the speaker filter: only what clients said
            status, body = await hits(admin, base, "speaker=client&q=" + quote("конкурент"))
            assert calls_of(body) == [c103, c102]
            status, body = await hits(admin, base, "speaker=manager&q=" + quote("конкурент"))
            assert calls_of(body) == []

            # manager, team, client and period filters (the admin may pick any)
            team_of_103 = await team_id(admin, base, "Второй отдел")
            status, body = await hits(admin, base, f"team={team_of_103}&q=" + quote("скидок"))
            assert calls_of(body) == [c103]
            status, body = await hits(admin, base, f"manager={world.users['petrov']}&q="
                                      + quote("скидок"))
            assert calls_of(body) == [c101]
            status, body = await hits(admin, base, "client_name=" + quote("ромаш") + "&q="
                                      + quote("скидок"))
            assert calls_of(body) == [c101]
            status, body = await hits(admin, base, "from=2199-01-01&q=" + quote("скидок"))
            assert calls_of(body) == []

            # petrov (101) tries to find 103's call by its words: nothing, and no filter
            # brings it; kuznetsov (103) likewise cannot reach 101's or 102's calls
            status, body = await hits(petrov, base, "q=" + quote("расторгнуть"))
            assert status == 200 and calls_of(body) == []
            status, body = await hits(petrov, base, "q=" + quote("скидка"))
            assert calls_of(body) == [c101]
            status, body = await hits(petrov, base, f"manager={world.users['kuznetsov']}&q="
                                      + quote("скидка"))
            assert status == 400 and body["code"] == "calls.unknown_manager"
            status, body = await hits(petrov, base, f"team={team_of_103}&q=" + quote("скидка"))
            assert status == 400 and body["code"] == "calls.unknown_team"
            status, body = await hits(petrov, base,
                                      f"client={world.clients['103']}&q=" + quote("скидка"))
            assert status == 400 and body["code"] == "calls.unknown_client"
            status, body = await hits(kuznetsov, base, "q=" + quote("конкурентов"))
            assert calls_of(body) == [c103]
            status, body = await hits(kuznetsov, base, "q=" + quote("предложить скидки"))
            assert calls_of(body) == []

            # the supervisor: his team's calls, not the other team's
            status, body = await hits(boss, base, "q=" + quote("конкуренты"))
            assert calls_of(body) == [c102]

            # a marketer reads no transcripts; nobody signed out reads anything
            status, body = await hits(marketer, base, "q=" + quote("скидка"))
            assert status == 403
            async with aiohttp.ClientSession() as anonymous, anonymous.get(
                    f"{base}/api/transcripts/search?q=x") as response:
                assert response.status == 401

            # nonsense is refused in Russian
            status, body = await hits(admin, base, "q=")
            assert status == 400 and "Введите слова" in body["error"]
            status, body = await hits(admin, base, "speaker=boss&q=x")
            assert status == 400 and body["code"] == "speech.search.bad_speaker"

            # pages: one hit each, no repeats
            status, first = await hits(admin, base, "limit=1&q=" + quote("скидок"))
            status, second = await hits(admin, base, f"limit=1&cursor={first['next']}&q="
                                        + quote("скидок"))
            assert calls_of(first) + calls_of(second) == [c103, c101]
            assert second["next"] is None

            # the page: the phrase with the word marked, a button playing from its second
            async with petrov.get(f"{base}/transcripts/search?q=" + quote("скидку")) as page:
                html = await page.text()
            assert page.status == 200
            assert "<mark>скидки</mark>" in html and "▶ 0:12" in html
            assert "скидка больше" not in html  # 103's client, another team
            async with marketer.get(f"{base}/transcripts/search?q=x") as page:
                assert page.status == 403
        finally:
            for http in opened:
                await http.close()


async def team_id(http: aiohttp.ClientSession, base: str, name: str) -> int:
    async with http.get(f"{base}/transcripts/search") as page:
        html = await page.text()
    marker = f">{name}</option>"
    before = html[:html.index(marker)]
    return int(before[before.rindex('value="') + 7:].split('"')[0])
