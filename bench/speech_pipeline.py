"""Our transcription pipeline against bare Vosk on the same files, and worker throughput.

Calls as the recordings feature stores them (stereo Ogg Opus: the manager on the
left, the client on the right; espeak-ng Korean speech at telephone 8 kHz, since the
packaged model is Korean). In the same run, alternating, best of ``--runs``:

- **bare Vosk**: PCM decoded beforehand (not timed), one ``KaldiRecognizer`` per
  side fed 0.5 s chunks with ``SetWords(True)``: the floor no pipeline can beat;
- **pipeline**: ``speech.sources.call_legs`` + ``speech.transcribe.transcribe_legs``
  from the stored file (ffmpeg channel split and resampling, recognition, word
  shaping): what a worker does per call minus the database.

Overhead = pipeline / bare - 1 (target < 5 %). Then throughput (audio hours per
wall hour) of the whole set with 1 and 2 worker processes, each with its own model
(loaded before the clock starts). Run:

    .venv/bin/python -m bench.speech_pipeline [--calls 3] [--runs 2] [--model DIR]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from speech.audio import decode_pcm16
from speech.model import LoadedModel, load_model, resolve_model_dir
from speech.sources import call_legs
from speech.transcribe import CHUNK_SECONDS, transcribe_legs

MANAGER = "안녕하세요 저는 회사에서 전화드렸습니다 저희 제품을 소개해 드리고 싶습니다"
CLIENT = "네 말씀하세요 오늘 시간 괜찮습니다 감사합니다"


def make_call(directory: Path, n: int) -> Path:
    """A stored-style stereo call: manager left, client right, 30 s, 8 kHz source."""
    sides = []
    for side, text, pitch in (("m", MANAGER, 50), ("c", CLIENT, 80)):
        raw = directory / f"{n}{side}.raw.wav"
        subprocess.run(["espeak-ng", "-v", "ko", "-s", str(120 + 5 * n), "-p", str(pitch),
                        "-w", str(raw), f"{text} {text}"], check=True)
        sides.append(raw)
    out = directory / f"call{n}.ogg"
    # the client answers after the manager's first sentence: delay the right channel 6 s
    length = 30
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(sides[0]), "-i",
                    str(sides[1]), "-filter_complex",
                    f"[0:a]aresample=8000,apad=whole_dur={length}[l];"
                    f"[1:a]aresample=8000,adelay=6000,apad=whole_dur={length}[r];"
                    "[l][r]join=inputs=2:channel_layout=stereo[a]", "-map", "[a]",
                    "-c:a", "libopus", "-b:a", "24k", str(out)], check=True)
    for raw in sides:
        raw.unlink()
    return out


def stored(path: Path) -> dict[str, Any]:
    return {"status": "stored", "key": path.name, "channels": 2,
            "sides": ["manager", "client"], "direction": "inbound"}


class _Dir:
    """The directory store's read side (recordings.store.DirectoryStore.path)."""

    name = "directory"

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path | None:
        return self.root / key


def pipeline(model: LoadedModel, files: list[Path]) -> float:
    """Seconds for our path over every file."""
    t0 = time.perf_counter()
    for path in files:
        with call_legs(path.parent, [], stored(path), _Dir(path.parent)) as legs:  # type: ignore[arg-type]
            transcribe_legs(model, legs)
    return time.perf_counter() - t0


def bare(model: LoadedModel, pcms: list[bytes]) -> float:
    """Seconds for Vosk alone on the same audio (already decoded)."""
    from vosk import KaldiRecognizer

    rate = model.sample_rate
    step = int(rate * CHUNK_SECONDS) * 2
    t0 = time.perf_counter()
    for pcm in pcms:
        recognizer = KaldiRecognizer(model.vosk, rate)
        recognizer.SetWords(True)
        for offset in range(0, len(pcm), step):
            if recognizer.AcceptWaveform(pcm[offset:offset + step]):
                recognizer.Result()
        recognizer.FinalResult()
    return time.perf_counter() - t0


def _worker(model_dir: str, files: list[str], ready: Any, go: Any, out: Any) -> None:
    model = load_model(Path(model_dir))
    ready.wait()
    go.wait()
    out.put(pipeline(model, [Path(f) for f in files]))


def throughput(model_dir: Path, files: list[Path], processes: int) -> float:
    """Wall seconds for the whole set split over ``processes`` workers (model preloaded)."""
    ctx = mp.get_context("spawn")
    ready, go, out = ctx.Barrier(processes + 1), ctx.Barrier(processes + 1), ctx.Queue()
    shares = [[str(f) for f in files[i::processes]] for i in range(processes)]
    procs = [ctx.Process(target=_worker, args=(str(model_dir), share, ready, go, out))
             for share in shares]
    for p in procs:
        p.start()
    ready.wait()
    t0 = time.perf_counter()
    go.wait()
    for _ in procs:
        out.get()
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    model_dir = resolve_model_dir(args.model)
    model = load_model(model_dir)
    with tempfile.TemporaryDirectory(prefix="telecrm-bench-") as tmp:
        files = [make_call(Path(tmp), n) for n in range(args.calls)]
        pcms = [decode_pcm16(f, model.sample_rate, channel=c) for f in files for c in (0, 1)]
        audio = sum(len(p) for p in pcms) / 2 / model.sample_rate  # both sides, seconds
        call_seconds = audio / 2
        print(f"model {model.name} ({model.sample_rate} Hz); {len(files)} stereo calls, "
              f"{call_seconds:.0f} s of calls = {audio:.0f} s of speech sides")
        best_bare = best_pipe = float("inf")
        for _ in range(args.runs):  # alternate so a neighbour's load hits both alike
            best_bare = min(best_bare, bare(model, pcms))
            best_pipe = min(best_pipe, pipeline(model, files))
        print(f"bare Vosk: {best_bare:.2f} s, RTF {best_bare / audio:.3f} per side-second")
        print(f"pipeline:  {best_pipe:.2f} s, RTF {best_pipe / audio:.3f} per side-second")
        print(f"overhead:  {best_pipe / best_bare - 1:+.1%} (target < 5 %)")
        for n in (1, 2):
            wall = throughput(model_dir, files, n)
            print(f"{n} worker process{'es' if n > 1 else ''}: {wall:.2f} s wall, "
                  f"{call_seconds / wall:.1f} call-seconds per second "
                  f"({call_seconds / 3600 / wall * 3600:.1f} call-hours per hour)")


if __name__ == "__main__":
    main()
