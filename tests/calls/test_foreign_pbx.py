"""A PBX that Telecrm did not configure: every scenario placed for real, live and by replay.

The foreign sandbox profile (``asterisk_conf/templates/foreign/``, scenarios in
``tests/support/foreign.py``) is a FreePBX-style Asterisk: no ``CRM_*`` variables,
no ``timestampevents``, phones ``PJSIP/ivanov``, ``PJSIP/102-yealink``,
``PJSIP/150010003``, ring groups and follow-me through Local channels, the mobile
reached over the trunk, ``*8`` pickup, ``##``/``*2`` transfers from the phone,
FreePBX recording names. The CRM knows only what an administrator told it: the
users' devices and mobiles, the trunk's name and the recordings folder.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from asterisk_conf.foreign import FOREIGN_PHONES, render_foreign_config
from asterisk_conf.sandbox import SandboxUnavailable, sandbox_root
from crm_core.calls.models import Call
from crm_core.calls.snapshot import CallData, LegData
from crm_core.db import create_engine, session_factory
from telecrm.settings import Settings
from telecrm.wiring import party_rules
from tests.support.db_fixtures import db_url_fixture  # noqa: F401
from tests.support.foreign import (
    CLIENT,
    CLIENT_B,
    DID_FOLLOWME,
    DID_GROUP,
    DID_IVANOV,
    DID_SIDOROV,
    FOREIGN_CAPTURES,
    RING_TIMEOUT,
    SCENARIOS,
    SUPERVISOR,
    foreign_rules,
    record_options,
    start_sandboxes,
    user_commands,
)
from tests.support.live import exported_calls, telecrm
from tests.support.sandbox_fixtures import skip_or_fail_unavailable
from tests.support.scenarios import Recorded, ended_calls, record_many, replay_capture

TOL = 1.0
# FreePBX's names: <monitor>/YYYY/MM/DD/in-<did>-<caller>-<YYYYMMDD>-<HHMMSS>-<uniqueid>.wav
_REC = re.compile(r"^(?P<root>/.+/monitor)/(?P<date>\d{4}/\d\d/\d\d)/"
                  r"(?P<dir>in|out)-(?P<number>\d+)-(?P<who>[\w]+)-\d{8}-\d{6}-[\d.]+\.wav$")


def near(value: float, expected: float, tol: float = TOL) -> bool:
    return abs(value - expected) <= tol


def one(calls: list[CallData]) -> CallData:
    assert len(calls) == 1, [(c.linkedid, c.direction, c.status) for c in calls]
    return calls[0]


def leg(call: CallData, extension: str) -> LegData:
    found = [x for x in call.legs if x.extension == extension and x.answered_at is not None]
    assert len(found) == 1, [(x.channel, x.extension) for x in call.legs]
    return found[0]


def recorded(call: CallData, direction: str, number: str, who: str) -> None:
    """One FreePBX-style file, with its absolute path as Asterisk announced it."""
    (path,) = call.recordings
    match = _REC.match(path)
    assert match, path
    assert (match["dir"], match["number"], match["who"]) == (direction, number, who), path


def answered_inbound(call: CallData, did: str, managers: tuple[str, ...], talk: float,
                     client: str = CLIENT) -> None:
    assert (call.direction, call.status) == ("inbound", "answered"), call
    assert call.client_number == client and call.did == did
    assert call.managers == managers
    assert near(call.talk_seconds, talk), call.talk_seconds
    # Local channels of ring groups and follow-me are never parties.
    assert {x.role for x in call.legs} <= {"client", "manager"}
    recorded(call, "in", did, client)


# ---------------------------------------------------------------- the checks


def check_inbound_answered(calls: list[CallData]) -> None:
    call = one(calls)
    answered_inbound(call, DID_IVANOV, ("101",), 4)
    assert near(call.ring_seconds, 1) and not call.transferred
    assert leg(call, "101").channel.startswith("PJSIP/ivanov-")


def check_ring_group(calls: list[CallData]) -> None:
    call = one(calls)
    answered_inbound(call, DID_GROUP, ("102",), 3)
    assert set(call.rang) == {"101", "102"}
    assert leg(call, "102").channel.startswith("PJSIP/102-yealink-")


def check_missed(calls: list[CallData]) -> None:
    call = one(calls)
    assert (call.direction, call.status) == ("inbound", "missed"), call
    assert call.client_number == CLIENT and call.did == DID_IVANOV
    assert call.managers == () and call.talk_seconds == 0 and call.rang == ("101",)
    assert near(call.ring_seconds, RING_TIMEOUT)
    assert call.recordings == ()


def check_outbound(calls: list[CallData]) -> None:
    call = one(calls)
    assert (call.direction, call.status) == ("outbound", "answered"), call
    assert call.client_number == CLIENT_B and call.managers == ("101",)
    assert near(call.talk_seconds, 3) and near(call.ring_seconds, 1)
    recorded(call, "out", CLIENT_B, "101")


def check_followme_mobile(calls: list[CallData]) -> None:
    call = one(calls)
    answered_inbound(call, DID_FOLLOWME, ("104",), 5)
    assert near(call.ring_seconds, 2)
    mobile = leg(call, "104")  # his answer on the mobile, over the trunk
    assert mobile.channel.startswith("PJSIP/beeline-") and near(mobile.talk_seconds, 5)


def check_pickup(calls: list[CallData]) -> None:
    call = one(calls)
    answered_inbound(call, DID_SIDOROV, ("102",), 4)
    assert "103" in call.rang and not call.transferred
    assert near(call.ring_seconds, 2.5, 1.5)


def check_blind_transfer(calls: list[CallData]) -> None:
    call = one(calls)
    # 2 s with Ivanov and ~0.5 s of keys (## 102: the client on hold), 1 s ringing
    # Petrov, then Petrov until the client hangs up 8 s after the answer.
    answered_inbound(call, DID_IVANOV, ("101", "102"), 8 - 1 - leg(call, "101").hold_seconds)
    assert call.transferred
    first, second = leg(call, "101"), leg(call, "102")
    assert near(first.talk_seconds + first.hold_seconds, 2.8)
    assert near(second.talk_seconds, 8 - 2.8 - 1)
    assert near(call.talk_seconds, first.talk_seconds + second.talk_seconds, 0.01)


def check_attended_transfer(calls: list[CallData]) -> None:
    call = one(calls)
    first, second = leg(call, "101"), leg(call, "102")
    # 2 s with Ivanov, keys and 3.5 s of consultation (never client talk), then Petrov.
    answered_inbound(call, DID_IVANOV, ("101", "102"), first.talk_seconds + second.talk_seconds)
    assert call.transferred
    assert near(first.talk_seconds, 2.3)
    assert near(second.talk_seconds, 11 - 2.3 - 0.5 - 3.5 - 0.3)
    assert second.bridged_at is not None and first.bridged_at is not None
    assert second.bridged_at > first.bridged_at


def check_withheld(calls: list[CallData]) -> None:
    call = one(calls)
    assert (call.direction, call.status, call.managers) == ("inbound", "answered", ("101",))
    assert near(call.talk_seconds, 3)
    recorded(call, "in", DID_IVANOV, "anonymous")


def check_click_to_call(calls: list[CallData]) -> None:
    """Originated on PJSIP/ivanov into from-internal: his outbound call, recorded."""
    call = one(calls)
    assert (call.direction, call.status) == ("outbound", "answered"), call
    assert call.client_number == CLIENT_B and call.managers == ("101",)
    assert near(call.talk_seconds, 3) and near(call.ring_seconds, 2)  # his phone, then the client
    assert leg(call, "101").channel.startswith("PJSIP/ivanov-")
    recorded(call, "out", CLIENT_B, CLIENT_B)  # FreePBX names it by the originate's caller ID


def check_listen_in(calls: list[CallData]) -> None:
    """The supervisor's phone PJSIP/150010005 listened in: never a party, never talk."""
    call = one(calls)
    assert (call.direction, call.status, call.managers) == ("inbound", "answered", ("101",))
    assert near(call.talk_seconds, 7) and near(leg(call, "101").talk_seconds, 7)
    (spy,) = [x for x in call.legs if x.extension == SUPERVISOR]
    assert spy.role == "supervisor" and spy.talk_seconds == 0 and spy.bridged_at is None
    assert spy.channel.startswith("PJSIP/150010005-")
    recorded(call, "in", DID_IVANOV, CLIENT)


