"""Recording file names as Asterisk gives them: absolute paths under the recordings source.

MixMonitor sets ``MIXMONITOR_FILENAME`` to the file's absolute path; unless the
dialplan also sets our ``CRM_REC_*`` names, that is the only name the CRM gets.
"""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath

import pytest
from sqlalchemy import select

from crm_core.calls.models import Call, Recording
from crm_core.calls.services import relative_recording_path
from crm_core.db import create_engine, session_factory
from pbx_bridge.replay import read_events, replay
from pbx_bridge.store import CallStore
from pbx_bridge.tracker import CallTracker
from telecrm.wiring import call_hooks
from tests.support.db_fixtures import db_url_fixture  # noqa: F401
from tests.support.handmade import write_capture
from tests.support.scenarios import CAPTURES, party_rules

ROOT = PurePosixPath("/var/spool/asterisk/monitor")
FREEPBX = ("2026/12/05/in-74951234567-101-20261205-101500-1733380000.123.wav",
           "2026/12/05/out-79161234567-101-20261205-101500-1733380001.124.wav",
           "2026/12/05/exten-101-102-20261205-101500-1733380002.125.wav")


@pytest.mark.parametrize("rel", FREEPBX)
def test_freepbx_dated_files_are_taken_relative_to_the_source(rel: str) -> None:
    assert relative_recording_path(f"{ROOT}/{rel}", ROOT) == rel
    assert relative_recording_path(f"{ROOT}//{rel}", f"{ROOT}/") == rel


@pytest.mark.parametrize("path", [
    "/etc/passwd",
    "/var/spool/asterisk/monitor/../../../etc/passwd",
    "/var/spool/asterisk/monitor/2026/../../x.wav",
    "/var/spool/asterisk/monitor-other/x.wav",  # a sibling sharing the prefix
    "/var/spool/asterisk/monitor",  # the root itself is no file
])
def test_paths_outside_the_source_stay_absolute_and_are_refused(path: str) -> None:
    assert relative_recording_path(path, ROOT) == path


def _asterisk_default(tmp_path: Path, value: str) -> Path:
    """inbound_answered as a PBX without our dialplan records it: only MixMonitor's name."""
    events = []
    for event in read_events(CAPTURES / "inbound_answered.ami"):
        event = dict(event)
        variable = event.get("Variable", "").lstrip("_")
        if event.get("Event") == "VarSet" and variable.startswith("CRM_REC"):
            continue
        if event.get("Event") == "VarSet" and variable == "MIXMONITOR_FILENAME":
            event["Value"] = value
        events.append(event)
    return write_capture(tmp_path / "default.ami", events)


async def _replayed(url: str, capture: Path) -> tuple[str, list[str]]:
    engine = create_engine(url)
    try:
        store = CallStore(session_factory(engine, writer=True), call_hooks(),
                          recordings_root=Path(str(ROOT)))
        await replay([capture], store, CallTracker(party_rules()))
        async with session_factory(engine)() as session:
            status = (await session.scalars(select(Call.status))).one()
            paths = list(await session.scalars(select(Recording.path)))
    finally:
        await engine.dispose()
    return status, paths


async def test_mixmonitor_absolute_name_under_the_source_is_the_calls_recording(
        db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    capture = _asterisk_default(tmp_path, f"{ROOT}/{FREEPBX[0]}")
    with caplog.at_level(logging.WARNING):
        assert await _replayed(db_url, capture) == ("answered", [FREEPBX[0]])
    assert "not relative to the recordings root" not in caplog.text


async def test_a_name_outside_the_source_is_refused_but_the_call_kept(
        db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    capture = _asterisk_default(tmp_path, f"{ROOT}/../../../etc/passwd")
    with caplog.at_level(logging.WARNING):
        assert await _replayed(db_url, capture) == ("answered", [])
    assert "not relative to the recordings root" in caplog.text
