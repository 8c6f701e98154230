"""``make demo`` runs ``telecrm demo``: it must keep working for the next newcomer."""

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.support.live import TELECRM

pytestmark = pytest.mark.asterisk


def test_demo_places_real_calls_and_prints_the_call_log(sandbox, tmp_path: Path) -> None:
    # `sandbox` is requested so the root is built and known usable (skip/fail reason).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, TELECRM_DATA_DIR=str(tmp_path), TELECRM_HTTP_PORT=str(port))
    env.pop("TELECRM_DATABASE_URL", None)
    result = subprocess.run([TELECRM, "demo", "--once"], capture_output=True, text=True,
                            env=env, timeout=180)
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
