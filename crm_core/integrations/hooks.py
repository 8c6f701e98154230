"""``call.ended`` as a call hook: every call the writer stores as ended is queued once
(per endpoint) with its call JSON. Wired by the composition root (``telecrm.wiring``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.hooks import CallDescriber, CallHooks, CallsWritten, WrittenCall
from crm_core.calls.models import CallStatus
from crm_core.calls.services import call_to_dict
from crm_core.integrations.outbox import queue_events
from crm_core.integrations.webhooks import listening

CALL_ENDED = "call.ended"


def call_ended_events(describers: Sequence[CallDescriber] = ()) -> CallsWritten:
    """The hook; ``describers`` add the features' fields (``tracking``) to the call JSON,
    as for ``calls export``. It should run last, after the hooks that fill those fields."""
    shape = CallHooks(describers=tuple(describers))

    async def queue(session: AsyncSession, written: Sequence[WrittenCall]) -> None:
        ended = [item.call for item in written if item.call.status != CallStatus.IN_PROGRESS]
        endpoints = await listening(session, CALL_ENDED) if ended else []
        if not endpoints:
            return
        for call in ended:
            # The writer loads these; a call closed by other paths may not have them yet.
            missing = [name for name in ("client", "legs", "recordings")
                       if name in inspect(call).unloaded]
            if missing:
                await session.refresh(call, missing)
        await queue_events(session, CALL_ENDED,
                           [(call_to_dict(call, shape), str(call.id)) for call in ended],
                           endpoints=endpoints)

    return queue
