"""Transcription job queues: one interface, an in-process and a Redis Streams implementation.

A job is a call id. A consumer ``get``s a job, does it, writes the result, then
``ack``s; a job that can never succeed (corrupt audio) is ``fail``ed: recorded with
its error and acked, so it never blocks the others. Delivery is at least once: on
Redis a job whose worker died before the ack is claimed by another worker after
``claim_after`` seconds, and the idempotent result write (crm_core.speech) makes
the second run harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from redis.asyncio import Redis

MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class Job:
    """One delivery of a job; ``entry`` identifies the delivery to ``ack``/``fail``."""

    call_id: int
    entry: str
    deliveries: int = 1


class JobQueue(Protocol):
    """Where transcription jobs wait for a worker."""

    async def put(self, call_id: int) -> bool:
        """Queue a job unless the call is already queued or failed; True when queued now."""
        ...

    async def get(self, timeout: float = 1.0) -> Job | None:
        """The next job, or None when nothing came within ``timeout`` seconds."""
        ...

    async def ack(self, job: Job) -> None:
        """The job is done (its result is written)."""
        ...

    async def fail(self, job: Job, error: str) -> None:
        """The job can never succeed: record ``error`` and stop delivering it."""
        ...

    async def release(self, job: Job) -> None:
        """The job crashed for a passing reason (database down): let it be delivered again."""
        ...

    async def failures(self) -> dict[int, str]:
        """Failed jobs: call id -> error."""
        ...

    async def close(self) -> None: ...


class InProcessQueue:
    """The embedded default: an asyncio queue in the worker's own process."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._known: set[int] = set()
        self._failed: dict[int, str] = {}
        self._seq = 0

    async def put(self, call_id: int) -> bool:
        if call_id in self._known:
            return False
        self._known.add(call_id)
        self._queue.put_nowait(call_id)
        return True

    async def get(self, timeout: float = 1.0) -> Job | None:
        try:
            call_id = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        self._seq += 1
        return Job(call_id, str(self._seq))

    async def ack(self, job: Job) -> None:
        self._known.discard(job.call_id)

    async def fail(self, job: Job, error: str) -> None:
        self._failed[job.call_id] = error[:MAX_ERROR_CHARS]  # stays known: never re-queued

    async def release(self, job: Job) -> None:
        self._known.discard(job.call_id)  # the next scan queues it again

    async def failures(self) -> dict[int, str]:
        return dict(self._failed)

    async def waiting(self) -> int:
        """Jobs queued and not yet taken by a worker (the metrics' queue depth)."""
        return self._queue.qsize()

    async def failed_count(self) -> int:
        return len(self._failed)

    async def close(self) -> None:
        pass


def default_consumer() -> str:
    """A consumer name unique to this process (host and pid), as XREADGROUP requires."""
    return f"{socket.gethostname()}-{os.getpid()}"


class RedisStreamQueue:
    """Jobs in a Redis stream read by a consumer group (several worker machines).

    Keys: ``{stream}`` (the jobs), ``{stream}:queued`` (call ids queued and not yet
    done, so a scan does not queue a call twice), ``{stream}:failed`` (a hash:
    call id -> JSON with the error).
    """

    def __init__(self, url: str, stream: str = "telecrm:speech", group: str = "workers", *,
                 consumer: str | None = None, claim_after: float = 300.0,
                 max_deliveries: int = 5) -> None:
        from redis.asyncio import Redis

        self.stream, self.group = stream, group
        self.consumer = consumer or default_consumer()
        self.claim_after = claim_after
        self.max_deliveries = max_deliveries
        self._redis: Redis = Redis.from_url(url, decode_responses=True)
        self._queued, self._failed = f"{stream}:queued", f"{stream}:failed"
        self._group_ready = False

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        from redis.exceptions import ResponseError

        try:
            await self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def put(self, call_id: int) -> bool:
        await self._ensure_group()
        if await self._redis.hexists(self._failed, str(call_id)):
            return False
        if not await self._redis.sadd(self._queued, str(call_id)):
            return False
        await self._redis.xadd(self.stream, {"call_id": str(call_id)})
        return True

    async def get(self, timeout: float = 1.0) -> Job | None:
        await self._ensure_group()
        claimed = await self._claim()
        if claimed is not None:
            return claimed
        reply = await self._redis.xreadgroup(self.group, self.consumer, {self.stream: ">"},
                                             count=1, block=max(1, int(timeout * 1000)))
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                return Job(int(fields["call_id"]), entry_id)
        return None

    async def _claim(self) -> Job | None:
        """A job another consumer took and left unacked for ``claim_after`` (it died)."""
        _next, entries, _deleted = await self._redis.xautoclaim(
            self.stream, self.group, self.consumer, min_idle_time=int(self.claim_after * 1000),
            start_id="0-0", count=1)
        for entry_id, fields in entries:
            if not fields:  # trimmed away meanwhile
                continue
            pending = await self._redis.xpending_range(self.stream, self.group, min=entry_id,
                                                       max=entry_id, count=1)
            deliveries = int(pending[0]["times_delivered"]) if pending else 1
            job = Job(int(fields["call_id"]), entry_id, deliveries)
            if deliveries > self.max_deliveries:  # it kills every worker that tries it
                await self.fail(job, f"gave up after {deliveries - 1} deliveries: "
                                     "every worker that took this job died")
                continue
            return job
        return None

    async def ack(self, job: Job) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, self.group, job.entry)
            pipe.xdel(self.stream, job.entry)
            pipe.srem(self._queued, str(job.call_id))
            await pipe.execute()

    async def fail(self, job: Job, error: str) -> None:
        record = json.dumps({"error": error[:MAX_ERROR_CHARS], "at": time.time(),
                             "deliveries": job.deliveries}, ensure_ascii=False)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._failed, str(job.call_id), record)
            pipe.xack(self.stream, self.group, job.entry)
            pipe.xdel(self.stream, job.entry)
            pipe.srem(self._queued, str(job.call_id))
            await pipe.execute()

    async def release(self, job: Job) -> None:
        """Nothing to do: left unacked, the entry is claimed again after ``claim_after``."""

    async def failures(self) -> dict[int, str]:
        raw: dict[str, str] = await self._redis.hgetall(self._failed)
        return {int(k): json.loads(v)["error"] for k, v in raw.items()}

    async def waiting(self) -> int:
        """Jobs queued and not yet taken by a worker (the metrics' queue depth): acked
        entries are deleted, so the stream's length less the delivered ones."""
        await self._ensure_group()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xlen(self.stream)
            pipe.xpending(self.stream, self.group)
            length, pending = await pipe.execute()
        return max(0, int(length) - int(pending["pending"]))

    async def failed_count(self) -> int:
        return int(await self._redis.hlen(self._failed))

    async def pending(self) -> int:
        """Jobs delivered and not yet acked (for health checks and tests)."""
        await self._ensure_group()
        info: dict[str, Any] = await self._redis.xpending(self.stream, self.group)
        return int(info["pending"])

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._redis.aclose()
