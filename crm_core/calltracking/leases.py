"""The lease engine of dynamic call tracking: which pool number a visit sees.

Sans-IO, like the call tracker: :class:`LeaseEngine` is fed "visit at time t" and
"expire at time t" and answers with decisions; it owns no clock, socket or
database, so every rule is replayable in a unit test. The rules:

- a visit that holds a live lease keeps it (the lease runs ``hold`` seconds past
  the last activity: each visit or heartbeat moves it on);
- a returning visitor gets his previous number back when nobody else holds it
  (even during its cooldown: the cooldown protects others from *his* late calls);
- otherwise the number free the longest whose cooldown has passed;
- otherwise, with ``reuse_live`` on, the live lease with the oldest activity is
  shared (its calls become ambiguous); else the fallback number (``None``).

:class:`MemoryLeaseStore` runs the engine in-process (the embedded default);
``telecrm.calltracking.lease_store.RedisLeaseStore`` implements the same rules atomically in
Redis for several web processes. Tests run the same scenarios on both.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

MEMO_LIMIT = 200_000  # returning visitors remembered per site (oldest forgotten first)


class Outcome(StrEnum):
    LEASED = "leased"  # a free number, new to this visit
    RENEWED = "renewed"  # the visit's live lease moved on
    RETURNED = "returned"  # a returning visitor got his previous number back
    SHARED = "shared"  # pool exhausted, a live lease is shared (reuse_live on)
    FALLBACK = "fallback"  # pool exhausted: the site's default number is shown


@dataclass(frozen=True)
class PoolRules:
    hold: float = 180.0  # seconds a lease lives after the last activity
    cooldown: float = 60.0  # seconds a released number rests before anyone else gets it
    reuse_live: bool = False
    memo_seconds: float = 30 * 86400.0  # how long a returning visitor's number is remembered


@dataclass(frozen=True)
class Decision:
    number: str | None  # None: show the fallback number
    outcome: Outcome
    expires_at: float | None = None  # when the lease ends unless renewed
    live: int = 0  # live leases on the site after the decision (for overload events)

    @property
    def tracked(self) -> bool:
        return self.number is not None


@dataclass
class _Lease:
    session: str
    expires_at: float


class LeaseEngine:
    """One site's pool: live leases, cooldowns and the returning visitors' numbers."""

    def __init__(self, numbers: Sequence[str], rules: PoolRules) -> None:
        self.rules = rules
        self.numbers: list[str] = list(dict.fromkeys(numbers))
        self._leases: dict[str, _Lease] = {}
        self._free_at: dict[str, float] = {}  # number -> end of its cooldown
        self._memo: OrderedDict[str, tuple[str, float]] = OrderedDict()  # session -> number

    def set_numbers(self, numbers: Sequence[str]) -> None:
        """The pool changed (numbers added or archived); live leases run out as usual."""
        self.numbers = list(dict.fromkeys(numbers))

    def expire(self, now: float) -> list[tuple[str, str]]:
        """Release leases whose hold has passed; returns ``(number, session)`` released."""
        released = []
        for number, lease in list(self._leases.items()):
            if lease.expires_at <= now:
                del self._leases[number]
                self._free_at[number] = lease.expires_at + self.rules.cooldown
                released.append((number, lease.session))
        return released

    def holder(self, number: str, now: float) -> str | None:
        lease = self._leases.get(number)
        return lease.session if lease is not None and lease.expires_at > now else None

    def live(self, now: float) -> int:
        return sum(1 for lease in self._leases.values() if lease.expires_at > now)

    def _take(self, number: str, session: str, now: float, outcome: Outcome) -> Decision:
        expires = now + self.rules.hold
        self._leases[number] = _Lease(session, expires)
        self._memo[session] = (number, now + self.rules.memo_seconds)
        self._memo.move_to_end(session)
        while len(self._memo) > MEMO_LIMIT:
            self._memo.popitem(last=False)
        return Decision(number, outcome, expires, len(self._leases))

    def visit(self, session: str, now: float) -> Decision:
        """A visit's page asks for a number (first view, a new page or a heartbeat)."""
        self.expire(now)
        pool = set(self.numbers)
        memo = self._memo.get(session)
        if memo is not None and memo[1] > now and memo[0] in pool:
            previous = memo[0]
            holder = self.holder(previous, now)
            if holder == session:
                return self._take(previous, session, now, Outcome.RENEWED)
            if holder is None:
                return self._take(previous, session, now, Outcome.RETURNED)
        best: str | None = None
        best_at = 0.0
        for number in self.numbers:
            if number in self._leases:
                continue
            free_at = self._free_at.get(number, 0.0)
            if free_at <= now and (best is None or free_at < best_at):
                best, best_at = number, free_at
        if best is not None:
            return self._take(best, session, now, Outcome.LEASED)
        if self.rules.reuse_live:
            live = sorted((lease.expires_at, number) for number, lease in self._leases.items()
                          if number in pool)
            if live:
                return Decision(live[0][1], Outcome.SHARED, None, len(self._leases))
        return Decision(None, Outcome.FALLBACK, None, len(self._leases))

    heartbeat = visit  # a heartbeat is a visit that keeps (or regains) its number


class LeaseStore(Protocol):
    """Where live leases are kept: in-process, or Redis shared by several web processes."""

    async def acquire(self, site: str, numbers: Sequence[str], rules: PoolRules,
                      session: str, now: float) -> Decision:
        """Keep or obtain a number for ``session`` on ``site`` at ``now`` (seconds)."""
        ...

    async def live(self, site: str, now: float) -> int:
        """Live leases on ``site`` at ``now``."""
        ...

    async def close(self) -> None: ...


class MemoryLeaseStore:
    """The embedded default: one engine per site in this process (one small site)."""

    def __init__(self) -> None:
        self._engines: dict[str, LeaseEngine] = {}

    def _engine(self, site: str, numbers: Sequence[str], rules: PoolRules) -> LeaseEngine:
        engine = self._engines.get(site)
        if engine is None:
            engine = self._engines[site] = LeaseEngine(numbers, rules)
        else:
            engine.rules = rules
            if engine.numbers != list(numbers):
                engine.set_numbers(numbers)
        return engine

    async def acquire(self, site: str, numbers: Sequence[str], rules: PoolRules,
                      session: str, now: float) -> Decision:
        return self._engine(site, numbers, rules).visit(session, now)

    async def live(self, site: str, now: float) -> int:
        engine = self._engines.get(site)
        return engine.live(now) if engine is not None else 0

    async def close(self) -> None:
        self._engines.clear()
