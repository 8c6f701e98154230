"""Sign-in throttling: failed attempts per (username, IP) and per IP."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class LoginThrottle:
    """Failed sign-ins per (username, IP) and per IP within a sliding window.

    In memory, per process: with several web processes behind a balancer each one
    counts on its own (the limit is per process; Redis-backed counting can come
    with the bus). Memory is bounded: old entries are pruned, and the table is
    capped.
    """

    def __init__(self, per_user: int, per_ip: int, window: float,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 50_000) -> None:
        self.per_user, self.per_ip, self.window = per_user, per_ip, window
        self.clock = clock
        self.max_keys = max_keys
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        now = self.clock()
        stamps = self._failures.get(key)
        if stamps is None:
            return deque()
        while stamps and stamps[0] <= now - self.window:
            stamps.popleft()
        if not stamps:
            del self._failures[key]
        return stamps

    def retry_after(self, username: str, ip: str) -> float:
        """Seconds until another attempt is allowed; 0 when allowed now."""
        waits = []
        for key, limit in (((username.lower(), ip), self.per_user), (("", ip), self.per_ip)):
            stamps = self._recent(key)
            if len(stamps) >= limit:
                waits.append(stamps[0] + self.window - self.clock())
        return max(waits, default=0.0)

    def failed(self, username: str, ip: str) -> None:
        if len(self._failures) >= self.max_keys:
            self._failures.clear()  # under a flood, forget rather than grow without bound
        now = self.clock()
        for key in ((username.lower(), ip), ("", ip)):
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, username: str, ip: str) -> None:
        self._failures.pop((username.lower(), ip), None)
