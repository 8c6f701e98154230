"""CPU per live call of live prompts (issue 19): the real AudioSocket server and recognizers.

Stand-ins for Asterisk stream ``--calls`` calls, two sides each, in real time (20 ms
AudioSocket frames of 8 kHz speech: espeak-ng Korean for the packaged test model, or any
8 kHz WAV given with ``--wav``) to :class:`telecrm.live_prompts.LivePrompts`, which
recognises every side and matches a script, as ``telecrm serve`` does. Prints the CPU of
the process (all threads) per call, as a share of one core, with and without recognition
(the socket and the parser alone), the audio dropped because recognition fell behind, and
how late each side's recognition ran behind its audio.

    PYTHONPATH=. python bench/live_prompts.py --calls 1 --seconds 30
    PYTHONPATH=. python bench/live_prompts.py --calls 2 --seconds 30 --threads 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from pbx_bridge.audiosocket import encode, encode_id
from speech.live import LiveScript
from speech.model import packaged_model_dir
from speech.script import parse_script_text
from telecrm.bus import InProcessBus
from telecrm.live_prompts import LivePrompts, _LiveCall, _Tap
from telecrm.settings import Settings

FRAME = 320  # 20 ms of 8 kHz 16-bit audio, as Asterisk sends it
SCRIPT = """\
name: bench
stages:
  - {id: a, title: A, phrases: ["какие задачи", "안녕하세요"]}
  - {id: b, title: B, phrases: ["давайте посчитаем"]}
objections:
  - {id: x, title: Дорого, say: ["..."]}
"""


def speech_pcm(wav: str | None) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        source = wav
        if source is None:
            source = f"{tmp}/s.wav"
            subprocess.run(["espeak-ng", "-v", "ko", "-s", "130", "-w", source,
                            "안녕하세요 저는 회사에서 전화드렸습니다 가격이 너무 비싸요"],
                           check=True)
        return subprocess.run(["sox", source, "-r", "8000", "-c", "1", "-b", "16", "-e",
                               "signed-integer", "-t", "raw", "-", "pad", "0", "1.5"],
                              check=True, capture_output=True).stdout


async def stream(port: int, stream_id: str, pcm: bytes, seconds: float) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(encode_id(stream_id))
    start = time.monotonic()
    sent = 0
    while sent * 0.02 < seconds:
        offset = (sent * FRAME) % (len(pcm) - FRAME)
        writer.write(encode(0x10, pcm[offset:offset + FRAME]))
        sent += 1
        await writer.drain()
        await asyncio.sleep(max(0.0, start + sent * 0.02 - time.monotonic()))
    writer.write(encode(0x00))
    await writer.drain()
    writer.close()


async def run(calls: int, seconds: float, threads: int, recognise: bool,
              pcm: bytes) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), live_prompts=True, live_listen="127.0.0.1:0",
                            live_threads=threads,
                            vosk_model=str(packaged_model_dir() or ""))
        prompts = LivePrompts(settings, InProcessBus(), None)  # type: ignore[arg-type]
        if not recognise:  # no model: the audio is parsed and dropped
            async def no_model() -> None:
                return None
            setattr(prompts, "_load_model", no_model)  # noqa: B010
        await prompts.start()
        try:
            for _ in range(6000 if recognise else 0):  # the model loads in the background
                if prompts.model is not None:
                    break
                await asyncio.sleep(0.1)
            script = parse_script_text(SCRIPT)
            senders = []
            lives = []
            for n in range(calls):
                call = _LiveCall(key=f"bench.{n}", pbx="main", extension="101",
                                 managers=["101"], direction="inbound", queue=None,
                                 script=LiveScript(script))
                lives.append(call)
                for side in ("manager", "client"):
                    sid = str(uuid.uuid4())
                    prompts._taps[sid] = _Tap(call, side, f"PJSIP/x-{n}")
                    shift = (len(pcm) // 3) * (side == "client")
                    senders.append(stream(prompts.port, sid, pcm[shift:] + pcm[:shift], seconds))
            before = resource.getrusage(resource.RUSAGE_SELF)
            wall = time.monotonic()
            await asyncio.gather(*senders)
            await asyncio.sleep(0.5)  # the last chunks
            wall = time.monotonic() - wall
            after = resource.getrusage(resource.RUSAGE_SELF)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            audio = sum(s.seconds for c in lives for s in c.sides.values())
            behind = [seconds - side.seconds for call in lives for side in call.sides.values()]
            return {"calls": calls, "seconds": round(wall, 1), "cpu_seconds": round(cpu, 2),
                    "core_per_call": round(cpu / wall / calls, 3),
                    "dropped_audio_seconds": round(prompts.dropped_seconds, 2),
                    "recognised_audio_seconds": round(sum(
                        s.seconds for c in lives for s in c.sides.values()), 1),
                    "max_behind_seconds": round(max(behind), 2) if behind else None,
                    "cpu_per_audio_second": round(cpu / audio, 3) if audio else None,
                    "events_published": prompts.published}
        finally:
            await prompts.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--wav", help="8 kHz speech to stream (default: espeak-ng Korean)")
    args = parser.parse_args()
    pcm = speech_pcm(args.wav)
    base = asyncio.run(run(args.calls, args.seconds, args.threads, False, pcm))
    print("socket + parser only:", base)
    full = asyncio.run(run(args.calls, args.seconds, args.threads, True, pcm))
    print("with recognition and script matching:", full)
    print(f"CPU per live call: {full['core_per_call'] * 100:.0f}% of one core measured "
          f"({base['core_per_call'] * 100:.1f}% for the socket and the parser alone); "
          f"audio dropped {full['dropped_audio_seconds']} s of "
          f"{2 * args.calls * args.seconds:.0f} s; per second of audio recognised "
          f"{full['cpu_per_audio_second']:.3f} CPU s, i.e. "
          f"{2 * full['cpu_per_audio_second'] * 100:.0f}% of a core for a call with both "
          f"sides recognised in full; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
