"""Work that ``serve`` does in rounds while it runs (missed-call notices, speech alerts):
one loop that survives a failed round, wired as one ``cleanup_ctx``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from crm_core.stopping import stop_tasks

log = logging.getLogger(__name__)

Round = Callable[[web.Application], Awaitable[object]]
CleanupCtx = Callable[[web.Application], AsyncIterator[None]]


async def run_rounds(app: web.Application, round_: Round, every: float, what: str) -> None:
    """``round_(app)`` every ``every`` seconds; a failed round (a database hiccup) is
    logged and the next one comes as planned."""
    while True:
        try:
            await round_(app)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("%s: this round failed", what, exc_info=True)
        await asyncio.sleep(every)


def rounds_ctx(name: str, round_: Round, every: float, what: str) -> CleanupCtx:
    """A ``cleanup_ctx`` running :func:`run_rounds` as the task ``name`` while the app runs."""
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(run_rounds(app, round_, every, what), name=name)
        yield
        await stop_tasks(task)
    ctx.__name__ = ctx.__qualname__ = name.replace("-", "_") + "_ctx"
    return ctx
