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

from crm_core.errors import DomainError


class AudioError(DomainError):
    """The file is missing, not audio, or cannot be decoded (``speech.audio.*``)."""


def _ffmpeg(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise AudioError("speech.audio.tool_missing",
                         f"{tool} is not installed; it is needed to read recordings", tool=tool)
    return path


def probe_rate(path: Path) -> int:
    """The file's real sample rate, to report and to measure the resampling effect."""
    if not path.is_file():
        raise AudioError("speech.audio.no_file", f"no such file: {path}", path=str(path))
    result = subprocess.run(
        [_ffmpeg("ffprobe"), "-v", "error", "-select_streams", "a:0",
         "-show_entries", "stream=sample_rate", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=60)
    try:
        return int(json.loads(result.stdout)["streams"][0]["sample_rate"])
    except (ValueError, KeyError, IndexError) as exc:
        raise AudioError("speech.audio.unreadable", f"{path.name} is not a readable audio file",
                         file=path.name) from exc


def decode_pcm16(path: Path, rate: int, *, channel: int | None = None) -> bytes:
    """Mono signed 16-bit little-endian PCM of the whole file at ``rate`` Hz.

    ``channel`` picks one channel of a stereo file (0 left, 1 right) instead of the
    downmix: the stored call has the manager on the left and the client on the right.
    """
    if not path.is_file():
        raise AudioError("speech.audio.no_file", f"no such file: {path}", path=str(path))
    pick = ["-af", f"pan=mono|c0=c{channel}"] if channel is not None else ["-ac", "1"]
    result = subprocess.run(
        [_ffmpeg("ffmpeg"), "-nostdin", "-v", "error", "-i", str(path), "-vn", *pick,
         "-ar", str(rate), "-f", "s16le", "-acodec", "pcm_s16le", "-"],
        capture_output=True, timeout=600)
    if result.returncode != 0:
        reason = result.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = reason[-1] if reason else "unknown error"
        raise AudioError("speech.audio.undecodable",
                         f"{path.name} is not a readable audio file ({detail})",
                         file=path.name, detail=detail)
    return result.stdout


def decode_channels(path: Path, rate: int) -> list[bytes]:
    """Each channel of a stereo file as mono PCM at ``rate`` Hz, from one ffmpeg run.

    One decode for both sides instead of one per side: a stored call is Opus, and
    decoding it twice was most of the pipeline's overhead over bare Vosk.
    """
    from array import array

    if not path.is_file():
        raise AudioError("speech.audio.no_file", f"no such file: {path}", path=str(path))
    result = subprocess.run(
        [_ffmpeg("ffmpeg"), "-nostdin", "-v", "error", "-i", str(path), "-vn", "-ac", "2",
         "-ar", str(rate), "-f", "s16le", "-acodec", "pcm_s16le", "-"],
        capture_output=True, timeout=600)
    if result.returncode != 0:
        reason = result.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = reason[-1] if reason else "unknown error"
        raise AudioError("speech.audio.undecodable",
                         f"{path.name} is not a readable audio file ({detail})",
                         file=path.name, detail=detail)
    frames = array("h")
    frames.frombytes(result.stdout[:len(result.stdout) // 4 * 4])
    return [frames[0::2].tobytes(), frames[1::2].tobytes()]
