"""Presence routes role by role on the seeded floor (tests/support/browser.py): petrov (101)
and smirnova (102) with their supervisor sokolova in «Отдел продаж», kuznetsov (103) in
«Второй отдел», a marketer and an admin. No Asterisk here: the answer says so."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from crm_core.audit import AuditLog
from crm_core.presence.models import PresenceChange
from tests.support.db_fixtures import db_url_fixture  # noqa: F401
from tests.support.floor import Floor as BaseFloor
from tests.support.floor import served_floor

pytestmark = pytest.mark.calendar  # "today" of the report is the clock's


class Floor(BaseFloor):
    async def reason(self, name: str) -> str:
        _, body = await self.call("petrov", "GET", "/api/presence")
        return next(r["state"] for r in body["reasons"] if r["name"] == name)


@pytest.fixture
async def floor(db_url: str, tmp_path: Path) -> AsyncIterator[Floor]:
    async with served_floor(Floor, db_url, tmp_path) as crm:
        yield crm


@pytest.mark.clock("2026-11-20T12:00:00+03:00")
async def test_a_manager_pauses_himself_and_his_supervisor_sees_it(floor: Floor) -> None:
    status, body = await floor.call("petrov", "GET", "/api/presence")
    assert status == 200
    assert [r["name"] for r in body["reasons"]] == [
        "На месте", "Перерыв", "Обед", "Встреча", "Обучение", "Нет на месте"]
    assert body["me"]["state"] == "present" and body["managers"][0]["extension"] == "101"
    lunch = await floor.reason("Обед")
    status, body = await floor.call("petrov", "POST", "/api/presence", {"state": lunch})
    assert status == 200, body
    assert body["name"] == "Обед" and body["changed"] and not body["present"]
    assert body["queue"] == "unreachable"  # no Asterisk behind this app: the state is kept
    status, board = await floor.call("sokolova", "GET", "/api/presence")
    states = {m["extension"]: m["name"] for m in board["managers"]}
    assert states == {"101": "Обед", "102": "На месте"}
    status, report = await floor.call("sokolova", "GET", "/api/presence/report")
    assert status == 200
    row = next(m for m in report["managers"] if m["extension"] == "101")
    assert row["presence"]["name"] == "Обед" and "talk_seconds" in row
    assert {s["name"] for s in row["states"]} <= {"На месте", "Обед"}
    rows = await floor.rows(select(PresenceChange.changed_by))
    assert rows == [("petrov",)]
    audit = await floor.rows(select(AuditLog.actor).where(AuditLog.entity == "presence"))
    assert audit == [("petrov",)]


@pytest.mark.clock("2026-11-20T12:00:00+03:00")
async def test_who_may_change_whose_presence(floor: Floor) -> None:
    meeting = await floor.reason("Встреча")
    petrov = floor.world.users["petrov"]
    kuznetsov = floor.world.users["kuznetsov"]
    expected = {  # changing petrov's (101, «Отдел продаж»)
        "petrov": 200, "smirnova": 403, "kuznetsov": 403, "sokolova": 200,
        "marketer": 403, "admin": 200}
    for who, status in expected.items():
        got, body = await floor.call(who, "POST", "/api/presence",
                                     {"state": meeting, "user_id": petrov})
        assert got == status, (who, body)
    got, body = await floor.call("sokolova", "POST", "/api/presence",
                                 {"state": meeting, "user_id": kuznetsov})
    assert got == 403 and body["error"] == ("Статус менеджера меняет он сам, его "
                                           "руководитель или администратор.")
    got, body = await floor.call("marketer", "POST", "/api/presence", {"state": "present"})
    assert got == 400 and "нет внутреннего номера" in body["error"]
    assert (await floor.call(None, "POST", "/api/presence", {"state": "present"}))[0] == 401
    got, _ = await floor.call("petrov", "POST", "/api/presence", {"state": "present"},
                              csrf=False)
    assert got == 403
    for bad, code in (({"state": "обед"}, 400), ({"state": 99999}, 404),
                      ({"state": True}, 400)):
        got, body = await floor.call("petrov", "POST", "/api/presence", bad)
        assert got == code, (bad, body)


@pytest.mark.clock("2026-11-20T12:00:00+03:00")
async def test_reasons_and_report_by_role(floor: Floor) -> None:
    for who, status in {"petrov": 403, "marketer": 403, "sokolova": 201}.items():
        got, body = await floor.call(who, "POST", "/api/presence/reasons",
                                     {"name": f"Причина {who}", "pauses_queue": False})
        assert got == status, (who, body)
    got, body = await floor.call("admin", "POST", "/api/presence/reasons", {"name": "обед"})
    assert got == 409 and body["error"] == "Причина «обед» уже есть."
    _, listed = await floor.call("sokolova", "GET", "/api/presence/reasons")
    added = next(r for r in listed["reasons"] if r["name"] == "Причина sokolova")
    assert added["pauses_queue"] is False
    got, body = await floor.call("petrov", "PATCH", f"/api/presence/reasons/{added['id']}",
                                 {"archived": True})
    assert got == 403
    got, body = await floor.call("admin", "PATCH", f"/api/presence/reasons/{added['id']}",
                                 {"archived": True, "name": "Старая причина"})
    assert got == 200 and body["archived"] and body["name"] == "Старая причина"
    _, offered = await floor.call("petrov", "GET", "/api/presence")
    assert "Старая причина" not in {r["name"] for r in offered["reasons"]}
    # the report: a manager sees himself, a supervisor his team, a marketer nothing
    for who, extensions in {"petrov": ["101"], "sokolova": ["101", "102"],
                            "admin": ["101", "102", "103"]}.items():
        got, body = await floor.call(who, "GET", "/api/presence/report?date=2026-11-20")
        assert got == 200 and [m["extension"] for m in body["managers"]] == extensions
    assert (await floor.call("marketer", "GET", "/api/presence/report"))[0] == 403
    # the page: supervisors and admins
    for who, status in {"sokolova": 200, "admin": 200, "petrov": 403, "marketer": 403}.items():
        got, _ = await floor.call(who, "GET", "/presence")
        assert got == status, who
    # the talk-time board carries presence beside talk time
    _, live = await floor.call("sokolova", "GET", "/api/talktime/live")
    assert all("presence" in row and "states" in row for row in live["managers"])
