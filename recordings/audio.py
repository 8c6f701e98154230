"""Audio checks, speaker activity and the stereo encode (pydub for analysis, ffmpeg to encode)."""

from __future__ import annotations

import audioop  # noqa: RUF100 -- deprecated in 3.13; pydub uses it as well
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pydub import AudioSegment

FORMATS = {  # name: (file suffix, content type, ffmpeg codec arguments)
    "opus": (".ogg", "audio/ogg", ["-c:a", "libopus", "-b:a", "24k", "-application", "voip"]),
    "mp3": (".mp3", "audio/mpeg", ["-c:a", "libmp3lame", "-b:a", "32k"]),
}
SILENT_DBFS = -55.0  # quieter than this overall: nobody said anything (or a dead line)
ACTIVE_DBFS = -42.0  # a 100 ms window louder than this counts as speech
WINDOW_MS = 100
# Encoding waits a few seconds gladly; the pages and the call listener on the same cores
# must not. ffmpeg runs at a lower priority (30 concurrent calls end ~1.5 recordings a
# second, over half a core of encoding).
BACKGROUND_NICENESS = 10
# Linux schedules processes by session first (autogroup, on by default): a nice value
# weighs only against the processes of the same session. So ffmpeg starts a session of
# its own and nices that session's group too; niced only, it would still take a full
# share against each web process and the PBX, yielding to nobody but the listener.
_NICE_OWN_GROUP = f'echo {BACKGROUND_NICENESS} > /proc/self/autogroup 2>/dev/null; exec "$@"'


def in_background(cmd: list[str]) -> list[str]:
    """``cmd`` at a lower CPU priority: niced, in a niced scheduling group of its own
    (run it with ``start_new_session=True``, as :func:`run_in_background` does)."""
    nice = shutil.which("nice")
    niced = [nice, "-n", str(BACKGROUND_NICENESS), *cmd] if nice else cmd
    sh = shutil.which("sh")
    return [sh, "-c", _NICE_OWN_GROUP, "sh", *niced] if sh else niced


def run_in_background(cmd: list[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` to its end at a lower CPU priority (:func:`in_background`), output kept."""
    return subprocess.run(in_background(cmd), capture_output=True, text=True, timeout=timeout,
                          start_new_session=True)


class AudioError(RuntimeError):
    """A file that cannot be decoded or encoded."""


@dataclass(frozen=True)
class Side:
    name: str  # manager, client, caller, callee, mixed
    segment: AudioSegment

    @property
    def duration(self) -> float:
        return len(self.segment) / 1000


def load(name: str, path: Path) -> Side:
    """Decode a WAV (pydub), so a broken file fails here, before anything is stored."""
    try:
        return Side(name, AudioSegment.from_wav(str(path)))
    except Exception as exc:  # pydub raises many kinds for a bad file
        raise AudioError(f"{path.name}: cannot decode ({exc})") from exc


def is_silent(sides: list[Side]) -> bool:
    return all(s.segment.dBFS == float("-inf") or s.segment.dBFS < SILENT_DBFS for s in sides)


def activity(side: Side) -> list[list[float]]:
    """Speech segments [start, end] (s): 100 ms windows above ACTIVE_DBFS, short gaps merged.

    Computed once at finalize and stored, so the player draws the time line without
    decoding audio.
    """
    seg = side.segment.set_channels(1)
    raw, width, rate = seg.raw_data, seg.sample_width, seg.frame_rate
    step = rate * width * WINDOW_MS // 1000
    full_scale = float(1 << (8 * width - 1))
    threshold = full_scale * 10 ** (ACTIVE_DBFS / 20)
    spans: list[list[float]] = []
    for i in range(0, len(raw) - step + 1, step):
        if audioop.rms(raw[i:i + step], width) >= threshold:
            start, end = i / (rate * width), (i + step) / (rate * width)
            if spans and start - spans[-1][1] < 0.4:
                spans[-1][1] = end
            else:
                spans.append([start, end])
    return [[round(a, 2), round(b, 2)] for a, b in spans if b - a >= 0.2]


def encode(inputs: list[Path], out: Path, audio_format: str, duration: float) -> None:
    """One ffmpeg run: two sides become left/right of a stereo file (one side: mono).

    The shorter side is padded with silence, so both speakers stay on one time line.
    """
    _, _, codec = FORMATS[audio_format]
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
    for path in inputs:
        cmd += ["-i", str(path)]
    if len(inputs) == 2:
        cmd += ["-filter_complex",
                "[0:a]apad[l];[1:a]apad[r];[l][r]amerge=inputs=2,"
                "aformat=channel_layouts=stereo[a]", "-map", "[a]"]
    cmd += ["-t", f"{duration:.3f}", *codec, "-f", "ogg" if audio_format == "opus" else "mp3",
            str(out)]
    result = run_in_background(cmd, timeout=600)
    if result.returncode != 0:
        raise AudioError(f"ffmpeg failed: {result.stderr.strip()[-300:]}")


def probe_duration(path: Path) -> float:
    """Duration of the encoded file as ffprobe reads it (the check after encoding)."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=60)
    try:
        return float(json.loads(result.stdout)["format"]["duration"])
    except (ValueError, KeyError, TypeError) as exc:
        raise AudioError(f"ffprobe cannot read {path.name}") from exc
