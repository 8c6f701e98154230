"""Writes visits and lease history behind the public endpoint, in batches, off the event loop.

The endpoint answers from the lease store alone (Redis or in-process) and hands
each request to this writer: a bounded queue drained by a thread (the embedded
default) or a child process (with Redis, the scale-out mode) with its own event
loop and database engine, writing up to ``max_batch`` requests per transaction. At
1,000 requests/s that is a few transactions a second instead of a thousand, and
the ORM work never stalls the web process's event loop (in a thread it still
shares the interpreter lock, which costs a busy process milliseconds per await;
bench/RESULTS.md). A full queue makes the endpoint wait (backpressure), never drops
a visit; a database outage is retried with the batch kept, and whatever is queued
at shutdown is written before the app stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import queue
import threading
from typing import Any

from crm_core.calltracking.services import VisitEvent, record_visit_events
from crm_core.db import create_engine, session_factory

log = logging.getLogger(__name__)

_STOP = object()
_PARENT_CHECK_SECONDS = 1.0  # how soon a writer process sees its web process killed


class HistoryWriter:
    """One writer thread per web process writing :class:`VisitEvent` batches in order."""

    def __init__(self, database_url: str, *, max_batch: int = 500, max_queue: int = 50_000,
                 retry_seconds: float = 1.0) -> None:
        self.database_url = database_url
        self.max_batch = max_batch
        self.retry_seconds = retry_seconds
        self._queue: queue.Queue[object] = queue.Queue(max_queue)
        self._thread: threading.Thread | None = None

    async def put(self, event: VisitEvent) -> None:
        try:
            self._queue.put_nowait(event)
        except queue.Full:  # backpressure: wait for room, off the event loop
            await asyncio.to_thread(self._queue.put, event)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="calltracking-history",
                                        daemon=True)
        self._thread.start()

    async def drain(self) -> None:
        """Wait until everything queued so far is written (tests, shutdown)."""
        await asyncio.to_thread(self._queue.join)

    async def close(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drain(), 10)
        self._queue.put(_STOP)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)

    def _main(self) -> None:
        asyncio.run(_write_loop(self.database_url, self._queue, self.max_batch,
                                self.retry_seconds))


class ProcessHistoryWriter(HistoryWriter):
    """The same writer in a child process: no GIL shared with the web process's event loop.

    Used when leases are in Redis (the scale-out mode), where each web process faces
    heavy traffic; a thread is lighter for the embedded default.
    """

    def __init__(self, database_url: str, *, max_batch: int = 500, max_queue: int = 50_000,
                 retry_seconds: float = 1.0) -> None:
        super().__init__(database_url, max_batch=max_batch, max_queue=max_queue,
                         retry_seconds=retry_seconds)
        context = multiprocessing.get_context("spawn")
        self._queue = context.JoinableQueue(max_queue)  # type: ignore[assignment]
        self._process: Any = context.Process(
            target=_process_main, name="calltracking-history", daemon=True,
            args=(database_url, self._queue, max_batch, retry_seconds))

    def start(self) -> None:
        self._process.start()

    async def close(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drain(), 10)
        self._queue.put(None)
        await asyncio.to_thread(self._process.join, 10)
        if self._process.is_alive():
            self._process.terminate()


def _process_main(database_url: str, jobs: Any, max_batch: int, retry_seconds: float) -> None:
    asyncio.run(_write_loop(database_url, jobs, max_batch, retry_seconds))


async def _write_loop(database_url: str, jobs: Any, max_batch: int,
                      retry_seconds: float) -> None:
    """Take batches off ``jobs`` and write them until the stop marker (None or _STOP)."""
    engine = create_engine(database_url)
    sessions = session_factory(engine, writer=True)
    parent = multiprocessing.parent_process()  # None in a thread of the web process
    try:
        while True:
            try:  # this loop's own thread or process: blocking here is fine
                first = jobs.get(timeout=_PARENT_CHECK_SECONDS)
            except queue.Empty:
                if parent is not None and not parent.is_alive():
                    log.warning("call tracking: the web process is gone; history writer ends")
                    return  # killed (-9): nothing more can come, and nobody would stop us
                continue
            if first is None or first is _STOP:
                jobs.task_done()
                return
            batch: list[VisitEvent] = [first]
            stop = False
            while len(batch) < max_batch:
                try:
                    item = jobs.get_nowait()
                except queue.Empty:
                    break
                if item is None or item is _STOP:
                    stop = True
                    jobs.task_done()
                    break
                batch.append(item)
            while True:
                try:
                    async with sessions() as session, session.begin():
                        await record_visit_events(session, batch)
                    break
                except Exception:
                    log.warning("call tracking: %d visit records not written yet; retrying",
                                len(batch), exc_info=True)
                    await asyncio.sleep(retry_seconds)
            for _ in batch:
                jobs.task_done()
            if stop:
                return
    finally:
        await engine.dispose()
