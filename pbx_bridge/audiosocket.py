"""Sans-IO parser of Asterisk's AudioSocket wire format (``app_audiosocket``).

Each message is a 3-byte header, a kind byte and a big-endian 16-bit payload length,
then the payload:

- ``0x00`` hangup (no payload; closing the socket means the same);
- ``0x01`` the stream's UUID, 16 bytes (the first message Asterisk sends);
- ``0x03`` one DTMF digit (ASCII);
- ``0x10`` audio: signed linear, 16-bit little-endian, 8 kHz mono (``0x11``..``0x18``
  are higher rates on newer Asterisk versions: 12, 16, 24, 32, 44.1, 48, 96, 192 kHz);
- ``0xff`` an error, with an optional code.

The parser never raises on input: a peer that sends garbage (an unknown kind, a UUID of
the wrong size, audio before the UUID, an odd number of audio bytes, more than
``max_buffer`` bytes without a whole message) gets a :class:`Bad` event and the parser
is closed from then on, so the socket shell simply drops the connection. No socket, no
event loop, no clock: the TCP server in ``telecrm.live_prompts`` is a thin shell around it.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

KIND_HANGUP = 0x00
KIND_UUID = 0x01
KIND_DTMF = 0x03
KIND_AUDIO = 0x10
KIND_ERROR = 0xFF
# Audio kinds and their sample rates (0x10 is the only one Asterisk 18-22 sends by default).
AUDIO_RATES = {0x10: 8000, 0x11: 12000, 0x12: 16000, 0x13: 24000, 0x14: 32000,
               0x15: 44100, 0x16: 48000, 0x17: 96000, 0x18: 192000}
HEADER = struct.Struct(">BH")
MAX_BUFFER = 4 * (HEADER.size + 0xFFFF)  # a few whole messages; a stalled peer gets no more


@dataclass(frozen=True, slots=True)
class StreamId:
    id: str  # the UUID in its standard string form


@dataclass(frozen=True, slots=True)
class Audio:
    pcm: bytes  # 16-bit little-endian samples
    rate: int


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class Hangup:
    pass


@dataclass(frozen=True, slots=True)
class PeerError:
    code: int | None  # Asterisk's error code (1 hangup, 2 frame forwarding, 4 memory)


@dataclass(frozen=True, slots=True)
class Bad:
    reason: str  # English, for the log


Event = StreamId | Audio | Dtmf | Hangup | PeerError | Bad


class AudioSocketParser:
    """Bytes in, events out; ``closed`` once a hangup, an error or bad input was seen."""

    def __init__(self, max_buffer: int = MAX_BUFFER) -> None:
        self._buffer = bytearray()
        self._max_buffer = max_buffer
        self.stream_id: str | None = None
        self.closed = False
        self.audio_bytes = 0

    def feed(self, data: bytes) -> list[Event]:
        if self.closed:
            return []
        self._buffer += data
        events: list[Event] = []
        while not self.closed and len(self._buffer) >= HEADER.size:
            kind, length = HEADER.unpack_from(self._buffer)
            refused = self._refused(kind, length)
            if refused is not None:  # judged on the header: no waiting for a bogus payload
                events.append(self._bad(refused))
                break
            if len(self._buffer) < HEADER.size + length:
                break
            payload = bytes(self._buffer[HEADER.size:HEADER.size + length])
            del self._buffer[:HEADER.size + length]
            events.append(self._message(kind, payload))
        if not self.closed and len(self._buffer) > self._max_buffer:
            events.append(self._bad(f"{len(self._buffer)} bytes without a whole message"))
        return events

    def _bad(self, reason: str) -> Bad:
        self.closed = True
        self._buffer.clear()
        return Bad(reason)

    def _refused(self, kind: int, length: int) -> str | None:
        if self.stream_id is None and kind != KIND_UUID:
            return f"message kind 0x{kind:02x} before the stream id"
        if kind not in AUDIO_RATES and kind not in (KIND_UUID, KIND_HANGUP, KIND_DTMF,
                                                    KIND_ERROR):
            return f"unknown message kind 0x{kind:02x}"
        if kind == KIND_UUID and length != 16:
            return f"a stream id of {length} bytes, not 16"
        return None

    def _message(self, kind: int, payload: bytes) -> Event:
        if kind == KIND_UUID:
            if self.stream_id is not None:
                return self._bad("a second stream id")
            if len(payload) != 16:
                return self._bad(f"a stream id of {len(payload)} bytes, not 16")
            self.stream_id = str(uuid.UUID(bytes=payload))
            return StreamId(self.stream_id)
        if self.stream_id is None:
            return self._bad(f"message kind 0x{kind:02x} before the stream id")
        if kind in AUDIO_RATES:
            if len(payload) % 2:
                return self._bad(f"audio of an odd length ({len(payload)} bytes)")
            self.audio_bytes += len(payload)
            return Audio(payload, AUDIO_RATES[kind])
        if kind == KIND_HANGUP:
            self.closed = True
            return Hangup()
        if kind == KIND_DTMF:
            if len(payload) != 1 or chr(payload[0]) not in "0123456789*#ABCD":
                return self._bad("a DTMF message that is not one digit")
            return Dtmf(chr(payload[0]))
        if kind == KIND_ERROR:
            self.closed = True
            return PeerError(payload[0] if payload else None)
        return self._bad(f"unknown message kind 0x{kind:02x}")


def encode(kind: int, payload: bytes = b"") -> bytes:
    """One message on the wire (tests, and the bench's stand-in for Asterisk)."""
    if len(payload) > 0xFFFF:
        raise ValueError("an AudioSocket payload holds at most 65535 bytes")
    return HEADER.pack(kind, len(payload)) + payload


def encode_id(stream_id: str) -> bytes:
    return encode(KIND_UUID, uuid.UUID(stream_id).bytes)
