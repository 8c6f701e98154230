"""Sign-in throttling: failed attempts per account, per IP and per (account, IP).

The account is the name as sign-in reads it (:func:`account_key`: spaces stripped,
case folded), so ``"mgr2 "`` and ``"MGR2"`` spend the budget of ``mgr2``. Three limits
together: per (account, IP) stops one guesser early, per account stops a botnet spread
over many addresses, per IP stops one address trying many accounts.

Two stores behind one interface: in memory (one process; a bounded LRU that forgets the
least recently touched keys, never everything at once) and Redis (sorted sets with a
TTL, shared by every web process of the installation) when ``TELECRM_REDIS_URL`` is set.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

REDIS_PREFIX = "telecrm:login:"


def account_key(username: str) -> str:
    """The account a sign-in attempt is counted against (the normalisation of sign-in)."""
    return username.strip().casefold()


def _keys(username: str, ip: str) -> tuple[str, str, str]:
    account = account_key(username)
    return f"a:{account}", f"i:{ip}", f"ai:{ip}:{account}"


class LoginThrottle(Protocol):
    """What sign-in asks: how long to wait, and what happened."""

    async def retry_after(self, username: str, ip: str) -> float:
        """Seconds until another attempt is allowed; 0 when allowed now."""
        ...

    async def failed(self, username: str, ip: str) -> None: ...

    async def succeeded(self, username: str, ip: str) -> None: ...

    async def close(self) -> None: ...


class MemoryThrottle:
    """Failed sign-ins within a sliding window, in this process's memory.

    Memory is bounded by ``max_keys``: beyond it the least recently touched keys go,
    so a flood of invented names cannot wipe the counters of the account under attack.
    """

    def __init__(self, per_pair: int, per_ip: int, per_account: int, window: float,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 50_000) -> None:
        self.limits = (per_account, per_ip, per_pair)
        self.window, self.clock, self.max_keys = window, clock, max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str) -> int:
        stamps = self._failures.get(key)
        if stamps is None:
            return 0
        now = self.clock()
        while stamps and stamps[0] <= now - self.window:
            stamps.popleft()
        if not stamps:
            del self._failures[key]
            return 0
        return len(stamps)

    async def retry_after(self, username: str, ip: str) -> float:
        waits = []
        for key, limit in zip(_keys(username, ip), self.limits, strict=True):
            if self._recent(key) >= limit:
                waits.append(self._failures[key][-limit] + self.window - self.clock())
        return max(waits, default=0.0)

    async def failed(self, username: str, ip: str) -> None:
        now = self.clock()
        for key in _keys(username, ip):
            stamps = self._failures.setdefault(key, deque(maxlen=max(self.limits)))
            stamps.append(now)
            self._failures.move_to_end(key)
        spared = 0
        while len(self._failures) > self.max_keys:
            key, stamps = self._failures.popitem(last=False)
            if spared < 100 and len(stamps) >= self._limit(key):
                self._failures[key] = stamps  # a blocked key outlives a flood of new names
                spared += 1

    def _limit(self, key: str) -> int:
        per_account, per_ip, per_pair = self.limits
        return {"a": per_account, "i": per_ip}.get(key.split(":", 1)[0], per_pair)

    async def succeeded(self, username: str, ip: str) -> None:
        account, _, pair = _keys(username, ip)
        self._failures.pop(pair, None)
        self._failures.pop(account, None)

    async def close(self) -> None:
        return None


class RedisThrottle:
    """The same counting in Redis, shared by every process: one sorted set per key
    (failure times as scores), trimmed to the window and expiring with it.

    If Redis cannot be reached, sign-in goes on unthrottled (logged): a Redis outage
    must not lock everybody out of the CRM."""

    def __init__(self, url: str, per_pair: int, per_ip: int, per_account: int,
                 window: float, clock: Callable[[], float] = time.time) -> None:
        from redis.asyncio import Redis

        self.limits = (per_account, per_ip, per_pair)
        self.window, self.clock = window, clock
        self._redis: Redis = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    async def retry_after(self, username: str, ip: str) -> float:
        from redis.exceptions import RedisError

        now = self.clock()
        keys = [REDIS_PREFIX + k for k in _keys(username, ip)]
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, limit in zip(keys, self.limits, strict=True):
                    pipe.zremrangebyscore(key, "-inf", now - self.window)
                    pipe.zrevrange(key, limit - 1, limit - 1, withscores=True)
                replies = await pipe.execute()
        except RedisError as exc:
            log.warning("sign-in throttle: Redis unavailable (%s); not throttling", exc)
            return 0.0
        waits = [entry[0][1] + self.window - now for entry in replies[1::2] if entry]
        return max(waits, default=0.0)

    async def failed(self, username: str, ip: str) -> None:
        from redis.exceptions import RedisError

        now = self.clock()
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in _keys(username, ip):
                    pipe.zadd(REDIS_PREFIX + key, {f"{now:.6f}:{secrets.token_hex(4)}": now})
                    pipe.expire(REDIS_PREFIX + key, int(self.window) + 1)
                await pipe.execute()
        except RedisError as exc:
            log.warning("sign-in throttle: Redis unavailable (%s)", exc)

    async def succeeded(self, username: str, ip: str) -> None:
        from redis.exceptions import RedisError

        account, _, pair = _keys(username, ip)
        try:
            await self._redis.delete(REDIS_PREFIX + pair, REDIS_PREFIX + account)
        except RedisError as exc:
            log.warning("sign-in throttle: Redis unavailable (%s)", exc)

    async def close(self) -> None:
        await self._redis.aclose()
