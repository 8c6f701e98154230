"""The AMI frame parser: real-world framing faults and fuzzing."""

from hypothesis import given, settings
from hypothesis import strategies as st

from pbx_bridge.frames import MAX_LINE_BYTES, EventFilter, Frame, FrameParser

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


class _LineByLine(FrameParser):
    """The reference semantics: every line through ``_line`` (the parser before its fast path)."""

    def feed(self, data: bytes) -> list[Frame]:
        out: list[Frame] = []
        buf = self._buffer + data
        start = 0
        while (nl := buf.find(b"\n", start)) >= 0:
            self._line(buf[start:nl], out)
            start = nl + 1
        rest = buf[start:]
        if len(rest) > MAX_LINE_BYTES:
            rest = b""
            self._drop_current()
        self._buffer = rest
        return out


def _parse_all(parser: FrameParser, data: bytes, cuts: list[int]) -> list[tuple[object, ...]]:
    frames = []
    last = 0
    for cut in [*cuts, len(data)]:
        frames += parser.feed(data[last:cut])
        last = cut
    frames += parser.close()
    return [(f.headers, f.repeated, f.stray) for f in frames]


def test_fast_path_matches_line_by_line_on_real_and_hostile_bytes() -> None:
    import random
    from pathlib import Path

    rng = random.Random(20261123)
    real = b"".join(p.read_bytes() for p in sorted(
        (Path(__file__).resolve().parents[1] / "captures").glob("*.ami")))[:400_000]
    pieces = [
        b"\r\n\n", b"\n", b"\r\n\r\n", b"Key:value\r\n", b"Bad key: x\r\n", b"nocolon\r\n",
        b" Spaced : v\r\n", b"Event: X\r\nA: 1\r\nA: 2\r\n\r\n", b"\xff\xfe: bad\r\n",
        b"V: \xd0\xbf\xd1\x80\r\n", b"\x1c\r\n", b"\xc2\xa0\r\n", b"K: " + b"x" * 70_000 + b"\r\n",
        b"Event: Big\r\n" + b"L: 1\r\n" * 2100 + b"\r\n", b"K:" + b"\xd0\xbf" * 20_000 + b"\n",
    ]
    for _ in range(30):
        at = rng.randrange(0, len(real) - 20_000)
        data = bytearray(real[at:at + 20_000])
        for _ in range(rng.randrange(0, 8)):
            pos = rng.randrange(0, len(data))
            data[pos:pos] = rng.choice(pieces)
        data = bytes(data)
        cuts = sorted(rng.sample(range(1, len(data)), rng.randrange(0, 12)))
        fast, slow = FrameParser(), _LineByLine()
        assert _parse_all(fast, data, cuts) == _parse_all(slow, data, cuts)
        assert fast.stats == slow.stats


def _as_the_tracker_reads(frames: list[tuple[object, ...]], flt: EventFilter) -> list[object]:
    """What a consumer honouring ``flt`` reads of each frame of the whole parse."""
    seen: list[object] = []
    for headers, repeated, stray in frames:
        assert isinstance(headers, dict)
        name = headers.get("Event")
        if name is None:
            seen.append((headers, repeated, stray))
        elif name not in flt.wanted:
            continue
        elif name == "VarSet" and headers.get("Variable", "").lstrip("_") not in flt.variables:
            seen.append({k: v for k, v in headers.items()
                         if k == "Event" or k in flt.light_keys})
        else:
            seen.append((headers, repeated, stray))
    return seen


def test_the_trackers_filter_passes_over_noise_and_keeps_all_it_reads() -> None:
    """The filter drops whole frames before any line split; on real captures with hostile
    bytes spliced in, in any chunking, what is left is exactly what the tracker reads of
    the whole parse, and every dropped event is counted."""
    import random
    from pathlib import Path

    from pbx_bridge.feed import TRACKER_EVENTS

    rng = random.Random(20261205)
    real = b"".join(p.read_bytes() for p in sorted(
        (Path(__file__).resolve().parents[1] / "captures").glob("*.ami")))[:400_000]
    pieces = [
        b"\r\n\n", b"\n", b"\r\n \t\r\n", b"Key:value\r\n", b"Bad key: x\r\n", b"nocolon\r\n",
        b"Event: VarSet\r\nUniqueid: 9.9\r\nVariable: __CRM_DIRECTION\r\nValue: inbound\r\n\r\n",
        b"Event: VarSet\r\nVariable:CRM_DID\r\nUniqueid: 9.8\r\n\r\n",
        b"Event: VarSet\r\n Uniqueid : 9.7\r\nVariable: X\r\n\r\n",
        b"Event: VarSet\r\nUniqueid: 9.6\r\nUniqueid: 9.5\r\nTimestamp: 1.5 \r\n\r\n",
        b"Event: Newexten\r\nUniqueid: 9.4\r\n\r\n", b"Event: VarSet\r\n\r\n",
        b"Event: Hangup\r\nUniqueid: 9.3\r\nCause: 16\r\nCause: 17\r\n\r\n",
        b"Event: Hangup\r\nUniqueid: 9.2\r\r\nCause: 16 \r\nChannel: a: b\r\n\r\n",
        b"Event: Newchannel\nUniqueid: 9.1\nChannel: PJSIP/x\rLinkedid: 9.1\n\n",
        b"\xff\xfe: bad\r\n", b"\x1c\r\n", b"K: " + b"x" * 70_000 + b"\r\n",
        b"Event: Newexten\r\n" + b"L: 1\r\n" * 2100 + b"\r\n",
    ]
    dropped = 0
    for _ in range(30):
        at = rng.randrange(0, len(real) - 20_000)
        data = bytearray(real[at:at + 20_000])
        for _ in range(rng.randrange(0, 8)):
            pos = rng.randrange(0, len(data))
            data[pos:pos] = rng.choice(pieces)
        data = bytes(data)
        cuts = sorted(rng.sample(range(1, len(data)), rng.randrange(0, 12)))
        whole, filtered = FrameParser(), FrameParser(TRACKER_EVENTS)
        all_frames = _parse_all(whole, data, cuts)
        kept = _parse_all(filtered, data, cuts)
        assert _as_the_tracker_reads(kept, TRACKER_EVENTS) == _as_the_tracker_reads(
            all_frames, TRACKER_EVENTS)
        events = sum(1 for headers, _, _ in all_frames if "Event" in headers)  # type: ignore[operator]
        passed = sum(1 for headers, _, _ in kept if "Event" in headers)  # type: ignore[operator]
        assert events == passed + filtered.stats.filtered
        dropped += filtered.stats.filtered
    # (a chunk with undecodable bytes is parsed line by line, unfiltered)
    assert dropped > 0, "the filter passed over noise"
