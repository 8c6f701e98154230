"""AMI link failures and CRM restarts in the middle of real calls.

The link is cut for real: the CRM reaches AMI through a loopback TCP proxy whose
connections are aborted and refused for a while, during which one call ends and
another starts on the sandbox Asterisk.
"""

import asyncio
from pathlib import Path

import pytest

from pbx_bridge.pipeline import Listener
from tests.support.live import exported_calls, live_listener, telecrm, wait_for_ended_calls
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.asterisk

FAST = dict(connect_timeout=2, backoff_initial=0.3, backoff_max=0.6, ping_interval=1,
            ping_timeout=1)


async def until(predicate, timeout: float = 15) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)


def answered_live(listener: Listener, number: str) -> bool:
    return any(c.client_number == number and c.answered_at is not None
               for c in listener.tracker.live_calls())


async def test_link_cut_mid_call_loses_and_duplicates_nothing(sandbox, tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.db'}"
    pbx = sandbox.pbx
    capture = tmp_path / "ami"
    async with TcpProxy(pbx.ami_host, pbx.ami_port) as proxy, \
            live_listener(sandbox, db, capture, port=proxy.port, **FAST) as listener, \
            sandbox.phones() as phones:
        await phones.set_behaviour("101", answer_after=0.5)
        await phones.set_behaviour("102", answer_after=0.5)
        # A is answered while the CRM listens...
        await phones.client_calls("79161234567", "74951110002", talk=4)
        await until(lambda: answered_live(listener, "79161234567"))
        # ...then the link dies: A ends and B starts and is answered while nobody listens.
        proxy.refusing = True
        proxy.cut()
        await asyncio.sleep(0.5)
        assert not listener.session.connected.is_set()
        await phones.client_calls("79031234567", "74951110002", talk=8)
        await asyncio.sleep(5)
        proxy.refusing = False
        await asyncio.wait_for(listener.session.connected.wait(), 5)
        await until(lambda: answered_live(listener, "79031234567"))
        await phones.wait_idle(timeout=20)
        calls = await wait_for_ended_calls(db, 2)
    assert listener.session.connections == 2
    calls = exported_calls(db)
    assert sorted(c["client_number"] for c in calls) == ["+79031234567", "+79161234567"]
    a, b = sorted(calls, key=lambda c: c["started_at"])
    assert a["status"] == "answered" and a["ended_at"] is not None
    assert a["talk_seconds"] <= 4 + 5.5, "A's talk ends at the latest when the CRM noticed"
    assert b["status"] == "answered" and b["managers"]
    assert b["talk_seconds"] == pytest.approx(8, abs=1.5), "B's start comes from the listing"
    # The capture holds the listing too, so a replay concludes exactly the same.
    replay_db = f"sqlite:///{tmp_path / 'replay.db'}"
    telecrm("ami-replay", *map(str, sorted(capture.glob("*.ami"))), "--db", replay_db)
    strip = [{k: v for k, v in c.items() if k not in ("id", "client_id")} for c in calls]
    again = [{k: v for k, v in c.items() if k not in ("id", "client_id")}
             for c in exported_calls(replay_db)]
    assert again == strip


async def test_crm_restart_mid_call_closes_what_ended_and_picks_up_what_goes_on(
        sandbox, tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.db'}"
    async with sandbox.phones() as phones:
        await phones.set_behaviour("101", answer_after=0.5)
        await phones.set_behaviour("102", answer_after=0.5)
        async with live_listener(sandbox, db, **FAST) as first:
            await phones.client_calls("79161234567", "74951110002", talk=3)  # to 101
            await until(lambda: answered_live(first, "79161234567"))
        # The CRM is down: the first call ends, another starts on the queue.
        await asyncio.sleep(3.5)
        await phones.client_calls("79857770011", "74951110001", talk=6)
        await asyncio.sleep(2)
        async with live_listener(sandbox, db, **FAST) as second:
            await until(lambda: answered_live(second, "79857770011"))
            await phones.wait_idle(timeout=20)
            await wait_for_ended_calls(db, 2)
    calls = sorted(exported_calls(db), key=lambda c: c["started_at"])
    assert [c["client_number"] for c in calls] == ["+79161234567", "+79857770011"]
    first_call, second_call = calls
    assert first_call["status"] == "answered" and first_call["ended_at"] is not None
    assert second_call["status"] == "answered"
    assert second_call["talk_seconds"] == pytest.approx(6, abs=1.5)
