"""Issue 6, listening live from the browser: the supervisor's page of live calls, real PBX.

A real call (sandbox) between the client and 101; the supervisor opens Прослушка,
sees the call of his team appear, presses Слушать, and his phone (the phones
instance) answers and hears the call. A manager may not open the page or its API.
The call log keeps one call. Screenshots: tests/artifacts/listen-*.png.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from pydub import AudioSegment

from asterisk_conf.sandbox import Sandbox
from recordings.audio import Side, activity
from telecrm.settings import Settings
from telecrm.web.keys import LISTENER
from tests.app.test_web_browser import sign_in
from tests.recordings.test_recordings_e2e import install_prompts, login, seed_users
from tests.recordings.test_spy_live import clean_phones  # noqa: F401 (fixture)
from tests.support.browser import chromium, screenshot, serve_app
from tests.support.live import wait_for_ended_calls
from tests.support.scenarios import CLIENT, DID_101, SUPERVISOR

pytestmark = [pytest.mark.asterisk, pytest.mark.postgres]

TALK = 10.0


@pytest.mark.usefixtures("clean_phones")
async def test_supervisor_presses_listen_on_a_live_call_of_his_team(
    sandbox: Sandbox, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TELECRM_RECORDINGS_STORE", raising=False)
    pbx, phones_instance = sandbox.pbx, sandbox.phones_instance
    assert pbx is not None and phones_instance is not None
    prompts = install_prompts(sandbox, total=TALK + 2)
    heard = phones_instance.monitor_dir / "spy-browser-201.wav"
    heard.unlink(missing_ok=True)
    await seed_users(pg_url)
    settings = Settings(data_dir=tmp_path, database_url=pg_url,
                        recordings_source=sandbox.monitor_dir, ami_host=pbx.ami_host,
                        ami_port=pbx.ami_port, ami_user=pbx.ami_user, ami_secret=pbx.ami_secret)

    async with serve_app(settings, with_listener=True) as (app, base), \
            sandbox.phones() as phones, chromium() as browser:
        await asyncio.wait_for(app[LISTENER].session.connected.wait(), 15)
        page = await browser.new_page()
        await sign_in(page, base, "sokolova")
        await page.wait_for_url(lambda u: "/login" not in u)
        await page.click("nav >> text=Прослушка")
        await page.wait_for_url(f"{base}/calls/live")
        await page.locator("#live-calls .empty").wait_for()  # nobody talks yet
        assert await page.locator("#live-calls tbody tr").count() == 0

        await phones.wait_idle(timeout=10)
        await phones.set_behaviour("101", answer_after=0.5, prompt=prompts["manager"][0])
        await phones.set_behaviour(SUPERVISOR, answer_after=0.3, prompt="silence/10",
                                   record=f"{phones_instance.inner_dir}/spool/monitor/"
                                          "spy-browser-201")
        await phones.client_calls(CLIENT, DID_101, talk=TALK, prompt=prompts["client"][0])
        began = time.monotonic()

        row = page.locator("#live-calls tbody tr")
        await row.first.wait_for(timeout=8000)  # the call appears without a reload
        assert "(101)" in await row.first.inner_text()
        linkedid = await row.first.get_attribute("data-linkedid")
        assert linkedid and await page.locator("#live-calls .empty").is_hidden()
        manager = await login(base, "smirnova")
        try:
            async with manager.get(f"{base}/api/calls/live") as refused:
                assert refused.status == 403
        finally:
            await manager.close()
        await screenshot(page, "listen-live")
        await row.first.locator("button.listen").click()
        await page.locator("#live-calls .result", has_text="Вы подключены").wait_for(
            timeout=8000)
        assert time.monotonic() - began < TALK - 2, "connected while the call still runs"

        await phones.wait_idle(timeout=TALK + 10)
        await page.locator("#live-calls .empty").wait_for(timeout=8000)  # the call is gone
        calls = await wait_for_ended_calls(pg_url, 1)

    assert len(calls) == 1 and calls[0]["linkedid"] == linkedid, calls
    deadline = time.monotonic() + 5
    while not heard.is_file() or time.time() - heard.stat().st_mtime < 0.5:
        assert time.monotonic() < deadline, f"{heard} was never written"
        await asyncio.sleep(0.1)
    side = Side("heard", AudioSegment.from_wav(str(heard)))
    spoken = sum(end - start for start, end in activity(side))
    assert spoken >= 1.0, activity(side)  # the supervisor heard the call's speech
