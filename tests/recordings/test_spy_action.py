"""The ChanSpy originate the CRM sends for listen / whisper / barge (validated input only)."""

from __future__ import annotations

import pytest

from pbx_bridge.actions import spy_action


@pytest.mark.parametrize(("mode", "context"), [("listen", "crm-listen"),
                                               ("whisper", "crm-whisper"),
                                               ("barge", "crm-barge")])
def test_spy_rings_the_supervisor_into_the_mode_context(mode: str, context: str) -> None:
    action = spy_action("201", "PJSIP/101-0000002a", mode)
    assert action["Channel"] == "PJSIP/201"
    assert action["Context"] == context and action["Exten"] == "101"
    assert action["Async"] == "true"


@pytest.mark.parametrize(("ext", "channel", "mode"), [
    ("201", "PJSIP/101-1\r\nAction: Hangup", "listen"),
    ("201", "Local/101@x", "listen"),
    ("20x", "PJSIP/101-1", "listen"),
    ("201", "PJSIP/101-1", "record"),
])
def test_spy_refuses_anything_unexpected(ext: str, channel: str, mode: str) -> None:
    with pytest.raises(ValueError):
        spy_action(ext, channel, mode)


def test_a_supervisor_with_a_device_is_rung_on_it() -> None:
    action = spy_action("201", "PJSIP/101-0000002a", "listen", device="PJSIP/nachalnik")
    assert action["Channel"] == "PJSIP/nachalnik" and action["Context"] == "crm-listen"


@pytest.mark.parametrize(("channel", "mode", "options"), [
    ("PJSIP/ivanov-0000001a", "listen", "qE"),
    ("PJSIP/101-yealink-00000007", "whisper", "qwE"),
    ("SIP/150010001-000000b2", "barge", "qBE"),
])
def test_any_phone_channel_is_spied_on_by_application(channel: str, mode: str,
                                                      options: str) -> None:
    """A device that is not PJSIP/<extension> has no crm-listen extension: ChanSpy runs as
    the originate's application on exactly the manager's channel."""
    action = spy_action("201", channel, mode, device="PJSIP/150010005")
    assert action["Channel"] == "PJSIP/150010005"
    assert (action["Application"], action["Data"]) == ("ChanSpy", f"{channel},{options}")
    assert "Context" not in action and f"CRM_SPY={mode}" in action["Variable"]


def test_a_pbx_that_is_not_ours_never_gets_the_crm_contexts() -> None:
    action = spy_action("201", "PJSIP/101-0000002a", "listen", own_dialplan=False)
    assert (action["Application"], action["Data"]) == ("ChanSpy", "PJSIP/101-0000002a,qE")


@pytest.mark.parametrize(("channel", "device"), [
    ("PJSIP/ivanov-1,q\r\nAction: Hangup", None),
    ("Local/ivanov@from-internal-1;1", None),
    ("PJSIP/ivanov", None),  # an endpoint, not a channel: ChanSpy would take any of its calls
    ("PJSIP/ivanov-1", "Local/201@from-internal"),
    ("PJSIP/ivanov-1", "PJSIP/x\r\nAction: Hangup"),
])
def test_devices_and_channels_are_validated(channel: str, device: str | None) -> None:
    with pytest.raises(ValueError):
        spy_action("201", channel, "listen", device=device)
