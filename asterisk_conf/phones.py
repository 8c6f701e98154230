"""The sandbox's "IP phones" and "carrier": a second Asterisk driven over AMI.

A second Asterisk instance speaks real SIP to the PBX, so the PBX under test runs
exactly its production dialplan; this module renders that instance's config and
drives it (answer / ring / busy behaviours, calls from clients and managers).
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from panoramisk import Manager

from asterisk_conf.render import render_template, template_text

__all__ = ["MODES", "AmiLogin", "Phones", "channel_count", "open_ami", "render_phones_config"]

MODES = ("answer", "ring", "busy", "congestion")
PHONES_FILES = ("manager.conf", "pjsip.conf", "extensions.conf", "rtp.conf")

# Talk never lasts longer than this (seconds), so a forgotten call cannot hang a run.
MAX_TALK = 3600
_CLIENT_PROMPT = "hello-world"  # what clients "say"
_PHONE_PROMPT = "demo-congrats"  # what the phones say


def render_phones_config(
    *,
    sip_port: int,
    pbx_sip_port: int,
    ami_port: int,
    ami_user: str,
    ami_secret: str,
    phones: Iterable[tuple[str, str]],
    rtp_start: int,
    rtp_end: int,
    common: dict[str, str],
) -> dict[str, str]:
    """Return the phones instance's config files.

    ``common`` holds files shared with the PBX (modules.conf, logger.conf) so both
    instances load the same module set.
    """
    fragment = template_text("phones", "_phone.conf")
    sections = "\n".join(
        render_template(fragment, {"ext": ext, "secret": secret}) for ext, secret in phones
    )
    values = {
        "sip_port": sip_port,
        "pbx_sip_port": pbx_sip_port,
        "ami_port": ami_port,
        "ami_user": ami_user,
        "ami_secret": ami_secret,
        "phone_sections": sections,
        "rtp_start": rtp_start,
        "rtp_end": rtp_end,
    }
    files = {name: render_template(template_text("phones", name), values) for name in PHONES_FILES}
    return {**common, **files}


class _OneShotManager(Manager):
    """A panoramisk Manager that reports failures instead of retrying forever.

    Test drivers want a dead Asterisk or a refused login to be an error, not a
    background loop of reconnection attempts that outlives the sandbox.
    """

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self.login_result: asyncio.Future[Any] = self.loop.create_future()

    def connection_made(self, f: asyncio.Future) -> None:
        if f.cancelled() or f.exception() is not None:
            self.login_result.cancel()  # open_ami reports connect()'s own error
            return
        super().connection_made(f)

    def login(self, future: asyncio.Future) -> bool:
        ok = super().login(future)
        if not self.login_result.done():
            self.login_result.set_result(future.result())
        return ok

    def connection_lost(self, exc: object) -> None:
        self._connected = False
        if self.pinger:
            self.pinger.cancel()
            self.pinger = None


async def open_ami(
    host: str, port: int, username: str, secret: str, *, timeout: float = 10.0, **config: Any
) -> Manager:
    """Connect and log in to AMI; raise on refusal rather than retry in the background."""
    manager = _OneShotManager(
        host=host, port=port, username=username, secret=secret,
        loop=asyncio.get_running_loop(), **config,
    )
    async with asyncio.timeout(timeout):
        try:
            await manager.connect()
        except OSError as exc:
            raise ConnectionError(f"cannot reach AMI at {host}:{port}: {exc}") from exc
        response = await manager.login_result
    if not response.success:
        manager.close()
        raise ConnectionError(f"AMI login as {username} refused: {response.message}")
    return manager


class AmiLogin(NamedTuple):
    """Where an instance's AMI listens and who logs in."""

    host: str
    port: int
    username: str
    secret: str


async def channel_count(manager: Manager) -> int:
    """How many channels the instance holds now, as ``CoreShowChannels`` lists them.

    Asked over an open AMI session: polling with ``asterisk -rx`` would start a process
    (through ``chroot``) every time, thousands of times in a test run.
    """
    answer = await manager.send_action({"Action": "CoreShowChannels"})
    if not isinstance(answer, list):
        raise RuntimeError(f"AMI CoreShowChannels failed: {answer.get('Message', answer)}")
    return sum(1 for message in answer if message.get("Event") == "CoreShowChannel")


