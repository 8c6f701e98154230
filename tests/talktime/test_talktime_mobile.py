"""A call forwarded to a manager's mobile and answered there is his talk time, on the
board, in the report and on the command line (SQLite and PostgreSQL).

The capture is ``tests/captures/parties/mobile_answer.ami``: a real inbound call whose
manager leg was edited into the carrier trunk dialling +7 916 000-00-01 (see that
folder's README.md). The users are entered with ``telecrm users add``, as an
administrator would; the clock stands half an hour after the call, on the same evening.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp
import pytest

from telecrm.settings import Settings
from tests.support.browser import serve_app
from tests.support.db_fixtures import db_url_fixture  # noqa: F401
from tests.support.live import exported_calls, telecrm
from tests.support.scenarios import CAPTURES

# The call rang at 22:31 Moscow time on 23 November 2026.
pytestmark = pytest.mark.clock("2026-11-23T23:00:00+03:00")
DAY = "2026-11-23"
PASSWORD = "mobile-password"


def row_of(rows: list[dict], extension: str) -> dict:
    return next(r for r in rows if r["extension"] == extension)


async def test_an_answer_on_his_mobile_is_his_talk_time(db_url: str, tmp_path: Path) -> None:
    for args in (["ivanov", "--name", "Иван Иванов", "--extension", "201",
                  "--mobile", "+7 916 000-00-01"],
                 ["petrov", "--name", "Пётр Петров", "--extension", "101"],
                 ["root", "--role", "admin"]):
        telecrm("users", "add", *args, "--password", PASSWORD, "--since", "2026-01-01",
                "--db", db_url)
    telecrm("ami-replay", str(CAPTURES / "parties" / "mobile_answer.ami"), "--db", db_url)
    (call,) = exported_calls(db_url)
    assert (call["status"], call["managers"]) == ("answered", ["201"])
    talk = call["talk_seconds"]
    assert talk > 1

    # The command line's day report.
    rows = json.loads(telecrm("talktime", "--date", DAY, "--format", "json",
                              "--db", db_url).stdout)
    ivanov = row_of(rows, "201")
    assert ivanov["talk_seconds"] == pytest.approx(talk, abs=0.01) and ivanov["calls"] == 1
    assert (row_of(rows, "101")["talk_seconds"], row_of(rows, "101")["calls"]) == (0, 0), \
        "the desk phone rang nowhere: the call is his, not petrov's"

    settings = Settings(data_dir=tmp_path, database_url=db_url, password_hashing="light")
    async with serve_app(settings) as (_, base):
        for who in ("ivanov", "root"):
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                async with http.post(f"{base}/api/login", json={
                        "username": who, "password": PASSWORD}) as response:
                    assert response.status == 200
                # The live board of today (the clock is that evening) ...
                async with http.get(f"{base}/api/talktime/live") as response:
                    board = row_of((await response.json())["managers"], "201")
                # ... the day in the fixed shape, and the period report.
                async with http.get(f"{base}/api/talktime?date={DAY}") as response:
                    day = row_of(await response.json(), "201")
                async with http.get(f"{base}/api/talktime/report?from={DAY}&to={DAY}") as r:
                    report = row_of((await r.json())["managers"], "201")
                for row in (board, day, report):
                    assert row["talk_seconds"] == pytest.approx(talk, abs=0.01), (who, row)
                    assert row["calls"] == 1
                # The talk-time page: his row says one call on that day.
                async with http.get(f"{base}/talktime?date={DAY}") as response:
                    page = await response.text()
                found = re.search(r'Иван Иванов <span class="muted">201</span></td>\s*'
                                  r'<td data-label="Минут">(\d+)</td>\s*'
                                  r'<td data-label="Разговоров">(\d+)</td>', page)
                assert found is not None, page
                assert found.groups() == (str(int(talk // 60)), "1")
