"""Phrase dictionaries in a real browser (headless Chromium): the supervisor adds one in the
form, reads its report (bars per manager, counts per week), opens the calls behind a count
and plays one from the phrase that said it. Screenshots: tests/artifacts/dictionary-*.png.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from telecrm.settings import Settings
from tests.speech.search_world import seed_transcripts
from tests.speech.test_phrase_dictionaries import CALLS_AT, seed_last_week
from tests.speech.test_speech_browser import position, sign_in
from tests.support.browser import chromium, fake_wav, screenshot, seed_world, serve_app

pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")


async def test_a_dictionary_from_the_form_to_the_calls(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    world = await seed_world(db, tmp_path / "monitor", calls_at=CALLS_AT)
    (tmp_path / "monitor" / world.recording).write_bytes(fake_wav(seconds=30))
    await seed_transcripts(db, world)
    await seed_last_week(db, world)
    settings = Settings(data_dir=tmp_path, database_url=db, recordings_source=tmp_path / "monitor")
    async with serve_app(settings) as (_, base), chromium() as browser:
        boss = await sign_in(browser, base, "sokolova")
        await boss.goto(base + "/transcripts/search")
        await boss.click("text=Словари фраз")
        await boss.fill("#dictionary-new input[name=name]", "Обещания скидок")
        await boss.fill("#dictionary-new textarea[name=phrases]", "!!!\n")
        await boss.click("#dictionary-new button[type=submit]")
        assert await boss.inner_text("p.error") == "В «!!!» нет ни одного слова."
        assert await boss.input_value("#dictionary-new input[name=name]") == "Обещания скидок"
        await boss.fill("#dictionary-new textarea[name=phrases]", "скидка\nдам скидку\n")
        await screenshot(boss, "dictionary-list")
        await boss.click("#dictionary-new button[type=submit]")
        await boss.wait_for_selector("ul.bars")
        assert await boss.inner_text("h1") == "Словарь «Обещания скидок»"

        await boss.fill("input[name=from]", "2026-11-09")
        await boss.fill("input[name=to]", "2026-11-22")
        await boss.select_option("select[name=speaker]", "manager")
        await boss.click("form.call-filters button[type=submit]")
        await boss.wait_for_selector("table.weeks")
        bars = await boss.eval_on_selector_all(
            "ul.bars li", "els => els.map(e => [e.querySelector('.label').textContent,"
            " e.querySelector('.n').textContent.replace(/\\s+/g, ' ').trim()])")
        assert bars == [["Иван Петров", "2 из 3"], ["Ольга Смирнова", "0 из 1"]]
        heads = await boss.eval_on_selector_all("table.weeks thead th",
                                                "els => els.map(e => e.textContent)")
        assert heads == ["Менеджер", "09.11–15.11", "16.11–22.11", "Всего"]
        await screenshot(boss, "dictionary-report")

        # Иван Петров, the week of 09.11: the one call where he promised a discount
        row = boss.locator("table.weeks tbody tr", has_text="Иван Петров")
        await row.locator("td >> nth=0").locator("a.said").click()
        await boss.wait_for_selector(".hit")
        assert await boss.locator(".hit").count() == 1
        marked = await boss.eval_on_selector_all(".hit mark", "els => els.map(e => e.textContent)")
        assert marked == ["дам", "скидку"]
        assert "неделя с 09.11.2026" in await boss.inner_text("main")

        # the week of 16.11 holds the recorded call: it plays from the phrase's second
        await boss.go_back()
        await row.locator("td >> nth=1").locator("a.said").click()
        await boss.wait_for_selector(".hit")
        await boss.wait_for_load_state("load")  # the player's script has run: ▶ plays
        await boss.click(".hit button.play")
        assert abs(await position(boss, ".hits-player audio") - 12.0) < 0.5
        await screenshot(boss, "dictionary-calls")

        # the form changes the phrases; the report counts the new ones in past weeks too
        await boss.goto(base + "/dictionaries")
        await boss.click("text=Изменить")
        await boss.fill("#dictionary-edit textarea[name=phrases]", "перезвонить")
        await boss.click("#dictionary-edit button[value=save]")
        await boss.wait_for_selector("ul.bars")
        assert "Фразы: перезвонить" in await boss.inner_text("p.phrases")
        await boss.click("text=Изменить")
        await boss.click("#dictionary-edit button[value=archive]")
        await boss.wait_for_selector("text=В архиве")
        assert "Словарей пока нет." in await boss.inner_text("main")
