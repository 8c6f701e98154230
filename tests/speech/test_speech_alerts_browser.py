"""Speech alerts in Chromium: the head of «Отдел продаж» adds a rule in the form, a
transcript is saved by a worker in another process (here: the test's own session), and
her background tab shows the system Notification «Клиент сказал «расторгнуть»: ООО
Ромашка, Иван Петров»; the list opens the call at the phrase's second and takes
«Просмотрено». The delay from the transcript saved to the notification shown is printed.

``window.Notification`` is wrapped only to observe what the page shows (as in
tests/missed/test_missed_browser.py). Screenshots: tests/artifacts/speech-alert-*.png.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from crm_core.db import create_engine, session_factory
from crm_core.speech import dictionaries
from telecrm.settings import Settings
from tests.missed.smtp import Inbox, smtp_server
from tests.missed.test_missed_browser import OBSERVE, serve, sign_in
from tests.speech.test_speech_alerts import CANCEL, _user, setup, transcribe
from tests.support.browser import chromium, screenshot

pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")


async def test_rule_in_the_form_then_system_notification(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    with smtp_server() as inbox:
        world = await setup(db, tmp_path, inbox.port)
        engine = create_engine(db)
        try:
            async with session_factory(engine, writer=True)() as session, session.begin():
                await dictionaries.create(session, await _user(session, "sokolova"),
                                          "Расторжение", ["расторгнуть", "вернуть деньги"])
        finally:
            await engine.dispose()
        settings = Settings(data_dir=tmp_path, database_url=db,
                            recordings_source=tmp_path / "recordings")
        async with serve(settings) as base, chromium() as browser:
            await browser.add_init_script(OBSERVE)
            await browser.grant_permissions(["notifications"], origin=base)
            page = await browser.new_page()
            await sign_in(page, base, "sokolova")

            await page.goto(base + "/alerts/rules")
            form = page.locator("#alert-rule-new")
            await form.locator("select[name=dictionary]").select_option(label="Расторжение")
            await form.locator("select[name=speaker]").select_option(label="Клиент")
            assert await form.locator("select[name=team] option").all_inner_texts() == [
                "Отдел продаж"]  # a head of sales sets rules for her own team only
            await form.locator("button[type=submit]").click()
            await page.wait_for_url(base + "/alerts/rules")
            row = page.locator("#alert-rules tbody tr")
            assert await row.count() == 1
            assert "Расторжение" in await row.inner_text()
            assert await row.locator(".state").inner_text() == "Включено"
            await screenshot(page, "speech-alert-rules")

            await page.goto(base + "/alerts")
            await page.wait_for_function(
                "document.getElementById('live-dot').classList.contains('on')")
            other = await browser.new_page()  # she works in another tab
            await other.goto(base + "/clients")
            await other.bring_to_front()

            saved = time.monotonic()
            await transcribe(db, world.calls["cancel_101"], CANCEL)
            await page.wait_for_function("window.__notices.length > 0", timeout=30_000)
            delay = time.monotonic() - saved
            print(f"\nspeech alert: transcript saved -> system notification in the browser "
                  f"{delay:.2f} s (another process's worker; the sweeper every 5 s)")
            assert delay < 15.0  # «within a minute», by far
            notices = await page.evaluate("window.__notices")
            assert [n["title"] for n in notices] == [
                "Клиент сказал «расторгнуть»: ООО Ромашка, Иван Петров"]
            assert "«мы наверное расторгнем договор с вами»" in notices[0]["body"]
            await other.close()
            for _ in range(50):
                if inbox.to("sokolova@example.ru"):
                    break
                await page.wait_for_timeout(100)
            [mail] = inbox.to("sokolova@example.ru")
            assert mail["Subject"] == notices[0]["title"]
            assert "на 0:14" in Inbox.text(mail)
            assert not inbox.to("orlova@example.ru")  # the other team's head: nothing

            await page.bring_to_front()
            await page.reload()
            alert = page.locator("#alerts li")
            assert await alert.count() == 1
            text = await alert.inner_text()
            assert "Клиент сказал «расторгнуть»" in text and "ООО Ромашка" in text
            await screenshot(page, "speech-alert-list")
            await alert.get_by_role("button", name="Просмотрено").click()
            await page.wait_for_url(lambda url: "/alerts" in url)
            assert await alert.locator(".seen").inner_text() == "Просмотрено"
            await alert.get_by_role("link", name="Послушать с 0:14").click()
            await page.wait_for_url(lambda url: url.endswith(
                f"/calls/{world.calls['cancel_101']}#t=14"))
            await screenshot(page, "speech-alert-call")
