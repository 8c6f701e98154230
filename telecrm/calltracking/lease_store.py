"""Call-tracking leases in Redis: the rules of ``crm_core.calltracking.leases`` in one Lua script.

One script call per request decides atomically (Redis runs scripts one at a time),
so two visitors served by two web processes never get the same number. Per site:

- ``ct:{host}:leases``  sorted set, number -> end of its lease (last activity + hold);
- ``ct:{host}:holders`` hash, number -> session holding it;
- ``ct:{host}:cool``    hash, number -> end of its cooldown;
- ``ct:{host}:s:{session}`` the visit's last number, a key with a TTL (returning visitors);
- ``ct:{host}:pool``    list, the pool's numbers: written when a process sees the pool
  change, so a lease request carries no more than its session (a few bytes).

Time comes from the caller (as in the engine), so the web processes must share a
clock (NTP), and tests can replay scenarios at chosen moments.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from crm_core.calltracking.leases import Decision, Outcome, PoolRules

if TYPE_CHECKING:
    from redis.asyncio import Redis

_ACQUIRE = """
local t = tonumber(ARGV[1])
local hold = tonumber(ARGV[2])
local cool = tonumber(ARGV[3])
local reuse = ARGV[4] == '1'
local memo_ttl = tonumber(ARGV[5])
local session = ARGV[6]
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', t, 'WITHSCORES')
for i = 1, #expired, 2 do
  local n = expired[i]
  redis.call('HSET', KEYS[3], n, string.format('%.6f', tonumber(expired[i + 1]) + cool))
  redis.call('HDEL', KEYS[2], n)
  redis.call('ZREM', KEYS[1], n)
end
-- the visitor limits' record of a number given (KEYS[6] the site's held visits, KEYS[7]
-- the visitor's last visit; ARGV[7] the address): public.VisitorGuard.leased
local function record(ends)
  if not KEYS[6] then return end
  local ttl = math.max(1, math.floor((tonumber(ends) - t) * 1000))
  redis.call('ZADD', KEYS[6], ends, ARGV[7] .. ' ' .. session)
  redis.call('PEXPIRE', KEYS[6], ttl, 'NX')
  redis.call('PEXPIRE', KEYS[6], ttl, 'GT')
  redis.call('HSET', KEYS[7], 'token', session, 'until', ends)
  redis.call('PEXPIRE', KEYS[7], ttl)
end
local function take(n, outcome)
  local ends = string.format('%.6f', t + hold)
  redis.call('ZADD', KEYS[1], ends, n)
  redis.call('HSET', KEYS[2], n, session)
  redis.call('SET', KEYS[4], n, 'EX', memo_ttl)
  record(ends)
  return {n, outcome, ends, redis.call('ZCARD', KEYS[1])}
end
local numbers = redis.call('LRANGE', KEYS[5], 0, -1)
local pool = {}
for _, n in ipairs(numbers) do pool[n] = true end
local prev = redis.call('GET', KEYS[4])
if prev and pool[prev] then
  local holder = redis.call('HGET', KEYS[2], prev)
  if holder == session then return take(prev, 'renewed') end
  if not holder then return take(prev, 'returned') end
end
local best = nil
local best_at = 0
for _, n in ipairs(numbers) do
  if redis.call('HEXISTS', KEYS[2], n) == 0 then
    local f = tonumber(redis.call('HGET', KEYS[3], n) or '0')
    if f <= t and (best == nil or f < best_at) then
      best = n
      best_at = f
    end
  end
end
if best then return take(best, 'leased') end
local live = redis.call('ZCARD', KEYS[1])
if reuse then
  local leases = redis.call('ZRANGE', KEYS[1], 0, -1)
  for _, n in ipairs(leases) do
    if pool[n] then
      record(string.format('%.6f', t + hold))
      return {n, 'shared', '', live}
    end
  end
end
return {'', 'fallback', '', live}
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisLeaseStore:
    """Leases shared by every web process through one Redis server."""

    def __init__(self, redis: Redis, prefix: str = "ct") -> None:
        self.redis = redis
        self.prefix = prefix
        self._script = redis.register_script(_ACQUIRE)
        self._pools: dict[str, tuple[str, ...]] = {}  # what this process last wrote per site
        self._checked: dict[str, Sequence[str]] = {}  # the list last found written, per site

    @classmethod
    def from_url(cls, url: str, max_connections: int = 64) -> RedisLeaseStore:
        """A store on a bounded pool: a burst waits for a connection instead of failing."""
        from redis.asyncio import BlockingConnectionPool, Redis

        pool = BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=5)
        return cls(Redis(connection_pool=pool))

    def _keys(self, site: str, session: str) -> list[str]:
        base = f"{self.prefix}:{{{site}}}"  # one hash slot per site (Redis Cluster)
        return [f"{base}:leases", f"{base}:holders", f"{base}:cool", f"{base}:s:{session}",
                f"{base}:pool"]

    async def _sync_pool(self, site: str, numbers: Sequence[str]) -> None:
        """Write the pool to Redis when this process sees it for the first time or changed."""
        if self._checked.get(site) is numbers:  # the site cache's own list, as last time
            return
        pool = tuple(dict.fromkeys(numbers))
        if self._pools.get(site) == pool:
            self._checked[site] = numbers
            return
        key = self._keys(site, "")[4]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if pool:
                pipe.rpush(key, *pool)
            await pipe.execute()
        self._pools[site] = pool
        self._checked[site] = numbers

    async def acquire(self, site: str, numbers: Sequence[str], rules: PoolRules,
                      session: str, now: float, *,
                      record: tuple[str, str, str] | None = None) -> Decision:
        """The lease; with ``record`` (the visitor limits' held-visits key, the visitor's
        key and the address: ``RedisVisitorGuard.record_keys``) a number given is recorded
        there in the same script, as ``RedisVisitorGuard.leased`` would."""
        await self._sync_pool(site, numbers)
        args = [f"{now:.6f}", f"{rules.hold:.6f}", f"{rules.cooldown:.6f}",
                "1" if rules.reuse_live else "0", str(max(1, int(rules.memo_seconds))), session]
        keys = self._keys(site, session)
        if record is not None:
            keys += [record[0], record[1]]
            args.append(record[2])
        number, outcome, ends, live = await self._script(keys=keys, args=args)
        number_text, ends_text = _text(number), _text(ends)
        return Decision(number_text or None, Outcome(_text(outcome)),
                        float(ends_text) if ends_text else None, int(live))

    async def live(self, site: str, now: float) -> int:
        key = self._keys(site, "")[0]
        return int(await self.redis.zcount(key, f"({now:.6f}", "+inf"))

    async def close(self) -> None:
        await self.redis.aclose()
        await self.redis.connection_pool.disconnect()
