"""``make demo`` leaves playable recordings: every answered demo call finalized to stereo."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest
from pydub import AudioSegment

from tests.recordings.test_recordings_e2e import probe
from tests.support.live import TELECRM

pytestmark = pytest.mark.asterisk


def test_demo_calls_produce_playable_recordings(sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, TELECRM_DATA_DIR=str(tmp_path), TELECRM_HTTP_PORT=str(port))
    for name in ("TELECRM_DATABASE_URL", "TELECRM_RECORDINGS_STORE"):
        env.pop(name, None)
    result = subprocess.run([TELECRM, "demo", "--once"], capture_output=True, text=True,
                            env=env, timeout=240)
    assert result.returncode == 0, result.stderr
    answered = sum(1 for line in result.stdout.splitlines()
                   if line[:2].isdigit() and "отвечен" in line)
    assert answered == 3, result.stdout
    found = re.search(r"Записи разговоров \(сохранено (\d+)\): (\S+)", result.stdout)
    assert found, result.stdout
    assert int(found.group(1)) == answered
    store = Path(found.group(2))
    assert store == tmp_path / "demo" / "recordings"
    files = sorted(store.rglob("*.ogg"))
    assert len(files) == answered
    for path in files:
        channels, duration = probe(path)
        assert channels == 2 and duration > 1.5, (path, channels, duration)
        assert AudioSegment.from_file(path).dBFS > -50, f"{path} is silent"