def _digits(number: str) -> str:
    """The dialable form of a number typed by a human: digits and a leading "+".

    Feature codes (``*8``, ``**101``) pass through as they are.
    """
    if re.fullmatch(r"[*#][0-9*#]+", number):
        return number
    cleaned = re.sub(r"[^0-9+]", "", number)
    plus = cleaned.startswith("+")
    digits = cleaned.replace("+", "")
    if not digits:
        raise ValueError(f"{number!r} holds no digits")
    return ("+" if plus else "") + digits


def _sound(name: str) -> str:
    """A sound name or absolute path safe to pass into the dialplan (no separators of it)."""
    if not re.fullmatch(r"[A-Za-z0-9_./-]+", name) or ".." in name.split("/"):
        raise ValueError(f"{name!r} is not a plain sound name or path")
    return name


class Phones:
    """Async driver of the phones instance: behaviours of targets, calls to the PBX.

    A "target" is what the PBX calls: an extension ("101") or a client's number as
    the PBX dials it through the carrier ("79161234567").
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        also_idle: Sequence[AmiLogin] = (),
        action_timeout: float = 10.0,
    ) -> None:
        """``also_idle``: other instances (the PBX) that :meth:`wait_idle` waits for."""
        self.host, self.port, self.username, self.secret = host, port, username, secret
        self.action_timeout = action_timeout
        self._also_idle = list(also_idle)
        self._manager: Manager | None = None
        self._watchers: list[Manager] = []  # AMI sessions to ``also_idle``, without events
        self._targets: set[str] = set()
        # Originates placed but not yet answered or failed, by ActionID: until its
        # OriginateResponse, a call may have no channel yet, so "idle" means nothing.
        self._originating: dict[str, asyncio.Future[None]] = {}
        self._originate_ids = itertools.count(1)

    async def __aenter__(self) -> Phones:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Log in to the phones instance's AMI."""
        if self._manager is None:
            self._manager = await open_ami(
                self.host, self.port, self.username, self.secret, timeout=self.action_timeout
            )
            self._manager.register_event("OriginateResponse", self._originated)

    def _originated(self, _manager: Manager, event: Any) -> None:
        future = self._originating.pop(str(event.get("ActionID", "")), None)
        if future is not None and not future.done():
            future.set_result(None)

    async def close(self) -> None:
        """Log out; safe to call twice."""
        if self._manager is not None:
            self._manager.close()
            self._manager = None
        for watcher in self._watchers:
            watcher.close()
        self._watchers.clear()
        for future in self._originating.values():
            future.cancel()
        self._originating.clear()

    async def _action(self, action: dict[str, Any]) -> Any:
        if self._manager is None:
            raise RuntimeError("Phones is not connected: use 'async with' or await connect()")
        # as_list=False: an async Originate must return at "queued", not at answer.
        future = self._manager.send_action(action, as_list=False)
        async with asyncio.timeout(self.action_timeout):
            response = await future
        if not response.success:
            raise RuntimeError(f"AMI {action['Action']} failed: {response.message}")
        return response

    async def _setvar(self, name: str, value: str) -> None:
        await self._action({"Action": "Setvar", "Variable": name, "Value": value})

    async def set_behaviour(
        self, target: str, mode: str = "answer", answer_after: float = 1, talk: float | None = None,
        *, prompt: str | None = None, record: str | None = None,
    ) -> None:
        """Decide what ``target`` does when the PBX calls it (until changed again).

        ``prompt``: what it plays while talking (a sound name, or a path as the
        phones instance sees it, without extension); default demo-congrats.
        ``record``: a path (as the phones instance sees it, without extension)
        where what ``target`` hears is recorded as ``<record>.wav``, so a test can
        prove audio reached it.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if answer_after < 0 or (talk is not None and talk <= 0):
            raise ValueError("answer_after must be >= 0 and talk > 0")
        key = _digits(target).lstrip("+")
        self._targets.add(key)
        await self._setvar(f"MODE_{key}", mode)
        await self._setvar(f"ANSWER_AFTER_{key}", f"{answer_after:g}")
        await self._setvar(f"TALK_{key}", "" if talk is None else f"{min(talk, MAX_TALK):g}")
        await self._setvar(f"PROMPT_{key}", _sound(prompt) if prompt else "")
        await self._setvar(f"RECORD_{key}", _sound(record) if record else "")

    async def reset_behaviours(self) -> None:
        """Every target set so far answers after 1 s again and talks until hung up."""
        for key in sorted(self._targets):
            for prefix in ("MODE_", "ANSWER_AFTER_", "TALK_", "PROMPT_", "RECORD_"):
                await self._setvar(prefix + key, "")

    async def _originate(self, channel: str, caller_id: str, talk: float, ring_timeout: float,
                         prompt: str) -> None:
        if talk <= 0 or ring_timeout <= 0:
            raise ValueError("talk and ring_timeout must be positive")
        action_id = f"phones-originate-{next(self._originate_ids)}"
        self._originating[action_id] = asyncio.get_running_loop().create_future()
        try:
            await self._action(self._originate_action(
                action_id, channel, caller_id, talk, ring_timeout, prompt))
        except BaseException:
            self._originating.pop(action_id, None)
            raise

    @staticmethod
    def _originate_action(action_id: str, channel: str, caller_id: str, talk: float,
                          ring_timeout: float, prompt: str) -> dict[str, Any]:
        return {
            "Action": "Originate",
            "ActionID": action_id,
            "Channel": channel,
            "Context": "phones-originated",
            "Exten": "s",
            "Priority": "1",
            "CallerID": caller_id,
            "Timeout": str(int(ring_timeout * 1000)),
            "Variable": [f"TALK={min(talk, MAX_TALK):g}", f"PROMPT={prompt}"],
            "Async": "true",
        }

    async def client_calls(
        self, client_number: str, did: str, talk: float, ring_timeout: float = 30,
        *, prompt: str = _CLIENT_PROMPT,
    ) -> None:
        """A client calls the DID through the carrier; returns once the call is placed.

        The client hangs up ``talk`` seconds after the PBX answers, or gives up
        after ``ring_timeout`` seconds of ringing (a missed call). ``prompt`` is
        what the client says (as for :meth:`set_behaviour`).
        """
        # A withheld caller ID reaches the PBX as the carrier sends it: "anonymous".
        number = client_number if client_number == "anonymous" else _digits(client_number)
        await self._originate(f"PJSIP/{_digits(did)}@carrier", f'"{number}" <{number}>',
                              talk, ring_timeout, _sound(prompt))

    async def manager_calls(
        self, extension: str, number: str, talk: float, ring_timeout: float = 30,
        *, prompt: str = _PHONE_PROMPT,
    ) -> None:
        """The manager's phone dials ``number`` (a client's number or an extension).

        The phone authenticates to the PBX as the extension, so the PBX runs the
        call exactly like one placed by a real phone; it hangs up ``talk`` seconds
        after the far end answers.
        """
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", extension):
            raise ValueError(f"phone {extension!r} must be an extension or a device name")
        await self._originate(f"PJSIP/{_digits(number)}@phone{extension}",
                              f'"Phone {extension}" <{extension}>', talk, ring_timeout,
                              _sound(prompt))

    async def channel_of(self, target: str) -> str:
        """Name of ``target``'s newest channel on the phones instance ("" if none yet).

        ``target`` is an extension or a client's number, as for :meth:`set_behaviour`;
        calls it places are found by its caller ID.
        """
        key = _digits(target).lstrip("+")
        response = await self._action({"Action": "Getvar", "Variable": f"CHAN_{key}"})
        return str(response.get("Value") or "")

    async def press(self, target: str, keys: str, gap: float = 0.25) -> None:
        """``target`` presses phone keys (RFC 4733 DTMF to the PBX), e.g. ``*0``."""
        channel = await self.channel_of(target)
        if not channel:
            raise RuntimeError(f"{target} has no call to press keys on")
        for key in keys:
            await self._action({"Action": "PlayDTMF", "Channel": channel, "Digit": key,
                                "Duration": "120"})
            await asyncio.sleep(gap)

    async def hang_up(self, target: str) -> None:
        """``target`` puts the handset down (its newest call ends from its side)."""
        channel = await self.channel_of(target)
        if not channel:
            raise RuntimeError(f"{target} has no call to hang up")
        await self._action({"Action": "Hangup", "Channel": channel})

    async def wait_idle(self, timeout: float = 60) -> None:
        """Wait until every call placed has started or failed, and then until neither
        the phones instance nor the PBX has a channel left."""
        async with asyncio.timeout(timeout):
            if self._originating:
                await asyncio.gather(*self._originating.values())
            if self._manager is None:
                raise RuntimeError("Phones is not connected: use 'async with' or await connect()")
            for login in self._also_idle[len(self._watchers):]:  # opened on first use
                self._watchers.append(await open_ami(
                    *login, timeout=self.action_timeout, events="off"))
            instances = [self._manager, *self._watchers]
            while True:
                counts = [await channel_count(manager) for manager in instances]
                if not any(counts):
                    return
                await asyncio.sleep(0.1)
