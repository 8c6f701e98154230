"""Appeals of confirmed KKP fines over HTTP: as each role, on SQLite and PostgreSQL.

The world of tests/support/browser.py: Мария Соколова (supervisor of «Отдел продаж»)
confirms Иван Петров's fine; he appeals it; she may not judge her own confirmation,
the admin cancels it; the pay system's API and the metrics then charge nothing.
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


async def test_a_manager_appeals_his_fine_and_another_reviewer_decides(
        db_url: str, tmp_path: Path) -> None:
    world = await seed_world(db_url, tmp_path / "monitor")
    (tmp_path / "monitor" / world.recording).write_bytes(fake_wav(seconds=20))
    bad = (await seed_results(db_url, world))["romashka_101"]
    async with qc_floor(db_url, tmp_path) as (base, as_user):
        boss, petrov = await as_user("sokolova"), await as_user("petrov")
        smirnova, other = await as_user("smirnova"), await as_user("kuznetsov")
        admin = await as_user("admin")
        detail = (await call(boss, "GET", f"{base}/api/kkp/results/{bad}"))[1]
        kinds = {v["kind"]: v["index"] for v in detail["violations"]}
        results = f"{base}/api/kkp/results/{bad}/violations"
        status, fine = await call(boss, "POST", f"{results}/{kinds['forbidden']}",
                                  {"decision": "confirmed"})
        assert status == 201 and fine["state"] == "active"
        status, dismissed = await call(boss, "POST", f"{results}/{kinds['missing_stage']}",
                                       {"decision": "dismissed", "reason": "короткий звонок"})
        appeal = f"{base}/api/kkp/fines/{fine['id']}/appeal"

        # -- the manager sees he may appeal; a dismissal is no fine to appeal
        status, mine = await call(petrov, "GET", f"{base}/api/kkp/results/{bad}")
        reviews = {v["kind"]: v["review"] for v in mine["violations"]}
        assert reviews["forbidden"]["may_appeal"] is True
        assert reviews["missing_stage"]["may_appeal"] is False
        status, body = await call(petrov, "POST",
                                  f"{base}/api/kkp/fines/{dismissed['id']}/appeal",
                                  {"reason": "нет"})
        assert status == 409 and body["error"] == "Оспорить можно только подтверждённый штраф."

        # -- only the fined manager appeals, with a reason, once
        status, body = await call(petrov, "POST", appeal, {"reason": "  "})
        assert status == 400
        assert body["error"] == "Напишите, почему вы не согласны со штрафом."
        status, body = await call(smirnova, "POST", appeal, {"reason": "за коллегу"})
        assert status == 404  # another manager's result is not his to see
        status, body = await call(other, "POST", appeal, {"reason": "чужой отдел"})
        assert status == 404
        status, body = await call(boss, "POST", appeal, {"reason": "сама себе"})
        assert status == 403
        assert body["error"] == "Оспорить штраф может только оштрафованный менеджер."
        status, filed = await call(petrov, "POST", appeal,
                                   {"reason": "«Короче» — фамилия клиента, Коротченко"})
        assert status == 201 and filed["state"] == "open"
        assert filed["filed_by"] == "Иван Петров"
        status, body = await call(petrov, "POST", appeal, {"reason": "ещё раз"})
        assert status == 409 and body["error"] == "Этот штраф уже оспорен."

        # -- while open the fine is still due, marked appealed; the queue says so
        status, rows = await call(boss, "GET", f"{base}/api/kkp/queue")
        assert [r["appealed"] for r in rows if r["id"] == bad] == [1]
        status, fines = await call(admin, "GET", f"{base}/api/kkp/fines")
        assert [(f["status"], f["amount"]) for f in fines] == [("appealed", 500)]

        # -- who decides: not the manager, not the one who confirmed it
        decision = f"{appeal}/decision"
        verdict = {"decision": "cancelled", "comment": "Проверил запись: это фамилия"}
        status, body = await call(petrov, "POST", decision, verdict)
        assert status == 403
        assert body["error"] == ("Апелляцию рассматривает руководитель отдела или "
                                 "администратор.")
        status, body = await call(boss, "POST", decision, verdict)
        assert status == 403
        assert body["error"] == "Апелляцию рассматривает не тот, кто подтвердил штраф."
        status, seen = await call(boss, "GET", f"{base}/api/kkp/results/{bad}")
        forbidden = next(v for v in seen["violations"] if v["kind"] == "forbidden")
        assert forbidden["review"]["may_decide_appeal"] is False
        status, seen = await call(admin, "GET", f"{base}/api/kkp/results/{bad}")
        forbidden = next(v for v in seen["violations"] if v["kind"] == "forbidden")
        assert forbidden["review"]["may_decide_appeal"] is True
        status, body = await call(admin, "POST", decision, {"decision": "cancelled"})
        assert status == 400 and body["error"] == "Напишите комментарий к решению."
        status, body = await call(admin, "POST", decision,
                                  {"decision": "forgiven", "comment": "x"})
        assert status == 400 and body["code"] == "speech.appeal.decision_invalid"
        status, done = await call(admin, "POST", decision, verdict)
        assert status == 201 and done["state"] == "cancelled"
        assert done["decided_by"] == "Администратор"
        status, body = await call(admin, "POST", decision,
                                  {"decision": "kept", "comment": "передумал"})
        assert status == 409 and body["error"] == "По этой апелляции уже принято решение."

        # -- the state shows everywhere the fine does; the pay system charges nothing
        status, mine = await call(petrov, "GET", f"{base}/api/kkp/results/{bad}")
        review = next(v["review"] for v in mine["violations"] if v["kind"] == "forbidden")
        assert review["state"] == "cancelled" and review["may_appeal"] is False
        assert review["appeal"]["comment"] == "Проверил запись: это фамилия"
        assert review["amount"] == 500  # the confirmation itself is never rewritten
        for who in (boss, admin, petrov):
            status, fines = await call(who, "GET", f"{base}/api/kkp/fines")
            assert [(f["status"], f["amount"], f["fine_amount"], f["appeal_decided_by"])
                    for f in fines] == [("cancelled", 0, 500, "admin")]
        assert (await call(other, "GET", f"{base}/api/kkp/fines"))[1] == []
        status, metrics = await call(boss, "GET", f"{base}/api/kkp/metrics")
        per = {m["manager"]: m for m in metrics["managers"]}
        assert per["101"]["fines"] == 0 and per["101"]["cancelled"] == 1
        assert per["101"]["confirmed"] == 1

        # -- every step audited
        engine = create_engine(db_url)
        try:
            async with session_factory(engine)() as session:
                audited = [(a.actor, a.action, a.changes.get("state"))
                           for a in await session.scalars(
                               select(AuditLog).where(AuditLog.entity == "kkp_appeal")
                               .order_by(AuditLog.id))]
        finally:
            await engine.dispose()
        assert audited == [("petrov", "create", [None, "open"]),
                           ("admin", "update", ["open", "cancelled"])]
