"""Talk-time settings through the real app: who may change rules, holidays and absences,
the JSON API and the page's forms (CSRF), and the CLI's answers to bad input."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from telecrm.messages import sentence
from telecrm.settings import Settings
from tests.support.browser import PASSWORD, World, seed_world, serve_app
from tests.support.live import telecrm

pytestmark = pytest.mark.calendar  # dates relative to today: make test-calendar

TZ = ZoneInfo("Europe/Moscow")


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, World]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    world = await seed_world(url, tmp_path / "recordings")
    settings = Settings(data_dir=tmp_path, database_url=url,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (_, base):
        yield base, world


class Client:
    """A signed-in user's HTTP session that sends the CSRF header like the pages do."""

    def __init__(self, base: str, http: aiohttp.ClientSession, csrf: str) -> None:
        self.base, self.http, self.csrf = base, http, csrf

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, self.base + path, json=body,
                                     headers={"X-CSRF-Token": self.csrf}) as response:
            return response.status, await response.json()


async def sign_in(base: str, username: str) -> Client:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.post(f"{base}/api/login",
                         json={"username": username, "password": PASSWORD}) as response:
        assert response.status == 200
        csrf = (await response.json())["csrf_token"]
    return Client(base, http, csrf)


def today() -> str:
    return datetime.now(TZ).date().isoformat()


async def test_roles_on_the_rules_api(served: tuple[str, World]) -> None:
    base, _ = served
    users = {u: await sign_in(base, u) for u in ("petrov", "sokolova", "admin", "marketer")}
    try:
        status, rules = await users["sokolova"].call("GET", "/api/talktime/rules")
        assert status == 200 and [r["team"] for r in rules["in_force"]] == ["Отдел продаж"]
        assert rules["in_force"][0]["target_minutes"] == 150
        own_team = rules["in_force"][0]["team_id"]
        status, body = await users["petrov"].call("POST", "/api/talktime/rules", {
            "effective_from": today(), "target_minutes": 10})
        assert status == 403 and body["code"] == "talktime.settings_for_bosses"
        assert body["error"] == "Настройки нормы меняет руководитель отдела или администратор."
        assert (await users["marketer"].call("GET", "/api/talktime/rules"))[0] == 403
        status, admin_view = await users["admin"].call("GET", "/api/talktime/rules")
        other_team = next(r["team_id"] for r in admin_view["in_force"]
                          if r["team"] == "Второй отдел")
        status, body = await users["sokolova"].call("POST", "/api/talktime/rules", {
            "team_id": other_team, "effective_from": today(), "target_minutes": 10})
        assert status == 403
        assert body["error"] == "Руководитель меняет настройки только своего отдела."
        status, body = await users["sokolova"].call("POST", "/api/talktime/rules", {
            "effective_from": today(), "target_minutes": 120, "working_weekdays": "123456",
            "min_call_seconds": 10, "fine_amount": "500.50", "day_start": "10:00",
            "day_end": "19:30"})
        assert status == 201, body
        assert (body["team_id"], body["target_minutes"], body["day_end"]) == (own_team, 120,
                                                                             "19:30")
        yesterday = (datetime.now(TZ).date() - timedelta(days=1)).isoformat()
        status, body = await users["sokolova"].call("POST", "/api/talktime/rules", {
            "effective_from": yesterday, "target_minutes": 60})
        assert status == 400 and body["code"] == "talktime.past_rules"
        assert "Правила за прошедшие дни не меняются" in body["error"]
        for bad, words in (({"effective_from": "tomorrow"}, "Дата начала действия: неверная"),
                           ({"effective_from": today(), "working_weekdays": "89"},
                            "Рабочие дни"),
                           ({"effective_from": today(), "target_minutes": "many"},
                            "Норма: укажите целое число"),
                           ({"effective_from": today(), "day_start": "19:00",
                             "day_end": "09:00"}, "должен начинаться раньше"),
                           ({"effective_from": today(), "fine_amount": "-1"}, "Штраф")):
            status, body = await users["sokolova"].call("POST", "/api/talktime/rules", bad)
            assert status == 400 and words in body["error"], (bad, body)
        # the company defaults are the admin's
        status, _ = await users["sokolova"].call("POST", "/api/talktime/rules", {
            "team_id": None, "effective_from": today(), "target_minutes": 100})
        assert status == 403
        status, body = await users["admin"].call("POST", "/api/talktime/rules", {
            "team_id": None, "effective_from": today(), "target_minutes": 100})
        assert status == 201 and body["team_id"] is None
        # the live board projects with the team's new hours
        status, live = await users["sokolova"].call("GET", "/api/talktime/live")
        assert status == 200
        assert {(m["day_start"], m["day_end"], m["target_seconds"])
                for m in live["managers"]} == {("10:00", "19:30", 7200)}
    finally:
        for client in users.values():
            await client.http.close()


