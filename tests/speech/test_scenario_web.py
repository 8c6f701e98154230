"""«Сценарий» on the card, the task list and «Обзвон», role by role.

The seeded floor (tests/support/browser.py): petrov and smirnova in «Отдел продаж» with
their supervisor sokolova, kuznetsov in «Второй отдел», a marketer and an admin. The
panel shows the script of the client's deal stage (the lookup the check of calls uses)
as readable text; after the deal moves, the other stage's script; a manager never sees
another team's script; a marketer and those who may not open the client see nothing.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.dialer.test_dialer_web import Floor
from tests.support.db_fixtures import db_url_fixture  # noqa: F401
from tests.support.floor import served_floor
from tests.support.live import telecrm

pytestmark = [pytest.mark.calendar, pytest.mark.clock("2026-11-20T12:00:00+03:00")]

FIRST = """\
name: Первичный звонок
description: Цель — понять задачи клиента.
stages:
  - id: greeting
    title: Приветствие
    within_seconds: 30
    phrases: ["добрый день", "меня зовут"]
    say: ["Добрый день! Меня зовут Иван, компания «Телеком-Сервис»."]
  - id: needs
    title: Выявление потребностей
    phrases: ["какие задачи"]
    say: ["Какие задачи по связи у вас сейчас самые острые?"]
objections:
  - title: Дорого
    say: ["Давайте посчитаем, сколько стоит потерянный звонок."]
"""
OFFER = """\
name: Отправка КП
stages:
  - id: presentation
    title: Презентация
    phrases: ["коммерческое предложение"]
    say: ["Коммерческое предложение отправлю сегодня до 18:00."]
"""
SECOND_TEAM = """\
name: Скрипт второго отдела
stages:
  - id: greeting
    title: Приветствие
    phrases: ["здравствуйте"]
    say: ["Здравствуйте! Это второй отдел."]
"""


@pytest.fixture
async def floor(db_url: str, tmp_path: Path) -> AsyncIterator[Floor]:
    async with served_floor(Floor, db_url, tmp_path) as crm:
        yield crm


def add_script(floor: Floor, tmp_path: Path, text: str, *args: str) -> None:
    path = tmp_path / "script.yaml"
    path.write_text(text, "utf-8")
    telecrm("kkp", "scripts", "add", str(path), *args, "--db", floor.db_url)


def text_of(page: str) -> str:
    return html.unescape(page)


async def test_the_panel_follows_the_deal_stage_and_keeps_teams_apart(
        floor: Floor, tmp_path: Path) -> None:
    romashka = floor.world.clients["101"]  # petrov's
    vector = floor.world.clients["103"]    # kuznetsov's, «Второй отдел»
    await floor.pipeline()
    _, pipelines = await floor.call("petrov", "GET", "/api/pipelines")
    stages = {s["name"]: s for s in pipelines["pipelines"][0]["stages"]}
    add_script(floor, tmp_path, FIRST, "--stage", stages["Квалификация"]["code"])
    add_script(floor, tmp_path, OFFER, "--stage", stages["КП"]["code"])
    add_script(floor, tmp_path, SECOND_TEAM, "--team", "Второй отдел")

    # No deal, no script for any stage of his team: the card says so.
    status, page = await floor.call("petrov", "GET", f"/clients/{romashka}")
    assert status == 200 and "Сценарий звонка не загружен." in page

    status, deal = await floor.call("petrov", "POST", "/api/deals", {
        "client_id": romashka, "pipeline_id": pipelines["pipelines"][0]["id"],
        "title": "Облачная АТС"})
    assert status == 201, deal
    status, page = await floor.call("petrov", "GET", f"/clients/{romashka}")
    page = text_of(page)
    assert "<h2>Сценарий</h2>" in page and "Первичный звонок" in page
    assert "для этапа «Квалификация»" in page
    assert "Добрый день! Меня зовут Иван, компания «Телеком-Сервис»." in page
    assert "Какие задачи по связи у вас сейчас самые острые?" in page
    assert "«Дорого»" in page and "Давайте посчитаем" in page
    assert "в первые 30 с разговора" in page and "Цель — понять задачи клиента." in page
    assert "stages:" not in page and "say:" not in page  # never the YAML
    assert "второй отдел" not in page.lower()

    # The same panel, alone: for the task list and «Обзвон»; who may read it.
    for who, expected in [("petrov", 200), ("sokolova", 200), ("admin", 200),
                          ("smirnova", 404), ("kuznetsov", 404), ("marketer", 403)]:
        status, body = await floor.call(who, "GET", f"/clients/{romashka}/scenario")
        assert status == expected, (who, status)
        if status == 200:
            assert "Первичный звонок" in text_of(body), who
    async with aiohttp.ClientSession() as anonymous, anonymous.get(
            f"{floor.base}/clients/{romashka}/scenario", allow_redirects=False) as response:
        assert response.status in (302, 303) and "/login" in response.headers["Location"]

    status, body = await floor.call("petrov", "GET", f"/api/clients/{romashka}/scenario")
    assert status == 200 and body["name"] == "Первичный звонок"
    assert body["stage"] == "Квалификация"
    assert body["objections"] == [{"title": "Дорого", "say": [
        "Давайте посчитаем, сколько стоит потерянный звонок."], "phrases": []}]
    for who, expected in [("smirnova", 404), ("marketer", 403)]:
        assert (await floor.call(who, "GET", f"/api/clients/{romashka}/scenario"))[0] \
            == expected, who
    assert (await floor.call(None, "GET", f"/api/clients/{romashka}/scenario"))[0] == 401

    # The stage task of the deal is a call task: the task list offers its «Сценарий».
    status, tasks = await floor.call("petrov", "GET", "/tasks")
    assert f'data-scenario-src="/clients/{romashka}/scenario"' in tasks

    # The supervisor moves the deal: the card reads the other stage's script.
    status, moved = await floor.call("sokolova", "POST", f"/api/deals/{deal['id']}/move",
                                     {"stage_id": stages["КП"]["id"]})
    assert status == 200, moved
    status, page = await floor.call("petrov", "GET", f"/clients/{romashka}")
    page = text_of(page)
    assert "Отправка КП" in page and "для этапа «КП»" in page
    assert "Коммерческое предложение отправлю сегодня до 18:00." in page
    assert "Первичный звонок" not in page

    # Kuznetsov reads his own team's script; petrov's team never sees it, nor his his.
    status, body = await floor.call("kuznetsov", "GET", f"/clients/{vector}/scenario")
    assert status == 200 and "Здравствуйте! Это второй отдел." in text_of(body)
    status, page = await floor.call("kuznetsov", "GET", f"/clients/{vector}")
    assert "Скрипт второго отдела" in text_of(page) and "Отправка КП" not in page

    # The dialer's card carries the same script.
    status, state = await floor.call("petrov", "POST", "/api/dialer/start", {})
    assert status == 201, state
    script = state["card"]["script"]
    assert state["card"]["id"] == romashka
    assert script["name"] == "Отправка КП" and script["stage"] == "КП"
    assert script["prompts"][0]["say"] == ["Коммерческое предложение отправлю сегодня до 18:00."]

    # An administrator, who has no team, reads what the client's owner would.
    status, page = await floor.call("admin", "GET", f"/clients/{romashka}")
    assert "Отправка КП" in text_of(page)
