"""A supervised AMI session over panoramisk.

panoramisk 1.4 connects, logs in and matches action responses, but it never
checks its Ping replies, reconnects every 2 s without backoff, silently stays
unauthenticated on a refused login, re-sends unanswered actions after a
reconnect (an ``Originate`` could ring twice) and loses messages Asterisk ends
with ``\\r\\n\\n``. :class:`AmiSession` keeps panoramisk's action machinery and
replaces the rest: framing by :mod:`pbx_bridge.frames`, a Ping watchdog,
exponential backoff with clear log lines, no blind re-sends, a timeout on every
action, and flow control (reading pauses while the consumer is behind).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from crm_core.clock import utcnow

from .ami_values import check_action
from .frames import Frame, FrameParser, ReceiptStamper

log = logging.getLogger(__name__)


class AmiError(Exception):
    """An AMI action failed or could not be sent."""


class AmiLoginError(AmiError):
    """Asterisk refused the login (wrong user, secret or permitted network)."""


@dataclass(frozen=True, slots=True)
class AmiSettings:
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "telecrm"
    secret: str = ""
    connect_timeout: float = 5.0
    action_timeout: float = 10.0
    ping_interval: float = 10.0
    ping_timeout: float = 5.0
    backoff_initial: float = 1.0
    backoff_max: float = 30.0


class _Protocol(AMIProtocol):
    """panoramisk's protocol with robust framing and raw-byte capture."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.parser = FrameParser()
        self.stamper = ReceiptStamper()
        self.session: AmiSession | None = None

    def data_received(self, data: bytes) -> None:
        # Events Asterisk sent without a Timestamp get the time of receipt, in the
        # bytes themselves: the capture holds exactly what the tracker was fed.
        data = self.stamper.feed(data, utcnow().timestamp())
        if not data:
            return
        session = self.session
        if session is not None and session.on_bytes is not None:
            session.on_bytes(data)
        for frame in self.parser.feed(data):
            self._dispatch_frame(frame)

    def _dispatch_frame(self, frame: Frame) -> None:
        headers: dict[str, Any] = {
            key: [value, *frame.repeated[key]] if key in frame.repeated else value
            for key, value in frame.headers.items()
        }
        message = Message(headers)
        pending = self.responses.get(message.id) if message.id else None
        if pending is not None or (frame.is_response and not frame.is_event):
            try:
                self.handle_message(message)
            except Exception:  # a response panoramisk cannot match must not kill us
                log.warning("could not match an AMI response: %r", message, exc_info=True)
            return
        if frame.is_event and self.session is not None:
            self.session.deliver(frame)


class _Manager(Manager):
    """panoramisk Manager minus its blind reconnect and re-send of actions."""

    pinger: asyncio.Handle | None  # set by panoramisk, untyped there

    def __init__(self, session: AmiSession, **config: Any) -> None:
        super().__init__(**config)
        self._session = session

    async def send_awaiting_actions(self, *_: Any) -> None:
        return None

    def ping(self) -> None:  # our watchdog pings and checks the answer
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._connected = False
        if self.pinger:
            self.pinger.cancel()
            self.pinger = None
        while self.awaiting_actions:
            action = self.awaiting_actions.popleft()
            if not action.future.done():
                action.future.set_exception(AmiError("the AMI connection was lost"))
        self._session.connection_lost(exc)


