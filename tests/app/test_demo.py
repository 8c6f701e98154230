"""``make demo`` runs ``telecrm demo``: it must keep working for the next newcomer.

One run of the demo is checked for everything a newcomer sees: the call log it prints,
the call-tracking source of a call, and playable stereo recordings of answered calls.
"""

import json
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


def test_demo_logs_real_calls_and_keeps_their_recordings(sandbox, tmp_path: Path) -> None:
    # `sandbox` is requested so the root is built and known usable (skip/fail reason).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, TELECRM_DATA_DIR=str(tmp_path), TELECRM_HTTP_PORT=str(port))
    for name in ("TELECRM_DATABASE_URL", "TELECRM_RECORDINGS_STORE"):
        env.pop(name, None)
    result = subprocess.run([TELECRM, "demo", "--once"], capture_output=True, text=True,
                            env=env, timeout=240)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    rows = {line.split("  ")[1].strip(): line for line in out.splitlines()
            if line[:2].isdigit() and line[2] == ":"}
    assert set(rows) == {"ООО Ромашка", "ИП Сидоров", "АО Вектор", "ООО Северный ветер",
                         "+7 999 000-11-22"}
    assert "отвечен" in rows["ООО Ромашка"] and "101 Иван Петров" in rows["ООО Ромашка"]
    assert "исходящий" in rows["ИП Сидоров"] and "отвечен" in rows["ИП Сидоров"]
    assert "занято" in rows["АО Вектор"]
    assert "пропущен" in rows["ООО Северный ветер"]
    assert "Веб-приложение: http://" in out
    assert "Traceback" not in result.stderr

    # The demo's sales floor is set up: the call from a new number to the sales DID is
    # attributed to the static call-tracking number the demo seeds.
    export = subprocess.run([TELECRM, "calls", "export", "--format", "jsonl"],
                            capture_output=True, text=True, timeout=60,
                            env=dict(env, TELECRM_DATA_DIR=str(tmp_path / "demo")))
    assert export.returncode == 0, export.stderr
    calls = {c["client_number"]: c for c in map(json.loads, export.stdout.splitlines())}
    assert calls["+79990001122"]["tracking"]["channel"] == "Билборд на Садовом"
    assert calls["+79161234567"]["tracking"] is None  # a DID without tracking

    # Every answered demo call leaves a playable stereo recording in the demo's store.
    answered = sum(1 for line in out.splitlines() if line[:2].isdigit() and "отвечен" in line)
    assert answered == 3, out
    found = re.search(r"Записи разговоров \(сохранено (\d+)\): (\S+)", out)
    assert found, out
    assert int(found.group(1)) == answered
    store = Path(found.group(2))
    assert store == tmp_path / "demo" / "recordings"
    files = sorted(store.rglob("*.ogg"))
    assert len(files) == answered
    for path in files:
        channels, duration = probe(path)
        assert channels == 2 and duration > 1.5, (path, channels, duration)
        assert AudioSegment.from_file(path).dBFS > -50, f"{path} is silent"