CHECKS: dict[str, Callable[[list[CallData]], None]] = {
    name: globals()[f"check_{name}"] for name in SCENARIOS
}


def test_checks_cover_every_scenario() -> None:
    assert set(CHECKS) == set(SCENARIOS)
    assert {p.stem for p in FOREIGN_CAPTURES.glob("*.ami")} == set(SCENARIOS)


def test_the_profile_is_not_ours() -> None:
    """No CRM variable in its dialplan or its captures, no timestampevents in its AMI
    (the Timestamp headers of the captures are the listener's receipt stamps)."""
    files = render_foreign_config(
        ami_port=5038, ami_user="crm", ami_secret="x", sip_port=5060, carrier_port=5061,
        phones_port=5061, secrets={p.device: "x" for p in FOREIGN_PHONES},
        rtp_start=10000, rtp_end=10100)
    assert not re.search(r"^\s*timestampevents", files["manager.conf"], re.M)
    code = [line.split(";", 1)[0] for text in files.values() for line in text.splitlines()]
    assert not any("CRM_" in line for line in code)
    # Only what the CRM's own originates set (click-to-call, listening in) may show.
    own = {b"TELECRM_LISTING", b"CRM_ORIGIN", b"CRM_SPY"}
    for path in FOREIGN_CAPTURES.glob("*.ami"):
        names = set(re.findall(rb"[A-Z_]*CRM_[A-Z_]*", path.read_bytes()))
        assert names <= own, (path, names)