class AmiSession:
    """Keeps one AMI login alive and hands every event :class:`Frame` to ``on_event``.

    ``on_event`` is called synchronously in arrival order; it should only enqueue.
    ``on_connected`` (a coroutine function) runs after each successful login and
    is where the caller reconciles state that may have changed while away.
    """

    def __init__(
        self,
        settings: AmiSettings,
        on_event: Callable[[Frame], None],
        on_connected: Callable[[], Any] | None = None,
        on_bytes: Callable[[bytes], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_event = on_event
        self.on_connected = on_connected
        self.on_bytes = on_bytes
        self.connected = asyncio.Event()
        self.last_error: str | None = None
        self.connections = 0
        self._manager: _Manager | None = None
        self._protocol: _Protocol | None = None
        self._lost: asyncio.Event = asyncio.Event()
        self._paused = False
        self._stopping = False
        self._stop_requested = asyncio.Event()

    # -- flow control: the consumer calls these ---------------------------------

    def pause_reading(self) -> None:
        if self._protocol is not None and not self._paused:
            self._paused = True
            with contextlib.suppress(Exception):
                self._protocol.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._protocol is not None and self._paused:
            self._paused = False
            with contextlib.suppress(Exception):
                self._protocol.transport.resume_reading()

    def deliver(self, frame: Frame) -> None:
        try:
            self.on_event(frame)
        except Exception:
            log.exception("the AMI event consumer failed on %s", frame.headers.get("Event"))

    # -- actions --------------------------------------------------------------

    async def action(self, action: dict[str, Any], timeout: float | None = None) -> Any:
        """Send one action and wait for its (possibly multi-part) response."""
        if self._manager is None or not self.connected.is_set():
            raise AmiError("not connected to Asterisk AMI")
        future = self._manager.send_action(check_action(dict(action)))
        try:
            return await asyncio.wait_for(future, timeout or self.settings.action_timeout)
        except TimeoutError as exc:
            raise AmiError(f"AMI action {action.get('Action')} got no answer in time") from exc

    def send_untracked(self, action: dict[str, Any]) -> None:
        """Send an action whose response events flow to ``on_event`` in stream order.

        Used for ``CoreShowChannels``: its ``CoreShowChannel`` events must reach the
        tracker in order with every other event (and be captured like them), which
        panoramisk's response matching would prevent.
        """
        if self._protocol is None:
            raise AmiError("not connected to Asterisk AMI")
        lines = [f"{key}: {value}" for key, value in check_action(action).items()]
        self._protocol.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    # -- lifecycle --------------------------------------------------------------

    async def run(self) -> None:
        """Connect, log in, watch, reconnect with backoff; until :meth:`stop`."""
        delay = self.settings.backoff_initial
        where = f"{self.settings.host}:{self.settings.port}"
        while not self._stopping:
            try:
                await self._open()
            except AmiLoginError as exc:
                self.last_error = f"AMI login as {self.settings.username!r} refused: {exc}"
            except (OSError, TimeoutError, AmiError) as exc:
                reason = exc or type(exc).__name__
                self.last_error = f"cannot reach Asterisk AMI at {where}: {reason}"
            else:
                delay = self.settings.backoff_initial
                self.last_error = None
                await self._watch()
                if self._stopping:
                    break
                self.last_error = f"AMI connection to {where} lost"
            self._close()
            wait = min(delay, self.settings.backoff_max) * random.uniform(0.8, 1.2)
            log.warning("%s; retrying in %.0f s", self.last_error, wait)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_requested.wait(), wait)
            delay = min(delay * 2, self.settings.backoff_max)
        self._close()

    async def stop(self) -> None:
        self._stopping = True
        self._stop_requested.set()
        self._lost.set()
        if self._manager is not None and self.connected.is_set():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._manager.send_action({"Action": "Logoff"}), 1)
        self._close()

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        s = self.settings
        self._lost = asyncio.Event()
        transport, protocol = await asyncio.wait_for(
            loop.create_connection(_Protocol, s.host, s.port), s.connect_timeout)
        protocol.session = self
        manager = _Manager(self, loop=loop, host=s.host, port=s.port, username=s.username,
                           secret=s.secret, ping_delay=10**9, reconnect_timeout=10**9)
        done: asyncio.Future[tuple[Any, Any]] = loop.create_future()
        done.set_result((transport, protocol))
        manager.connection_made(done)  # wires the protocol and sends Login
        self._manager, self._protocol = manager, protocol
        login = manager.authenticated_future
        response = await asyncio.wait_for(asyncio.shield(login), s.connect_timeout)
        if not response.success:
            raise AmiLoginError(response.message or "authentication failed")
        self.connections += 1
        self.connected.set()
        log.info("connected to Asterisk AMI at %s:%s as %s", s.host, s.port, s.username)
        if self.on_connected is not None:
            await self.on_connected()

    async def _watch(self) -> None:
        """Ping with a deadline: a half-open TCP connection is noticed and dropped."""
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self.settings.ping_interval)
            if self._lost.is_set():
                return
            try:
                await self.action({"Action": "Ping"}, timeout=self.settings.ping_timeout)
            except AmiError:
                log.warning("AMI did not answer a Ping within %.0f s; reconnecting",
                            self.settings.ping_timeout)
                return

    def connection_lost(self, exc: Exception | None) -> None:
        self.connected.clear()
        self._lost.set()

    @property
    def asterisk_stamps(self) -> bool:
        """Whether this connection's events carry Asterisk's own ``Timestamp``
        (``timestampevents = yes``) rather than our stamp of their receipt."""
        protocol = self._protocol
        return protocol is not None and protocol.stamper.asterisk_stamps

    def _close(self) -> None:
        self.connected.clear()
        self._paused = False
        if self._manager is not None:
            with contextlib.suppress(Exception):
                self._manager.close()
            # Actions still waiting for an answer fail now instead of being re-sent later.
            self._manager.connection_lost(None)
        self._manager = None
        self._protocol = None
