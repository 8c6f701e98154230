"""Phrase dictionaries on SQLite and PostgreSQL: the form's rules, who edits them, and the
report's counts per manager and week on seeded transcribed calls, with the drill-down.

The floor of tests/support/browser.py, its calls on Wednesday 18.11.2026, with the
transcripts of tests/speech/search_world.py, plus two calls of 101 a week earlier.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from crm_core.audit import AuditLog
from crm_core.calls.services import record_call
from crm_core.db import create_engine, session_factory
from crm_core.speech.transcripts import save_transcript
from telecrm.settings import Settings
from tests.speech.search_world import seed_transcripts, transcript
from tests.speech.test_speech_web import call, login
from tests.support.browser import CLIENTS, HOOKS, World, _call, seed_world, serve_app
from tests.support.db_fixtures import db_url_fixture  # noqa: F401

pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")
CALLS_AT = datetime(2026, 11, 18, 7, 0, tzinfo=UTC)  # Wednesday, 10:00 in Moscow
PERIOD = "from=2026-11-09&to=2026-11-22"  # two whole weeks, Monday to Sunday


async def seed_last_week(db_url: str, world: World) -> None:
    """Two calls of 101 a week earlier: one where he promises a discount, one without."""
    engine = create_engine(db_url)
    try:
        sessions = session_factory(engine, writer=True)
        for name, minutes, text in (
                ("old_discount", 0, "так и быть дам вам скидку десять процентов"),
                ("old_plain", 30, "перезвоню вам завтра утром")):
            async with sessions() as session, session.begin():
                data = _call(f"w-{minutes}", "outbound", "answered", CLIENTS[0][1], "101",
                             CALLS_AT - timedelta(days=7, minutes=-minutes), 40.0)
                world.calls[name] = (await record_call(session, data, hooks=HOOKS)).id
                await save_transcript(session, world.calls[name],
                                      transcript([(text, 2.0)], [("хорошо", 9.0)]))
    finally:
        await engine.dispose()


def row_of(report: dict[str, Any], extension: str) -> dict[str, Any]:
    return next(m for m in report["managers"] if m["manager"]["extension"] == extension)


def counts(entry: dict[str, Any]) -> tuple[int, int, int]:
    return entry["calls"], entry["said"], entry["not_said"]


async def test_dictionaries_count_calls_said_and_not_said_per_manager_and_week(
        db_url: str, tmp_path: Path) -> None:
    world = await seed_world(db_url, tmp_path / "monitor", calls_at=CALLS_AT)
    await seed_transcripts(db_url, world)
    await seed_last_week(db_url, world)
    settings = Settings(data_dir=tmp_path, database_url=db_url,
                        recordings_source=tmp_path / "monitor")
    opened: list[aiohttp.ClientSession] = []
    async with serve_app(settings) as (_, base):
        try:
            boss, petrov, admin, marketer = [
                await login(base, n) for n in ("sokolova", "petrov", "admin", "marketer")]
            opened += [boss, petrov, admin, marketer]

            # -- editing: supervisors and admins; phrases cleaned; names unique; audited
            status, body = await call(petrov, "POST", f"{base}/api/dictionaries",
                                      {"name": "Мой", "phrases": ["скидка"]})
            assert status == 403
            status, body = await call(boss, "POST", f"{base}/api/dictionaries",
                                      {"name": "Скидки", "phrases": ["  ", "!!!"]})
            assert status == 400 and body["code"] == "speech.dictionaries.phrase_no_words"
            status, discounts = await call(boss, "POST", f"{base}/api/dictionaries", {
                "name": "Обещания скидок", "phrases": ["скидка", "  Скидка ", "дам скидку"]})
            assert status == 201, discounts
            assert discounts["phrases"] == ["скидка", "дам скидку"]
            status, body = await call(admin, "POST", f"{base}/api/dictionaries",
                                      {"name": "обещания  скидок", "phrases": ["x"]})
            assert status == 409 and "уже есть" in body["error"]
            status, rivals = await call(admin, "POST", f"{base}/api/dictionaries",
                                        {"name": "Конкуренты", "phrases": ["конкурент"]})
            assert status == 201
            did = discounts["id"]

            # -- the report: per manager, the calls where a phrase was said and not said
            url = f"{base}/api/dictionaries/{did}/report?{PERIOD}"
            status, report = await call(admin, "GET", url + "&speaker=manager")
            assert status == 200, report
            assert report["weeks"] == ["2026-11-09", "2026-11-16"]
            # 101 promised a discount on 18.11 and on 11.11; one call of 11.11 had none
            assert counts(row_of(report, "101")) == (3, 2, 1)
            assert [counts(w) for w in row_of(report, "101")["weeks"]] == [(2, 1, 1), (1, 1, 0)]
            assert counts(row_of(report, "102")) == (1, 0, 1)
            # 103's client spoke of a discount, his manager did not
            assert counts(row_of(report, "103")) == (1, 0, 1)
            assert counts(report["total"]) == (5, 2, 3)
            status, report = await call(admin, "GET", url + "&speaker=client")
            assert counts(row_of(report, "103")) == (1, 1, 0)
            assert counts(row_of(report, "101")) == (3, 0, 3)
            status, report = await call(admin, "GET", url)  # either side
            assert counts(report["total"]) == (5, 3, 2)

            # the supervisor sees his team's managers only, a manager himself only
            status, report = await call(boss, "GET", url)
            assert [m["manager"]["extension"] for m in report["managers"]] == ["101", "102"]
            status, report = await call(petrov, "GET", url)
            assert [m["manager"]["name"] for m in report["managers"]] == ["Иван Петров"]
            status, report = await call(petrov, "GET",
                                        f"{base}/api/dictionaries/{rivals['id']}/report?"
                                        f"{PERIOD}&speaker=client")
            assert counts(report["total"]) == (3, 0, 3)  # 102's and 103's calls stay unseen
            status, body = await call(marketer, "GET", url)
            assert status == 403

            # -- the drill-down: the calls behind a cell, with the phrase that said it
            status, said = await call(admin, "GET", f"{base}/api/dictionaries/{did}/calls?"
                                      f"{PERIOD}&speaker=manager&manager=101&week=2026-11-09")
            assert [c["call_id"] for c in said] == [world.calls["old_discount"]]
            phrase = said[0]["phrase"]
            assert phrase["start"] == 2.0 and phrase["speaker"] == "manager"
            assert [f["text"] for f in phrase["fragments"] if f["hit"]] == ["дам", "скидку"]
            status, unsaid = await call(admin, "GET", f"{base}/api/dictionaries/{did}/calls?"
                                        f"{PERIOD}&speaker=manager&manager=101&said=0")
            assert [c["call_id"] for c in unsaid] == [world.calls["old_plain"]]
            assert unsaid[0]["phrase"] is None
            status, body = await call(petrov, "GET", f"{base}/api/dictionaries/{did}/calls?"
                                      f"{PERIOD}&speaker=client&manager=103")
            assert status == 200 and body == []  # another team's calls, even asked by name

            # -- a change counts at once in past weeks; archiving hides it; all audited
            status, body = await call(boss, "PATCH", f"{base}/api/dictionaries/{did}",
                                      {"phrases": ["перезвонить"]})
            assert status == 200 and body["phrases"] == ["перезвонить"]
            status, report = await call(admin, "GET", url + "&speaker=manager")
            assert counts(row_of(report, "101")) == (3, 1, 2)
            status, body = await call(boss, "PATCH", f"{base}/api/dictionaries/{did}",
                                      {"archived": True})
            assert status == 200 and body["archived"] is True
            status, listed = await call(petrov, "GET", f"{base}/api/dictionaries")
            assert [d["name"] for d in listed] == ["Конкуренты"]

            # -- the pages: a report with its bars and a drill-down with the phrase marked
            async with boss.get(f"{base}/dictionaries/{rivals['id']}?{PERIOD}"
                                "&speaker=client") as page:
                html = await page.text()
            assert page.status == 200
            assert 'class="bars"' in html and "Ольга Смирнова" in html
            assert "16.11–22.11" in html and "Алексей Кузнецов" not in html
            async with boss.get(f"{base}/dictionaries/{rivals['id']}/calls?{PERIOD}"
                                "&speaker=client&manager=102") as page:
                html = await page.text()
            assert "<mark>конкурентом</mark>" in html and "▶ 0:03" in html
            async with marketer.get(f"{base}/dictionaries") as page:
                assert page.status == 403
        finally:
            for http in opened:
                await http.close()

    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            entries = list(await session.scalars(select(AuditLog).where(
                AuditLog.entity == "phrase_dictionary").order_by(AuditLog.id)))
    finally:
        await engine.dispose()
    assert [(e.action, sorted(e.changes)) for e in entries] == [
        ("create", ["name", "phrases"]), ("create", ["name", "phrases"]),
        ("update", ["phrases"]), ("update", ["archived"])]
