"""The live-event bus: in process, and through a real Redis server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from crm_core.calls.models import Call
from crm_core.db import create_engine, session_factory
from pbx_bridge.frames import FrameParser
from pbx_bridge.pipeline import FactSink, deliver
from pbx_bridge.store import CallStore
from pbx_bridge.tracker import CallTracker
from telecrm.bus import LAGGED, Bus, BusError, InProcessBus, RedisBus, Subscription, create_bus
from telecrm.live_events import LiveEventSink, store_then_publish
from telecrm.settings import Settings
from telecrm.wiring import call_hooks
from tests.support.db_fixtures import db_url_fixture  # noqa: F401
from tests.support.redis_fixtures import redis_server_fixture, redis_url_fixture  # noqa: F401
from tests.support.redis_server import RedisServer

HOOKS = call_hooks()  # what the product does with each written call


async def next_message(subscription: Subscription, timeout: float = 5.0) -> dict[str, Any]:
    return await asyncio.wait_for(anext(subscription), timeout)


async def nothing_more(subscription: Subscription, wait: float = 0.2) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(subscription), wait)


@pytest.fixture(params=["inprocess", "redis"])
async def bus_pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Bus, Bus]]:
    """Two bus instances as two web processes would hold them (one shared in process)."""
    if request.param == "inprocess":
        bus = InProcessBus()
        yield bus, bus
        await bus.close()
        return
    server: RedisServer = request.getfixturevalue("redis_server")  # sync: async can't be asked
    url = server.start().url()
    first, second = RedisBus(url), RedisBus(url)
    yield first, second
    await first.close()
    await second.close()


async def test_every_subscriber_gets_each_message_in_order(bus_pair: tuple[Bus, Bus]) -> None:
    publisher, other = bus_pair
    async with await publisher.subscribe("calls") as a, await other.subscribe("calls") as b:
        for n in range(3):
            await publisher.publish("calls", {"kind": "answered", "n": n, "name": "ООО Ромашка"})
        for subscription in (a, b):
            got = [await next_message(subscription) for _ in range(3)]
            assert [m["n"] for m in got] == [0, 1, 2]
            assert got[0]["name"] == "ООО Ромашка"
        await publisher.publish("other", {"kind": "x"})
        await nothing_more(a)


async def test_pattern_subscription(bus_pair: tuple[Bus, Bus]) -> None:
    publisher, other = bus_pair
    async with await other.subscribe("ext:*") as every, await other.subscribe("ext:101") as one:
        await publisher.publish("ext:101", {"to": "101"})
        await publisher.publish("ext:102", {"to": "102"})
        await publisher.publish("calls", {"to": "board"})
        assert [(await next_message(every))["to"] for _ in range(2)] == ["101", "102"]
        assert (await next_message(one))["to"] == "101"
        await nothing_more(every)
        await nothing_more(one)


async def test_closing_ends_iteration_and_stops_delivery(bus_pair: tuple[Bus, Bus]) -> None:
    publisher, other = bus_pair
    subscription = await other.subscribe("calls")
    await subscription.close()
    await publisher.publish("calls", {"n": 1})
    assert [m async for m in subscription] == []


async def test_messages_must_be_json_objects(bus_pair: tuple[Bus, Bus]) -> None:
    publisher, _ = bus_pair
    with pytest.raises(TypeError):
        await publisher.publish("calls", {"at": object()})
    with pytest.raises(ValueError, match="pattern"):
        await publisher.publish("ext:*", {"n": 1})


async def test_slow_subscriber_drops_oldest_and_is_told() -> None:
    bus = InProcessBus(queue_size=3)
    slow = await bus.subscribe("calls")
    fast = await bus.subscribe("calls")
    started = time.perf_counter()
    for n in range(10):
        await bus.publish("calls", {"n": n})  # never blocks on the full queues
        if n < 3:
            assert (await next_message(fast))["n"] == n
    assert time.perf_counter() - started < 1.0
    notice = await next_message(slow)
    assert notice == {"kind": LAGGED, "dropped": 7, "pattern": "calls"}
    assert [(await next_message(slow))["n"] for _ in range(3)] == [7, 8, 9]
    await nothing_more(slow)
    await bus.close()
    assert [m async for m in slow] == []


async def test_subscribers_get_their_own_copies() -> None:
    bus = InProcessBus()
    a, b = await bus.subscribe("calls"), await bus.subscribe("calls")
    await bus.publish("calls", {"managers": ["101"]})
    (await next_message(a))["managers"].append("999")
    assert (await next_message(b))["managers"] == ["101"]
    await bus.close()


async def test_create_bus_follows_the_settings(redis_url: str) -> None:
    assert isinstance(create_bus(Settings()), InProcessBus)
    bus = create_bus(Settings(redis_url=redis_url))
    assert isinstance(bus, RedisBus)
    await bus.ping()
    await bus.close()


async def test_redis_down_is_a_clear_error_not_a_hang(
    redis_server: RedisServer, redis_url: str
) -> None:
    bus = RedisBus(redis_url, timeout=2.0, poll_seconds=0.2)
    subscription = await bus.subscribe("calls")
    await bus.publish("calls", {"n": 1})
    assert (await next_message(subscription))["n"] == 1
    redis_server.stop()
    try:
        started = time.perf_counter()
        with pytest.raises(BusError, match="lost the Redis connection"):
            await next_message(subscription, timeout=10)
        with pytest.raises(BusError, match="cannot publish"):
            await asyncio.wait_for(bus.publish("calls", {"n": 2}), 10)
        with pytest.raises(BusError, match="cannot subscribe"):
            await asyncio.wait_for(bus.subscribe("calls"), 10)
        assert time.perf_counter() - started < 10
    finally:
        redis_server.start()
        await bus.close()
    # The server is back: a new bus works again on the same URL.
    again = RedisBus(redis_url)
    async with await again.subscribe("calls") as subscription:
        await again.publish("calls", {"n": 3})
        assert (await next_message(subscription))["n"] == 3
    await again.close()


async def test_unreachable_redis_fails_fast() -> None:
    from tests.support.redis_server import _free_port

    bus = RedisBus(f"redis://127.0.0.1:{_free_port()}/0", timeout=1.0)
    with pytest.raises(BusError, match="unreachable"):
        await asyncio.wait_for(bus.ping(), 10)
    with pytest.raises(BusError):
        await asyncio.wait_for(bus.subscribe("calls"), 10)
    await bus.close()


# -- live events ----------------------------------------------------------------------------

CAPTURE = Path(__file__).resolve().parents[2] / "bench" / "captures" / "sandbox_first_calls.ami"


async def replay(path: Path, sink: FactSink, batch_events: int = 200) -> int:
    """Feed a capture to a tracker and the sink in batches, as the listener does; facts fed."""
    parser, tracker, pending, total = FrameParser(), CallTracker(), [], 0
    frames = [*parser.feed(path.read_bytes()), *parser.close()]
    events = [frame.headers for frame in frames if frame.is_event]
    for n, event in enumerate(events, 1):
        pending.extend(tracker.feed(event))
        if (n % batch_events == 0 or n == len(events)) and pending:
            total += len(pending)
            await deliver(sink, pending)
            pending = []
    return total


def drain(subscription: Subscription) -> list[dict[str, Any]]:
    """Everything queued in an in-process subscription right now."""
    inbox = subscription._inbox  # type: ignore[attr-defined]
    out = []
    while inbox._items or inbox._dropped:
        out.append(inbox._items and json.loads(inbox._items.popleft()))
    return out


async def test_a_quiet_shared_connection_is_pinged_and_kept(redis_url: str) -> None:
    """Streams open for hours with nothing to say: the shared connection answers the
    pump's pings and still delivers afterwards."""
    bus = RedisBus(redis_url, idle_seconds=0.2)
    async with await bus.subscribe("calls") as quiet:
        await asyncio.sleep(1.5)  # seven idle rounds, each ends in a ping and its answer
        await bus.publish("calls", {"n": 1})
        assert (await next_message(quiet))["n"] == 1
    await bus.close()


