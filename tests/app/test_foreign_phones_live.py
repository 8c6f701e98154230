"""Click-to-call and listening in for users whose phones are not ``PJSIP/<extension>``.

The real app (``serve``'s listener, users from ``telecrm users add --device``) on the
foreign sandbox PBX (FreePBX-style: phones ``PJSIP/ivanov`` and ``PJSIP/150010005``,
no ``PJSIP/101``, no crm-* contexts; ``TELECRM_DIAL_CONTEXT=from-internal``). The
manager clicks to call and his own device rings; the supervisor listens in and his
own device rings, attached to the manager's leg whatever it is named.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from asterisk_conf.sandbox import Sandbox, SandboxUnavailable
from telecrm.settings import Settings
from telecrm.web.keys import LISTENER
from tests.recordings.test_recordings_e2e import login
from tests.support.browser import PASSWORD, serve_app
from tests.support.foreign import (
    CLIENT,
    CLIENT_B,
    DID_IVANOV,
    SUPERVISOR,
    TARGETS,
    start_sandboxes,
    user_commands,
)
from tests.support.live import telecrm, wait_for_ended_calls
from tests.support.sandbox_fixtures import skip_or_fail_unavailable

pytestmark = pytest.mark.asterisk


@pytest.fixture(scope="module")
def foreign() -> Iterator[Sandbox]:
    try:
        (box,) = start_sandboxes(1)
    except SandboxUnavailable as exc:
        skip_or_fail_unavailable(exc)
    try:
        yield box
    finally:
        box.stop(keep_monitor=False)


async def _app_settings(box: Sandbox, tmp_path: Path) -> Settings:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    for command in user_commands(PASSWORD):
        telecrm(*command, "--db", db)
    pbx = box.pbx
    assert pbx is not None
    # MixMonitor's folder as Asterisk names it (the sandbox runs it in a chroot).
    return Settings(data_dir=tmp_path, database_url=db,
                    recordings_source=Path(pbx.inner_dir) / "spool" / "monitor",
                    ami_host=pbx.ami_host, ami_port=pbx.ami_port, ami_user=pbx.ami_user,
                    ami_secret=pbx.ami_secret, trunks="beeline", dial_context="from-internal")


async def _reset(box: Sandbox) -> None:
    async with box.phones() as phones:
        for target in (*TARGETS, "79031234567"):
            await phones.set_behaviour(target)
        await phones.reset_behaviours()


async def test_click_to_call_rings_the_managers_own_device(foreign: Sandbox,
                                                            tmp_path: Path) -> None:
    settings = await _app_settings(foreign, tmp_path)
    await _reset(foreign)
    async with serve_app(settings, with_listener=True) as (app, base), \
            foreign.phones() as phones:
        await asyncio.wait_for(app[LISTENER].session.connected.wait(), 15)
        await phones.set_behaviour("101", answer_after=1)  # PJSIP/ivanov's phone
        # The API dials +79031234567; from-internal sends it out as 79031234567.
        await phones.set_behaviour("7" + CLIENT_B[1:], answer_after=1, talk=3)
        http = await login(base, "ivanov")
        try:
            async with http.post(f"{base}/api/calls/originate",
                                 json={"number": "8 903 123-45-67"}) as response:
                assert response.status == 202, await response.text()
        finally:
            await http.close()
        await phones.wait_idle(timeout=20)
        (call,) = await wait_for_ended_calls(settings.database_url, 1)
    assert (call["direction"], call["status"], call["managers"]) == (
        "outbound", "answered", ["101"])
    assert call["client_number"] == "+79031234567"
    assert abs(call["talk_seconds"] - 3) <= 1
    (path,) = call["recordings"]  # FreePBX's name, relative to the recordings source
    assert path.split("/")[3].startswith("out-79031234567-")


async def test_supervisor_listens_in_on_a_device_named_leg(foreign: Sandbox,
                                                           tmp_path: Path) -> None:
    settings = await _app_settings(foreign, tmp_path)
    await _reset(foreign)
    async with serve_app(settings, with_listener=True) as (app, base), \
            foreign.phones() as phones:
        listener = app[LISTENER]
        await asyncio.wait_for(listener.session.connected.wait(), 15)
        await phones.set_behaviour("101", answer_after=0.5)
        await phones.set_behaviour("150010005", answer_after=0.3)  # the supervisor's phone
        await phones.client_calls(CLIENT, DID_IVANOV, talk=7)
        deadline = time.monotonic() + 10
        while not (talking := [c for c in listener.tracker.live_calls(at=time.time())
                               if c.answered_at and "101" in c.managers]):
            assert time.monotonic() < deadline, "the call never reached Ivanov"
            await asyncio.sleep(0.05)
        http = await login(base, "nikolaev")
        try:
            async with http.post(f"{base}/api/calls/{talking[0].linkedid}/listen",
                                 json={"mode": "listen"}) as response:
                assert response.status == 202, await response.text()
        finally:
            await http.close()
        spied = foreign.pbx.rx("core show channels concise") if foreign.pbx else ""
        assert "ChanSpy" in spied and "PJSIP/150010005-" in spied, spied
        await phones.wait_idle(timeout=20)
        (call,) = await wait_for_ended_calls(settings.database_url, 1)
    assert (call["direction"], call["status"], call["managers"]) == (
        "inbound", "answered", ["101"])
    assert abs(call["talk_seconds"] - 7) <= 1, "listening in never counts as talk"
    assert SUPERVISOR not in call["managers"]
