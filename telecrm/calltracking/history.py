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
import os
import queue
import signal
import threading
from _multiprocessing import sem_unlink
from multiprocessing import resource_tracker, util
from multiprocessing.synchronize import Condition, SemLock
from typing import Any

from crm_core.calltracking.services import VisitEvent, record_visit_events
from crm_core.db import create_engine, session_factory

log = logging.getLogger(__name__)

_STOP = object()
_PARENT_CHECK_SECONDS = 1.0  # how soon a writer process sees its web process killed
# Requests are handed to the writer in chunks: one queue put, one wake of the writer's
# thread, per CHUNK requests or per CHUNK_SECONDS, whichever comes first. Handed over one
# by one, at 1,000 requests/s the writer's thread (or the queue's feeder thread) woke a
# thousand times a second, each time contending with the event loop for the interpreter
# lock; the lease itself then waited in the loop (bench/RESULTS.md, issue 21).
CHUNK = 100
CHUNK_SECONDS = 0.02
# The writer process waits gladly (its rows are read seconds later at the earliest); the
# web process answering the leases on the same cores must not. At 1,000 requests/s the
# writer takes about 40 % of a core.
WRITER_NICENESS = 10


class HistoryWriter:
    """One writer thread per web process writing :class:`VisitEvent` batches in order."""

    def __init__(self, database_url: str, *, max_batch: int = 500, max_queue: int = 50_000,
                 retry_seconds: float = 1.0) -> None:
        self.database_url = database_url
        self.max_batch = max_batch
        self.retry_seconds = retry_seconds
        # the queue holds chunks: a tenth as many as the requests it would have held
        self._chunks = max(1, max_queue // 10)
        self._queue: queue.Queue[object] = queue.Queue(self._chunks)
        self._thread: threading.Thread | None = None
        self._buffer: list[VisitEvent] = []
        self._timer: asyncio.TimerHandle | None = None
        self._handing = asyncio.Lock()  # chunks reach the queue in the order they were made
        self._soon: set[asyncio.Task[None]] = set()

    async def put(self, event: VisitEvent) -> None:
        """Queue ``event`` for writing; it reaches the writer within CHUNK_SECONDS."""
        self._buffer.append(event)
        if len(self._buffer) >= CHUNK:
            await self._hand_over()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(CHUNK_SECONDS,
                                                                self._hand_over_soon)

    def _hand_over_soon(self) -> None:
        self._timer = None
        if self._buffer:
            task = asyncio.ensure_future(self._hand_over())
            self._soon.add(task)
            task.add_done_callback(self._soon.discard)

    async def _hand_over(self, wait: float | None = None) -> None:
        """The buffer as one chunk to the queue; a full queue is waited for (backpressure),
        at most ``wait`` seconds when given (shutdown: the chunk is then given up)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._buffer:
            return
        chunk, self._buffer = self._buffer, []
        async with self._handing:
            try:
                self._queue.put_nowait(chunk)
            except queue.Full:  # wait for room off the event loop, in a thread that ends
                try:
                    await asyncio.to_thread(self._queue.put, chunk, True, wait)
                except queue.Full:
                    log.error("call tracking: %d visit records lost: their writer took "
                              "nothing for %g s", len(chunk), wait)

    async def _hand_over_all(self, wait: float | None = None) -> None:
        await self._hand_over(wait)
        if self._soon:  # hand-overs the timer started, perhaps waiting for room
            await asyncio.wait(set(self._soon), timeout=wait)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="calltracking-history",
                                        daemon=True)
        self._thread.start()

    async def drain(self) -> None:
        """Wait until everything queued so far is written (tests, shutdown)."""
        await self._hand_over_all()
        await asyncio.to_thread(self._queue.join)

    async def close(self) -> None:
        await self._hand_over_all(wait=10)
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
        self._queue = context.JoinableQueue(self._chunks)  # type: ignore[assignment]
        self._process: Any = context.Process(
            target=_process_main, name="calltracking-history", daemon=True,
            args=(database_url, self._queue, max_batch, retry_seconds))

    def start(self) -> None:
        # Started with SIGINT blocked (the mask is inherited), so a Ctrl-C to the whole
        # group while it starts stays pending until it ignores SIGINT (_process_main);
        # here it is delivered as soon as the mask is back.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self._process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        # The child opens the queue's semaphores by name and then unlinks the names
        # (see _process_main); the parent no longer promises to, so neither its exit
        # nor its resource tracker tries again.
        _forget_names(_semaphore_names(self._queue))

    async def close(self) -> None:
        """The stop marker after everything queued: the child writes it all, then ends.

        Every wait is bounded, so a dead or stuck child can never hang the shutdown
        (no thread left blocked on the queue, which ``asyncio.run`` would wait for).
        """
        await self._hand_over_all(wait=10)
        if self._process.is_alive():
            with contextlib.suppress(queue.Full):  # room appears as the child writes
                await asyncio.to_thread(self._queue.put, None, True, 10)
            await asyncio.to_thread(self._process.join, 20)  # the budget drain + join had
        if self._process.is_alive():
            self._process.terminate()
            await asyncio.to_thread(self._process.join, 5)
        self._queue.close()
        if self._process.exitcode == 0:
            self._queue.join_thread()  # it read up to the stop marker: the pipe is flushed
        else:
            self._queue.cancel_join_thread()  # nobody reads the pipe any more
        _unlink(_semaphore_names(self._queue))  # if the child died before it could


def _semaphore_names(jobs: Any) -> list[str]:
    """Names of the POSIX semaphores behind a multiprocessing queue: its locks and
    counters, and a JoinableQueue's condition (eight in all)."""
    names: list[str] = []
    for value in vars(jobs).values():
        parts = [value, *vars(value).values()] if isinstance(value, Condition) else [value]
        for part in parts:
            name = getattr(part._semlock, "name", None) if isinstance(part, SemLock) else None
            if name:
                names.append(name)
    return names


def _unlink(names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            sem_unlink(name)


def _forget_names(names: list[str]) -> None:
    """The parent's side of the hand-over: no unlink at its exit, none by its tracker.

    multiprocessing registers each named semaphore with a finalizer that unlinks it at
    exit and with the resource tracker; neither has a public way to withdraw one, so
    the finalizers are found in ``util._finalizer_registry`` (CPython 3.8-3.13).
    """
    wanted_args = {(name,) for name in names}
    registry: dict[Any, Any] = getattr(util, "_finalizer_registry", {})
    for finalizer in list(registry.values()):
        args = tuple(getattr(finalizer, "_args", None) or ())
        if getattr(finalizer, "_callback", None) is SemLock._cleanup and args[:1] in wanted_args:
            finalizer.cancel()
    for name in names:
        resource_tracker.unregister(name, "semaphore")


def _process_main(database_url: str, jobs: Any, max_batch: int, retry_seconds: float) -> None:
    """The writer process: owns the queue's semaphore names from here on.

    Unpickling ``jobs`` opened every semaphore, so their names in /dev/shm are no
    longer needed: unlinked now, they are freed with the last process that holds
    them, however both processes end (even SIGKILL to the whole group, which also
    kills the resource tracker that would otherwise clean up). Ctrl-C, and systemd's
    ``KillSignal=SIGINT``, reach the whole process group: this process ignores it and
    waits for the web process's stop marker, so what is queued is still written (or
    it sees its parent gone). SIGTERM keeps ending it: that is ``terminate()``.
    """
    _unlink(_semaphore_names(jobs))
    with contextlib.suppress(OSError):
        os.nice(WRITER_NICENESS)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked since start()
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
            batch: list[VisitEvent] = list(first)  # a chunk (HistoryWriter.put)
            taken = 1
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
                batch.extend(item)
                taken += 1
            while True:
                try:
                    async with sessions() as session, session.begin():
                        await record_visit_events(session, batch)
                    break
                except Exception:
                    log.warning("call tracking: %d visit records not written yet; retrying",
                                len(batch), exc_info=True)
                    await asyncio.sleep(retry_seconds)
            for _ in range(taken):
                jobs.task_done()
            if stop:
                return
    finally:
        await engine.dispose()
