"""The missed-calls report on the web and the forms around it, by role: the page (Russian,
numbers and shares formatted), the API (JSON and CSV), the team's limit, the admin's mail
server (its password never shown back)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from crm_core.audit import AuditLog
from crm_core.missed.models import MailAddress, MailSettings, MissedCallRule
from crm_core.people.models import Team
from tests.missed.world import DAY, EVERYONE, PETROV, TEAM, day_calls, write_calls
from tests.support.db_fixtures import db_url_fixture  # noqa: F401
from tests.support.floor import Floor as BaseFloor
from tests.support.floor import served_floor

# The floor is seeded on 19.11 (its calls then, outside the period), the test runs on 21.11.
pytestmark = pytest.mark.clock("2026-11-19T13:00:00+03:00")
PERIOD = f"from={DAY}&to={DAY}"


class Floor(BaseFloor):
    async def get(self, who: str, path: str) -> tuple[int, str]:
        http = await self.login(who)
        async with http.get(self.base + path) as response:
            return response.status, await response.text()

    async def json(self, who: str, path: str) -> tuple[int, Any]:
        http = await self.login(who)
        async with http.get(self.base + path) as response:
            return response.status, await response.json()

    async def post(self, who: str, path: str, form: dict[str, str]) -> tuple[int, str, str]:
        http = await self.login(who)
        data = {"csrf_token": self.csrf[who], **form}
        async with http.post(self.base + path, data=data) as response:
            return response.status, str(response.url), await response.text()


@pytest.fixture
async def floor(db_url: str, tmp_path: Path, _clock_of_the_test: Any) -> AsyncIterator[Floor]:
    async with served_floor(Floor, db_url, tmp_path) as crm:
        await write_calls(db_url, day_calls())
        _clock_of_the_test.shift(timedelta(days=2))
        yield crm


async def test_api_rows_by_role(floor: Floor) -> None:
    for who, expected in (("admin", EVERYONE), ("sokolova", TEAM), ("petrov", PETROV)):
        status, body = await floor.json(who, f"/api/reports/missed?{PERIOD}")
        assert status == 200
        assert {"rows": body["rows"], "total": body["total"]} == expected, who
        assert (body["from"], body["to"]) == (DAY, DAY)
    status, body = await floor.json("marketer", f"/api/reports/missed?{PERIOD}")
    assert status == 403
    assert body["error"] == "Отчёт о пропущенных звонках недоступен для вашей роли."
    http = await floor.login("admin")
    async with http.get(f"{floor.base}/api/reports/missed?{PERIOD}&format=csv") as response:
        assert response.status == 200 and response.content_type == "text/csv"
        rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [(r["manager"], r["queue"], r["missed"]) for r in rows] == [
        ("101", "", "2"), ("102", "", "3"), ("103", "", "1"), ("", "sales", "5"), ("", "", "6")]
    status, _ = await floor.json("admin", "/api/reports/missed?from=2026-11-21&to=2026-11-20")
    assert status == 400


async def test_page_in_russian_with_shares(floor: Floor) -> None:
    status, html = await floor.get("sokolova", f"/reports/missed?{PERIOD}")
    assert status == 200
    assert "Пропущенные звонки" in html and "По менеджерам" in html and "По очередям" in html
    assert "Иван Петров (101)" in html and "Ольга Смирнова (102)" in html
    assert "Алексей Кузнецов" not in html  # another team's manager
    assert "(50,0\u00a0%)" in html or "(50,0 %)" in html  # 1 of 2 within 5 minutes
    assert "Очередь sales" in html
    assert "Срок перезвона" in html  # the head of sales sets his team's limit here
    status, html = await floor.get("petrov", f"/reports/missed?{PERIOD}")
    assert status == 200 and "Ольга Смирнова" not in html and "Срок перезвона" not in html
    status, html = await floor.get("marketer", f"/reports/missed?{PERIOD}")
    assert status == 403


async def test_team_limit_form(floor: Floor) -> None:
    assert await floor.rows(select(MissedCallRule)) == []
    teams = {name: tid for tid, name in await floor.rows(select(Team.id, Team.name))}
    sales, second = str(teams["Отдел продаж"]), str(teams["Второй отдел"])
    http = await floor.login("sokolova")
    async with http.post(f"{floor.base}/missed/limit",
                         data={"csrf_token": floor.csrf["sokolova"], "team_id": sales,
                               "minutes": "15"},
                         headers={"Referer": f"{floor.base}/reports/missed?{PERIOD}"}) as response:
        status, url, html = response.status, str(response.url), await response.text()
    assert status == 200 and "Срок перезвона сохранён." in html
    assert url.endswith(f"/reports/missed?{PERIOD}&saved=1")  # the period it showed
    assert 'value="15"' in html
    refused = "Срок перезвона команды меняет её руководитель или администратор."
    _, _, html = await floor.post("sokolova", "/missed/limit",
                                  {"team_id": second, "minutes": "5"})
    assert refused in html
    _, _, html = await floor.post("sokolova", "/missed/limit", {"team_id": sales, "minutes": "0"})
    assert "Срок перезвона — от 1 до 1440 минут." in html
    _, _, html = await floor.post("petrov", "/missed/limit", {"team_id": sales, "minutes": "5"})
    assert refused in html
    _, url, _ = await floor.post("admin", "/missed/limit", {"team_id": second, "minutes": "45"})
    assert "saved=1" in url
    limits = await floor.rows(select(MissedCallRule.team_id,
                                     MissedCallRule.escalate_after_minutes))
    assert sorted(tuple(r) for r in limits) == sorted([(int(sales), 15), (int(second), 45)])
    # the audit names who changed each limit (the refused tries left no row)
    audit = await floor.rows(select(AuditLog.actor, AuditLog.changes).where(
        AuditLog.entity == "missed_call_rule").order_by(AuditLog.id))
    assert [(actor, changes["escalate_after_minutes"]) for actor, changes in audit] == [
        ("sokolova", [30, 15]), ("admin", [30, 45])]


async def test_admin_mail_form_keeps_the_password_secret(floor: Floor) -> None:
    status, _ = await floor.get("sokolova", "/admin/mail")
    assert status == 403
    status, html = await floor.get("admin", "/admin/mail")
    assert status == 200 and "SMTP-сервер" in html and "не задан" in html
    form = {"what": "server", "host": "smtp.example.ru", "port": "587", "security": "starttls",
            "username": "crm", "password": "s3cret-Pa55", "sender": "crm@example.ru"}
    status, url, html = await floor.post("admin", "/admin/mail", form)
    assert status == 200 and url.endswith("/admin/mail?saved=1") and "Сохранено." in html
    assert "s3cret-Pa55" not in html and "задан — оставьте пустым" in html
    # saved again without a password: the stored one is kept
    status, url, html = await floor.post("admin", "/admin/mail", {**form, "password": "",
                                                                  "port": "2525"})
    [(row,)] = await floor.rows(select(MailSettings))
    assert (row.port, row.password, row.security) == (2525, "s3cret-Pa55", "starttls")
    status, _, html = await floor.post("admin", "/admin/mail", {**form, "sender": "не адрес"})
    assert status == 400 and "«не адрес» — не адрес электронной почты." in html
    audit = [r[0].changes for r in await floor.rows(
        select(AuditLog).where(AuditLog.entity == "mail_settings"))]
    assert audit and "s3cret-Pa55" not in repr(audit)

    petrov = floor.world.users["petrov"]
    status, url, html = await floor.post("admin", "/admin/mail",
                                         {"what": "addresses", f"email_{petrov}": "ip@example.ru"})
    assert "saved=1" in url and 'value="ip@example.ru"' in html
    assert [(r[0].user_id, r[0].email) for r in await floor.rows(select(MailAddress))] == [
        (petrov, "ip@example.ru")]