# ---------------------------------------------------------------- replay (no Asterisk)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_replay(name: str) -> None:
    tracker, facts = replay_capture(FOREIGN_CAPTURES / f"{name}.ami", foreign_rules())
    CHECKS[name](ended_calls(facts))
    assert tracker.live_calls() == []


def _monitor_root(capture: Path) -> str:
    match = re.search(rb"MIXMONITOR_FILENAME\r\nValue: (/\S+/monitor)/", capture.read_bytes())
    assert match, capture
    return match.group(1).decode()


async def test_replay_into_the_crm_as_an_administrator_set_it_up(db_url: str) -> None:
    """``telecrm users add --device/--mobile``, ``TELECRM_TRUNKS``, the recordings source,
    then ``telecrm ami-replay``: the call log an administrator of this PBX reads."""
    for command in user_commands():
        telecrm(*command, "--db", db_url)
    # The live runs' rules (foreign_rules) are exactly what the CRM builds from that.
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            rules = await party_rules(session, Settings(trunks="beeline"))
    finally:
        await engine.dispose()
    assert rules == foreign_rules()
    for name in SCENARIOS:
        capture = FOREIGN_CAPTURES / f"{name}.ami"
        telecrm("ami-replay", str(capture), "--db", db_url,
                env={"TELECRM_TRUNKS": "beeline",
                     "TELECRM_RECORDINGS_SOURCE": _monitor_root(capture)})
    rows = exported_calls(db_url)
    assert len(rows) == len(SCENARIOS)
    summary = sorted(((c["direction"], c["status"], tuple(c["managers"]), c["client_number"])
                      for c in rows), key=repr)
    assert summary == sorted([
        ("inbound", "answered", ("101",), "+79161234567"),
        ("inbound", "answered", ("102",), "+79161234567"),
        ("inbound", "missed", (), "+79161234567"),
        ("outbound", "answered", ("101",), "+79031234567"),
        ("inbound", "answered", ("104",), "+79161234567"),
        ("inbound", "answered", ("102",), "+79161234567"),
        ("inbound", "answered", ("101", "102"), "+79161234567"),
        ("inbound", "answered", ("101", "102"), "+79161234567"),
        ("outbound", "answered", ("101",), "+79031234567"),  # click-to-call
        ("inbound", "answered", ("101",), "+79161234567"),  # listened in
        ("inbound", "answered", ("101",), None),  # withheld: «номер скрыт», no client
    ], key=repr)
    for row in rows:
        if row["status"] != "answered":
            assert row["recordings"] == []
            continue
        (path,) = row["recordings"]  # stored relative to the recordings source
        assert re.fullmatch(r"\d{4}/\d\d/\d\d/(in|out)-\d+-\w+-\d{8}-\d{6}-[\d.]+\.wav", path), path
    withheld = next(r for r in rows if r["client_number"] is None)
    assert withheld["client_id"] is None
    # What the database keeps is what the tracker concluded: talk, ring, transfers and
    # every manager's own talk time (no leg lost on the way).
    stored = await _legs_by_linkedid(db_url)
    for name in SCENARIOS:
        _, facts = replay_capture(FOREIGN_CAPTURES / f"{name}.ami", foreign_rules())
        for call in ended_calls(facts):
            (row,) = [r for r in rows if r["linkedid"] == call.linkedid]
            assert (row["managers"], row["transferred"]) == (list(call.managers),
                                                             call.transferred), name
            assert abs(row["talk_seconds"] - call.talk_seconds) < 0.01, name
            assert abs(row["ring_seconds"] - call.ring_seconds) < 0.01, name
            assert sorted(stored[call.linkedid]) == sorted(
                (x.role, x.extension, round(x.talk_seconds, 2)) for x in call.legs), name


