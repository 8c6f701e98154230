"""Click-to-call requests: one originate per manager at a time, never a duplicate.

The originate returns only when the manager picks up his phone, so the HTTP
request does not wait for it: it waits a moment for a quick refusal (AMI down,
Asterisk says no), then answers 202 while the attempt goes on; a refusal that comes
later (the phone rang out, the manager rejected it) goes to ``on_late_failure``, which
tells his browser (the web answer is long gone). A repeated
request (a double click, a client retrying after a timeout) for the same number
while the attempt runs, or shortly after, gets the same attempt back instead
of ringing the phone again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from crm_core.stopping import stop_tasks
from pbx_bridge.actions import (
    CLICK_TO_CALL_CONTEXT,
    ClickToCallError,
    new_action_id,
    originate_click_to_call,
)
from pbx_bridge.ami import AmiError, AmiSession

log = logging.getLogger(__name__)

TELEPHONY_LOST = "telephony"  # a late failure that is the PBX connection's, not the phone's


@dataclass
class Attempt:
    action_id: str
    extension: str
    number: str
    task: asyncio.Task[str]
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    error: str | None = None


class ClickToCallBusy(Exception):
    """The manager's phone is already being rung for another number."""

    def __init__(self, attempt: Attempt) -> None:
        super().__init__("a call is already being placed from this phone")
        self.attempt = attempt


class ClickToCall:
    """Placing calls from managers' phones, deduplicated per extension."""

    async def session_for(self, extension: str) -> AmiSession | None:
        """The AMI session of the PBX ``extension`` is on (the default one when unknown)."""
        pbx = await self.pbx_of(extension) if self.pbx_of is not None else None
        session = self.ami(pbx) if pbx is not None else None
        if session is None:
            session = self.ami()
        refresh = getattr(session, "refresh", None)  # a web process's view of the listener
        if refresh is not None and not session.connected.is_set():
            await refresh()  # a takeover within the last second: ask now, not a second ago
        return session

    def __init__(self, ami: Callable[..., AmiSession | None], *, ring_timeout: float = 30.0,
                 quick_wait: float = 1.5, repeat_window: float = 5.0,
                 pbx_of: Callable[[str], Awaitable[str | None]] | None = None,
                 device_of: Callable[[str], Awaitable[str | None]] | None = None,
                 context: str = CLICK_TO_CALL_CONTEXT,
                 on_late_failure: Callable[[Attempt, str], Awaitable[None]] | None = None
                 ) -> None:
        """``ami()`` is where the AMI session is now (the listener reconnects it), and
        ``ami(pbx)`` that of a named PBX; ``pbx_of(extension)`` names the PBX a phone is
        on (None: the default one); ``device_of(extension)`` the manager's first device
        (None: ``PJSIP/<extension>``); ``context`` where the PBX dials the number;
        ``on_late_failure(attempt, kind)`` hears of an attempt that failed after
        :meth:`place` had returned (``kind`` as :class:`ClickToCallError`'s, or
        :data:`TELEPHONY_LOST` when the AMI connection failed meanwhile)."""
        self.ami = ami
        self.pbx_of = pbx_of
        self.device_of = device_of
        self.context = context
        self.ring_timeout = ring_timeout
        self.quick_wait = quick_wait
        self.repeat_window = repeat_window
        self._attempts: dict[str, Attempt] = {}
        self.on_late_failure = on_late_failure
        self._notices: set[asyncio.Task[None]] = set()

    async def place(self, extension: str, number: str, caller_name: str | None
                    ) -> tuple[Attempt, bool]:
        """Start (or find) the attempt; returns it and whether it is a repeat.

        Raises :class:`AmiError` when AMI is unreachable or refuses at once,
        :class:`ClickToCallBusy` when another number is being called from the phone.
        """
        # Asked first: no await may come between the duplicate check and the new attempt.
        session = await self.session_for(extension)
        device = await self.device_of(extension) if self.device_of is not None else None
        current = self._attempts.get(extension)
        if current is not None:
            running = not current.task.done()
            recent = (current.finished is not None
                      and time.monotonic() - current.finished < self.repeat_window)
            if (running or recent) and current.number == number and current.error is None:
                return current, True
            if running:
                raise ClickToCallBusy(current)
        if session is None or not session.connected.is_set():
            raise AmiError("not connected to Asterisk AMI")
        action_id = new_action_id()
        task = asyncio.create_task(
            originate_click_to_call(session, extension, number, caller_name=caller_name,
                                    ring_timeout=self.ring_timeout, action_id=action_id,
                                    device=device, context=self.context),
            name=f"click-to-call:{extension}")
        attempt = Attempt(action_id, extension, number, task)
        self._attempts[extension] = attempt
        task.add_done_callback(lambda t, a=attempt: self._finished(a, t))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), self.quick_wait)
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
        if not task.done():
            task.add_done_callback(lambda t, a=attempt: self._failed_late(a, t))
        return attempt, False

    def _failed_late(self, attempt: Attempt, task: asyncio.Task[str]) -> None:
        if self.on_late_failure is None or task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        kind = error.kind if isinstance(error, ClickToCallError) else TELEPHONY_LOST
        notice = asyncio.ensure_future(self._tell(attempt, kind))
        self._notices.add(notice)
        notice.add_done_callback(self._notices.discard)

    async def _tell(self, attempt: Attempt, kind: str) -> None:
        assert self.on_late_failure is not None
        try:
            await self.on_late_failure(attempt, kind)
        except Exception:  # the notice is a courtesy: the attempt is logged either way
            log.warning("click-to-call from %s: could not tell the manager it failed",
                        attempt.extension, exc_info=True)

    def _finished(self, attempt: Attempt, task: asyncio.Task[str]) -> None:
        attempt.finished = time.monotonic()
        if task.cancelled():
            attempt.error = "cancelled"
        elif task.exception() is not None:
            attempt.error = str(task.exception())
            log.info("click-to-call from %s to %s failed: %s", attempt.extension,
                     attempt.number, attempt.error)

    async def close(self) -> None:
        """Stop waiting for answers (the calls themselves go on in Asterisk)."""
        await stop_tasks(*(attempt.task for attempt in self._attempts.values()))
        self._attempts.clear()
        for notice in list(self._notices):
            with contextlib.suppress(BaseException):
                await notice
