"""The sink that writes tracker facts into the CRM database."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import PurePath

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.audit import write_audit
from crm_core.calls.hooks import NO_HOOKS, CallHooks, WrittenCall
from crm_core.calls.models import Call
from crm_core.calls.services import (
    record_call,
    record_calls,
    validate_call,
    with_relative_recordings,
)
from crm_core.calls.snapshot import DEFAULT_PBX, CallData, on_pbx, pbx_key

from .tracker import Fact

log = logging.getLogger(__name__)


def _database_away(exc: BaseException) -> bool:
    """True when ``exc`` means the connection is gone (retry later), not a bad row."""
    return isinstance(exc, OperationalError | InterfaceError) or bool(
        getattr(exc, "connection_invalidated", False))


class CallStore:
    """Persists the newest snapshot of every call a batch of facts touches.

    Every fact carries the call's full state, so within a batch only the last
    snapshot per ``linkedid`` needs writing, and writing it again is harmless
    (``record_call`` is idempotent). A batch is written with ``record_calls`` (a few
    queries for the whole batch instead of a dozen per call); only if the database
    rejects it is it rewritten call by call, so one bad snapshot costs only itself.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession],
                 hooks: CallHooks = NO_HOOKS, recordings_root: PurePath | None = None,
                 pbx: str = DEFAULT_PBX) -> None:
        """``sessions`` should be a writer factory (``session_factory(engine, writer=True)``);
        ``hooks`` are the features' reactions to each written call (the composition root's);
        ``recordings_root`` is where MixMonitor writes (``TELECRM_RECORDINGS_SOURCE``): the
        absolute file names Asterisk announces are stored relative to it (each PBX has its
        own); ``pbx`` labels the calls (``crm_core.calls.snapshot.on_pbx``) and limits
        ``close_orphans`` to that PBX's calls."""
        self.sessions = sessions
        self.pbx = pbx
        self.hooks = hooks
        self.recordings_root = recordings_root
        self.calls_written = 0

    async def __call__(self, facts: list[Fact]) -> None:
        latest: dict[str, CallData] = {}
        for fact in facts:
            call = on_pbx(fact.call, self.pbx)
            latest[call.linkedid] = call
        if self.recordings_root is not None:
            latest = {key: with_relative_recordings(call, self.recordings_root)
                      for key, call in latest.items()}
        valid: list[CallData] = []
        for call in latest.values():
            try:
                validate_call(call)
            except (ValueError, TypeError):
                log.exception("call %s could not be recorded", call.linkedid)
                continue
            valid.append(call)
        if not valid:
            return
        try:
            for attempt in (1, 2):
                try:
                    async with self.sessions() as session, session.begin():
                        await record_calls(session, valid, hooks=self.hooks, savepoint=False)
                    break
                except IntegrityError:
                    if attempt == 2:
                        raise  # a concurrent writer inserted these calls first: update them
            self.calls_written += len(valid)
            return
        except (ValueError, TypeError, DBAPIError) as exc:
            if _database_away(exc):
                raise  # the whole batch is retried by ``deliver``
            # One snapshot the database rejects: find it by writing one at a time.
            log.warning("bulk write of %d calls failed (%s); writing them one by one",
                        len(valid), exc)
        await self._one_by_one(valid)

    async def _one_by_one(self, calls: list[CallData]) -> None:
        """Each call in its own savepoint, so a rejected snapshot stalls no later call."""
        async with self.sessions() as session, session.begin():
            for call in calls:
                try:
                    async with session.begin_nested():
                        await record_call(session, call, hooks=self.hooks)
                except (ValueError, TypeError, DBAPIError) as exc:
                    if _database_away(exc):
                        raise  # the database is away: the whole batch is retried
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
        live = {pbx_key(self.pbx, linkedid) for linkedid in live_linkedids}
        async with self.sessions() as session, session.begin():
            rows = await session.scalars(select(Call).where(Call.status == "in_progress",
                                                            Call.pbx == self.pbx))
            for call in rows:
                if call.linkedid in live:
                    continue
                if call.answered_at is not None:
                    status = "answered"
                else:
                    status = "missed" if call.direction == "inbound" else "no_answer"
                call.status, call.ended_at = status, max(ended_at, call.started_at)
                await self.hooks.calls_written(session, [WrittenCall(call)])
                write_audit(session, actor="ami-listener", entity="call", entity_id=call.id,
                            action="ended_unobserved",
                            changes={"status": ["in_progress", status],
                                     "ended_at": [None, call.ended_at.isoformat()]})
                closed += 1
        if closed:
            log.warning("%d calls had ended while the CRM was not listening; closed them", closed)
        return closed
