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
