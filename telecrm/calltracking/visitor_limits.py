"""The call-tracking visitor limits in Redis, shared by every web process.

:class:`~telecrm.calltracking.public.RateLimiter` and
:class:`~telecrm.calltracking.public.VisitorGuard` keep their counts in the process:
behind a balancer, with several web processes, each would allow its own 120 requests a
minute per address, give a visitor who lost his token his visit back only if he came to
the same process, and let one address hold a quarter of the pool in each process.
These do the same through Redis, atomically (one Lua script per decision), when
``TELECRM_REDIS_URL`` is set. Times are the callers' (``crm_core.clock``).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

# KEYS[1] the address's hits; ARGV: now, window, limit, a unique member
_ALLOW = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
return 1
"""

# KEYS[1] the address's held visits (token -> end); ARGV: now, token, share of the pool
_MAY_LEASE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then return 1 end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then return 1 end
return 0
"""


class RedisRateLimiter:
    """At most ``limit`` requests per key in a sliding window, counted across processes."""

    def __init__(self, redis: Redis, limit: int, *, window: float = 60.0,
                 prefix: str = "ct:rate") -> None:
        self.redis, self.limit, self.window, self.prefix = redis, limit, window, prefix
        self._allow = redis.register_script(_ALLOW)
        self._n = 0

    async def allow(self, key: str, now: float) -> bool:
        self._n += 1
        member = f"{now:.6f}:{id(self)}:{self._n}"
        return bool(await self._allow(keys=[f"{self.prefix}:{key}"],
                                      args=[now, self.window, self.limit, member]))


class RedisVisitorGuard:
    """:class:`~telecrm.calltracking.public.VisitorGuard`'s rules, across processes."""

    def __init__(self, redis: Redis, new_per_minute: int, *, share: float = 0.25,
                 prefix: str = "ct:guard") -> None:
        self.redis, self.share, self.prefix = redis, share, prefix
        self.new_visits = RedisRateLimiter(redis, new_per_minute, prefix=f"{prefix}:new")
        self._may_lease = redis.register_script(_MAY_LEASE)

    async def returning(self, visitor: str, now: float) -> str | None:
        raw: Any = await self.redis.hmget(f"{self.prefix}:visitor:{visitor}", "token", "until")
        token, until = raw
        if token is None or until is None or float(until) <= now:
            return None
        return token.decode() if isinstance(token, bytes) else str(token)

    async def may_lease(self, site: str, ip: str, token: str, pool: int, now: float) -> bool:
        allowed = max(1, int(pool * self.share))
        return bool(await self._may_lease(keys=[f"{self.prefix}:held:{site}|{ip}"],
                                          args=[now, token, allowed]))

    async def leased(self, site: str, ip: str, visitor: str, token: str, until: float,
                     now: float) -> None:
        ttl = max(1, int((until - now) * 1000))
        held = f"{self.prefix}:held:{site}|{ip}"
        seen = f"{self.prefix}:visitor:{visitor}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(held, {token: until})
            pipe.pexpire(held, ttl, nx=True)  # a new key: this lease's life
            pipe.pexpire(held, ttl, gt=True)  # else only ever longer
            pipe.hset(seen, mapping={"token": token, "until": until})
            pipe.pexpire(seen, ttl)
            await pipe.execute()
