"""Thirty real calls at once through the sandbox: every one logged, none confused."""

import asyncio
import random
from pathlib import Path

import pytest

from tests.support.live import exported_calls, live_listener, wait_for_ended_calls

pytestmark = pytest.mark.asterisk


async def test_thirty_concurrent_real_calls_are_all_logged_correctly(
        sandbox, tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.db'}"
    rng = random.Random(7)
    inbound = {f"7916{n:07d}": rng.choice([2.0, 3.0, 4.0, 5.0]) for n in range(15)}
    outbound = {f"8903{n:07d}": rng.choice([2.0, 3.0, 4.0, 5.0]) for n in range(15)}
    async with live_listener(sandbox, db), sandbox.phones() as phones:
        await phones.set_behaviour("101", answer_after=1)
        for number, talk in outbound.items():
            await phones.set_behaviour(number, answer_after=1, talk=talk)
        placing = [phones.client_calls(number, "74951110002", talk=talk)
                   for number, talk in inbound.items()]
        placing += [phones.manager_calls("103", number, talk=60) for number in outbound]
        await asyncio.gather(*placing)
        await phones.wait_idle(timeout=60)
        await phones.reset_behaviours()
        await wait_for_ended_calls(db, 30, timeout=30)
    calls = exported_calls(db)
    assert len(calls) == 30
    got = {c["client_number"]: c for c in calls}
    for number, talk in inbound.items():
        call = got["+" + number]
        assert (call["direction"], call["status"], call["managers"]) == (
            "inbound", "answered", ["101"])
        assert call["talk_seconds"] == pytest.approx(talk, abs=1.0)
    for number, talk in outbound.items():
        call = got["+7" + number[1:]]
        assert (call["direction"], call["status"], call["managers"]) == (
            "outbound", "answered", ["103"])
        assert call["talk_seconds"] == pytest.approx(talk, abs=1.0)
    assert len({c["linkedid"] for c in calls}) == 30
