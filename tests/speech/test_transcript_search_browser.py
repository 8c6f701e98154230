"""«Поиск по разговорам» in a real browser (headless Chromium): the supervisor types a word
in another form than it was said, reads the phrase with the word marked, plays the call
from the phrase's second, and opens the call page at that moment.
Screenshots go to tests/artifacts/transcript-search-*.png.
"""

from __future__ import annotations

from pathlib import Path

from telecrm.settings import Settings
from tests.speech.search_world import seed_transcripts
from tests.speech.test_speech_browser import position, sign_in
from tests.support.browser import chromium, fake_wav, screenshot, seed_world, serve_app


async def test_search_page_plays_the_call_from_the_phrase(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    world = await seed_world(db, tmp_path / "monitor")
    (tmp_path / "monitor" / world.recording).write_bytes(fake_wav(seconds=30))
    await seed_transcripts(db, world)
    settings = Settings(data_dir=tmp_path, database_url=db, recordings_source=tmp_path / "monitor")
    async with serve_app(settings) as (_, base), chromium() as browser:
        boss = await sign_in(browser, base, "sokolova")
        await boss.click("nav.nav a[href='/transcripts/search']")
        await boss.fill("input[name=q]", "скидку")
        await boss.select_option("select[name=speaker]", "manager")
        await boss.click("form[role=search] button[type=submit]")
        await boss.wait_for_selector(".hit")
        hits = await boss.eval_on_selector_all(
            ".hit", "els => els.map(e => [e.dataset.call, e.querySelector('q').textContent,"
            " [...e.querySelectorAll('mark')].map(m => m.textContent)])")
        assert hits == [[str(world.calls["romashka_101"]),
                         "могу предложить вам скидки на годовой тариф", ["скидки"]]]
        head = await boss.inner_text(".hit .hit-head")
        assert "Иван Петров" in head and "ООО Ромашка" in head
        await boss.wait_for_load_state("load")  # the player's script has run: ▶ plays
        await boss.click(".hit button.play")
        assert abs(await position(boss, ".hits-player audio") - 12.0) < 0.5
        assert "с 0:12" in await boss.inner_text(".hits-player .now")
        await screenshot(boss, "transcript-search")

        # the other team's call is not found, whatever the words
        await boss.fill("input[name=q]", "расторгнуть")
        await boss.select_option("select[name=speaker]", "")
        await boss.click("form[role=search] button[type=submit]")
        await boss.wait_for_selector(".search-hits p.muted")
        assert await boss.inner_text(".search-hits p.muted") == "Ничего не найдено."

        # the call page opened at the phrase's moment plays from there
        await boss.goto(f"{base}/calls/{world.calls['romashka_101']}#t=12")
        assert abs(await position(boss, ".player audio") - 12.0) < 0.5
