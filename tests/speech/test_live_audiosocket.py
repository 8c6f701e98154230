"""The AudioSocket parser (sans-IO) on good and hostile input, the tap's Originate, and the
tracker ignoring the tap's Local channels."""

from __future__ import annotations

import random

import pytest

from pbx_bridge.actions import live_tap_action
from pbx_bridge.audiosocket import (
    Audio,
    AudioSocketParser,
    Bad,
    Dtmf,
    Hangup,
    PeerError,
    StreamId,
    encode,
    encode_id,
)
from pbx_bridge.tracker import CallTracker, is_live_tap

SID = "1c5905ee-85e7-47d2-be5d-657eabde8432"  # fixed: xdist workers must collect alike


def test_a_whole_stream_in_any_chunking() -> None:
    pcm = bytes(range(256)) * 2
    wire = encode_id(SID) + encode(0x10, pcm) + encode(0x03, b"5") + encode(0x00)
    for size in (1, 2, 3, 7, len(wire)):
        parser = AudioSocketParser()
        events = [e for i in range(0, len(wire), size) for e in parser.feed(wire[i:i + size])]
        assert events == [StreamId(SID), Audio(pcm, 8000), Dtmf("5"), Hangup()]
        assert parser.closed and parser.audio_bytes == len(pcm)
        assert parser.feed(encode(0x10, b"\0\0")) == []  # nothing after the hangup


@pytest.mark.parametrize(("wire", "reason"), [
    (encode(0x10, b"\0\0"), "before the stream id"),
    (encode(0x01, b"short"), "of 5 bytes"),
    (encode_id(SID) + encode_id(SID), "second stream id"),
    (encode_id(SID) + encode(0x10, b"\0"), "odd length"),
    (encode_id(SID) + encode(0x42, b"x"), "unknown message kind 0x42"),
    (encode_id(SID) + encode(0x03, b"xy"), "DTMF"),
], ids=["audio-first", "short-id", "two-ids", "odd-audio", "unknown-kind", "long-dtmf"])
def test_hostile_frames_close_the_parser(wire: bytes, reason: str) -> None:
    parser = AudioSocketParser()
    events = parser.feed(wire)
    assert isinstance(events[-1], Bad) and reason in events[-1].reason
    assert parser.closed and parser.feed(encode(0x10, b"\0\0")) == []


def test_a_peer_that_never_completes_a_message_is_cut_off() -> None:
    parser = AudioSocketParser(max_buffer=1000)
    events = parser.feed(encode_id(SID) + b"\x10\xff\xff" + b"\0" * 1200)
    assert isinstance(events[-1], Bad) and parser.closed


def test_error_message_ends_the_stream() -> None:
    parser = AudioSocketParser()
    assert parser.feed(encode_id(SID) + encode(0xFF, b"\x02")) == [StreamId(SID), PeerError(2)]
    assert parser.closed


def test_random_garbage_never_raises() -> None:
    rng = random.Random(19)
    for _ in range(2000):
        parser = AudioSocketParser(max_buffer=4096)
        data = encode_id(SID) if rng.random() < 0.5 else b""
        data += bytes(rng.randrange(256) for _ in range(rng.randrange(60)))
        parser.feed(data)


def test_tap_originate_is_a_local_pair_into_chanspy_and_audiosocket() -> None:
    action = live_tap_action("PJSIP/101-0000000a", SID, "127.0.0.1:9092")
    assert action["Channel"] == "Local/s@crm-live-tap" and action["Context"] == "crm-live-sock"
    assert "__CRM_LIVE_SPY=PJSIP/101-0000000a" in action["Variable"]
    assert f"__CRM_LIVE_ID={SID}" in action["Variable"]
    for bad in ("Local/100@x-1;1", "PJSIP/101,qBw", "PJSIP/101-1&PJSIP/102-2"):
        with pytest.raises(ValueError):
            live_tap_action(bad, SID, "127.0.0.1:9092")
    with pytest.raises(ValueError):
        live_tap_action("PJSIP/101-0000000a", SID, "127.0.0.1:9092,x")


def test_tracker_ignores_the_tap_channels() -> None:
    assert is_live_tap("Local/s@crm-live-tap-0000001a;2")
    assert not is_live_tap("Local/101@crm-transfer-00000001;1")
    tracker = CallTracker()
    ts = 1796497207.0
    events = [
        {"Event": "Newchannel", "Channel": "Local/s@crm-live-tap-00000000;1",
         "Uniqueid": "9.2", "Linkedid": "9.2", "Timestamp": str(ts)},
        {"Event": "Newchannel", "Channel": "Local/s@crm-live-tap-00000000;2",
         "Uniqueid": "9.3", "Linkedid": "9.2", "Timestamp": str(ts)},
        {"Event": "ChanSpyStart", "SpyerChannel": "Local/s@crm-live-tap-00000000;2",
         "SpyerUniqueid": "9.3", "SpyeeChannel": "PJSIP/101-00000001",
         "SpyeeUniqueid": "1.1", "Timestamp": str(ts + 1)},
        {"Event": "Hangup", "Channel": "Local/s@crm-live-tap-00000000;1", "Uniqueid": "9.2",
         "Linkedid": "9.2", "Cause": "16", "Timestamp": str(ts + 2)},
    ]
    assert tracker.feed_all(events) == []
    assert tracker.live_calls() == []
