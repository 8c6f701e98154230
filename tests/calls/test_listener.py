"""The AMI listener's robustness: unreachable host, refused login, garbage on the wire.

Asterisk cannot be made to send broken frames, so the garbage test talks to
``FaultyAmiServer``, a stand-in AMI server named as such, that sends what
Asterisk has been seen to send at its worst. The refused login uses the real
sandbox Asterisk.
"""

import asyncio
import contextlib
import logging
import socket

import pytest

from pbx_bridge.ami import AmiSettings
from pbx_bridge.pipeline import Listener
from pbx_bridge.tracker import Fact

FAST = dict(connect_timeout=2, backoff_initial=0.2, backoff_max=0.5, ping_interval=0.5,
            ping_timeout=0.5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Collect:
    def __init__(self) -> None:
        self.facts: list[Fact] = []

    async def __call__(self, facts: list[Fact]) -> None:
        self.facts.extend(facts)


async def run_for(listener: Listener, seconds: float) -> None:
    task = asyncio.create_task(listener.run())
    await asyncio.sleep(seconds)
    await listener.stop()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_unreachable_host_is_logged_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    listener = Listener(AmiSettings(port=port, secret="x", **FAST), Collect())
    with caplog.at_level(logging.WARNING):
        await run_for(listener, 1.5)
    lines = [r.getMessage() for r in caplog.records
             if f"cannot reach Asterisk AMI at 127.0.0.1:{port}" in r.getMessage()]
    assert len(lines) >= 2, "it retries, and says so each time"
    assert "retrying in" in lines[0]


@pytest.mark.asterisk
async def test_wrong_password_is_logged_clearly(sandbox, caplog: pytest.LogCaptureFixture) -> None:
    pbx = sandbox.pbx
    listener = Listener(AmiSettings(host=pbx.ami_host, port=pbx.ami_port,
                                    username=pbx.ami_user, secret="wrong", **FAST), Collect())
    with caplog.at_level(logging.WARNING):
        await run_for(listener, 2.0)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert f"AMI login as {pbx.ami_user!r} refused" in messages
    assert not listener.session.connected.is_set()


class FaultyAmiServer:
    """A stand-in for Asterisk that sends malformed frames (a fault we cannot cause for real)."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> "FaultyAmiServer":
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        data = await reader.readuntil(b"\r\n\r\n")
        action_id = next(line.split(b": ", 1)[1] for line in data.split(b"\r\n")
                         if line.lower().startswith(b"actionid"))
        writer.write(b"Response: Success\r\nActionID: " + action_id +
                     b"\r\nMessage: Authentication accepted\r\n\r\n")
        writer.write(self.payload)
        await writer.drain()
        with contextlib.suppress(Exception):
            while await reader.read(1024):
                # Answer pings so the watchdog stays content.
                writer.write(b"Response: Success\r\nPing: Pong\r\n\r\n")


def _event(**headers: str) -> bytes:
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items()) + b"\r\n"


async def test_malformed_frames_are_skipped_and_the_call_still_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    t = 1795406555.0
    good = [
        _event(Event="Newchannel", Timestamp=str(t), Channel="PJSIP/carrier-00000001",
               Uniqueid="1.1", Linkedid="1.1", CallerIDNum="79161234567", Exten="74951110002"),
        _event(Event="Newchannel", Timestamp=str(t + 1), Channel="PJSIP/101-00000002",
               Uniqueid="1.2", Linkedid="1.1"),
        _event(Event="BridgeEnter", Timestamp=str(t + 2), Uniqueid="1.1", BridgeUniqueid="b"),
        _event(Event="BridgeEnter", Timestamp=str(t + 2), Uniqueid="1.2", BridgeUniqueid="b"),
        _event(Event="Hangup", Timestamp=str(t + 12), Uniqueid="1.2", Cause="16"),
        _event(Event="Hangup", Timestamp=str(t + 12), Uniqueid="1.1", Cause="16"),
    ]
    garbage = [
        b"\xff\xfe\x00garbage without colon\r\n\r\n",
        _event(Event="BridgeEnter", Timestamp="not-a-number", Uniqueid="1.1"),
        _event(Event="Hangup"),  # no Uniqueid at all
        _event(Event="SomethingNew", Value="x" * 5000),
        b"Event: Newstate\r\nUniqueid: 1.2\r\n\n",  # \r\n\n framing
        _event(Event="Newchannel", Timestamp="1e400", Uniqueid="", Channel=""),
    ]
    payload = good[0] + good[1] + b"".join(garbage) + b"".join(good[2:])
    sink = Collect()
    async with FaultyAmiServer(payload) as server:
        listener = Listener(AmiSettings(port=server.port, secret="x", **FAST), sink)
        await run_for(listener, 1.0)
    ended = [f for f in sink.facts if f.kind == "call_ended"]
    assert len(ended) == 1
    call = ended[0].call
    assert call.direction == "inbound"
    assert call.client_number == "79161234567"
    assert call.managers == ("101",)
    assert call.status == "answered"
    assert call.talk_seconds == pytest.approx(10.0)
    assert listener.session.connections == 1, "garbage never cost the connection"


class SlowStore(Collect):
    """A sink that takes its time, as a busy database does."""

    async def __call__(self, facts: list[Fact]) -> None:
        await asyncio.sleep(0.3)
        await super().__call__(facts)


async def test_stop_stores_what_was_received_before_it() -> None:
    """A restart (``telecrm serve`` stopped mid-day) must not drop the last facts of calls:
    a dropped answer would leave an answered call to be closed later as missed."""
    from pbx_bridge.replay import read_events
    from tests.support.scenarios import CAPTURES

    events = list(read_events(CAPTURES / "inbound_answered.ami"))
    sink = SlowStore()
    listener = Listener(AmiSettings(host="127.0.0.1", port=free_port(), **FAST), sink,
                        batch_size=10)
    task = asyncio.create_task(listener.run())
    await asyncio.sleep(0)
    for event in events:  # as if they had just come off the wire
        listener.queue.put_nowait(event)
    await asyncio.sleep(0.05)  # the first batch is being written, the rest waits
    await listener.stop()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    final = [fact.call for fact in sink.facts if fact.call.ended_at is not None]
    assert final, "the hang-up received before the stop was never stored"
    assert final[-1].status == "answered"
