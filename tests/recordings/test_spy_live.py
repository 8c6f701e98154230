"""Issue 6, supervisors listening live: the real app, the real PBX, ChanSpy heard for real.

The app runs as ``telecrm serve`` wires it (its own AMI listener on the sandbox
PBX, supervisors known from the users table). The supervisor asks to listen
through the API; his phone (the phones instance) answers and records what it
hears, which must be the call's speech, while the call log keeps one call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydub import AudioSegment
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from asterisk_conf.sandbox import Sandbox
from crm_core.calls.models import Call
from crm_core.db import create_engine, session_factory
from recordings.audio import Side, activity
from telecrm.settings import Settings
from telecrm.web.keys import LISTENER
from tests.recordings.test_recordings_e2e import install_prompts, login, seed_users
from tests.support.browser import serve_app
from tests.support.live import wait_for_ended_calls
from tests.support.scenarios import CLIENT, DID_101, SUPERVISOR

pytestmark = [pytest.mark.asterisk, pytest.mark.postgres]

TALK = 9.0


@pytest.fixture
async def clean_phones(sandbox: Sandbox) -> AsyncIterator[None]:
    """Behaviours set by the test never leak into the next test of the session."""
    yield
    async with sandbox.phones() as phones:
        for target in ("101", SUPERVISOR, CLIENT):
            await phones.set_behaviour(target)
        await phones.reset_behaviours()


async def test_supervisor_listens_in_through_the_api_and_hears_the_call(
    sandbox: Sandbox, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    clean_phones: None,
) -> None:
    began = time.monotonic()
    monkeypatch.delenv("TELECRM_RECORDINGS_STORE", raising=False)
    pbx, phones_instance = sandbox.pbx, sandbox.phones_instance
    assert pbx is not None and phones_instance is not None
    prompts = install_prompts(sandbox, total=TALK + 2)
    heard = phones_instance.monitor_dir / "spy-201.wav"
    heard.unlink(missing_ok=True)
    await seed_users(pg_url)
    settings = Settings(data_dir=tmp_path, database_url=pg_url,
                        recordings_source=sandbox.monitor_dir, ami_host=pbx.ami_host,
                        ami_port=pbx.ami_port, ami_user=pbx.ami_user, ami_secret=pbx.ami_secret)

    async with serve_app(settings, with_listener=True) as (app, base), \
            sandbox.phones() as phones:
        listener = app[LISTENER]
        await asyncio.wait_for(listener.session.connected.wait(), 15)
        await phones.wait_idle(timeout=10)
        await phones.set_behaviour("101", answer_after=0.5, prompt=prompts["manager"][0])
        # The supervisor's phone says nothing (silence) and records what it hears, so
        # any speech in that file came through ChanSpy from the PBX.
        await phones.set_behaviour(SUPERVISOR, answer_after=0.3, prompt="silence/10",
                                   record=f"{phones_instance.inner_dir}/spool/monitor/spy-201")
        await phones.client_calls(CLIENT, DID_101, talk=TALK, prompt=prompts["client"][0])

        deadline = time.monotonic() + 10
        while not (talking := [c for c in listener.tracker.live_calls(at=time.time())
                               if c.answered_at and "101" in c.managers]):
            assert time.monotonic() < deadline, "the call never reached 101"
            await asyncio.sleep(0.05)
        linkedid = talking[0].linkedid

        supervisor = await login(base, "sokolova")
        manager = await login(base, "smirnova")
        try:
            url = f"{base}/api/calls/{linkedid}/listen"
            async with manager.post(url, json={"mode": "listen"}) as refused:
                assert refused.status == 403  # a manager may not listen in
            async with supervisor.post(url, json={"mode": "listen"}) as response:
                assert response.status == 202, await response.text()
                assert (await response.json())["mode"] == "listen"
        finally:
            await supervisor.close()
            await manager.close()

        await phones.wait_idle(timeout=TALK + 10)
        calls = await wait_for_ended_calls(pg_url, 1)

    # -- one call in the log, talk as long as the client talked, the supervisor a leg
    assert len(calls) == 1, calls
    (call,) = calls
    assert call["linkedid"] == linkedid and call["managers"] == ["101"]
    assert abs(call["talk_seconds"] - TALK) < 1.0
    engine = create_engine(pg_url)
    try:
        async with session_factory(engine)() as session:
            row = await session.scalar(select(Call).where(Call.id == call["id"])
                                       .options(selectinload(Call.legs)))
            assert row is not None
            legs = [(leg.role, leg.extension, leg.talk_seconds) for leg in row.legs]
    finally:
        await engine.dispose()
    assert sorted(role for role, _, _ in legs) == ["client", "manager", "supervisor"], legs
    (spy,) = [leg for leg in legs if leg[0] == "supervisor"]
    assert spy[1] == SUPERVISOR and spy[2] == 0

    # -- the supervisor's phone heard speech (ChanSpy sent the call's audio to it)
    deadline = time.monotonic() + 5
    while not heard.is_file() or time.time() - heard.stat().st_mtime < 0.5:
        assert time.monotonic() < deadline, f"{heard} was never written"
        await asyncio.sleep(0.1)
    side = Side("heard", AudioSegment.from_wav(str(heard)))
    spans = activity(side)
    spoken = sum(end - start for start, end in spans)
    assert side.duration > 3 and spoken >= 1.5, (side.duration, spans)
    assert time.monotonic() - began < 30
