"""Click-to-call rings the manager's own device, in the dial context of the PBX."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pbx_bridge.actions import ClickToCallError, click_to_call_action
from pbx_bridge.ami import AmiError
from telecrm.web.clicktocall import TELEPHONY_LOST, Attempt, ClickToCall


def test_the_first_device_rings_else_the_extension() -> None:
    action = click_to_call_action("101", "+79161234567", device="PJSIP/ivanov",
                                  context="from-internal")
    assert (action["Channel"], action["Context"]) == ("PJSIP/ivanov", "from-internal")
    plain = click_to_call_action("101", "+79161234567")
    assert (plain["Channel"], plain["Context"]) == ("PJSIP/101", "from-managers")


@pytest.mark.parametrize(("device", "context"), [
    ("Local/101@from-internal", "from-internal"),
    ("PJSIP/ivanov\r\nAction: Hangup", "from-internal"),
    ("ivanov", "from-internal"),
    ("PJSIP/ivanov", "from-internal\r\nX: y"),
    ("PJSIP/ivanov", "from internal"),
])
def test_devices_and_contexts_are_validated(device: str, context: str) -> None:
    with pytest.raises(ValueError):
        click_to_call_action("101", "+79161234567", device=device, context=context)


class _Ami:
    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self.connected.set()
        self.actions: list[dict[str, Any]] = []

    async def action(self, action: dict[str, Any], timeout: float | None = None) -> Any:
        self.actions.append(action)
        return [{"Response": "Success"}, {"Event": "OriginateResponse", "Response": "Success"}]


async def test_the_service_asks_whose_device_it_is() -> None:
    ami = _Ami()
    devices = {"101": "SIP/150010001"}

    async def device_of(extension: str) -> str | None:
        return devices.get(extension)

    service = ClickToCall(lambda *_: ami, device_of=device_of, context="from-internal")
    await service.place("101", "+79161234567", None)
    await service.place("102", "+79161234567", None)
    await service.close()
    assert [(a["Channel"], a["Context"]) for a in ami.actions] == [
        ("SIP/150010001", "from-internal"), ("PJSIP/102", "from-internal")]


class _FailingAmi(_Ami):
    """A stand-in session whose originate fails after ``delay`` with ``error``: the phone
    ringing out, or the AMI connection dropping mid-attempt (a fault not caused on cue)."""

    def __init__(self, error: Exception, delay: float) -> None:
        super().__init__()
        self.error, self.delay = error, delay

    async def action(self, action: dict[str, Any], timeout: float | None = None) -> Any:
        await asyncio.sleep(self.delay)
        raise self.error


async def test_a_failure_after_the_quick_wait_is_told_with_what_failed() -> None:
    told: list[tuple[str, str, str]] = []

    async def tell(attempt: Attempt, kind: str) -> None:
        told.append((attempt.extension, attempt.number, kind))

    for error in (ClickToCallError("the phone did not answer", "no_answer"),
                  AmiError("connection lost")):
        ami = _FailingAmi(error, delay=0.1)
        service = ClickToCall(lambda *_, a=ami: a, quick_wait=0.01, on_late_failure=tell)
        before = len(told)
        attempt, repeat = await service.place("101", "+79161234567", None)
        assert not repeat and len(told) == before, "the page hears «calling» first"
        await asyncio.wait({attempt.task})
        await service.close()
    assert told == [("101", "+79161234567", "no_answer"),
                    ("101", "+79161234567", TELEPHONY_LOST)]

    # A refusal within the quick wait is the request's answer, not told again later.
    quick = ClickToCall(lambda *_: _FailingAmi(ClickToCallError("busy", "busy"), delay=0),
                        quick_wait=1.0, on_late_failure=tell)
    with pytest.raises(ClickToCallError):
        await quick.place("101", "+79161234567", None)
    await quick.close()
    assert len(told) == 2
