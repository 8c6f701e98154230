"""On the sandbox Asterisk, for real: a paused manager's queue membership is paused.

The app runs as ``telecrm serve`` wires it (its own AMI listener on the sandbox PBX).
Petrov (101) picks «Обед»: ``QueueStatus`` shows PJSIP/101 paused in queue ``sales``,
a client's call to the queue's DID rings smirnova (102) only, a pause Asterisk forgot
is applied again (as when AMI connects), and «На месте» unpauses him again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from asterisk_conf.sandbox import Sandbox
from pbx_bridge.pipeline import Listener
from telecrm.presence.queue import reapply_pauses
from telecrm.settings import Settings
from telecrm.web.keys import LISTENER
from tests.recordings.test_recordings_e2e import login, seed_users
from tests.support.browser import serve_app
from tests.support.scenarios import CLIENT, DID_QUEUE

pytestmark = [pytest.mark.asterisk]


@pytest.fixture
async def clean_phones(sandbox: Sandbox) -> AsyncIterator[None]:
    """Behaviours set by the test never leak into the next test of the session."""
    yield
    async with sandbox.phones() as phones:
        for target in ("101", "102", CLIENT):
            await phones.set_behaviour(target)
        await phones.reset_behaviours()


async def queue_members(listener: Listener, queue: str = "sales") -> dict[str, bool]:
    """Each member interface of ``queue`` and whether it is paused (AMI QueueStatus)."""
    response = await listener.session.action({"Action": "QueueStatus", "Queue": queue})
    messages: list[Any] = response if isinstance(response, list) else [response]
    return {str(m.get("Location") or m.get("StateInterface")): str(m.get("Paused")) == "1"
            for m in messages if m.get("Event") == "QueueMember"}


async def presence(http: Any, base: str, state: str) -> dict[str, Any]:
    async with http.get(f"{base}/api/presence") as response:
        reasons = {r["name"]: r["state"] for r in (await response.json())["reasons"]}
    async with http.post(f"{base}/api/presence", json={"state": reasons[state]}) as response:
        assert response.status == 200, await response.text()
        return dict(await response.json())


async def test_a_paused_manager_is_paused_in_the_queue_and_not_rung(
    sandbox: Sandbox, db_url: str, tmp_path: Path, clean_phones: None,
) -> None:
    pbx = sandbox.pbx
    assert pbx is not None
    await seed_users(db_url)
    settings = Settings(data_dir=tmp_path, database_url=db_url,
                        recordings_source=sandbox.monitor_dir, ami_host=pbx.ami_host,
                        ami_port=pbx.ami_port, ami_user=pbx.ami_user, ami_secret=pbx.ami_secret)
    async with serve_app(settings, with_listener=True) as (app, base), \
            sandbox.phones() as phones:
        listener = app[LISTENER]
        await asyncio.wait_for(listener.session.connected.wait(), 15)
        await phones.wait_idle(timeout=10)
        assert (await queue_members(listener))["PJSIP/101"] is False
        petrov = await login(base, "petrov")
        try:
            answer = await presence(petrov, base, "Обед")
            assert answer["queue"] == "paused" and answer["name"] == "Обед"
            assert await queue_members(listener) == {"PJSIP/101": True, "PJSIP/102": False}

            # a client calls the queue: 101 would answer at once, but only 102 is rung
            await phones.set_behaviour("101", answer_after=0)
            await phones.set_behaviour("102", answer_after=1)
            await phones.client_calls(CLIENT, DID_QUEUE, talk=2)
            deadline = time.monotonic() + 15
            while not (talked := [c for c in listener.tracker.live_calls(at=time.time())
                                  if c.managers]):
                assert time.monotonic() < deadline, "nobody answered the queue call"
                await asyncio.sleep(0.05)
            assert talked[0].managers == ("102",) and "101" not in talked[0].rang
            await phones.wait_idle(timeout=15)

            # Asterisk forgets the pause (as over a restart): when AMI connects again the
            # CRM pauses him again, its state being the one that counts
            await listener.session.action({"Action": "QueuePause", "Interface": "PJSIP/101",
                                           "Paused": "false"})
            assert (await queue_members(listener))["PJSIP/101"] is False
            assert await reapply_pauses(app) == 1
            assert (await queue_members(listener))["PJSIP/101"] is True

            answer = await presence(petrov, base, "На месте")
            assert answer["queue"] == "unpaused"
            assert (await queue_members(listener))["PJSIP/101"] is False
        finally:
            await petrov.close()
