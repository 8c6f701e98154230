"""Publish/subscribe for live events (screen pop, supervisor board).

One interface, two implementations: :class:`InProcessBus` (the embedded default,
one process) and :class:`RedisBus` (several web processes behind a balancer: an
event published by the process holding the AMI listener reaches browsers served
by any of them). Messages are JSON objects on both, so code that works on one
works on the other.

Live events are hints for screens, not records: the database holds the truth. So
a subscriber too slow to keep up loses its oldest messages and is told so with a
``{"kind": "lagged", "dropped": n}`` notice (it should reload its view), and a
publisher is never slowed down by any subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator
from fnmatch import fnmatchcase
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

    from telecrm.settings import Settings

log = logging.getLogger(__name__)

LAGGED = "lagged"
DEFAULT_QUEUE_SIZE = 1000
# Redis connections of one process: one per event stream, so a web process's browsers.
# (Redis itself admits 10,000 clients by default.)
MAX_CONNECTIONS = 5000
# How long a subscription's pump waits for a message before it looks again (and lets
# redis-py ping a quiet connection): 500 open streams woken every second cost a web
# process a fifth of a core doing nothing; a dropped connection ends the wait at once.
IDLE_SECONDS = 15.0
_GLOB_CHARS = frozenset("*?[")


class BusError(RuntimeError):
    """The bus cannot deliver (e.g. Redis is unreachable); the message says why."""


def is_pattern(topic: str) -> bool:
    """True when ``topic`` is a glob pattern (``ext:*``) rather than one topic."""
    return any(char in _GLOB_CHARS for char in topic)


def _encode(message: dict[str, Any]) -> str:
    """JSON text of ``message``; not a JSON object is a TypeError at the publisher."""
    if not isinstance(message, dict):
        raise TypeError(f"a bus message must be a dict, not {type(message).__name__}")
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


class Subscription(Protocol):
    """Messages of one topic or pattern, in publish order; ``close()`` ends the iteration."""

    pattern: str

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]: ...

    async def __anext__(self) -> dict[str, Any]: ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...


class Bus(Protocol):
    """Where live events are published and subscribed to."""

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        """Send ``message`` (JSON-safe) to every current subscriber of ``topic``."""
        ...

    async def subscribe(self, topic: str) -> Subscription:
        """Subscribe to a topic or a glob pattern (``ext:*``); ready once this returns."""
        ...

    async def close(self) -> None:
        """End every subscription and release connections."""
        ...


class _BoundedInbox:
    """A subscriber's queue: drops the oldest when full and reports how many were lost.

    Shared by both buses, so the lagged behaviour is the same everywhere.
    """

    def __init__(self, pattern: str, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("a subscription queue needs room for at least one message")
        self.pattern = pattern
        self._maxsize = maxsize
        self._items: deque[str] = deque()
        self._dropped = 0
        self._ready = asyncio.Event()
        self._closed = False
        self._error: BaseException | None = None

    def put(self, text: str) -> None:
        if self._closed:
            return
        if len(self._items) >= self._maxsize:
            self._items.popleft()
            self._dropped += 1
        self._items.append(text)
        self._ready.set()

    def fail(self, error: BaseException) -> None:
        """Deliver what is queued, then raise ``error`` from the iterator."""
        self._error = error
        self._ready.set()

    def shut(self) -> None:
        self._closed = True
        self._items.clear()
        self._ready.set()

    @property
    def closed(self) -> bool:
        return self._closed

    async def get(self) -> dict[str, Any]:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._dropped:
                dropped, self._dropped = self._dropped, 0
                return {"kind": LAGGED, "dropped": dropped, "pattern": self.pattern}
            if self._items:
                return json.loads(self._items.popleft())
            if self._error is not None:
                raise self._error
            self._ready.clear()
            await self._ready.wait()


class _SubscriptionBase:
    """Iterator and context-manager plumbing over an inbox."""

    def __init__(self, inbox: _BoundedInbox) -> None:
        self._inbox = inbox
        self.pattern = inbox.pattern

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> dict[str, Any]:
        return await self._inbox.get()

    async def close(self) -> None:
        self._inbox.shut()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.close()


# -- in process -----------------------------------------------------------------------------


class _LocalSubscription(_SubscriptionBase):
    def __init__(self, bus: InProcessBus, inbox: _BoundedInbox) -> None:
        super().__init__(inbox)
        self._bus = bus

    async def close(self) -> None:
        await super().close()
        self._bus._forget(self._inbox)


class InProcessBus:
    """The default bus: subscribers in this process only, no server needed.

    Each subscriber has its own bounded queue (``queue_size`` messages); publishing
    never waits for a subscriber.
    """

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._inboxes: list[_BoundedInbox] = []
        self._closed = False

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        if self._closed:
            raise BusError("the bus is closed")
        if is_pattern(topic):
            raise ValueError(f"publish to a topic, not a pattern: {topic!r}")
        text = _encode(message)
        for inbox in self._inboxes:
            if inbox.pattern == topic or fnmatchcase(topic, inbox.pattern):
                inbox.put(text)

    async def subscribe(self, topic: str) -> Subscription:
        if self._closed:
            raise BusError("the bus is closed")
        inbox = _BoundedInbox(topic, self.queue_size)
        self._inboxes.append(inbox)
        return _LocalSubscription(self, inbox)

    def _forget(self, inbox: _BoundedInbox) -> None:
        with contextlib.suppress(ValueError):
            self._inboxes.remove(inbox)

    async def close(self) -> None:
        self._closed = True
        for inbox in self._inboxes:
            inbox.shut()
        self._inboxes.clear()


# -- Redis ----------------------------------------------------------------------------------


class _RedisSubscription(_SubscriptionBase):
    """One Redis pub/sub connection pumped into a bounded inbox by a background task.

    The pump keeps reading however slow the consumer is, so Redis never hits its
    output-buffer limit for us and the consumer sees ``lagged`` instead.
    """

    def __init__(self, bus: RedisBus, inbox: _BoundedInbox, pubsub: PubSub) -> None:
        super().__init__(inbox)
        self._bus = bus
        self._pubsub = pubsub
        self._pump = asyncio.create_task(self._run(), name=f"bus-pump:{inbox.pattern}")

    async def _run(self) -> None:
        try:
            while not self._inbox.closed:
                message = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=self._bus.idle_seconds
                )
                if message is not None and message.get("type") in ("message", "pmessage"):
                    data = message["data"]
                    self._inbox.put(data.decode() if isinstance(data, bytes) else data)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._inbox.fail(
                BusError(f"lost the Redis connection for {self.pattern!r} "
                         f"at {self._bus.safe_url}: {exc}")
            )  # fmt: skip

    async def close(self) -> None:
        await super().close()
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._pump
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
        self._bus._forget(self)


class RedisBus:
    """Pub/sub through a Redis server, for several web processes.

    Each subscription holds one Redis connection (fine for a sales floor's browsers):
    the pool's limit is ``max_connections``, not redis-py's default of 100, which left
    the 100th event stream of a web process without live events (bench/floor_load.py).
    Connection trouble is a :class:`BusError` promptly, never a hang: timeouts on
    connect and on every command, no silent reconnects (a subscriber that was cut off
    must know it may have missed events).
    """

    def __init__(
        self,
        url: str,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        timeout: float = 5.0,
        poll_seconds: float = 1.0,
        idle_seconds: float = IDLE_SECONDS,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.url = url
        self.queue_size = queue_size
        self.poll_seconds = poll_seconds
        self.idle_seconds = idle_seconds
        self._redis: Redis = Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            socket_keepalive=True,
            health_check_interval=max(1, int(timeout)),
            retry=Retry(NoBackoff(), 0),
            max_connections=max_connections,
        )
        self._subscriptions: list[_RedisSubscription] = []

    @property
    def safe_url(self) -> str:
        """The URL without its password, for error messages and logs."""
        from redis.asyncio.connection import parse_url

        parts = parse_url(self.url)
        host = parts.get("host") or parts.get("path") or "?"
        port = parts.get("port")
        return f"{host}:{port}" if port else str(host)

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        if is_pattern(topic):
            raise ValueError(f"publish to a topic, not a pattern: {topic!r}")
        text = _encode(message)
        try:
            await self._redis.publish(topic, text)
        except Exception as exc:
            raise BusError(f"cannot publish to Redis at {self.safe_url}: {exc}") from exc

    async def subscribe(self, topic: str) -> Subscription:
        pubsub = self._redis.pubsub()
        try:
            if is_pattern(topic):
                await pubsub.psubscribe(topic)
            else:
                await pubsub.subscribe(topic)
            # Wait for the server's confirmation: only then are later publishes ours.
            confirmation = await pubsub.get_message(timeout=self.poll_seconds * 5)
            if confirmation is None or confirmation.get("type") not in ("subscribe", "psubscribe"):
                raise BusError(f"Redis did not confirm the subscription, got {confirmation!r}")
        except BusError:
            await pubsub.aclose()
            raise
        except Exception as exc:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            raise BusError(f"cannot subscribe at Redis {self.safe_url}: {exc}") from exc
        subscription = _RedisSubscription(self, _BoundedInbox(topic, self.queue_size), pubsub)
        self._subscriptions.append(subscription)
        return subscription

    def _forget(self, subscription: _RedisSubscription) -> None:
        with contextlib.suppress(ValueError):
            self._subscriptions.remove(subscription)

    async def ping(self) -> None:
        """Raise :class:`BusError` unless Redis answers (for start-up and health checks)."""
        try:
            await self._redis.ping()
        except Exception as exc:
            raise BusError(f"Redis at {self.safe_url} is unreachable: {exc}") from exc

    async def close(self) -> None:
        for subscription in list(self._subscriptions):
            await subscription.close()
        await self._redis.aclose()


def create_bus(settings: Settings, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> Bus:
    """Redis when ``settings.redis_url`` is set (several processes), else in-process."""
    if settings.redis_url:
        return RedisBus(settings.redis_url, queue_size=queue_size)
    return InProcessBus(queue_size=queue_size)
