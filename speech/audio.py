"""Decode any recording to the raw PCM a Vosk recognizer consumes.

ffmpeg reads whatever MixMonitor or a user hands us (WAV 8 kHz, GSM, MP3, ...)
and resamples to the model's rate: feeding a recognizer a rate other than the
one it was created with silently stretches word times, so the rate is never
guessed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path


class AudioError(ValueError):
    """The file is missing, not audio, or cannot be decoded."""


def _ffmpeg(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise AudioError(f"{tool} is not installed; it is needed to read recordings")
    return path


def probe_rate(path: Path) -> int:
    """The file's real sample rate, to report and to measure the resampling effect."""
    if not path.is_file():
        raise AudioError(f"no such file: {path}")
    result = subprocess.run(
        [_ffmpeg("ffprobe"), "-v", "error", "-select_streams", "a:0",
         "-show_entries", "stream=sample_rate", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=60)
    try:
        return int(json.loads(result.stdout)["streams"][0]["sample_rate"])
    except (ValueError, KeyError, IndexError) as exc:
        raise AudioError(f"{path.name} is not a readable audio file") from exc


def decode_pcm16(path: Path, rate: int) -> bytes:
    """Mono signed 16-bit little-endian PCM of the whole file at ``rate`` Hz."""
    if not path.is_file():
        raise AudioError(f"no such file: {path}")
    result = subprocess.run(
        [_ffmpeg("ffmpeg"), "-nostdin", "-v", "error", "-i", str(path), "-vn",
         "-ac", "1", "-ar", str(rate), "-f", "s16le", "-acodec", "pcm_s16le", "-"],
        capture_output=True, timeout=600)
    if result.returncode != 0:
        reason = result.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = reason[-1] if reason else "unknown error"
        raise AudioError(f"{path.name} is not a readable audio file ({detail})")
    return result.stdout
