"""The sink that writes tracker facts into the CRM database."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.calls import CallData, record_call

from .tracker import Fact


class CallStore:
    """Persists the newest snapshot of every call a batch of facts touches.

    Every fact carries the call's full state, so within a batch only the last
    snapshot per ``linkedid`` needs writing, and writing it again is harmless
    (``record_call`` is idempotent).
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.calls_written = 0

    async def __call__(self, facts: list[Fact]) -> None:
        latest: dict[str, CallData] = {}
        for fact in facts:
            latest[fact.call.linkedid] = fact.call
        async with self.sessions() as session, session.begin():
            for call in latest.values():
                await record_call(session, call)
        self.calls_written += len(latest)
