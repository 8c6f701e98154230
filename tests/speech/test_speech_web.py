"""The QC queue, decisions (fines), metrics, stored scripts and transcripts over HTTP.

The real app on SQLite and PostgreSQL, the world of tests/support/browser.py (a sales team:
managers 101 and 102 and their supervisor; 103 in another team), real KKP checks of
hand-made Russian transcripts.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from crm_core.audit import AuditLog
from crm_core.calls.models import Call
from crm_core.db import create_engine, session_factory
from crm_core.people.models import Team
from crm_core.speech import scripts as kkp_scripts
from crm_core.speech.transcripts import save_kkp_result, save_transcript
from speech.kkp import check
from speech.script import parse_script_text
from telecrm.settings import Settings
from tests.support.browser import PASSWORD, World, fake_wav, seed_world, serve_app
from tests.support.db_fixtures import db_url_fixture  # noqa: F401

# Dates below are in November 2026: the tests run on a Friday of that month.
pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")

SCRIPT = """\
name: Холодный звонок
stages:
  - id: greeting
    title: Приветствие
    phrases: ["добрый день", "меня зовут"]
  - id: needs
    title: Выявление потребностей
    phrases: ["какие задачи"]
forbidden:
  - id: slang
    phrases: ["короче"]
"""


def words(text: str, start: float, conf: float = 0.95) -> list[dict[str, Any]]:
    return [{"word": w, "start": round(start + 0.4 * i, 2), "end": round(start + 0.4 * i + 0.3, 2),
             "conf": conf} for i, w in enumerate(text.split())]


# 101: greets, asks no questions, says a forbidden word -> two violations
BAD = {"duration": 20.0, "model": "vosk-model-small-ru-0.22", "speakers": {
    "manager": words("добрый день меня зовут иван", 0.5) + words("короче давайте так", 9.0),
    "client": words("здравствуйте слушаю вас", 3.5)}}
# 102: compliant
GOOD = {"duration": 12.0, "model": "vosk-model-small-ru-0.22", "speakers": {
    "manager": words("добрый день меня зовут ольга", 0.5) + words("какие задачи у вас", 6.0),
    "client": words("добрый день", 3.5)}}


async def seed_results(db: str, world: World) -> dict[str, int]:
    """A stored script for the sales team (fine 500) and results of two calls."""
    engine = create_engine(db)
    ids: dict[str, int] = {}
    try:
        async with session_factory(engine, writer=True)() as session:
            team = await session.scalar(select(Team).where(Team.name == "Отдел продаж"))
            call = await session.get(Call, world.calls["romashka_101"])
            row = await kkp_scripts.add_version(
                session, name="Холодный звонок", text=SCRIPT, team_id=team.id, stage=None,
                effective_from=call.started_at - timedelta(days=1), fine_amount=500,
                actor="test")
            script = parse_script_text(SCRIPT)
            for name, transcript in (("romashka_101", BAD), ("sidorov_102", GOOD)):
                call_id = world.calls[name]
                await save_transcript(session, call_id, transcript)
                result = await save_kkp_result(session, call_id, script.name, row.digest,
                                               check(script, transcript), script_id=row.id)
                ids[name] = result.id
            await session.commit()
    finally:
        await engine.dispose()
    return ids


async def login(base: str, username: str) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.post(f"{base}/api/login",
                         json={"username": username, "password": PASSWORD}) as response:
        assert response.status == 200, await response.text()
        http.headers["X-CSRF-Token"] = (await response.json())["csrf_token"]
    return http


async def call(http: aiohttp.ClientSession, method: str, url: str,
               body: Any = None) -> tuple[int, Any]:
    async with http.request(method, url, json=body) as response:
        return response.status, await response.json()


SignIn = Callable[[str], Awaitable[aiohttp.ClientSession]]


@contextlib.asynccontextmanager
async def qc_floor(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[str, SignIn]]:
    """The app on the seeded floor (recordings under ``tmp_path/monitor``): its base URL
    and a sign-in by username; every signed-in client is closed at the end."""
    settings = Settings(data_dir=tmp_path, database_url=db_url,
                        recordings_source=tmp_path / "monitor")
    sessions: list[aiohttp.ClientSession] = []
    async with serve_app(settings) as (_, base):
        async def as_user(name: str) -> aiohttp.ClientSession:
            sessions.append(await login(base, name))
            return sessions[-1]
        try:
            yield base, as_user
        finally:
            for http in sessions:
                await http.close()


async def test_qc_queue_decisions_metrics_scripts_and_transcripts(
        db_url: str, tmp_path: Path) -> None:
    world = await seed_world(db_url, tmp_path / "monitor")
    (tmp_path / "monitor" / world.recording).write_bytes(fake_wav(seconds=20))
    results = await seed_results(db_url, world)
    bad, good = results["romashka_101"], results["sidorov_102"]
    async with qc_floor(db_url, tmp_path) as (base, as_user):
        boss, petrov = await as_user("sokolova"), await as_user("petrov")
        other, marketer = await as_user("kuznetsov"), await as_user("marketer")

        # -- the supervisor's queue: his team, lowest score first, with filters
        status, rows = await call(boss, "GET", f"{base}/api/kkp/queue")
        assert status == 200, rows
        assert [r["id"] for r in rows] == [bad, good]
        assert rows[0]["score"] < rows[1]["score"] == 100
        assert rows[0]["manager"] == "101" and rows[0]["violations"] == 2
        status, rows = await call(boss, "GET", f"{base}/api/kkp/queue?manager=102")
        assert [r["id"] for r in rows] == [good]
        status, rows = await call(boss, "GET", f"{base}/api/kkp/queue?needs_review=1")
        assert [r["id"] for r in rows] == [bad]  # a missing stage in a short call
        future = "/api/kkp/queue?since=2199-01-01&until=2199-01-02"
        assert (await call(boss, "GET", base + future))[1] == []

        # -- the evidence: quote, seconds, confidence
        status, detail = await call(boss, "GET", f"{base}/api/kkp/results/{bad}")
        assert status == 200 and detail["may_decide"] is True
        kinds = {v["kind"]: v for v in detail["violations"]}
        assert set(kinds) == {"missing_stage", "forbidden"}
        slang = kinds["forbidden"]
        assert slang["evidence"][0]["text"] == "короче"
        assert slang["evidence"][0]["start"] == 9.0

        # -- a manager sees his own results only, and cannot decide
        status, rows = await call(petrov, "GET", f"{base}/api/kkp/queue")
        assert [r["id"] for r in rows] == [bad]
        assert (await call(petrov, "GET", f"{base}/api/kkp/results/{good}"))[0] == 404
        status, body = await call(petrov, "POST",
                                  f"{base}/api/kkp/results/{bad}/violations/0",
                                  {"decision": "dismissed", "reason": "не согласен"})
        assert status == 403 and body["code"] == "speech.review.bosses_only"
        assert body["error"] == ("Решение по нарушению принимает руководитель отдела "
                                 "менеджера.")
        assert (await call(other, "GET", f"{base}/api/kkp/queue"))[1] == []
        assert (await call(other, "GET", f"{base}/api/kkp/results/{bad}"))[0] == 404
        assert (await call(marketer, "GET", f"{base}/api/kkp/queue"))[0] == 403

        # -- decisions: a confirmation is a fine of the script's amount; once only
        url = f"{base}/api/kkp/results/{bad}/violations/{slang['index']}"
        status, review = await call(boss, "POST", url, {"decision": "confirmed"})
        assert status == 201 and review["amount"] == 500 and review["manager"] == "101"
        status, body = await call(boss, "POST", url, {"decision": "dismissed",
                                                      "reason": "ошибка"})
        assert status == 409 and body["error"] == "Это нарушение уже подтверждено."
        other_url = (f"{base}/api/kkp/results/{bad}/violations/"
                     f"{kinds['missing_stage']['index']}")
        status, body = await call(boss, "POST", other_url, {"decision": "dismissed"})
        assert status == 400 and body == {
            "error": "Укажите причину, чтобы отклонить нарушение.",
            "code": "speech.review.dismissal_needs_reason"}
        status, review = await call(boss, "POST", other_url,
                                    {"decision": "dismissed",
                                     "reason": "клиент сам рассказал о задачах"})
        assert status == 201 and review["amount"] == 0
        status, rows = await call(boss, "GET", f"{base}/api/kkp/queue?needs_review=1")
        assert rows == []  # decided: nothing waits for a person's review any more
        assert (await call(boss, "POST", f"{base}/api/kkp/results/{bad}/violations/9",
                           {"decision": "confirmed"}))[0] == 404
        status, detail = await call(petrov, "GET", f"{base}/api/kkp/results/{bad}")
        decided = {v["kind"]: v["review"] for v in detail["violations"]}
        assert decided["forbidden"]["reviewer"] == "Мария Соколова"
        assert decided["missing_stage"]["reason"] == "клиент сам рассказал о задачах"

        # -- fines for the pay system, metrics per manager
        status, fines = await call(boss, "GET", f"{base}/api/kkp/fines")
        assert status == 200
        assert [(f["manager"], f["amount"], f["confirmed_by"], f["violation"])
                for f in fines] == [("101", 500, "sokolova", "slang")]
        assert (await call(other, "GET", f"{base}/api/kkp/fines"))[1] == []
        status, metrics = await call(boss, "GET", f"{base}/api/kkp/metrics")
        per = {m["manager"]: m for m in metrics["managers"]}
        assert per["101"]["average_score"] == rows_score(detail)
        assert per["101"]["violations"] == 2 and per["101"]["fines"] == 500
        assert per["101"]["violations_per_week"] == pytest.approx(2 / 4, abs=0.01)
        assert per["102"]["average_score"] == 100 and per["102"]["violations"] == 0

        # -- transcripts as dialogues, with the recording's role rules
        tr_url = f"{base}/api/calls/{world.calls['romashka_101']}/transcript"
        status, transcript = await call(petrov, "GET", tr_url)
        assert status == 200
        assert [(t["speaker"], t["start"]) for t in transcript["turns"]] == [
            ("manager", 0.5), ("client", 3.5), ("manager", 9.0)]
        assert transcript["turns"][0]["text"] == "добрый день меня зовут иван"
        assert (await call(await as_user("smirnova"), "GET", tr_url))[0] == 404
        assert (await call(marketer, "GET", tr_url))[0] == 403
        status, by_call = await call(
            petrov, "GET", f"{base}/api/clients/{world.clients['101']}/transcripts")
        assert status == 200
        assert [c["call_id"] for c in by_call] == [world.calls["romashka_101"]]

        # -- stored scripts: validated uploads, new versions, team-only for supervisors
        scripts = f"{base}/api/kkp/scripts"
        status, body = await call(boss, "POST", scripts,
                                  {"text": SCRIPT.replace("  - id: needs",
                                                          "  - id: needs\n    colour: red")})
        assert status == 400
        assert body["code"] == "speech.scripts.invalid"
        assert body["error"].startswith(
            "Ошибка в скрипте: строка 7: неизвестный ключ «colour» (можно: id, ")
        status, body = await call(boss, "POST", scripts, {"text": "stages: [\n"})
        assert status == 400 and "строка 2: это не YAML" in body["error"]
        status, added = await call(boss, "POST", scripts,
                                   {"text": SCRIPT, "effective_from": "2026-12-01",
                                    "fine_amount": 300})
        assert status == 201 and added["team"] == "Отдел продаж"
        assert added["fine_amount"] == 300 and added["effective_from"].startswith(
            "2026-11-30T21:00")
        status, body = await call(boss, "POST", scripts, {"text": SCRIPT,
                                                          "team": "Второй отдел"})
        assert status == 403
        assert (await call(petrov, "POST", scripts, {"text": SCRIPT}))[0] == 403
        status, listed = await call(boss, "GET", scripts)
        assert [v["id"] for v in listed] == [added["id"], added["id"] - 1]

        # -- everything decided or uploaded is audited
        engine = create_engine(db_url)
        try:
            async with session_factory(engine)() as session:
                audited = list(await session.scalars(
                    select(AuditLog.entity).where(AuditLog.entity.like("kkp_%"))))
        finally:
            await engine.dispose()
        assert sorted(audited) == ["kkp_review", "kkp_review", "kkp_script",
                                   "kkp_script"]

        async with boss.get(f"{base}/api/openapi.json") as response:
            paths = (await response.json())["paths"]
        assert {"/api/kkp/queue", "/api/kkp/results/{id}/violations/{index}",
                "/api/calls/{id}/transcript", "/api/kkp/scripts"} <= set(paths)
        async with boss.get(f"{base}/qc") as response:
            page = await response.text()
            assert response.status == 200 and "Контроль качества" in page
        async with marketer.get(f"{base}/qc") as response:
            assert response.status == 403


def rows_score(detail: dict[str, Any]) -> float:
    return float(detail["score"])