async def test_redis_slow_subscriber_is_told_it_lagged(redis_url: str) -> None:
    bus = RedisBus(redis_url, queue_size=3)
    async with await bus.subscribe("calls") as slow:
        for n in range(10):
            await bus.publish("calls", {"n": n})
        await asyncio.sleep(0.5)  # the pump reads everything; the inbox keeps the newest
        assert (await next_message(slow))["kind"] == LAGGED
        assert [(await next_message(slow))["n"] for _ in range(3)] == [7, 8, 9]
    await bus.close()


async def test_a_web_process_holds_hundreds_of_event_streams(redis_url: str) -> None:
    """300 managers on one web process: each stream's subscription gets its events, and
    they share the process's one Redis connection (one each cost a fifth of a core for
    500 idle streams, and redis-py's pool alone stopped at 100: "Too many connections")."""
    from redis.asyncio import Redis

    bus = RedisBus(redis_url)
    admin = Redis.from_url(redis_url)
    streams = [await bus.subscribe(f"ext:{5000 + n}") for n in range(300)]
    twin = await bus.subscribe("ext:5299")  # a manager with two tabs open
    try:
        await bus.publish("ext:5299", {"n": 299})
        assert (await next_message(streams[-1]))["n"] == 299
        assert (await next_message(twin))["n"] == 299
        assert len(await admin.client_list(_type="pubsub")) == 1
        assert dict(await admin.pubsub_numsub("ext:5299")) == {b"ext:5299": 1}
        await twin.close()  # one tab closed: the other still hears his calls
        await bus.publish("ext:5299", {"n": 300})
        assert (await next_message(streams[-1]))["n"] == 300
        await streams[-1].close()  # both closed: Redis stops sending the topic here
        await asyncio.sleep(0.2)
        assert dict(await admin.pubsub_numsub("ext:5299")) == {b"ext:5299": 0}
    finally:
        for stream in streams:
            await stream.close()
        await bus.close()
        await admin.aclose()


