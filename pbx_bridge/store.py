"""The sink that writes tracker facts into the CRM database."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.audit import write_audit
from crm_core.calls import CallData, record_call
from crm_core.models import Call
from crm_core.tasks import apply_call_rules

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
                except (ValueError, TypeError, DBAPIError) as exc:
                    if isinstance(exc, OperationalError | InterfaceError) or getattr(
                            exc, "connection_invalidated", False):
                        raise  # the database is away: the whole batch is retried
                    # A snapshot the database rejects must not stall every later call.
                    log.exception("call %s could not be recorded", call.linkedid)
                    continue
                self.calls_written += 1

    async def close_orphans(self, live_linkedids: set[str], at: float) -> int:
        """End calls a previous run of the CRM left in progress that Asterisk no longer has.

        They ended while nobody listened, at an unknown moment before ``at``. Their
        end is set to ``at`` and their talk time is left as last recorded (talk that
        nobody observed is never invented); an audit row says what happened.
        """
        ended_at = datetime.fromtimestamp(at, UTC)
        closed = 0
        async with self.sessions() as session, session.begin():
            rows = await session.scalars(select(Call).where(Call.status == "in_progress"))
            for call in rows:
                if call.linkedid in live_linkedids:
                    continue
                if call.answered_at is not None:
                    status = "answered"
                else:
                    status = "missed" if call.direction == "inbound" else "no_answer"
                call.status, call.ended_at = status, max(ended_at, call.started_at)
                await apply_call_rules(session, call)
                write_audit(session, actor="ami-listener", entity="call", entity_id=call.id,
                            action="ended_unobserved",
                            changes={"status": ["in_progress", status],
                                     "ended_at": [None, call.ended_at.isoformat()]})
                closed += 1
        if closed:
            log.warning("%d calls had ended while the CRM was not listening; closed them", closed)
        return closed
