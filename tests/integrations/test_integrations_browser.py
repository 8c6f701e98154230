"""The admin's integrations in Chromium: he creates an API token on /admin/tokens (shown
once, then only its first characters) that another system then uses, registers a webhook
for ended calls, and reads the delivery log: a real call written by the call writer is
refused once by the receiver (HTTP 500), then «Отправить снова» delivers it.
Screenshots: tests/artifacts/integrations-*.png."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from crm_core.calls.services import record_call
from crm_core.db import create_engine, session_factory
from telecrm.settings import Settings
from tests.integrations.receiver import receiver
from tests.support.browser import (
    HOOKS,
    PASSWORD,
    _call,
    chromium,
    screenshot,
    seed_world,
    serve_app,
)


async def _write_call(db: str) -> None:
    engine = create_engine(db)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            start = datetime.now(UTC) - timedelta(minutes=3)
            await record_call(session, _call("b-1.0", "inbound", "answered", "+79161234567",
                                             "101", start, 42.0), hooks=HOOKS)
    finally:
        await engine.dispose()


async def _until(page: Any, url: str, text: str, tries: int = 60) -> None:
    """Reload ``url`` until the page shows ``text`` (the sender works in rounds)."""
    for _ in range(tries):
        if text in await page.inner_text("#deliveries"):
            return
        await asyncio.sleep(0.5)
        await page.goto(url)
    raise AssertionError(f"{text!r} never appeared on {url}")


async def test_admin_creates_a_token_and_a_webhook_and_reads_the_log(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed_world(db, tmp_path / "recordings")
    settings = Settings(data_dir=tmp_path, database_url=db,
                        recordings_source=tmp_path / "recordings", webhooks_allow_private=True)
    async with serve_app(settings, webhooks=True) as (_, base), receiver() as hook, \
            chromium() as browser:
        page = await browser.new_page()
        await page.goto(base + "/login")
        await page.fill("input[name=username]", "admin")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(lambda url: "/login" not in url)

        # the token: a form, no ids to type
        await page.click("nav >> text=API-токены")
        await page.fill("input[name=name]", "Выгрузка в BI")
        await page.select_option("select[name=user_id]", label="Иван Петров (Менеджер)")
        await page.check("input[aria-label='Звонки и записи: чтение']")
        await page.check("input[aria-label='Клиенты, контакты, заметки: запись']")
        await page.click("text=Создать токен")
        token = (await page.inner_text("#token-value")).strip()
        assert token.startswith("tcrm_")
        row = page.locator(f"tr[data-token='{token[:12]}']")
        assert "Иван Петров" in await row.inner_text()
        assert "ещё не использовался" in await row.inner_text()
        await screenshot(page, "integrations-tokens")
        async with aiohttp.ClientSession() as http, http.get(
                f"{base}/api/clients?q=Ромашка",
                headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 200
            assert [c["name"] for c in (await response.json())["clients"]] == \
                ["ООО Ромашка"]
        await page.goto(base + "/admin/tokens")
        assert token not in await page.content()  # shown once
        assert "ещё не использовался" not in await row.inner_text()

        # the webhook: its secret shown once
        await page.click("nav >> text=Вебхуки")
        await page.fill("input[name=name]", "BI отдела продаж")
        await page.fill("input[name=url]", hook.url)
        await page.check("input[value='call.ended']")
        await page.check("input[value='deal.won']")
        await page.click("text=Добавить получателя")
        secret = (await page.inner_text("#secret-value")).strip()
        assert secret.startswith("whsec_")
        assert "Звонок завершён" in await page.inner_text("#endpoints")

        # a call ends: the receiver fails once, the log says so, «Отправить снова»
        hook.answers = [500]
        await _write_call(db)
        log_url = base + "/admin/webhooks/deliveries"
        await page.click("text=Журнал отправок")
        await _until(page, log_url, "Получатель ответил ошибкой HTTP 500")
        text = await page.inner_text("#deliveries")
        assert "Звонок завершён" in text and "BI отдела продаж" in text
        assert "1 из 6" in text and "500" in text and "следующая попытка" in text
        await page.click("text=Отправить снова")
        await page.wait_for_url(lambda url: "resent=1" in url)
        await _until(page, log_url, "Доставлено")
        text = await page.inner_text("#deliveries")
        assert "200" in text and "1 из 6" in text
        await screenshot(page, "integrations-deliveries")
        assert len(hook.received) == 2
        assert all(r.signed_with(secret) for r in hook.received)
        assert hook.received[1].json["data"]["linkedid"] == "b-1.0"
