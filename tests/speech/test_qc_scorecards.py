"""QC scorecards over HTTP as each role, on SQLite and PostgreSQL.

Мария Соколова (supervisor of «Отдел продаж») builds her team's scorecard; she and
the admin score Иван Петров's call; the manager reads the scores but cannot score;
another team's manager does not see the call; editing keeps the old version.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from crm_core.audit import AuditLog
from crm_core.db import create_engine, session_factory
from tests.speech.test_speech_web import call, qc_floor, seed_results
from tests.support.browser import fake_wav, seed_world
from tests.support.db_fixtures import db_url_fixture  # noqa: F401

pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")

ITEMS = [{"title": "Приветствие и имя", "weight": 20},
         {"title": "Выявление потребностей", "weight": 50},
         {"title": "Презентация решения", "weight": 30},
         {"title": "Грубость с клиентом", "instant_fail": True}]


async def test_scorecards_are_built_filled_and_averaged_by_the_right_people(
        db_url: str, tmp_path: Path) -> None:
    world = await seed_world(db_url, tmp_path / "monitor")
    (tmp_path / "monitor" / world.recording).write_bytes(fake_wav(seconds=20))
    await seed_results(db_url, world)
    romashka = world.calls["romashka_101"]
    async with qc_floor(db_url, tmp_path) as (base, as_user):
        boss, petrov = await as_user("sokolova"), await as_user("petrov")
        other, admin = await as_user("kuznetsov"), await as_user("admin")
        cards = f"{base}/api/qc/scorecards"

        # -- who builds, and what a scorecard must hold
        body = {"name": "Оценка холодного звонка", "items": ITEMS}
        assert (await call(petrov, "POST", cards, body))[0] == 403
        status, refused = await call(boss, "POST", cards, {**body, "team": "Второй отдел"})
        assert status == 403
        assert refused["error"] == "Руководитель составляет карточку только для своего отдела."
        status, refused = await call(boss, "POST", cards, {**body, "items": [
            {"title": "Приветствие", "weight": 0}]})
        assert status == 400
        assert refused["error"] == "Вес пункта 1 — целое число от 1 до 100."
        status, refused = await call(boss, "POST", cards, {**body, "items": ITEMS[3:]})
        assert status == 400 and refused["code"] == "speech.scorecard.no_checkpoints"
        status, card = await call(boss, "POST", cards, body)
        assert status == 201 and card["team"] == "Отдел продаж"
        assert [i["id"] for i in card["items"]] == ["k1", "k2", "k3", "k4"]

        # -- the call page's panel: the automatic check beside the scorecard
        panel = f"{base}/api/calls/{romashka}/qc"
        status, qc = await call(boss, "GET", panel)
        assert status == 200 and qc["may_score"] is True
        assert qc["scorecard"]["id"] == card["id"]
        assert [r["script"] for r in qc["auto"]] == ["Холодный звонок"]
        assert {v["kind"] for v in qc["auto"][0]["violations"]} == {"missing_stage",
                                                                    "forbidden"}
        assert (await call(other, "GET", panel))[0] == 404  # another team's call

        # -- scoring: weights of "yes" among the checkpoints that apply
        scores = f"{base}/api/calls/{romashka}/scores"
        answers = {"k1": "yes", "k2": "no", "k3": "na", "k4": "no"}
        status, refused = await call(boss, "POST", scores, {
            "scorecard_id": card["id"], "answers": {"k1": "yes", "k2": "no", "k4": "no"}})
        assert status == 400 and refused["error"] == "Ответьте на пункт «Презентация решения»."
        status, mine = await call(boss, "POST", scores, {
            "scorecard_id": card["id"], "answers": answers,
            "comment": "Не спросил о задачах клиента"})
        assert status == 201 and mine["score"] == 29  # 20 of 70
        status, by_admin = await call(admin, "POST", scores, {
            "scorecard_id": card["id"], "answers": {**answers, "k2": "yes", "k4": "yes"}})
        assert status == 201 and by_admin["score"] == 0 and by_admin["instant_fail"]
        status, refused = await call(petrov, "POST", scores, {
            "scorecard_id": card["id"], "answers": answers})
        assert status == 403
        assert refused["error"] == "Оценивают звонки руководители и администраторы."
        status, seen = await call(petrov, "GET", panel)
        assert seen["may_score"] is False
        assert [(s["reviewer"], s["score"]) for s in seen["scores"]] == [
            ("Мария Соколова", 29), ("Администратор", 0)]

        # -- a new version; old scores keep theirs; a new score needs the new one
        status, edited = await call(boss, "POST", cards, {**body, "items": ITEMS[:2]})
        assert status == 201
        status, listed = await call(boss, "GET", cards)
        assert [v["id"] for v in listed] == [edited["id"], card["id"]]
        status, mine = await call(boss, "POST", scores, {
            "scorecard_id": card["id"], "answers": {**answers, "k3": "yes"}})
        assert status == 201 and mine["score"] == 50  # her correction, same version
        status, refused = await call(admin, "POST", scores, {
            "scorecard_id": 999999, "answers": answers})
        assert status == 409

        # -- the weekly average per manager, within each one's scope
        status, weekly = await call(boss, "GET", f"{base}/api/qc/weekly")
        assert [(w["manager"], w["week"], w["scores"], w["average"])
                for w in weekly["weeks"]] == [("101", "2026-11-16", 2, 25.0)]
        assert (await call(other, "GET", f"{base}/api/qc/weekly"))[1]["weeks"] == []
        status, own = await call(petrov, "GET", f"{base}/api/qc/weekly")
        assert [w["average"] for w in own["weeks"]] == [25.0]

        engine = create_engine(db_url)
        try:
            async with session_factory(engine)() as session:
                audited = [(a.entity, a.action) for a in await session.scalars(
                    select(AuditLog).where(AuditLog.entity.like("qc_%"))
                    .order_by(AuditLog.id))]
        finally:
            await engine.dispose()
        assert audited == [("qc_scorecard", "create"), ("qc_score", "create"),
                           ("qc_score", "create"), ("qc_scorecard", "create"),
                           ("qc_score", "update")]
