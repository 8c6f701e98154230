"""Two PBXs number their calls alike: stored apart, replayed idempotently, on SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from crm_core.calls.models import Call, CallLeg
from crm_core.db import create_engine, session_factory
from pbx_bridge.store import CallStore
from tests.support.db_fixtures import db_url_fixture  # noqa: F401
from tests.support.live import exported_calls, telecrm
from tests.support.scenarios import CAPTURES

CAPTURE = str(CAPTURES / "inbound_answered.ami")
LINKEDID = "1795462311.0"


async def rows(db_url: str) -> tuple[int, int]:
    """(calls, legs) stored."""
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            calls = await session.scalar(select(func.count()).select_from(Call))
            legs = await session.scalar(select(func.count()).select_from(CallLeg))
            return int(calls or 0), int(legs or 0)
    finally:
        await engine.dispose()


async def test_the_same_linkedid_on_two_pbxes_is_two_calls_and_replays_change_nothing(
        db_url: str) -> None:
    telecrm("users", "add", "ivanov", "--extension", "101", "--db", db_url)
    telecrm("pbx", "add", "spb", "--host", "10.0.2.15", "--user", "crm", "--secret", "x",
            "--db", db_url)
    telecrm("ami-replay", CAPTURE, "--db", db_url)  # main, as before there were PBXs
    telecrm("ami-replay", "--pbx", "spb", CAPTURE, "--db", db_url)
    calls = exported_calls(db_url)
    assert sorted((c["pbx"], c["linkedid"]) for c in calls) == [
        ("main", LINKEDID), ("spb", LINKEDID)], "the call JSON shows Asterisk's own linkedid"
    for call in calls:
        assert (call["status"], call["managers"]) == ("answered", ["101"])
    assert len({c["client_id"] for c in calls}) == 1, "one caller is one client"
    stored = await rows(db_url)
    assert stored[0] == 2 and stored[1] >= 4, "each call keeps its own legs"

    telecrm("ami-replay", "--pbx", "spb", CAPTURE, "--db", db_url)
    telecrm("ami-replay", CAPTURE, "--db", db_url)
    assert await rows(db_url) == stored
    assert exported_calls(db_url) == calls


async def test_a_replay_for_an_unknown_pbx_is_refused(db_url: str) -> None:
    result = telecrm("ami-replay", "--pbx", "kazan", CAPTURE, "--db", db_url, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == "telecrm: АТС «kazan» нет; список — telecrm pbx list."
    assert await rows(db_url) == (0, 0)


async def test_a_listener_closes_only_its_own_pbxs_orphans(db_url: str, tmp_path: Path) -> None:
    """A restarted listener of one PBX ends the calls that PBX left in progress, never the
    calls still going on at another PBX."""
    talking = tmp_path / "talking.ami"  # the capture cut before anyone hangs up
    talking.write_bytes(Path(CAPTURE).read_bytes().split(b"Event: Hangup")[0])
    capture = str(talking)
    telecrm("pbx", "add", "spb", "--host", "h", "--user", "u", "--secret", "x", "--db", db_url)
    telecrm("ami-replay", capture, "--db", db_url)
    telecrm("ami-replay", "--pbx", "spb", capture, "--db", db_url)
    engine = create_engine(db_url)
    try:
        store = CallStore(session_factory(engine, writer=True), pbx="spb")
        later = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
        assert await store.close_orphans(set(), later) == 1
        async with session_factory(engine)() as session:
            states = dict((await session.execute(select(Call.pbx, Call.status))).all())
    finally:
        await engine.dispose()
    assert states["main"] == "in_progress"
    assert states["spb"] != "in_progress"
