"""Transcribe call recordings with Vosk into the fixed transcript shape.

Each leg is transcribed from its own file (``…-manager.wav``, ``…-client.wav``):
a mixed recording loses accuracy to crosstalk and hides who said what.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speech.audio import decode_channels, decode_pcm16
from speech.model import LoadedModel

CHUNK_SECONDS = 0.5
SIDES = ("manager", "client")


def side_of(path: Path) -> str:
    """The speaker a file holds, from MixMonitor's naming; ``mixed`` for a mono mix."""
    stem = path.stem.lower()
    for side in SIDES:
        if stem.endswith(f"-{side}") or stem.endswith(f"_{side}"):
            return side
    return "mixed"


@dataclass(frozen=True)
class Leg:
    """One speaker's audio: a file, or one channel of a stereo file (0 left, 1 right)."""

    side: str
    path: Path
    channel: int | None = None


def recognize_words(model: LoadedModel, path: Path,
                    channel: int | None = None) -> tuple[list[dict[str, Any]], float]:
    """Words with start, end and confidence, and the audio's duration in seconds."""
    return recognize_pcm(model, decode_pcm16(path, model.sample_rate, channel=channel))


def recognize_pcm(model: LoadedModel, pcm: bytes) -> tuple[list[dict[str, Any]], float]:
    """Words of mono 16-bit PCM at the model's rate, and its duration in seconds."""
    from vosk import KaldiRecognizer

    rate = model.sample_rate
    recognizer = KaldiRecognizer(model.vosk, rate)
    recognizer.SetWords(True)
    words: list[dict[str, Any]] = []
    step = int(rate * CHUNK_SECONDS) * 2
    for offset in range(0, len(pcm), step):
        if recognizer.AcceptWaveform(pcm[offset:offset + step]):
            words.extend(_words(recognizer.Result()))
    words.extend(_words(recognizer.FinalResult()))
    return words, len(pcm) / 2 / rate


def _words(result_json: str) -> list[dict[str, Any]]:
    result = json.loads(result_json)
    return [{"word": w["word"], "start": round(float(w["start"]), 3),
             "end": round(float(w["end"]), 3), "conf": round(float(w.get("conf", 1.0)), 3)}
            for w in result.get("result", [])]


def transcribe_files(model: LoadedModel, paths: Iterable[Path]) -> dict[str, Any]:
    """One transcript for one call's files; two files of the same side are concatenated."""
    return transcribe_legs(model, [Leg(side_of(path), path) for path in paths])


def transcribe_legs(model: LoadedModel, legs: Iterable[Leg]) -> dict[str, Any]:
    """One transcript for one call's legs (files or channels), each side on its own."""
    speakers: dict[str, list[dict[str, Any]]] = {}
    duration = 0.0
    channels: dict[Path, list[bytes]] = {}  # a stereo file is decoded once for both sides
    for leg in legs:
        if leg.channel is None:
            words, seconds = recognize_words(model, leg.path)
        else:
            if leg.path not in channels:
                channels[leg.path] = decode_channels(leg.path, model.sample_rate)
            words, seconds = recognize_pcm(model, channels[leg.path][leg.channel])
        speakers.setdefault(leg.side, []).extend(words)
        duration = max(duration, seconds)
    for words in speakers.values():
        words.sort(key=lambda w: w["start"])
    return {"duration": round(duration, 2), "model": model.name, "speakers": speakers}