async def test_holidays_and_absences_api(served: tuple[str, World]) -> None:
    base, world = served
    boss, other, admin, petrov = [await sign_in(base, u)
                                  for u in ("sokolova", "kuznetsov", "admin", "petrov")]
    day = datetime.now(TZ).date()
    try:
        status, mine = await boss.call("POST", "/api/talktime/holidays",
                                       {"date": day.isoformat(), "name": "Выездной день"})
        assert status == 201 and mine["team"] == "Отдел продаж"
        assert (await boss.call("POST", "/api/talktime/holidays",
                                {"date": day.isoformat()}))[0] == 409
        assert (await petrov.call("POST", "/api/talktime/holidays",
                                  {"date": day.isoformat()}))[0] == 403
        status, company = await admin.call("POST", "/api/talktime/holidays",
                                           {"date": (day + timedelta(days=1)).isoformat(),
                                            "name": "Праздник", "team_id": None})
        assert status == 201 and company["team_id"] is None
        status, imported = await boss.call("POST", "/api/talktime/holidays/import", {
            "csv": f"{day + timedelta(days=2)},Первый\n{day + timedelta(days=3)}\n"})
        assert status == 201 and imported == {"added": 2, "skipped": 0}
        status, body = await boss.call("POST", "/api/talktime/holidays/import",
                                       {"csv": "not a date\n2027-13-01\n"})
        assert status == 400 and "Строка 2" in body["error"]
        assert (await boss.call("DELETE", f"/api/talktime/holidays/{company['id']}"))[0] == 403
        status, _ = await boss.call("DELETE", f"/api/talktime/holidays/{mine['id']}")
        assert status == 200
        status, listed = await petrov.call("GET", "/api/talktime/holidays")
        assert status == 200 and len(listed) == 3  # the company's and his team's, not removed

        # absences: the supervisor for his team's managers only
        status, absence = await boss.call("POST", "/api/talktime/absences", {
            "user_id": world.users["petrov"], "from": day.isoformat(),
            "to": (day + timedelta(days=4)).isoformat(), "kind": "vacation", "note": "море"})
        assert status == 201 and absence["kind_name"] == "отпуск"
        status, body = await boss.call("POST", "/api/talktime/absences", {
            "user_id": world.users["kuznetsov"], "from": day.isoformat(), "kind": "sick"})
        assert status == 403 and "только менеджеров своего отдела" in body["error"]
        status, body = await boss.call("POST", "/api/talktime/absences", {
            "user_id": world.users["petrov"], "from": day.isoformat(),
            "to": (day - timedelta(days=1)).isoformat(), "kind": "sick"})
        assert status == 400 and body["code"] == "talktime.absence_reversed"
        assert (await boss.call("POST", "/api/talktime/absences", {
            "user_id": world.users["petrov"], "from": day.isoformat(),
            "kind": "party"}))[0] == 400
        status, body = await other.call("GET", "/api/talktime/absences")  # a manager: his own
        assert status == 200 and body == []
        status, report = await boss.call("GET", f"/api/talktime/report?date={day}")
        petrov_row = next(m for m in report["managers"] if m["extension"] == "101")
        assert petrov_row["days"][0]["excluded"] == "vacation"
        assert petrov_row["working_days"] == 0
        assert (await boss.call("DELETE", f"/api/talktime/absences/{absence['id']}"))[0] == 200
        assert (await boss.call("DELETE", f"/api/talktime/absences/{absence['id']}"))[0] == 404
    finally:
        for client in (boss, other, admin, petrov):
            await client.http.close()


async def test_settings_page_forms_need_csrf_and_the_right_role(
        served: tuple[str, World]) -> None:
    base, _ = served
    boss, petrov = await sign_in(base, "sokolova"), await sign_in(base, "petrov")
    try:
        async with petrov.http.get(f"{base}/talktime/settings") as response:
            assert response.status == 403
        async with boss.http.get(f"{base}/talktime") as response:
            assert 'href="/talktime/settings"' in await response.text()
        async with boss.http.get(f"{base}/talktime/settings") as response:
            html = await response.text()
            assert response.status == 200 and "Настройки нормы" in html
        form = {"effective_from": today(), "target_minutes": "100",
                "working_weekdays": "1", "day_start": "09:00", "day_end": "17:00"}
        async with boss.http.post(f"{base}/talktime/settings/rules", data=form,
                                  allow_redirects=False) as response:
            assert response.status == 403  # no CSRF token
        async with boss.http.post(f"{base}/talktime/settings/rules",
                                  data={**form, "csrf_token": boss.csrf},
                                  allow_redirects=False) as response:
            assert response.status == 303
        async with boss.http.get(f"{base}/talktime/settings?done=rule") as response:
            html = await response.text()
            assert "Правила сохранены." in html and "100 мин в день" in html
        yesterday = (datetime.now(TZ).date() - timedelta(days=1)).isoformat()
        async with boss.http.post(f"{base}/talktime/settings/rules",
                                  data={**form, "effective_from": yesterday,
                                        "csrf_token": boss.csrf}) as response:
            assert response.status == 400
            assert "Правила за прошедшие дни не меняются" in await response.text()
        admin = await sign_in(base, "admin")
        async with admin.http.get(f"{base}/talktime/settings") as response:
            html = await response.text()
            assert response.status == 200
            assert "Вся компания (по умолчанию)" in html and "Второй отдел" in html
        async with admin.http.post(f"{base}/talktime/settings/holidays",
                                   data={"date": today(), "name": "Общий выходной",
                                         "team_id": "", "csrf_token": admin.csrf}) as response:
            assert response.status == 200  # after the redirect
            assert "Праздник добавлен." in await response.text()
        await admin.http.close()
        async with petrov.http.post(f"{base}/talktime/settings/holidays",
                                    data={"date": today(), "csrf_token": petrov.csrf},
                                    allow_redirects=False) as response:
            assert response.status == 403
    finally:
        await boss.http.close()
        await petrov.http.close()


