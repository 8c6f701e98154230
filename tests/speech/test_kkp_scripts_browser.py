"""The head of sales edits the sales script (KKP) with the form, in headless Chromium.

She opens /qc/scripts, finds the script in force in the editor, adds a stage and
phrases, moves the stage up, turns a stage optional, names the forbidden words and
saves a version from 1 December. The version is named by its start date and her
name, never by a hash; the YAML stays one click away. Screenshots:
tests/artifacts/kkp-script-editor-{desktop,phone}.png.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from crm_core.db import create_engine, session_factory
from crm_core.people.models import Team, User
from crm_core.sales.deals import StageSpec, create_pipeline
from crm_core.speech import scripts as kkp_scripts
from crm_core.speech.models import KkpScriptVersion
from speech.script import parse_script_text
from telecrm.settings import Settings
from tests.speech.test_speech_browser import sign_in
from tests.speech.test_speech_web import SCRIPT
from tests.support.browser import chromium, screenshot, seed_world, serve_app

pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")

MSK = ZoneInfo("Europe/Moscow")


async def _seed(url: str, tmp_path: Path) -> None:
    world = await seed_world(url, tmp_path / "monitor")
    engine = create_engine(url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            team = await session.scalar(select(Team).where(Team.name == "Отдел продаж"))
            await kkp_scripts.add_version(
                session, name="Холодный звонок", text=SCRIPT, team_id=team.id, stage=None,
                effective_from=datetime(2026, 11, 1, tzinfo=MSK), fine_amount=500,
                actor="sokolova", user_id=world.users["sokolova"])
            await create_pipeline(session, "B2B новые", [StageSpec.parse(s) for s in (
                "Квалификация:call:1", "КП:email:3", "Выиграна:won", "Проиграна:lost")],
                by=None)
    finally:
        await engine.dispose()


async def _stored(url: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            rows = await session.execute(
                select(KkpScriptVersion.text, KkpScriptVersion.stage,
                       KkpScriptVersion.fine_amount, KkpScriptVersion.effective_from, User.name)
                .join(User, User.id == KkpScriptVersion.created_by)
                .order_by(KkpScriptVersion.id))
            return [tuple(r) for r in rows]
    finally:
        await engine.dispose()


async def test_head_of_sales_edits_a_script_with_the_form(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await _seed(url, tmp_path)
    settings = Settings(data_dir=tmp_path, database_url=url,
                        recordings_source=tmp_path / "monitor")
    async with serve_app(settings) as (_, base), chromium() as browser:
        page = await sign_in(browser, base, "sokolova")
        await page.goto(base + "/qc/scripts")
        assert await page.inner_text("#kkp-versions tbody tr td:first-child") == (
            "Версия от 01.11.2026, Мария Соколова")
        editor = page.locator("#kkp-editor")
        assert await editor.locator("input[name=name]").input_value() == "Холодный звонок"
        stages = editor.locator("li.kkp-stage")
        assert [await s.input_value() for s in
                await stages.locator("input[name=step_title]").all()] == [
            "Приветствие", "Выявление потребностей"]

        # a synonym for the greeting, which must come within 30 seconds
        greeting = stages.nth(0)
        await greeting.locator("button.kkp-add-phrase").click()
        await greeting.locator("input[name=phrase]").last.fill("здравствуйте")
        await greeting.locator("input[name=step_within]").fill("30")
        # needs discovery becomes optional
        await stages.nth(1).locator("input[name=step_required]").uncheck()
        # a new stage, two of its three phrases needed, moved before the needs
        await editor.locator("button.kkp-add-stage").click()
        added = stages.nth(2)
        await added.locator("input[name=step_title]").fill("Представление компании")
        await added.locator("input[name=phrase]").fill("наша компания")
        for phrase in ("мы занимаемся", "мы работаем"):
            await added.locator("button.kkp-add-phrase").click()
            await added.locator("input[name=phrase]").last.fill(phrase)
        await added.locator("input[name=step_min]").fill("2")
        await added.locator("button.kkp-up").click()
        # the forbidden words get a name and one more word
        ban = editor.locator(".kkp-ban").first
        await ban.locator("input[name=ban_title]").fill("Слова-паразиты")
        await ban.locator("button.kkp-add-phrase").click()
        await ban.locator("input[name=ban_phrase]").last.fill("типа")
        # what the manager says to greet, and the answer to «Дорого»
        await greeting.locator("textarea[name=step_say]").fill(
            "Добрый день! Меня зовут …, компания «Телеком-Сервис».\nУдобно говорить?")
        await editor.locator("button.kkp-add-objection").click()
        objection = editor.locator(".kkp-objection").first
        await objection.locator("input[name=obj_title]").fill("Дорого")
        await objection.locator("textarea[name=obj_say]").fill(
            "Давайте посчитаем, сколько стоит потерянный звонок.")
        # from 1 December, for deals at the qualification stage, 700 ₽ a violation
        await editor.locator("input[name=effective_from]").fill("2026-12-01")
        await editor.locator("select[name=stage]").select_option(
            label="Квалификация (B2B новые)")
        await editor.locator("input[name=fine_amount]").fill("700")
        await page.evaluate("window.scrollTo(0, 0)")
        await screenshot(page, "kkp-script-editor")

        # a stage with a title and no phrase is refused; what was typed stays
        await editor.locator("button.kkp-add-stage").click()
        await stages.nth(3).locator("input[name=step_title]").fill("Закрытие")
        async with page.expect_navigation():
            await editor.locator("button[type=submit]").click()
        assert await page.inner_text("#script-editor .error") == (
            "Этап 4 «Закрытие»: добавьте хотя бы одну фразу.")
        assert await stages.count() == 4
        assert await stages.nth(1).locator("input[name=step_min]").input_value() == "2"
        assert await editor.locator("input[name=fine_amount]").input_value() == "700"
        await stages.nth(3).locator("button.kkp-remove-block").click()
        async with page.expect_navigation():
            await editor.locator("button[type=submit]").click()

        assert await page.inner_text(".notice") == "Версия от 01.12.2026, Мария Соколова сохранена."
        versions = page.locator("#kkp-versions tbody tr")
        first = [c.strip() for c in await versions.nth(0).locator("td").all_inner_texts()]
        assert first[:5] == ["Версия от 01.12.2026, Мария Соколова", "Холодный звонок",
                             "Отдел продаж", "Квалификация (B2B новые)", "700\u00a0₽"]
        assert await versions.count() == 2
        text = await page.inner_text("main")
        stored = await _stored(url)
        assert len(stored) == 2
        new_text, stage, fine, starts, author = stored[1]
        assert kkp_scripts.digest(new_text) not in text  # no hash on the page
        assert (stage, fine, author) == ("квалификация", 700, "Мария Соколова")
        assert starts.replace(tzinfo=starts.tzinfo or ZoneInfo("UTC")).astimezone(
            MSK) == datetime(2026, 12, 1, tzinfo=MSK)
        script = parse_script_text(new_text)
        assert [(s.id, s.title, s.required, s.within_seconds, s.min_matches, s.phrases)
                for s in script.stages] == [
            ("greeting", "Приветствие", True, 30.0, 1,
             ("добрый день", "меня зовут", "здравствуйте")),
            ("predstavlenie-kompanii", "Представление компании", True, None, 2,
             ("наша компания", "мы занимаемся", "мы работаем")),
            ("needs", "Выявление потребностей", False, None, 1, ("какие задачи",))]
        assert [(f.id, f.title, f.phrases) for f in script.forbidden] == [
            ("slang", "Слова-паразиты", ("короче", "типа"))]
        assert script.stages[0].say == ("Добрый день! Меня зовут …, компания «Телеком-Сервис».",
                                        "Удобно говорить?")
        assert [(o.title, o.say) for o in script.objections] == [
            ("Дорого", ("Давайте посчитаем, сколько стоит потерянный звонок.",))]

        # the YAML is still there for those who want it: export and import
        link = versions.nth(0).locator("a", has_text="YAML")
        response = await page.request.get(base + await link.get_attribute("href"))
        assert response.ok and await response.text() == new_text
        assert not await page.locator("#kkp-yaml-form").is_visible()
        await page.locator("#kkp-yaml summary").click()
        assert await page.locator("#kkp-yaml-form textarea[name=text]").is_visible()
        await page.evaluate("window.scrollTo(0, 0)")
        await screenshot(page, "kkp-script-saved")
