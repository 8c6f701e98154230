"""The finalize worker: an in-process queue fed by a scan of ended calls (run by ``telecrm serve``).

The scan is the hook: every few seconds, ended calls with recordings get a job and
due jobs are run, at most ``workers`` conversions at a time (one per core).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.calls.models import Call
from crm_core.recordings import jobs
from crm_core.timestamps import utcnow

from .config import RecordingsConfig
from .finalize import finalize_call
from .store import Store

log = logging.getLogger(__name__)


class FinalizeWorker:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], source_root: Path,
                 store: Store, cfg: RecordingsConfig, *, interval: float = 2.0,
                 pbx_roots: Mapping[str, Path] | None = None) -> None:
        """``source_root`` is where MixMonitor writes; ``pbx_roots`` where each PBX's does,
        for a company with several (a call of a PBX not named there uses ``source_root``)."""
        self.sessions, self.source_root, self.store, self.cfg = sessions, source_root, store, cfg
        self.pbx_roots = dict(pbx_roots or {})
        self.interval = interval
        self._running: set[int] = set()
        self._slots = asyncio.Semaphore(max(1, cfg.workers))
        self._wake = asyncio.Event()

    def poke(self) -> None:
        """A call just ended: scan now rather than at the next tick."""
        self._wake.set()

    async def run_once(self) -> dict[str, int]:
        """Create missing jobs, run every due one; returns how many ended in each status."""
        async with self.sessions() as session:
            await jobs.create_missing_jobs(session)
            due = [i for i in await jobs.due_jobs(session, utcnow()) if i not in self._running]
            pbx_of = dict((await session.execute(select(Call.id, Call.pbx).where(
                Call.id.in_(due)))).all()) if due and self.pbx_roots else {}
        outcomes: dict[str, int] = {}

        async def one(call_id: int) -> None:
            async with self._slots:
                try:
                    root = self.pbx_roots.get(pbx_of.get(call_id, ""), self.source_root)
                    status = await finalize_call(self.sessions, call_id, root,
                                                 self.store, self.cfg)
                except Exception:  # one bad call must not stop the others
                    log.exception("call %s: finalize crashed; it stays pending", call_id)
                    status = "error"
                finally:
                    self._running.discard(call_id)
            outcomes[status] = outcomes.get(status, 0) + 1

        self._running.update(due)
        await asyncio.gather(*(one(i) for i in due))
        return outcomes

    async def run(self) -> None:
        """Forever (until cancelled): the background task of ``telecrm serve``."""
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("recordings worker: scan failed; trying again")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except TimeoutError:
                pass


async def wait_until_finalized(sessions: async_sessionmaker[AsyncSession],
                               timeout: float) -> dict[str, int]:
    """Until no recorded call waits for its finalize (or ``timeout``): the demo's exit.

    Returns the calls per state (stored, failed, pending, waiting).
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with sessions() as session:
            counts = await jobs.status_counts(session)
        if not (counts.get("pending") or counts.get("waiting")):
            return counts
        if asyncio.get_running_loop().time() > deadline:
            return counts
        await asyncio.sleep(0.5)
