"""Scorecards in headless Chromium, as the roles that use them.

The supervisor builds a scorecard in the form (rows with weights, an instant-fail
item), scores Иван Петров's call on its page beside the automatic check, and reads the
weekly average and the week's random sample on /qc, and after the admin scores the
same call, the reviewers' agreement on /qc/calibration; the manager reads the score on his
call's page without a form.
Screenshots go to tests/artifacts/qc-scorecard-*.png.
"""

from __future__ import annotations

from pathlib import Path

from telecrm.settings import Settings
from tests.speech.test_speech_browser import sign_in
from tests.speech.test_speech_web import seed_results
from tests.support.browser import chromium, fake_wav, screenshot, seed_world, serve_app


async def test_a_scorecard_is_built_and_filled_in_the_browser(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    world = await seed_world(db, tmp_path / "monitor")
    (tmp_path / "monitor" / world.recording).write_bytes(fake_wav(seconds=20))
    await seed_results(db, world)
    settings = Settings(data_dir=tmp_path, database_url=db, recordings_source=tmp_path / "monitor")
    call_url = f"{base_path(world.calls['romashka_101'])}"
    async with serve_app(settings) as (_, base), chromium() as browser:
        boss = await sign_in(browser, base, "sokolova")
        await boss.goto(base + "/qc")
        await boss.click("a[href='/qc/scorecards']")
        await boss.fill("input[name=name]", "Оценка холодного звонка")
        for n, (title, weight) in enumerate([("Приветствие и имя", "20"),
                                             ("Выявление потребностей", "50"),
                                             ("Грубость с клиентом", "")]):
            await boss.fill(f"input[name=title_{n}]", title)
            if weight:
                await boss.fill(f"input[name=weight_{n}]", weight)
        await boss.check("input[name=fail_2]")
        await boss.click("#scorecard-form button[type=submit]")
        await boss.wait_for_selector(".notice")
        versions = await boss.inner_text("#scorecard-versions")
        assert "Грубость с клиентом (провал сразу)" in versions
        assert "Выявление потребностей (вес 50)" in versions
        assert await boss.input_value("input[name=title_1]") == "Выявление потребностей"
        await screenshot(boss, "qc-scorecard-builder")

        await boss.goto(base + call_url)
        await boss.wait_for_selector("#qc-call .sc-form")
        assert "оценка 40" in await boss.inner_text("#qc-call-auto")
        await boss.click("#qc-call .sc-form button[type=submit]")
        assert "Ответьте на пункт «Приветствие и имя»" in await boss.inner_text(
            "#qc-call .sc-form .err")
        await boss.check("#qc-call [data-item=k1] input[value=yes]")
        await boss.check("#qc-call [data-item=k2] input[value=no]")
        await boss.check("#qc-call [data-item=k3] input[value=no]")
        await boss.fill("#qc-call textarea[name=comment]", "Не спросил о задачах")
        await boss.click("#qc-call .sc-form button[type=submit]")
        await boss.wait_for_selector("#qc-call .qc-scores")
        assert await boss.inner_text("#qc-call .qc-scores td.score") == "29"
        assert "ваша оценка 29" in await boss.inner_text("#qc-call .sc-form h3")
        await screenshot(boss, "qc-scorecard-call")
        await boss.goto(base + "/qc")
        weekly = await boss.inner_text("#qc-weekly")
        assert "Иван Петров" in weekly and "29,0" in weekly

        # the weekly sample of this week: N for the team, then the draw
        week = await boss.eval_on_selector(".qc-filters input[name=until]", "e => e.value")
        await boss.goto(f"{base}/qc?week={week}")
        await boss.fill("#qc-sample-settings input[type=number]", "1")
        await boss.click("#qc-sample-settings button[type=submit]")
        assert await boss.input_value("#qc-sample-settings input[type=number]") == "1"
        await boss.click("#qc-sample-draw button[type=submit]")
        await boss.wait_for_selector(".qc-sample")
        sampled = await boss.inner_text(".qc-sample tbody")
        assert "Иван Петров" in sampled and "оценён" in sampled
        await screenshot(boss, "qc-sample")
        await browser.clear_cookies()

        # calibration: the admin scores the same call, differing on one checkpoint
        admin = await sign_in(browser, base, "admin")
        await admin.goto(base + call_url)
        await admin.wait_for_selector("#qc-call .sc-form")
        for item, answer in (("k1", "yes"), ("k2", "yes"), ("k3", "no")):
            await admin.check(f"#qc-call [data-item={item}] input[value={answer}]")
        await admin.click("#qc-call .sc-form button[type=submit]")
        await admin.wait_for_selector("#qc-call .qc-scores tbody tr:nth-child(2)")
        await browser.clear_cookies()
        boss = await sign_in(browser, base, "sokolova")
        await boss.goto(base + "/qc")
        await boss.click("a[href='/qc/calibration']")
        overall = await boss.inner_text("#calibration-overall")
        assert "66,7 %" in overall  # two answers of three alike
        worst = await boss.inner_text("#calibration-checkpoints tbody tr:first-child")
        assert worst.startswith("Выявление потребностей")
        assert "Выявление потребностей" in await boss.inner_text("#calibration-pairs")
        await screenshot(boss, "qc-calibration")
        await browser.clear_cookies()

        petrov = await sign_in(browser, base, "petrov")
        await petrov.goto(base + call_url)
        await petrov.wait_for_selector("#qc-call .qc-scores")
        scores = await petrov.inner_text("#qc-call .qc-scores")
        assert "Мария Соколова" in scores and "Не спросил о задачах" in scores
        assert await petrov.locator("#qc-call .sc-form").count() == 0
        await screenshot(petrov, "qc-scorecard-manager")


def base_path(call_id: int) -> str:
    return f"/calls/{call_id}"
