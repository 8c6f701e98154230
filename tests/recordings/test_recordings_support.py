"""Known speech for recording tests: espeak-ng words at 8 kHz, placed in time on one side."""

from __future__ import annotations

import os
import subprocess
import time
import wave
from pathlib import Path

RATE = 8000


def speech(path: Path, text: str, *, voice: str = "en", pitch: int = 50) -> Path:
    """``text`` spoken by espeak-ng, as 8 kHz 16-bit mono WAV (what Asterisk records).

    The same text gives the same bytes on every run (sox's dither, random noise in the
    lowest bit, is off), so what a model hears in it does not vary between runs.
    """
    raw = path.with_suffix(".22k.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-w", str(raw), text],
                   check=True, capture_output=True)
    subprocess.run(["sox", str(raw), "-D", "-r", str(RATE), "-c", "1", "-b", "16", str(path)],
                   check=True, capture_output=True)
    raw.unlink()
    return path


def frames(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        return w.readframes(w.getnframes())


def side_file(path: Path, words: bytes, *, at: float, total: float, age: float = 10) -> Path:
    """A side's WAV of ``total`` seconds: silence, ``words`` starting at ``at`` s, silence.

    ``age`` back-dates the file, as if Asterisk had closed it that long ago.
    """
    start = int(at * RATE) * 2
    size = int(total * RATE) * 2
    pcm = (b"\x00" * start + words)[:size]
    pcm += b"\x00" * (size - len(pcm))
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)
    past = time.time() - age
    os.utime(path, (past, past))
    return path


def prompt(path: Path, text: str, *, at: float, total: float, voice: str = "ru",
           pitch: int = 50) -> tuple[float, float]:
    """A prompt for a sandbox phone: ``text`` spoken from ``at`` s, silence around it.

    Returns the (start, end) of the speech, so a test knows when this side spoke.
    """
    words = frames(speech(path.with_suffix(".words.wav"), text, voice=voice, pitch=pitch))
    path.with_suffix(".words.wav").unlink()
    side_file(path, words, at=at, total=total, age=0)
    return at, at + len(words) / 2 / RATE


def dbfs_between(path: Path, start: float, end: float, channel: int = 0) -> float:
    """Loudness (dBFS) of one channel of any file ffmpeg decodes, from ``start`` to ``end`` s.

    dBFS rather than raw RMS: decoders differ in sample width (Opus decodes to 32 bit).
    """
    from pydub import AudioSegment

    segment = AudioSegment.from_file(str(path))
    mono = segment.split_to_mono()[channel] if segment.channels > 1 else segment
    return float(mono[int(start * 1000):int(end * 1000)].dBFS)
