"""What features do when a call is written, wired by the composition root.

The call writer is core: it knows nothing of tasks, call tracking or client
statuses. A feature that reacts to a stored call (a callback task after a missed
call, the advertising source of an inbound one) hands a hook to ``CallHooks``, and
a feature that adds a field to the call JSON hands a describer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from crm_core.calls.models import Call


@dataclass(frozen=True)
class WrittenCall:
    """A call row just written, with what the snapshot knew beyond the row."""

    call: Call
    rang: tuple[str, ...] = ()  # extensions whose phones rang


CallsWritten = Callable[["AsyncSession", Sequence[WrittenCall]], Awaitable[None]]
CallDescriber = Callable[["Call"], dict[str, Any]]


@dataclass(frozen=True)
class CallHooks:
    """Reactions to written calls (run in order, inside the writer's transaction) and
    describers of the call JSON (each adds its keys to ``call_to_dict``)."""

    written: tuple[CallsWritten, ...] = ()
    describers: tuple[CallDescriber, ...] = ()

    async def calls_written(self, session: AsyncSession, calls: Sequence[WrittenCall]) -> None:
        for hook in self.written:
            await hook(session, calls)

    def describe(self, call: Call) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        for describer in self.describers:
            extra.update(describer(call))
        return extra


NO_HOOKS = CallHooks()
