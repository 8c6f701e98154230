"""The AMI frame parser: real-world framing faults and fuzzing."""

from hypothesis import given, settings
from hypothesis import strategies as st

from pbx_bridge.frames import MAX_LINE_BYTES, FrameParser

HANGUP = b"Event: Hangup\r\nTimestamp: 1795406555.5\r\nUniqueid: 1.1\r\nCause: 16\r\n\r\n"


def test_banner_and_response_then_events_in_any_chunking() -> None:
    stream = (b"Asterisk Call Manager/9.0.0\r\nResponse: Success\r\nActionID: 1\r\n"
              b"Message: Authentication accepted\r\n\r\n" + HANGUP * 3)
    for size in (1, 2, 7, 64, len(stream)):
        parser = FrameParser()
        frames = []
        for i in range(0, len(stream), size):
            frames += parser.feed(stream[i:i + size])
        assert [f.headers.get("Event") or f.headers["Response"] for f in frames] == [
            "Success", "Hangup", "Hangup", "Hangup"]
        assert frames[0].stray == ["Asterisk Call Manager/9.0.0"]
        assert frames[1].headers["Cause"] == "16"


def test_message_ended_by_cr_lf_lf_is_not_merged_into_the_next() -> None:
    # asterisk/asterisk#761: a message ended with \r\n\n instead of \r\n\r\n.
    stream = b"Event: Newchannel\r\nUniqueid: 1.1\r\n\n" + HANGUP
    frames = FrameParser().feed(stream)
    assert [f.headers["Event"] for f in frames] == ["Newchannel", "Hangup"]


def test_repeated_keys_keep_the_first_and_all_values() -> None:
    frames = FrameParser().feed(b"Event: VarSet\r\nEvent: Bogus\r\nOutput: a\r\nOutput: b\r\n\r\n")
    (frame,) = frames
    assert frame.headers["Event"] == "VarSet"
    assert frame.values("Output") == ["a", "b"]


def test_undecodable_bytes_are_replaced_and_counted() -> None:
    parser = FrameParser()
    (frame,) = parser.feed(b"Event: Newchannel\r\nCallerIDName: \xff\xfeX\r\n\r\n")
    assert frame.headers["CallerIDName"].endswith("X")
    assert parser.stats.decode_errors == 1


def test_a_huge_line_drops_its_message_only() -> None:
    parser = FrameParser()
    junk = b"Event: Newchannel\r\nValue: " + b"x" * (MAX_LINE_BYTES + 10) + b"\r\n\r\n"
    frames = parser.feed(junk + HANGUP)
    assert [f.headers["Event"] for f in frames] == ["Hangup"]
    assert parser.stats.dropped_oversized >= 1


def test_lines_without_colon_are_stray_not_fatal() -> None:
    (frame,) = FrameParser().feed(b"garbage line\r\nEvent: Hangup\r\n\r\n")
    assert frame.headers == {"Event": "Hangup"}
    assert frame.stray == ["garbage line"]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=20))
def test_any_bytes_never_raise_and_frames_always_have_headers(chunks: list[bytes]) -> None:
    parser = FrameParser()
    for chunk in chunks:
        for frame in parser.feed(chunk):
            assert frame.headers
    for frame in parser.close():
        assert frame.headers
