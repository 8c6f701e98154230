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


# One round trip before the lease: the address's request rate, the visit's token (a
# returning visitor's, else the new one offered) with the new visits per address, and
# whether this visit may take a number (the rules of _ALLOW and _REFUSAL above, in order).
# KEYS: the address's hits, the visitor's last visit, the address's new visits on the site,
# the site's held visits. ARGV: now, rate window, rate limit, rate member, the request's
# valid token or "", the new token offered, bot ("1"/"0"), new-visit window, limit and
# member, wants a number ("1"/"0"), an address's share, the several-share, the address.
# Returns {within the rate (1/0), token, bot (1/0), refusal ("", "visitor" or "pool")}.
_ADMIT = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return {0, '', 0, ''} end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
local token = ARGV[5]
local bot = ARGV[7] == '1'
if token == '' then
  local seen = redis.call('HMGET', KEYS[2], 'token', 'until')
  if seen[1] and seen[2] and tonumber(seen[2]) > now then
    token = seen[1]
  else
    token = ARGV[6]
    if not bot then
      local fresh = tonumber(ARGV[8])
      redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - fresh)
      if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[9]) then
        bot = true
      else
        redis.call('ZADD', KEYS[3], now, ARGV[10])
        redis.call('PEXPIRE', KEYS[3], math.ceil(fresh * 1000))
      end
    end
  end
end
local refusal = ''
if ARGV[11] == '1' and not bot then
  local address = ARGV[14]
  local held = redis.call('ZSCORE', KEYS[4], address .. ' ' .. token)
  if not (held and tonumber(held) > now) then
    redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
    local counts = {}
    for _, member in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
      local where = string.match(member, '^(%S+) ')
      counts[where] = (counts[where] or 0) + 1
    end
    local mine = counts[address] or 0
    if mine >= tonumber(ARGV[12]) then
      refusal = 'visitor'
    elseif mine > 0 then
      local several = (mine == 1) and 2 or 1
      for _, n in pairs(counts) do
        if n > 1 then several = several + n end
      end
      if several > tonumber(ARGV[13]) then refusal = 'pool' end
    end
  end
end
return {1, token, bot and 1 or 0, refusal}
"""


class RedisRateLimiter:
    """At most ``limit`` requests per key in a sliding window, counted across processes."""

    def __init__(self, redis: Redis, limit: int, *, window: float = 60.0,
                 prefix: str = "ct:rate") -> None:
        self.redis, self.limit, self.window, self.prefix = redis, limit, window, prefix
        self._allow = redis.register_script(_ALLOW)
        self._n = 0

    def member(self, now: float) -> str:
        """A hit's unique member in the sliding window."""
        self._n += 1
        return f"{now:.6f}:{id(self)}:{self._n}"

    async def allow(self, key: str, now: float) -> bool:
        return bool(await self._allow(keys=[f"{self.prefix}:{key}"],
                                      args=[now, self.window, self.limit, self.member(now)]))


class RedisVisitorGuard:
    """:class:`~telecrm.calltracking.public.VisitorGuard`'s rules, across processes."""

    def __init__(self, redis: Redis, new_per_minute: int, *, share: float = 0.25,
                 several_share: float = 0.5, prefix: str = "ct:guard") -> None:
        self.redis, self.share, self.several_share = redis, share, several_share
        self.prefix = prefix
        self.new_visits = RedisRateLimiter(redis, new_per_minute, prefix=f"{prefix}:new")
        self._refusal = redis.register_script(_REFUSAL)
        self._admit = redis.register_script(_ADMIT)

    async def admit(self, rate: RedisRateLimiter, *, site: str, address: str, visitor: str,
                    token: str | None, offered: str | None, bot: bool, wants: bool, pool: int,
                    now: float) -> tuple[bool, str, bool, Refusal | None]:
        """In one round trip what ``rate.allow``, :meth:`returning`, ``new_visits.allow``
        and :meth:`refusal` decide one after another: (within the address's request rate,
        the visit's token, bot, why it may not take a number). ``token`` is the request's
        valid token, else None and ``offered`` is the new visit's token. ``wants``: the
        visit asks for a number (activity, a pool); a bot never gets one."""
        fresh = self.new_visits
        answer: Any = await self._admit(
            keys=[f"{rate.prefix}:{address}", f"{self.prefix}:visitor:{visitor}",
                  f"{fresh.prefix}:{site}|{address}", f"{self.prefix}:held:{site}"],
            args=[now, rate.window, rate.limit, rate.member(now), token or "", offered or "",
                  "1" if bot else "0", fresh.window, fresh.limit, fresh.member(now),
                  "1" if wants else "0", max(1, int(pool * self.share)),
                  max(1, int(pool * self.several_share)), address])
        allowed, chosen, is_bot, refusal = answer
        text = refusal.decode() if isinstance(refusal, bytes) else str(refusal or "")
        return (bool(allowed), chosen.decode() if isinstance(chosen, bytes) else str(chosen),
                bool(is_bot), Refusal(text) if text else None)

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

    def record_keys(self, site: str, address: str, visitor: str) -> tuple[str, str, str]:
        """What the lease script needs to record a number given as :meth:`leased` does."""
        return f"{self.prefix}:held:{site}", f"{self.prefix}:visitor:{visitor}", address

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
