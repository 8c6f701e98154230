"""The client card's player in headless Chromium: the speakers' time line, seeking, download.

Recordings are real speech finalized by the real worker into the real S3 server, so
the browser's seeks are HTTP Range requests the CRM answers from S3 after its role
check. Screenshots: tests/artifacts/client-recordings-*.png.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from crm_core.calls.services import record_call
from crm_core.calls.snapshot import CallData, LegData
from crm_core.db import create_engine, session_factory
from recordings.store import open_store
from recordings.worker import FinalizeWorker
from telecrm.wiring import call_hooks
from tests.app.test_web_browser import sign_in
from tests.recordings.test_recordings_support import frames, side_file, speech
from tests.recordings.test_s3_recordings import config_for, settings_for
from tests.support.browser import (
    CLIENTS,
    chromium,
    screenshot,
    seed_calls_start,
    seed_world,
    serve_app,
)
from tests.support.s3_server import RadosGW

HOOKS = call_hooks()  # what the product does with each written call

pytestmark = pytest.mark.s3

TOTAL = 8.0
MANAGER_AT, CLIENT_AT = 0.5, 4.5


async def recorded_calls(url: str, monitor: Path, tmp_path: Path) -> list[int]:
    """Two answered calls of 101 with ООО Ромашка, each side's speech on its own file."""
    words = {"manager": frames(speech(tmp_path / "m.wav", "good afternoon, this is Ivan")),
             "client": frames(speech(tmp_path / "c.wav", "hello, we need ten tons",
                                     pitch=80))}
    sessions = session_factory(create_engine(url), writer=True)
    ids = []
    for n, minutes in ((1, 30), (2, 40)):
        start = seed_calls_start() + timedelta(minutes=minutes)
        linkedid = f"1795406600.{n}"
        rel = [f"{start:%Y/%m/%d}/{linkedid}-{side}.wav" for side in ("manager", "client")]
        data = CallData(
            linkedid=linkedid, direction="inbound", status="answered",
            client_number=CLIENTS[0][1], did="+74951110002", started_at=start,
            answered_at=start + timedelta(seconds=2), ended_at=start + timedelta(seconds=10),
            ring_seconds=2, talk_seconds=TOTAL, transferred=False, managers=("101",),
            recordings=tuple(rel),
            legs=(LegData(uniqueid=f"{linkedid}-m", channel="PJSIP/101-1", role="manager",
                          extension="101", started_at=start, answered_at=start,
                          ended_at=start, talk_seconds=TOTAL),),
            rang=("101",))
        async with sessions() as session:
            ids.append((await record_call(session, data, hooks=HOOKS)).id)
            await session.commit()
        for path in rel:
            side = path.rsplit("-", 1)[1].removesuffix(".wav")
            side_file(monitor / path, words[side], at=CLIENT_AT if side == "client" else
                      MANAGER_AT, total=TOTAL)
    await sessions.kw["bind"].dispose()
    return ids


async def test_client_card_player_time_line_seek_and_download(
        s3_server: RadosGW, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    monitor = tmp_path / "monitor"
    world = await seed_world(url, monitor)
    ids = await recorded_calls(url, monitor, tmp_path)
    cfg = config_for(s3_server, tmp_path, f"b-{uuid.uuid4().hex[:8]}")
    engine = create_engine(url)
    try:
        outcomes = await FinalizeWorker(session_factory(engine, writer=True), monitor,
                                        open_store(cfg), cfg).run_once()
    finally:
        await engine.dispose()
    assert outcomes.get("stored") == 2, outcomes  # the seeded silent mix stays pending
    client_id = world.clients["101"]
    settings = settings_for(cfg, tmp_path, url).with_overrides(recordings_source=monitor)
    async with serve_app(settings) as (_, base), chromium() as browser:
        page = await browser.new_page()
        await sign_in(page, base, "petrov")
        await page.wait_for_url(lambda u: "/login" not in u)
        await page.goto(f"{base}/clients/{client_id}")
        box = page.locator(".recordings .player")
        assert await box.get_attribute("data-call") == str(ids[1])  # the latest call first
        manager_bars = box.locator(".lane[data-speaker=manager] .track i")
        client_bars = box.locator(".lane[data-speaker=client] .track i")
        await client_bars.first.wait_for()
        assert await manager_bars.count() >= 1
        # the bars sit where each side spoke: the manager first, the client from 4.5 s
        track = await box.locator(".lane[data-speaker=client] .track").bounding_box()
        bar = await client_bars.first.bounding_box()
        manager_bar = await manager_bars.first.bounding_box()
        assert track and bar and manager_bar
        assert manager_bar["x"] < bar["x"]
        share = (bar["x"] - track["x"]) / track["width"]
        assert CLIENT_AT / TOTAL - 0.05 < share < CLIENT_AT / TOTAL + 0.08, share
        assert await box.locator("a.download").count() == 0, "download is for supervisors"
        await screenshot(page, "client-recordings-manager")

        # click the client's speech: the player seeks there (Range from S3) and plays
        await client_bars.first.click()
        await page.wait_for_function(
            "() => { const a = document.querySelector('.recordings audio');"
            " return a.readyState >= 2 && a.currentTime > 4.6 && !a.paused; }", timeout=10000)
        played = await page.evaluate("document.querySelector('.recordings audio').currentTime")
        assert CLIENT_AT < played < TOTAL
        await page.evaluate("document.querySelector('.recordings audio').pause()")

        # pick the other recorded call: the player and the time line follow
        await box.locator(f"button.pick[data-call='{ids[0]}']").click()
        await page.wait_for_function(
            f"() => document.querySelector('.recordings audio').src.endsWith("
            f"'/api/calls/{ids[0]}/recording')")
        await client_bars.first.wait_for()
        assert await box.get_attribute("data-call") == str(ids[0])
        assert await box.locator(".now a").get_attribute("href") == f"/calls/{ids[0]}"

    # the supervisor of the team also gets the download link, which downloads
    async with serve_app(settings) as (_, base), chromium() as browser:
        supervisor = await browser.new_page()
        await sign_in(supervisor, base, "sokolova")
        await supervisor.wait_for_url(lambda u: "/login" not in u)
        await supervisor.goto(f"{base}/clients/{client_id}")
        link = supervisor.locator(".recordings a.download")
        await supervisor.locator(".recordings .track i").first.wait_for()
        assert await link.get_attribute("href") == f"/api/calls/{ids[1]}/recording?download=1"
        response = await supervisor.request.get(base + (await link.get_attribute("href") or ""))
        assert response.status == 200
        assert response.headers["content-disposition"] == (
            f'attachment; filename="call-{ids[1]}.ogg"')
        assert (await response.body())[:4] == b"OggS"
        await screenshot(supervisor, "client-recordings-supervisor")

        # the call page has the same player and time line
        await supervisor.goto(f"{base}/calls/{ids[0]}")
        await supervisor.locator(".player .lane[data-speaker=client] .track i").first.wait_for()
        assert await supervisor.locator(".player a.download").count() == 1
        await screenshot(supervisor, "call-page-player")
