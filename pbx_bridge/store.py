"""The sink that writes tracker facts into the CRM database."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.calls import CallData, record_call

from .tracker import Fact

log = logging.getLogger(__name__)


class CallStore:
    """Persists the newest snapshot of every call a batch of facts touches.

    Every fact carries the call's full state, so within a batch only the last
    snapshot per ``linkedid`` needs writing, and writing it again is harmless
    (``record_call`` is idempotent).
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """``sessions`` should be a writer factory (``session_factory(engine, writer=True)``)."""
        self.sessions = sessions
        self.calls_written = 0

    async def __call__(self, facts: list[Fact]) -> None:
        latest: dict[str, CallData] = {}
        for fact in facts:
            latest[fact.call.linkedid] = fact.call
        async with self.sessions() as session, session.begin():
            for call in latest.values():
                try:
                    async with session.begin_nested():
                        await record_call(session, call)
                except ValueError:
                    # A snapshot the model rejects must not cost the rest of the batch.
                    log.exception("call %s could not be recorded", call.linkedid)
                    continue
                self.calls_written += 1