def _cli(tmp_path: Path, *args: str, process: bool = False) -> subprocess.CompletedProcess[str]:
    db = f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite3'}"
    return telecrm(*args, "--db", db, check=False, process=process,
                   env={"TELECRM_DATA_DIR": str(tmp_path)})


def test_cli_bad_input_is_one_sentence(tmp_path: Path) -> None:
    assert _cli(tmp_path, "users", "add", "boss", "--role", "supervisor", "--team",
                "Продажи", process=True).returncode == 0  # the installed entry point
    past = (datetime.now(TZ).date() - timedelta(days=3)).isoformat()
    cases = [
        (("talktime", "rules", "set", "--team", "Продажи", "--from", past,
          "--target-minutes", "100"), "Правила за прошедшие дни не меняются"),
        (("talktime", "rules", "set", "--team", "Нет такого", "--from", today(),
          "--target-minutes", "100"), "Отдела «Нет такого» нет."),
        (("talktime", "rules", "set", "--team", "Продажи", "--from", today(),
          "--weekdays", "1239"), "Рабочие дни: цифры от 1"),
        (("talktime", "rules", "set", "--team", "Продажи", "--from", today()),
         "Нечего менять"),
        (("talktime", "rules", "set", "--team", "Продажи", "--from", "31.12.2026",
          "--fine", "5"), "«31.12.2026» — не дата"),
        (("talktime", "rules", "set", "--team", "Продажи", "--from", today(),
          "--day-start", "9"), "Начало рабочего дня: время укажите как ЧЧ:ММ"),
        (("talktime", "holidays", "remove", "--date", "2026-01-07"),
         "07.01.2026 — не праздник."),
        (("talktime", "absences", "add", "--manager", "999", "--from", today()),
         "Менеджера «999» нет"),
        (("talktime", "holidays", "import", str(tmp_path / "missing.csv")),
         f"Файла {tmp_path / 'missing.csv'} нет."),
    ]
    for args, words in cases:
        done = _cli(tmp_path, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith("telecrm: ") and words in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    ok = _cli(tmp_path, "talktime", "rules", "set", "--team", "Продажи", "--from", today(),
              "--target-minutes", "120", "--day-start", "10:00", "--day-end", "19:00")
    assert ok.returncode == 0 and '"target_minutes": 120' in ok.stdout


async def test_one_refusal_reads_the_same_on_the_page_in_json_and_on_the_command_line(
        served: tuple[str, World], tmp_path: Path) -> None:
    """Rules for a past day: one code, one Russian sentence, wherever it is refused."""
    base, _ = served
    day = datetime.now(TZ).date()
    expected = sentence("talktime.past_rules", {"today": day})
    assert expected == ("Правила за прошедшие дни не меняются: выберите дату не раньше "
                        f"{day:%d.%m.%Y}.")
    yesterday = (day - timedelta(days=1)).isoformat()
    boss = await sign_in(base, "sokolova")
    try:
        status, body = await boss.call("POST", "/api/talktime/rules", {
            "effective_from": yesterday, "target_minutes": 100})
        assert (status, body) == (400, {"error": expected, "code": "talktime.past_rules"})
        async with boss.http.post(f"{base}/talktime/settings/rules",
                                  data={"effective_from": yesterday, "target_minutes": "100",
                                        "csrf_token": boss.csrf}) as response:
            assert response.status == 400
            html = await response.text()
        assert f'<p class="error" role="alert" id="tt-error">{expected}</p>' in html
    finally:
        await boss.http.close()
    assert _cli(tmp_path, "users", "add", "boss", "--role", "supervisor", "--team",
                "Продажи").returncode == 0
    done = _cli(tmp_path, "talktime", "rules", "set", "--team", "Продажи", "--from", yesterday,
                "--target-minutes", "100")
    assert (done.returncode, done.stderr) == (2, f"telecrm: {expected}\n")
