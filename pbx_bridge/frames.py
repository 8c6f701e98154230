"""Sans-IO parser for the Asterisk Manager Interface wire format.

AMI sends ``Key: Value`` lines; a blank line ends a message. Asterisk has been
seen ending a message with ``\\r\\n\\n`` instead of ``\\r\\n\\r\\n`` and sending bytes
that are not UTF-8, so framing here is line based and forgiving: a line that is
empty after stripping ``\\r`` ends the message, undecodable bytes are replaced
and counted, and oversized messages are dropped with a count instead of growing
the buffer without bound. The parser never raises on input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_LINE_BYTES = 64 * 1024
MAX_FRAME_LINES = 2000


@dataclass(slots=True)
class Frame:
    """One AMI message.

    ``headers`` keeps the first value of every key (what the call tracker reads);
    ``repeated`` keeps every further value of a repeated key, in order (command
    output lines, ``ChanVariable`` lists). The banner line and lines without a
    colon go to ``stray``.
    """

    headers: dict[str, str] = field(default_factory=dict)
    repeated: dict[str, list[str]] = field(default_factory=dict)
    stray: list[str] = field(default_factory=list)

    @property
    def is_event(self) -> bool:
        return "Event" in self.headers

    @property
    def is_response(self) -> bool:
        return "Response" in self.headers

    def values(self, key: str) -> list[str]:
        """All values of ``key`` in order of arrival."""
        first = self.headers.get(key)
        if first is None:
            return []
        return [first, *self.repeated.get(key, [])]


@dataclass(slots=True)
class ParserStats:
    frames: int = 0
    decode_errors: int = 0
    dropped_oversized: int = 0
    malformed_lines: int = 0
    filtered: int = 0  # events an EventFilter passed over (not in ``frames``)


@dataclass(frozen=True, slots=True)
class EventFilter:
    """What a consumer reads of the event stream, so the parser passes over the rest.

    Most AMI traffic is noise to the call tracker (70 % ``VarSet``, then ``Newexten``,
    device states...). With a filter, an event whose name is not ``wanted`` is counted
    in ``ParserStats.filtered`` and never split into lines nor made a dict; a
    ``VarSet`` whose variable (leading ``_`` stripped) is not in ``variables`` comes out
    with ``Event`` and ``light_keys`` only. The consumer must read nothing else of
    such events: then what it sees is exactly what the whole parse would give it.
    """

    wanted: frozenset[str]
    variables: frozenset[str]
    light_keys: tuple[str, ...] = ("Uniqueid", "Linkedid", "Timestamp")


class FrameParser:
    """Turns a byte stream into :class:`Frame` objects; feed it any chunking."""

    def __init__(self, events: EventFilter | None = None) -> None:
        self._filter = events
        self._buffer = b""
        self._current = Frame()
        self._lines_in_frame = 0
        self._skipping = False
        self.stats = ParserStats()

    def feed(self, data: bytes) -> list[Frame]:
        """Consume ``data`` and return the messages it completed.

        Every complete line of the chunk is decoded at once and the text split (one
        decode and one split per chunk instead of per line); a chunk with undecodable
        bytes goes line by line through :meth:`_line`, which defines the semantics.
        """
        out: list[Frame] = []
        buf = self._buffer + data if self._buffer else data
        end = buf.rfind(b"\n")
        if end < 0:
            rest = buf
        else:
            rest = buf[end + 1:]
            try:
                text = buf[:end].decode("utf-8")
            except UnicodeDecodeError:
                text = None
            if text is not None:
                if self._filter is None:
                    self._text_lines(text, out)
                else:
                    self._filtered_text(text, self._filter, out)
            else:  # undecodable bytes: per line, so only their lines get replacements
                start = 0
                while True:
                    nl = buf.find(b"\n", start)
                    if nl < 0:
                        break
                    self._line(buf[start:nl], out)
                    start = nl + 1
        if len(rest) > MAX_LINE_BYTES:
            # A line this long is not AMI: drop the message it belongs to.
            rest = b""
            self._drop_current()
        self._buffer = rest
        return out

    def _text_lines(self, text: str, out: list[Frame]) -> None:
        """:meth:`_line` inlined over the decoded lines of a chunk (same results, faster)."""
        current = self._current
        headers = current.headers
        count = self._lines_in_frame
        skipping = self._skipping
        stats = self.stats
        for line in text.split("\n"):
            if line and line[-1] == "\r":
                line = line[:-1]
            if not line.strip() and not line.encode().strip():
                if skipping:
                    skipping = False
                elif headers or current.stray:
                    if headers:
                        out.append(current)
                        stats.frames += 1
                    current = Frame()
                    headers = current.headers
                    count = 0
                continue
            if skipping:
                continue
            count += 1
            if count > MAX_FRAME_LINES or (
                    len(line) > MAX_LINE_BYTES // 4 and len(line.encode()) > MAX_LINE_BYTES):
                stats.dropped_oversized += 1
                current = Frame()
                headers = current.headers
                count = 0
                skipping = True
                continue
            key, sep, value = line.partition(":")
            key = key.strip()
            if not sep or not key or " " in key:
                current.stray.append(line)
                stats.malformed_lines += 1
                continue
            if value[:1] == " ":
                value = value[1:]
            if key in headers:
                current.repeated.setdefault(key, []).append(value)
            else:
                headers[key] = value
        self._current = current
        self._lines_in_frame = count
        self._skipping = skipping

    def _filtered_text(self, text: str, flt: EventFilter, out: list[Frame]) -> None:
        """:meth:`_text_lines` with ``flt`` applied frame by frame, before any line split.

        The text is cut at its blank lines (one regex split, in C); the first and last
        pieces (which may continue or leave open a frame across chunks) and any piece
        that is not plainly ``Event: <name>`` go through :meth:`_text_lines`, so the
        framing rules stay those of :meth:`_line`.
        """
        pieces = _BLANK_LINE.split(text)
        if len(pieces) < 2:
            self._text_lines(text, out)
            return
        self._text_lines(pieces[0] + "\n", out)  # ends with its blank line
        wanted, variables, light_keys = flt.wanted, flt.variables, flt.light_keys
        stats = self.stats
        for i in range(1, len(pieces) - 1):  # whole frames, each between blank lines
            piece = pieces[i]
            if piece[:7] != "Event: " or len(piece) > _FAST_MAX_CHARS:
                self._text_lines(piece + "\n", out)
                continue
            nl = piece.find("\n")
            name = piece[7:nl] if nl >= 0 else piece[7:]
            if name[-1:] == "\r":
                name = name[:-1]
            if name not in wanted:  # its first header is Event: nothing else can rename it
                stats.filtered += 1
                continue
            if _ODD_LINE.search(piece) is not None:
                self._text_lines(piece + "\n", out)
                continue
            if name != "VarSet" or (
                    (variable := _value_of(piece, "\nVariable: ")) is not None
                    and variable.lstrip("_") in variables):
                self._plain_frame(piece, out)
                continue
            headers = {"Event": name}
            for key in light_keys:
                value = _value_of(piece, f"\n{key}: ")
                if value is not None:
                    headers[key] = value
            out.append(Frame(headers))
            stats.frames += 1
        self._text_lines(pieces[-1], out)

    def _plain_frame(self, piece: str, out: list[Frame]) -> None:
        """A whole frame of plain ``Key: value`` lines, split in C; the same headers as
        :meth:`_text_lines` gives (one trailing CR off each line), which takes any frame
        with a key said twice."""
        text = piece + "\n"
        lines = (text.replace("\r\n", "\n") if "\r" in text else text).split("\n")
        lines.pop()  # after the last newline: nothing
        headers = dict(line.split(": ", 1) for line in lines)
        if len(headers) != len(lines):
            self._text_lines(piece + "\n", out)
            return
        out.append(Frame(headers))
        self.stats.frames += 1

    def close(self) -> list[Frame]:
        """End of stream: a last message without its blank line still counts."""
        out: list[Frame] = []
        if self._buffer:
            self._line(self._buffer, out)
            self._buffer = b""
        self._line(b"", out)
        return out

    def _line(self, raw: bytes, out: list[Frame]) -> None:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if not raw.strip():
            if self._skipping:
                self._skipping = False
            elif self._current.headers or self._current.stray:
                if self._current.headers:
                    out.append(self._current)
                    self.stats.frames += 1
                self._current = Frame()
                self._lines_in_frame = 0
            return
        if self._skipping:
            return
        self._lines_in_frame += 1
        if self._lines_in_frame > MAX_FRAME_LINES or len(raw) > MAX_LINE_BYTES:
            self._drop_current()
            self._skipping = True
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "replace")
            self.stats.decode_errors += 1
        key, sep, value = text.partition(":")
        key = key.strip()
        if not sep or not key or " " in key:
            self._current.stray.append(text)
            self.stats.malformed_lines += 1
            return
        value = value[1:] if value.startswith(" ") else value
        headers = self._current.headers
        if key in headers:
            self._current.repeated.setdefault(key, []).append(value)
        else:
            headers[key] = value

    def _drop_current(self) -> None:
        self.stats.dropped_oversized += 1
        self._current = Frame()
        self._lines_in_frame = 0


# A blank line as _line sees one: nothing but ASCII whitespace (str.strip and bytes.strip).
_BLANK_LINE = re.compile(r"\n[ \t\r\x0b\x0c]*\n")
# A line after the first that is not plainly "Key: value" (a key without spaces, then
# ": "); the first line of a frame it is used on is "Event: <name>". Anchored on the
# newline, not on a MULTILINE "^", so the engine jumps from newline to newline instead of
# trying every character (a third of the time of the filtered parse before).
_ODD_LINE = re.compile(r"\n(?![^:\s]++: )")
# Below this a frame can be neither too long a line nor too many lines (2 chars a line).
_FAST_MAX_CHARS = min(MAX_LINE_BYTES // 4, 2 * MAX_FRAME_LINES)


def _value_of(piece: str, marker: str) -> str | None:
    """The value of the first line ``marker`` starts (``\\nKey: ``), as _line reads it."""
    at = piece.find(marker)
    if at < 0:
        return None
    start = at + len(marker)
    end = piece.find("\n", start)
    value = piece[start:end] if end >= 0 else piece[start:]
    return value[:-1] if value[-1:] == "\r" else value


_FRAME_END = re.compile(rb"\n\r?\n")
_EVENT_KEY = re.compile(rb"(?:^|\n)Event:")
_TIME_KEY = re.compile(rb"(?:^|\n)Timestamp:")


class ReceiptStamper:
    """Adds ``Timestamp: <receipt time>`` to every event frame Asterisk sent without one.

    Asterisk's default is ``timestampevents = no``. The listener stamps the bytes
    before parsing, so the tracker and the raw capture see the very same stamp and
    ``ami-replay`` of the capture reproduces the live result. Every other byte passes
    unchanged; once a connection shows Asterisk stamps its events, nothing is added
    (a channel listing, which Asterisk never stamps, keeps being dated by the tracker).
    Bytes after the last complete frame are held until the frame ends. Sans-IO.
    """

    def __init__(self, events: EventFilter | None = None) -> None:
        self._filter = events
        self._buffer = b""
        self.asterisk_stamps = False

    def feed(self, data: bytes, now: float) -> bytes:
        """The bytes of every frame completed by ``data``, stamped with ``now`` if need be."""
        buffer = self._buffer + data
        out: list[bytes] = []
        start = 0
        for match in _FRAME_END.finditer(buffer):
            end = match.end()
            frame = buffer[start:end]
            if _EVENT_KEY.search(frame):
                if _TIME_KEY.search(frame):
                    self.asterisk_stamps = True
                elif not self.asterisk_stamps:
                    cut = match.start() + 1 - start  # after the frame's last header line
                    frame = b"%sTimestamp: %.6f\r\n%s" % (frame[:cut], now, frame[cut:])
            out.append(frame)
            start = end
        self._buffer = buffer[start:]
        if len(self._buffer) > MAX_LINE_BYTES * 4:  # no frame end in sight: pass it on
            out.append(self._buffer)
            self._buffer = b""
        return b"".join(out)

    def close(self) -> bytes:
        """Whatever is left (an unfinished frame), unchanged."""
        rest, self._buffer = self._buffer, b""
        return rest
