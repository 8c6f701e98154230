"""The call-tracking visitor limits in Redis, shared by every web process.

:class:`~telecrm.calltracking.public.RateLimiter` and
:class:`~telecrm.calltracking.public.VisitorGuard` keep their counts in the process:
behind a balancer, with several web processes, each would allow its own 120 requests a
minute per address, give a visitor who lost his token his visit back only if he came to
the same process, and let one address hold a quarter of the pool (and the addresses
holding several numbers half of it) in each process.
These do the same through Redis, atomically (one Lua script per decision), when
``TELECRM_REDIS_URL`` is set. Times are the callers' (``crm_core.clock``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from redis.asyncio import Redis


class Refusal(StrEnum):
    """Why a visit is shown the company's number instead of a pool number."""

    VISITOR = "visitor"  # this address holds its share of the pool already
    POOL = "pool"  # addresses holding several numbers hold their share of the pool together

# KEYS[1] the address's hits; ARGV: now, window, limit, a unique member
_ALLOW = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
return 1
"""

# KEYS[1] the site's held visits ("address token" -> end of the lease); ARGV: now, address,
# token, an address's share of the pool, the share of addresses holding several numbers.
# Returns "" (may lease), "visitor" or "pool": the rule of public.VisitorGuard.
_REFUSAL = """
local now = tonumber(ARGV[1])
local held = redis.call('ZSCORE', KEYS[1], ARGV[2] .. ' ' .. ARGV[3])
if held and tonumber(held) > now then return '' end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local counts = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local address = string.match(member, '^(%S+) ')
  counts[address] = (counts[address] or 0) + 1
end
local mine = counts[ARGV[2]] or 0
if mine >= tonumber(ARGV[4]) then return 'visitor' end
if mine == 0 then return '' end
local several = (mine == 1) and 2 or 1
for _, n in pairs(counts) do
  if n > 1 then several = several + n end
end
if several > tonumber(ARGV[5]) then return 'pool' end
return ''
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
                 several_share: float = 0.5, prefix: str = "ct:guard") -> None:
        self.redis, self.share, self.several_share = redis, share, several_share
        self.prefix = prefix
        self.new_visits = RedisRateLimiter(redis, new_per_minute, prefix=f"{prefix}:new")
        self._refusal = redis.register_script(_REFUSAL)

    async def returning(self, visitor: str, now: float) -> str | None:
        raw: Any = await self.redis.hmget(f"{self.prefix}:visitor:{visitor}", "token", "until")
        token, until = raw
        if token is None or until is None or float(until) <= now:
            return None
        return token.decode() if isinstance(token, bytes) else str(token)

    async def refusal(self, site: str, address: str, token: str, pool: int,
                      now: float) -> Refusal | None:
        """Why this visit may not take a number now (None: it may)."""
        answer: Any = await self._refusal(
            keys=[f"{self.prefix}:held:{site}"],
            args=[now, address, token, max(1, int(pool * self.share)),
                  max(1, int(pool * self.several_share))])
        text = answer.decode() if isinstance(answer, bytes) else str(answer or "")
        return Refusal(text) if text else None

    async def leased(self, site: str, address: str, visitor: str, token: str, until: float,
                     now: float) -> None:
        ttl = max(1, int((until - now) * 1000))
        held = f"{self.prefix}:held:{site}"
        seen = f"{self.prefix}:visitor:{visitor}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(held, {f"{address} {token}": until})
            pipe.pexpire(held, ttl, nx=True)  # a new key: this lease's life
            pipe.pexpire(held, ttl, gt=True)  # else only ever longer
            pipe.hset(seen, mapping={"token": token, "until": until})
            pipe.pexpire(seen, ttl)
            await pipe.execute()
