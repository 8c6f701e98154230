"""Transcription speed (real-time factor) and the effect of the telephone rate.

Speaks a Korean sentence with espeak-ng, stores it at 22.05 kHz and at 8 kHz
(telephony, upsampled to the model's 16 kHz by ffmpeg), and reports for each:
the RTF (processing seconds per audio second, one recognizer, one core) and a
character error rate against the spoken text. Run:

    .venv/bin/python -m bench.speech_rtf [--model DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from rapidfuzz.distance import Levenshtein

from speech.model import load_model, resolve_model_dir
from speech.transcribe import recognize_words

TEXT = ("안녕하세요 저는 회사에서 전화드렸습니다 오늘 시간 괜찮으세요 "
        "저희 제품을 소개해 드리고 싶습니다 감사합니다")
REPEATS = 3


def cer(heard: str, said: str) -> float:
    a, b = heard.replace(" ", ""), said.replace(" ", "")
    return Levenshtein.distance(a, b) / max(1, len(b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    args = parser.parse_args()
    started = time.perf_counter()
    model = load_model(resolve_model_dir(args.model))
    print(f"model {model.name} ({model.sample_rate} Hz) loaded in "
          f"{time.perf_counter() - started:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(["espeak-ng", "-v", "ko", "-s", "130", "-w", str(raw), TEXT], check=True)
        for rate in (22050, 8000):
            path = Path(tmp) / f"s{rate}.wav"
            subprocess.run(["sox", str(raw), "-r", str(rate), str(path)], check=True)
            best = float("inf")
            for _ in range(REPEATS):
                t0 = time.perf_counter()
                words, seconds = recognize_words(model, path)
                best = min(best, time.perf_counter() - t0)
            text = " ".join(w["word"] for w in words)
            print(f"{rate:>5} Hz: {seconds:.1f} s audio, RTF {best / seconds:.2f} (best of "
                  f"{REPEATS}), CER {cer(text, TEXT):.0%}, {len(words)} words: {text}")


if __name__ == "__main__":
    main()
