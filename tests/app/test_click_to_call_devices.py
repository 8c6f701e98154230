"""Click-to-call rings the manager's own device, in the dial context of the PBX."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pbx_bridge.actions import click_to_call_action
from telecrm.web.clicktocall import ClickToCall


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