async def _legs_by_linkedid(db_url: str) -> dict[str, list[tuple[str, str | None, float]]]:
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            calls = await session.scalars(select(Call).options(selectinload(Call.legs)))
            return {call.linkedid: [(leg.role, leg.extension, round(leg.talk_seconds, 2))
                                    for leg in call.legs] for call in calls}
    finally:
        await engine.dispose()


# ---------------------------------------------------------------- live (the sandbox)


@pytest.fixture(scope="module")
def live_runs() -> Iterator[dict[str, Recorded | BaseException]]:
    """Every foreign scenario placed now, three PBXs at once; captures in a temporary dir."""
    try:
        boxes = start_sandboxes(3)
    except SandboxUnavailable as exc:
        skip_or_fail_unavailable(exc)
    try:
        with tempfile.TemporaryDirectory(prefix="telecrm-foreign-") as tmp:
            yield asyncio.run(record_many(boxes, list(SCENARIOS), Path(tmp), **record_options()))
    finally:
        for box in boxes:
            box.stop(keep_monitor=False)


@pytest.mark.asterisk
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_live(name: str, live_runs: dict[str, Recorded | BaseException]) -> None:
    run = live_runs[name]
    if isinstance(run, BaseException):
        raise run
    calls = ended_calls(run.facts)
    CHECKS[name](calls)
    # The capture just taken (receipt stamps included) replays into the live result.
    _, facts = replay_capture(run.capture, foreign_rules())
    assert ended_calls(facts) == calls
    # Every recording the CRM was told of is there, with sound (a WAV header is 44 bytes).
    for path in (p for call in calls for p in call.recordings):
        on_host = sandbox_root() / path.lstrip("/")  # Asterisk runs in the sandbox's chroot
        assert on_host.is_file() and on_host.stat().st_size > 8000, path
