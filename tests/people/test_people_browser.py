"""People management in Chromium (desktop and phone), walked as an admin and as the user.

The admin creates a user and resets his password; the user signs in with the temporary
password and cannot go anywhere before he has chosen his own. Then the admin switches
off a manager whose Today page is open in another browser: that page loses its session
at once (a ``signed_out`` event on its live stream), long before the stream's own
heartbeat check. Screenshots go to tests/artifacts/people-*.png.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from telecrm.settings import Settings
from tests.support.browser import PASSWORD, PHONE, chromium, screenshot, seed_world, serve_app

# A Friday noon: a working day under way (the seeded calls are an hour old).
pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")

PROMPTLY_MS = 4000  # the stream's heartbeat check would take 15 s


async def sign_in(page: Any, base: str, username: str, password: str = PASSWORD) -> None:
    await page.goto(base + "/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")


@pytest.fixture
async def served(tmp_path: Path) -> Any:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    world = await seed_world(db, tmp_path / "recordings")
    settings = Settings(data_dir=tmp_path, database_url=db,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (_, base):
        yield base, world


async def test_admin_creates_a_user_resets_his_password_and_he_must_change_it(
        served: Any) -> None:
    base, _ = served
    async with chromium() as admin_browser, chromium() as user_browser:
        admin = await admin_browser.new_page()
        await sign_in(admin, base, "admin")
        await admin.wait_for_url("**/team")
        await admin.click("nav.nav >> text=Пользователи")
        await admin.wait_for_url("**/admin/users")
        assert "Иван Петров" in await admin.inner_text("#users")
        await screenshot(admin, "people-admin-users")

        form = admin.locator("#new-user form")
        await form.locator("input[name=username]").fill("kozlov")
        await form.locator("input[name=name]").fill("Пётр Козлов")
        await form.locator("select[name=role]").select_option(label="Менеджер")
        await form.locator("select[name=team_id]").select_option(label="Отдел продаж")
        await form.locator("input[name=extension]").fill("101")  # Petrov's phone
        await form.locator("input[name=password]").fill("first-password-1")
        await form.locator("button[type=submit]").click()
        await admin.wait_for_selector("#pp-error")
        assert "Внутренний номер 101 уже занят" in await admin.inner_text("#pp-error")
        assert await form.locator("input[name=name]").input_value() == "Пётр Козлов"
        await screenshot(admin, "people-admin-refused")
        await form.locator("input[name=extension]").fill("104")
        await form.locator("input[name=password]").fill("first-password-1")
        await form.locator("button[type=submit]").click()
        await admin.wait_for_selector("#pp-done")
        assert await admin.inner_text("#pp-done") == "Пользователь создан."
        assert "Пётр Козлов" in await admin.inner_text("h1")

        await admin.click("#reset-password")
        await admin.wait_for_selector("#pp-temporary")
        temporary = (await admin.inner_text("#temporary-password")).strip()
        assert len(temporary) == 14
        await screenshot(admin, "people-admin-password-reset")
        await admin.reload()  # shown once: reloading the user's page does not show it
        assert temporary not in await admin.inner_text("main")

        # -- he signs in with it (on his phone) and must choose his own ---------------------
        user = await user_browser.new_page()
        await user.set_viewport_size(PHONE)
        await sign_in(user, base, "kozlov", temporary)
        await user.wait_for_url("**/password")
        assert "Вы вошли с временным паролем" in await user.inner_text("main")
        assert await user.locator("nav.nav a").count() == 0, "nowhere else to go"
        await user.goto(base + "/today")
        assert user.url.endswith("/password")
        await user.fill("input[name=current]", temporary)
        await user.fill("input[name=new]", "kozlov-own-1")
        await user.fill("input[name=repeat]", "kozlov-own-2")
        await user.click("#password button[type=submit]")
        await user.wait_for_selector("p.error")
        assert "не совпадают" in await user.inner_text("p.error")
        await screenshot(user, "people-password-forced")
        await user.fill("input[name=current]", temporary)
        await user.fill("input[name=new]", "kozlov-own-1")
        await user.fill("input[name=repeat]", "kozlov-own-1")
        await user.click("#password button[type=submit]")
        await user.wait_for_url("**/today")
        # his account began at noon: today is not judged for him
        assert "0 мин из 150 · сегодня норма не учитывается (первый день)" in \
            await user.inner_text("#today-talk")
        await screenshot(user, "people-new-user-today")

        await admin.goto(base + "/admin/users")
        row = admin.locator("tr[data-user=kozlov]")
        assert "Отдел продаж" in await row.inner_text()
        assert "сменит пароль" not in await row.inner_text()


async def test_switching_off_a_manager_signs_out_his_open_today_page(served: Any) -> None:
    base, world = served
    async with chromium() as admin_browser, chromium() as manager_browser:
        manager = await manager_browser.new_page()
        await sign_in(manager, base, "petrov")
        await manager.wait_for_url("**/today")
        await manager.wait_for_function(
            "document.getElementById('live-dot').classList.contains('on')")

        admin = await admin_browser.new_page()
        await sign_in(admin, base, "admin")
        await admin.wait_for_url("**/team")
        await admin.goto(f"{base}/admin/users/{world.users['petrov']}")
        started = time.monotonic()
        await admin.click("#deactivate")
        await admin.wait_for_selector("#pp-done")
        assert "отключён" in await admin.inner_text("#pp-done")
        await manager.wait_for_url("**/login**", timeout=PROMPTLY_MS)
        assert time.monotonic() - started < PROMPTLY_MS / 1000
        await screenshot(admin, "people-admin-deactivated")
        await screenshot(manager, "people-deactivated-signed-out")

        await sign_in(manager, base, "petrov")
        await manager.wait_for_selector("p.error")
        assert await manager.inner_text("p.error") == "Неверный логин или пароль."
        await admin.goto(base + "/admin/users")
        assert "отключён" in await admin.inner_text("tr[data-user=petrov]")
