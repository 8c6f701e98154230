"""The QC queue and the transcript dialogue in a real browser (headless Chromium).

The supervisor opens /qc, plays the evidence from its second, confirms one
violation and dismisses another with a reason; the manager reads the dialogue on
the call page and on the client card, and a phrase plays the call from its second.
Screenshots go to tests/artifacts/speech-*.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from telecrm.settings import Settings
from tests.speech.test_speech_web import SCRIPT, seed_results
from tests.support.browser import PASSWORD, chromium, fake_wav, screenshot, seed_world, serve_app


async def sign_in(browser: Any, base: str, username: str) -> Any:
    page = await browser.new_page()
    await page.goto(base + "/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_load_state("networkidle")
    return page


async def position(page: Any, selector: str) -> float:
    """Where the audio element started playing, once it has seeked and started.

    The start of the played stretch it is in, not ``currentTime``: the audio goes on
    playing while the test asks, and on a busy machine it had moved on by 0.75 s. A
    paused one (seeked, not played) is where it stands.
    """
    await page.wait_for_function(
        "sel => { const a = document.querySelector(sel);"
        " return a && a.readyState >= 1 && !a.seeking && a.currentTime > 0; }", arg=selector)
    return float(await page.eval_on_selector(selector, """a => {
        for (let i = a.played.length - 1; i >= 0; i--) {
          if (a.played.start(i) <= a.currentTime + 0.05) return a.played.start(i);
        }
        return a.currentTime;
    }"""))


async def test_qc_and_dialogue_in_the_browser(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    world = await seed_world(db, tmp_path / "monitor")
    (tmp_path / "monitor" / world.recording).write_bytes(fake_wav(seconds=20))
    await seed_results(db, world)
    settings = Settings(data_dir=tmp_path, database_url=db, recordings_source=tmp_path / "monitor")
    async with serve_app(settings) as (_, base), chromium() as browser:
        # -- the supervisor's queue: lowest score first, the evidence of the first row open
        boss = await sign_in(browser, base, "sokolova")
        await boss.goto(base + "/qc")
        assert await boss.inner_text("nav.nav a[href='/qc']") == "Контроль качества"
        scores = await boss.eval_on_selector_all(".qc-row .score",
                                                 "els => els.map(e => +e.textContent)")
        assert scores == sorted(scores) and scores[-1] == 100
        await boss.wait_for_selector("#qc-detail .violation")
        forbidden = boss.locator(".violation", has_text="slang")
        assert "«короче»" in await forbidden.inner_text()
        await forbidden.locator("button.play").click()
        assert abs(await position(boss, "#qc-audio") - 9.0) < 0.5

        # -- dismiss without a reason is refused in the page; with one it is recorded
        missing = boss.locator(".violation", has_text="needs")
        await missing.locator("button.dismiss").click()
        assert "Укажите причину" in await missing.locator(".err").inner_text()
        await missing.locator("input[name=reason]").fill("клиент сам рассказал о задачах")
        await missing.locator("button.dismiss").click()
        await boss.wait_for_selector(".violation:has-text('needs') .decided")
        await forbidden.locator("button.confirm").click()
        await boss.wait_for_selector(".violation:has-text('slang') .decided")
        decided = (await forbidden.locator(".decided").inner_text()).replace("\u00a0", " ")
        assert "штраф 500 ₽" in decided
        assert "Мария Соколова" in await forbidden.locator(".decided").inner_text()
        await boss.reload()
        await boss.wait_for_selector("#qc-detail .violation .decided")
        metrics = await boss.inner_text(".qc-metrics")
        assert "Иван Петров" in metrics and "500" in metrics
        await screenshot(boss, "speech-qc")

        await boss.goto(base + "/qc/scripts")
        await boss.click("#kkp-yaml summary")  # the YAML import, for those who want it
        await boss.fill("#kkp-yaml-form textarea[name=text]",
                        "stages:\n  - id: a\n    phrases: [x]\n    colour: red\n")
        await boss.click("#kkp-yaml-form button[type=submit]")
        assert "строка 4: неизвестный ключ «colour»" in await boss.inner_text("#kkp-yaml .error")
        assert await boss.input_value("#kkp-yaml-form textarea[name=text]")  # kept to fix
        upload = tmp_path / "script.yaml"
        upload.write_text(SCRIPT.replace("Холодный звонок", "Тёплый звонок"), "utf-8")
        await boss.fill("#kkp-yaml-form textarea[name=text]", "")
        await boss.set_input_files("#kkp-yaml-form input[name=file]", str(upload))
        await boss.fill("#kkp-yaml-form input[name=fine_amount]", "700")
        await boss.click("#kkp-yaml-form button[type=submit]")
        await boss.wait_for_selector(".notice")
        versions = (await boss.inner_text("#kkp-versions")).replace("\u00a0", " ")
        assert "Тёплый звонок" in versions and "700 ₽" in versions and "Отдел продаж" in versions
        named = await boss.inner_text("#kkp-versions tbody tr td:first-child")
        assert named.startswith("Версия от ") and named.endswith(", Мария Соколова")
        await screenshot(boss, "speech-scripts")

        # -- the manager: his result without decision buttons; the dialogue plays the call
        await browser.clear_cookies()  # one browser profile: sign the supervisor out
        petrov = await sign_in(browser, base, "petrov")
        await petrov.goto(base + "/qc")
        await petrov.wait_for_selector("#qc-detail .violation .decided")
        assert await petrov.locator("button.confirm").count() == 0
        await petrov.goto(f"{base}/calls/{world.calls['romashka_101']}")
        await petrov.wait_for_selector(".transcript .turn a")
        phrases = await petrov.eval_on_selector_all(
            ".transcript .turn",
            "els => els.map(e => [e.className, e.querySelector('a').textContent])")
        assert phrases == [["turn manager", "добрый день меня зовут иван"],
                           ["turn client", "здравствуйте слушаю вас"],
                           ["turn manager", "короче давайте так"]]
        await petrov.click(".transcript .turn.client a")
        assert abs(await position(petrov, ".player audio") - 3.5) < 0.5
        await screenshot(petrov, "speech-call")

        await petrov.goto(f"{base}/clients/{world.clients['101']}")
        await petrov.wait_for_selector(".transcript .call-transcript .turn a")
        await petrov.click(".transcript .call-transcript .turn.manager a >> nth=1")
        assert abs(await position(petrov, ".call-transcript audio") - 9.0) < 0.5
        await screenshot(petrov, "speech-client")
