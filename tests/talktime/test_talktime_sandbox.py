"""Talk-time counting rules on calls placed now on the sandbox Asterisk.

Each scenario of ``tests/support/scenarios.py`` runs for real (SIP phones, AMI listener); its
fresh raw capture goes through the same pipeline as ``telecrm ami-replay`` and the
day's talk time must follow the rule: internal calls, spy legs and hold do not
count, a transfer gives each manager his own part, midnight splits a call.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from crm_core.calls.models import CallLeg
from tests.support.db_fixtures import Engines, engines_fixture, migrated  # noqa: F401
from tests.support.scenarios import record
from tests.talktime.test_talktime_replay import TZ, _day_of, _legs, _row, _setup, _shifted_capture

pytestmark = pytest.mark.asterisk


async def _placed(sandbox, name: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    capture = tmp_path / f"{name}.ami"
    await record(sandbox, name, capture)
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await migrated(url)
    return capture, url


async def test_internal_call_is_not_talk(sandbox, tmp_path: Path, engines: Engines) -> None:
    capture, url = await _placed(sandbox, "internal", tmp_path)
    sessions = await _setup(engines, url, capture)
    async with sessions() as session:
        legs = list(await session.scalars(select(CallLeg)))
        day = legs[0].started_at.astimezone(TZ).date()
        assert any(x.talk_seconds > 0 for x in legs)  # they did talk, to each other
        for ext in ("101", "102"):
            assert (await _row(session, ext, day))["talk_seconds"] == 0


async def test_blind_transfer_splits_between_managers(
        sandbox, tmp_path: Path, engines: Engines) -> None:
    capture, url = await _placed(sandbox, "blind_transfer", tmp_path)
    sessions = await _setup(engines, url, capture)
    async with sessions() as session:
        day = await _day_of(session, "101")
        r101, r102 = await _row(session, "101", day), await _row(session, "102", day)
    assert 1 <= r101["talk_seconds"] <= 4  # 101 talked ~2 s before transferring
    assert 4 <= r102["talk_seconds"] <= 9  # 102 has the rest of the 8 s
    assert r101["calls"] == r102["calls"] == 1


async def test_spy_and_hold_are_not_talk(sandbox, tmp_path: Path, engines: Engines) -> None:
    capture, url = await _placed(sandbox, "spy", tmp_path)
    sessions = await _setup(engines, url, capture)
    async with sessions() as session:
        day = await _day_of(session, "101")
        assert (await _row(session, "201", day))["talk_seconds"] == 0
        assert (await _row(session, "101", day))["talk_seconds"] > 3
    held = tmp_path / "hold"
    held.mkdir()
    capture, url = await _placed(sandbox, "hold", held)
    sessions = await _setup(engines, url, capture)
    async with sessions() as session:
        (leg,) = await _legs(session, "101")
        row = await _row(session, "101", await _day_of(session, "101"))
    wall = (leg.ended_at - leg.bridged_at).total_seconds()  # type: ignore[operator]
    assert leg.hold_seconds >= 2 and row["talk_seconds"] <= wall - 2


async def test_midnight_split_of_a_fresh_call(sandbox, tmp_path: Path, engines: Engines) -> None:
    capture, url = await _placed(sandbox, "inbound_answered", tmp_path)
    shifted = tmp_path / "midnight.ami"
    _shifted_capture(capture, shifted, "101")
    sessions = await _setup(engines, url, shifted)
    async with sessions() as session:
        (leg,) = await _legs(session, "101")
        day = leg.bridged_at.astimezone(TZ).date()  # type: ignore[union-attr]
        before = await _row(session, "101", day)
        after = await _row(session, "101", day + timedelta(days=1))
    assert before["talk_seconds"] == pytest.approx(leg.talk_seconds / 2, abs=0.05)
    assert after["talk_seconds"] == pytest.approx(leg.talk_seconds / 2, abs=0.05)
