"""Stopping background tasks for good, whatever they were awaiting.

A task is cancelled by one ``CancelledError`` thrown into its current ``await``. Some
libraries swallow it there (a Redis or database command in flight that turns the
cancellation into its own clean-up and returns): the task then goes on as if nothing
happened, and ``await task`` after a single ``cancel()`` waits for ever, holding a
process's stop. Every background task is therefore stopped with :func:`stop_tasks`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)

AGAIN_AFTER = 1.0  # seconds a cancelled task gets before it is cancelled once more


async def stop_tasks(*tasks: asyncio.Task[object] | asyncio.Future[object] | None) -> None:
    """Cancel ``tasks`` (``None`` ones are skipped) and return once all have ended,
    cancelling again every second those that went on. Their errors are logged, not
    raised: a task's failure must not keep the others running."""
    running = {task for task in tasks if task is not None}
    rounds = 0
    while True:
        pending = {task for task in running if not task.done()}
        if not pending:
            break
        if rounds:
            log.warning("cancelled again (it went on after a cancellation): %s",
                        ", ".join(_name(task) for task in pending))
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=AGAIN_AFTER)
        rounds += 1
    for task in running:
        with contextlib.suppress(asyncio.CancelledError):
            error = task.exception()
            if error is not None:
                log.error("%s had failed before it was stopped", _name(task),
                          exc_info=error)


def _name(task: asyncio.Future[object]) -> str:
    return task.get_name() if isinstance(task, asyncio.Task) else repr(task)
