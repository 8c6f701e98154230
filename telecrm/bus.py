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

from crm_core.stopping import stop_tasks

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

    from telecrm.settings import Settings

log = logging.getLogger(__name__)

LAGGED = "lagged"
DEFAULT_QUEUE_SIZE = 1000
# Redis connections of one process's pool (publishing; subscriptions share one of them).
MAX_CONNECTIONS = 5000
# How long the pump of a process's subscriptions waits for a message before it looks
# again (and lets redis-py ping a quiet connection); a dropped connection ends the wait
# at once.
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
    """One subscriber's inbox on its process's shared Redis connection."""

    def __init__(self, bus: RedisBus, inbox: _BoundedInbox) -> None:
        super().__init__(inbox)
        self._bus = bus

    async def close(self) -> None:
        if self._inbox.closed:
            return
        await super().close()
        await self._bus._forget(self)


class _SharedPubSub:
    """A process's one Redis pub/sub connection and the task that reads it.

    Every subscription of the process rides on it: a topic is subscribed at Redis once,
    however many event streams want it, and the pump hands each message to the inboxes
    of its topic or pattern. The pump keeps reading however slow a consumer is, so Redis
    never hits its output-buffer limit for us and the consumer sees ``lagged`` instead.
    When the connection fails, every subscriber is told (it may have missed events) and
    the next subscription opens a new connection.
    """

    def __init__(self, bus: RedisBus, pubsub: PubSub) -> None:
        self.bus = bus
        self.pubsub = pubsub
        self.inboxes: dict[str, list[_BoundedInbox]] = {}
        self.confirming: dict[str, asyncio.Future[None]] = {}
        self.failed: BaseException | None = None
        self.pump: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.pump is None:
            self.pump = asyncio.create_task(self._run(), name="bus-pump")

    async def _run(self) -> None:
        # The pump is the connection's only reader: a health check inside another
        # command would read at the same time, so instead a quiet connection is pinged
        # from here and must answer before the next round.
        unanswered = False
        try:
            while True:
                message = await self.pubsub.get_message(timeout=self.bus.idle_seconds)
                if message is None:
                    if unanswered:
                        raise BusError(f"no answer to a ping in {self.bus.idle_seconds:g} s")
                    await self.pubsub.ping()
                    unanswered = True
                    continue
                unanswered = False
                self._dispatch(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(exc)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind in ("message", "pmessage"):
            key = message["pattern"] if kind == "pmessage" else message["channel"]
            data = message["data"]
            text = data.decode() if isinstance(data, bytes) else data
            for inbox in self.inboxes.get(_text(key), ()):
                inbox.put(text)
        elif kind in ("subscribe", "psubscribe"):
            waiter = self.confirming.pop(_text(message["channel"]), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        self.failed = exc
        for topic, inboxes in self.inboxes.items():
            for inbox in inboxes:
                inbox.fail(BusError(f"lost the Redis connection for {topic!r} "
                                    f"at {self.bus.safe_url}: {exc}"))
        for waiter in self.confirming.values():
            if not waiter.done():
                waiter.set_exception(BusError(f"lost the Redis connection: {exc}"))
        self.confirming.clear()
        self.bus._shared_failed(self)

    async def add(self, inbox: _BoundedInbox) -> None:
        """Deliver ``inbox``'s topic to it; once this returns, later publishes reach it."""
        topic = inbox.pattern
        if topic in self.inboxes:
            self.inboxes[topic].append(inbox)
            return
        waiter = self.confirming.get(topic)
        if waiter is None:
            waiter = asyncio.get_running_loop().create_future()
            self.confirming[topic] = waiter
            if is_pattern(topic):
                await self.pubsub.psubscribe(topic)
            else:
                await self.pubsub.subscribe(topic)
            self.start()  # reading begins once the connection exists
        await asyncio.wait_for(asyncio.shield(waiter), self.bus.poll_seconds * 5)
        self.inboxes.setdefault(topic, []).append(inbox)

    async def remove(self, inbox: _BoundedInbox) -> None:
        topic = inbox.pattern
        inboxes = self.inboxes.get(topic, [])
        with contextlib.suppress(ValueError):
            inboxes.remove(inbox)
        if inboxes or topic not in self.inboxes:
            return
        del self.inboxes[topic]
        if self.failed is None:
            with contextlib.suppress(Exception):
                if is_pattern(topic):
                    await self.pubsub.punsubscribe(topic)
                else:
                    await self.pubsub.unsubscribe(topic)

    async def close(self) -> None:
        if self.pump is not None:
            await stop_tasks(self.pump)
        with contextlib.suppress(Exception):
            await self.pubsub.aclose()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisBus:
    """Pub/sub through a Redis server, for several web processes.

    A process's subscriptions share one Redis connection (:class:`_SharedPubSub`): 500
    event streams of a web process are 500 inboxes, not 500 connections each woken by
    its own task. Connection trouble is a :class:`BusError` promptly, never a hang:
    timeouts on connect and on every command, no silent reconnects (a subscriber that
    was cut off must know it may have missed events).
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
        # Subscriptions' connection: no health check inside commands (see _SharedPubSub).
        self._subscriber: Redis = Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            socket_keepalive=True,
            health_check_interval=0,
            retry=Retry(NoBackoff(), 0),
        )
        self._shared: _SharedPubSub | None = None
        self._lock = asyncio.Lock()
        self._subscriptions: list[_RedisSubscription] = []
        self._dead: list[_SharedPubSub] = []

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
        inbox = _BoundedInbox(topic, self.queue_size)
        async with self._lock:
            if self._shared is None:
                self._shared = _SharedPubSub(self, self._subscriber.pubsub())
            shared = self._shared
            try:
                await shared.add(inbox)
            except BusError as exc:
                self._shared_failed(shared)
                raise BusError(f"cannot subscribe at Redis {self.safe_url}: {exc}") from exc
            except TimeoutError as exc:
                waiter = shared.confirming.pop(topic, None)
                if waiter is not None:
                    waiter.cancel()
                raise BusError(f"Redis did not confirm the subscription to {topic!r} "
                               f"at {self.safe_url}") from exc
            except Exception as exc:
                self._shared_failed(shared)
                raise BusError(f"cannot subscribe at Redis {self.safe_url}: {exc}") from exc
        subscription = _RedisSubscription(self, inbox)
        self._subscriptions.append(subscription)
        return subscription

    def _shared_failed(self, shared: _SharedPubSub) -> None:
        """Forget a broken connection (closed when the bus closes); the next subscription
        opens a new one."""
        if self._shared is shared:
            self._shared = None
            self._dead.append(shared)

    async def _forget(self, subscription: _RedisSubscription) -> None:
        with contextlib.suppress(ValueError):
            self._subscriptions.remove(subscription)
        shared = self._shared
        if shared is not None:
            async with self._lock:
                await shared.remove(subscription._inbox)

    async def ping(self) -> None:
        """Raise :class:`BusError` unless Redis answers (for start-up and health checks)."""
        try:
            await self._redis.ping()
        except Exception as exc:
            raise BusError(f"Redis at {self.safe_url} is unreachable: {exc}") from exc

    async def close(self) -> None:
        for subscription in list(self._subscriptions):
            await subscription.close()
        for shared in [*self._dead, *([self._shared] if self._shared else [])]:
            await shared.close()
        self._shared = None
        self._dead.clear()
        await self._subscriber.aclose()
        await self._redis.aclose()


def create_bus(settings: Settings, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> Bus:
    """Redis when ``settings.redis_url`` is set (several processes), else in-process."""
    if settings.redis_url:
        return RedisBus(settings.redis_url, queue_size=queue_size)
    return InProcessBus(queue_size=queue_size)
