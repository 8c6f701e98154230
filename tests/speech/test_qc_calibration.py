"""Calibration over HTTP: two reviewers score the same call; their agreement per
checkpoint and overall, seen by the head of sales of that team only.

Мария Соколова and the admin score Иван Петров's call and disagree on one checkpoint
of four; two admins score Алексей Кузнецов's call (another team), which Мария never
sees; a manager is refused the page.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_core.db import create_engine, session_factory
from crm_core.people.users import add_user
from tests.speech.test_qc_scorecards import ITEMS
from tests.speech.test_speech_web import call, qc_floor, seed_results
from tests.support.browser import fake_wav, seed_world, seeded_password_hash
from tests.support.db_fixtures import db_url_fixture  # noqa: F401

pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")


async def second_admin(db: str) -> None:
    engine = create_engine(db)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            await add_user(session, "auditor", name="Ревизор Отдела", role="admin",
                           password_hash=seeded_password_hash())
    finally:
        await engine.dispose()


async def test_agreement_of_two_reviewers_per_checkpoint_and_overall(
        db_url: str, tmp_path: Path) -> None:
    world = await seed_world(db_url, tmp_path / "monitor")
    (tmp_path / "monitor" / world.recording).write_bytes(fake_wav(seconds=20))
    await seed_results(db_url, world)
    await second_admin(db_url)
    async with qc_floor(db_url, tmp_path) as (base, as_user):
        boss, admin = await as_user("sokolova"), await as_user("admin")
        auditor, petrov = await as_user("auditor"), await as_user("petrov")
        status, card = await call(admin, "POST", f"{base}/api/qc/scorecards",
                                  {"name": "Общая карточка", "items": ITEMS})
        assert status == 201 and card["team"] is None  # the company's: every team
        mine = {"k1": "yes", "k2": "no", "k3": "yes", "k4": "no"}
        romashka = f"{base}/api/calls/{world.calls['romashka_101']}/scores"
        assert (await call(boss, "POST", romashka,
                           {"scorecard_id": card["id"], "answers": mine}))[1]["score"] == 50
        assert (await call(admin, "POST", romashka, {
            "scorecard_id": card["id"], "answers": {**mine, "k2": "yes"}}))[1]["score"] == 100
        vector = f"{base}/api/calls/{world.calls['vector_103']}/scores"
        for who in (admin, auditor):
            assert (await call(who, "POST", vector, {
                "scorecard_id": card["id"], "answers": mine}))[0] == 201

        status, mine_seen = await call(boss, "GET", f"{base}/api/qc/calibration")
        assert status == 200
        assert mine_seen["overall"] == {"pairs": 1, "agreement": 75.0, "average_gap": 50.0}
        pair = mine_seen["pairs"][0]
        assert pair["reviewers"] == ["Мария Соколова", "Администратор"]
        assert pair["disagree"] == ["Выявление потребностей"]
        assert mine_seen["checkpoints"][0] == {"title": "Выявление потребностей",
                                               "pairs": 1, "agreement": 0.0}
        status, every = await call(admin, "GET", f"{base}/api/qc/calibration")
        assert every["overall"] == {"pairs": 2, "agreement": 87.5, "average_gap": 25.0}
        status, body = await call(petrov, "GET", f"{base}/api/qc/calibration")
        assert status == 403
        assert body["error"] == "Калибровка доступна руководителям и администраторам."

        async with boss.get(f"{base}/qc/calibration") as response:
            page = await response.text()
        assert response.status == 200 and "Калибровка проверяющих" in page
        assert "75,0 %" in page and "Алексей Кузнецов" not in page
        async with petrov.get(f"{base}/qc/calibration") as response:
            assert response.status == 403

