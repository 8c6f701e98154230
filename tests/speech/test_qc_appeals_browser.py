"""Appeals on /qc in headless Chromium, as the roles that use them.

The supervisor confirms a fine; the manager sees it on his /qc page and disputes it
with a reason; the supervisor sees the appeal but no buttons (she confirmed it); the
admin cancels it with a comment; the manager then reads «Штраф отменён по апелляции».
Screenshots go to tests/artifacts/qc-appeal-*.png.
"""

from __future__ import annotations

from pathlib import Path

from telecrm.settings import Settings
from tests.speech.test_speech_browser import sign_in
from tests.speech.test_speech_web import seed_results
from tests.support.browser import chromium, fake_wav, screenshot, seed_world, serve_app


async def test_a_fine_is_appealed_and_cancelled_in_the_browser(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    world = await seed_world(db, tmp_path / "monitor")
    (tmp_path / "monitor" / world.recording).write_bytes(fake_wav(seconds=20))
    await seed_results(db, world)
    settings = Settings(data_dir=tmp_path, database_url=db, recordings_source=tmp_path / "monitor")
    slang = ".violation:has-text('slang')"
    async with serve_app(settings) as (_, base), chromium() as browser:
        boss = await sign_in(browser, base, "sokolova")
        await boss.goto(base + "/qc")
        await boss.click(f"{slang} button.confirm")
        await boss.wait_for_selector(f"{slang} .fine-state")
        assert await boss.inner_text(f"{slang} .fine-state") == "Штраф действует"
        assert await boss.locator("button.appeal-send").count() == 0  # not hers to appeal
        await browser.clear_cookies()

        petrov = await sign_in(browser, base, "petrov")
        await petrov.goto(base + "/qc")
        await petrov.wait_for_selector(f"{slang} button.appeal-send")
        await petrov.click(f"{slang} button.appeal-send")
        assert "Напишите причину" in await petrov.inner_text(f"{slang} .appeal .err")
        await petrov.fill(f"{slang} input[name=appeal_reason]",
                          "«Короче» — это фамилия клиента, Коротченко")
        await petrov.click(f"{slang} button.appeal-send")
        await petrov.wait_for_selector(f"{slang} .appeal-appealed")
        box = await petrov.inner_text(f"{slang} .appeal")
        assert "Штраф оспорен, ждёт решения" in box and "Коротченко" in box
        assert await petrov.locator("button.appeal-send").count() == 0
        await screenshot(petrov, "qc-appeal-manager")
        await browser.clear_cookies()

        boss = await sign_in(browser, base, "sokolova")
        await boss.goto(base + "/qc")
        assert "штраф оспорен" in await boss.inner_text(".qc-row:first-child")
        await boss.wait_for_selector(f"{slang} .appeal-appealed")
        assert await boss.locator("button.appeal-cancel").count() == 0  # her own confirmation
        assert "другой руководитель" in await boss.inner_text(f"{slang} .appeal")
        await browser.clear_cookies()

        admin = await sign_in(browser, base, "admin")
        await admin.goto(base + "/qc")  # the lowest score, Петров's call, opens by itself
        assert await admin.get_attribute(".qc-row:first-child", "data-call") == str(
            world.calls["romashka_101"])
        await admin.wait_for_selector(f"{slang} button.appeal-cancel")
        await admin.fill(f"{slang} input[name=appeal_comment]",
                         "Прослушал запись: это фамилия, штраф отменяю")
        await admin.click(f"{slang} button.appeal-cancel")
        await admin.wait_for_selector(f"{slang} .appeal-cancelled")
        decided = await admin.inner_text(f"{slang} .appeal-decision")
        assert decided.startswith("Отменил Администратор") and "это фамилия" in decided
        await admin.reload()
        await admin.wait_for_selector(".qc-metrics")
        metrics = await admin.inner_text(".qc-metrics")
        assert "Отменено по апелляции" in metrics
        await screenshot(admin, "qc-appeal-admin")
        await browser.clear_cookies()

        petrov = await sign_in(browser, base, "petrov")
        await petrov.goto(base + "/qc")
        await petrov.wait_for_selector(f"{slang} .appeal-cancelled")
        assert (await petrov.inner_text(f"{slang} .fine-state")
                == "Штраф отменён по апелляции")