async def test_a_real_capture_becomes_enriched_live_events(db_url: str) -> None:
    """Store first, then publish: events carry the stored call's id and its client."""
    if not CAPTURE.is_file():
        pytest.skip(f"capture {CAPTURE} not present")
    engine = create_engine(db_url)
    bus = InProcessBus(queue_size=10_000)
    try:
        board = await bus.subscribe("calls")
        screens = await bus.subscribe("ext:*")
        sink = store_then_publish(
            CallStore(session_factory(engine, writer=True), HOOKS),
            LiveEventSink(bus, session_factory(engine)),
        )
        facts = await replay(CAPTURE, sink)
        events = drain(board)
        pops = drain(screens)
        async with session_factory(engine)() as session:
            calls = {c.linkedid: c for c in await session.scalars(select(Call))}
    finally:
        await bus.close()
        await engine.dispose()
    assert facts == len(events) > 0 and all(e["kind"] != LAGGED for e in events)
    assert json.loads(json.dumps(events)) == events  # JSON-safe as published
    ended = [e for e in events if e["kind"] == "call_ended"]
    assert {e["linkedid"] for e in ended} <= set(calls)
    for event in ended:
        call = calls[event["linkedid"]]
        assert event["call_id"] == call.id and event["client_id"] == call.client_id
        assert event["status"] == call.status and event["ended_at"] is not None
    assert any(e["client_name"] for e in ended if e["direction"] != "internal")
    assert any(e["kind"] == "ringing" and e["extension"] for e in pops)
    assert {e["kind"] for e in pops} >= {"ringing", "call_ended"}


class _BrokenBus(InProcessBus):
    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        raise BusError("down")


async def test_live_sink_never_blocks_the_call_log(db_url: str) -> None:
    """A bus outage costs live events only: the sink swallows it, the store is untouched."""
    if not CAPTURE.is_file():
        pytest.skip(f"capture {CAPTURE} not present")
    engine = create_engine(db_url)
    live = LiveEventSink(_BrokenBus(), session_factory(engine))
    try:
        facts = await asyncio.wait_for(
            replay(CAPTURE, store_then_publish(
                CallStore(session_factory(engine, writer=True), HOOKS), live)), 60)  # fmt: skip
    finally:
        await engine.dispose()
    assert live.published == 0 and live.failed == facts > 0
