"""Is Asterisk done with a WAV file? Read from the RIFF header, never from guesses.

Asterisk's format_wav writes placeholder sizes while recording and fills in the
RIFF and data chunk sizes when it closes the file; a header that agrees with the
file's size, untouched for a few seconds, means the file is complete.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WavState:
    ready: bool
    problem: str | None  # why not ready: missing, open, truncated, not a wav, empty
    data_bytes: int = 0


def probe(path: Path, settle_seconds: float, now: float | None = None) -> WavState:
    """Whether ``path`` is a complete, closed WAV (see the module docstring)."""
    try:
        stat = path.stat()
        with path.open("rb") as f:
            head = f.read(4096)
    except FileNotFoundError:
        return WavState(False, "missing")
    except OSError as exc:
        return WavState(False, f"unreadable: {exc.strerror}")
    if (now or time.time()) - stat.st_mtime < settle_seconds:
        return WavState(False, "still being written")
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return WavState(False, "not a WAV file")
    riff_size = struct.unpack_from("<I", head, 4)[0]
    offset = 12
    while offset + 8 <= len(head):
        chunk, size = struct.unpack_from("<4sI", head, offset)
        if chunk == b"data":
            available = stat.st_size - (offset + 8)
            if size == 0 and riff_size <= 36 and available > 0:
                return WavState(False, "open (header not written yet)")
            if size > available:
                return WavState(False, f"truncated ({available} of {size} data bytes)")
            if size == 0:
                return WavState(False, "empty")
            return WavState(True, None, size)
        offset += 8 + size + (size & 1)
    return WavState(False, "no data chunk")
