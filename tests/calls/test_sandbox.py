"""The configuration telecrm ships, run for real: Asterisk 22 in the sandbox, real SIP.

The PBX runs exactly ``render_pbx_config``'s files; the "phones" Asterisk plays the
managers' phones and the carrier. The ``sandbox`` fixture comes from
tests/support/sandbox_fixtures.py (through conftest).
"""

from __future__ import annotations

import array
import asyncio
import re
import socket
import time
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from asterisk_conf import sandbox as sandbox_module
from asterisk_conf.phones import open_ami
from asterisk_conf.render import PbxConfig, render_pbx_config, render_template
from asterisk_conf.sandbox import Sandbox, SandboxUnavailable, proc_mounted, processes_in_root
from tests.support.sandbox_fixtures import skip_or_fail_unavailable

CLIENT = "79161234567"
DID_QUEUE = "74951110001"  # -> queue:sales (101, 102) in the default PbxConfig
DID_101 = "74951110002"  # -> 101

Event = dict[str, str]


# ---------------------------------------------------------------- rendering (no Asterisk)


def test_placeholders_leave_asterisk_syntax_alone() -> None:
    text = "exten => _X.,1,Dial(PJSIP/${EXTEN}@carrier,@{timeout}) ; @@{literal}"
    assert render_template(text, {"timeout": 25}) == (
        "exten => _X.,1,Dial(PJSIP/${EXTEN}@carrier,25) ; @{literal}"
    )
    with pytest.raises(KeyError):
        render_template("@{missing}", {})


def test_rendered_config_carries_the_settings() -> None:
    files = render_pbx_config(PbxConfig(
        ami_secret="s3cret", carrier_host="203.0.113.7", carrier_port=5070,
        dids={"74950000000": "103"}, ring_timeout=17,
    ))
    assert set(files) >= {"manager.conf", "pjsip.conf", "extensions.conf", "queues.conf"}
    assert "secret = s3cret" in files["manager.conf"]
    assert "timestampevents = yes" in files["manager.conf"]
    assert "contact = sip:203.0.113.7:5070" in files["pjsip.conf"]
    assert "match = 203.0.113.7" in files["pjsip.conf"]
    assert "RING_TIMEOUT = 17" in files["extensions.conf"]
    assert "DID_74950000000 = 103" in files["extensions.conf"]
    assert "member => PJSIP/101" in files["queues.conf"]
    assert "@{" not in "".join(files.values())


@pytest.mark.parametrize("change", [
    {"ami_secret": "has;semicolon"},
    {"managers": [("1", "x")]},
    {"dids": {"74950000000": "queue:nope"}},
    {"dids": {"74950000000": "999"}},
    {"queues": {"sales": ["555"]}},
])
def test_bad_settings_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        render_pbx_config(PbxConfig(**change))


async def test_unreachable_ami_is_an_error_not_a_retry_loop() -> None:
    with pytest.raises(ConnectionError, match="cannot reach AMI"):
        await open_ami("127.0.0.1", 1, "telecrm", "secret", timeout=2)


# ---------------------------------------------------------------- helpers


class EventLog:
    """AMI events as the CRM sees them (logged in with the CRM's own credentials)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()

    def add(self, _manager: object, message: Any) -> None:
        self.events.append(dict(message))
        self._changed.set()

    def find(self, **fields: str) -> list[Event]:
        return [e for e in self.events if all(e.get(k) == v for k, v in fields.items())]

    async def wait(self, predicate: Callable[[Event], bool], timeout: float = 15) -> Event:
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                self._changed.clear()
                await self._changed.wait()

    def varsets(self, linkedid: str) -> dict[str, str]:
        """Last value of each variable set on any channel of the call."""
        return {e["Variable"]: e.get("Value", "")
                for e in self.find(Event="VarSet", Linkedid=linkedid)}


@pytest.fixture
async def crm_events(sandbox: Sandbox) -> AsyncIterator[EventLog]:
    pbx = sandbox.pbx
    assert pbx is not None
    log = EventLog()
    manager = await open_ami(pbx.ami_host, pbx.ami_port, pbx.ami_user, pbx.ami_secret)
    manager.register_event("*", log.add)
    yield log
    manager.close()


@pytest.fixture
async def phones(sandbox: Sandbox) -> AsyncIterator[Any]:
    async with sandbox.phones() as driver:
        yield driver
        await driver.reset_behaviours()
        await driver.wait_idle(timeout=15)


async def first_channel(events: EventLog, context: str) -> Event:
    return await events.wait(lambda e: e.get("Event") == "Newchannel"
                             and e.get("Context") == context)


async def call_ended(events: EventLog, linkedid: str, channels: int = 2) -> None:
    await events.wait(lambda e: len(events.find(Event="Hangup", Linkedid=linkedid)) >= channels,
                      timeout=20)


def peak(path: Path) -> int:
    """Loudest sample of a 16-bit wav file (0: silence)."""
    with wave.open(str(path)) as wav:
        samples = array.array("h", wav.readframes(wav.getnframes()))
    return max((abs(s) for s in samples), default=0)


# ---------------------------------------------------------------- stop (runs first)


@pytest.mark.asterisk
def test_stop_leaves_no_process_and_no_mount() -> None:
    # Runs before the session sandbox starts (file order), so usually this is the
    # only instance in the root and /proc must be unmounted afterwards.
    box = Sandbox()
    try:
        box.start()
    except SandboxUnavailable as exc:
        skip_or_fail_unavailable(exc)
    assert box.pbx and box.phones_instance
    pids = [box.pbx.pid, box.phones_instance.pid]
    assert proc_mounted(box.root)
    assert {5038, 5060}.isdisjoint({box.pbx.ami_port, box.pbx.sip_port})
    box.stop()
    assert not any(pid in processes_in_root(box.root) for pid in pids)
    assert not box.phones_instance.dir.exists()
    assert box.pbx.monitor_dir.is_dir(), "recordings stay until the caller is done"
    assert not (box.pbx.dir / "etc").exists()
    if not processes_in_root(box.root):
        assert not proc_mounted(box.root), "nothing runs in the root: /proc is unmounted"
    box.discard_recordings()
    assert not box.pbx.dir.exists()


@pytest.mark.asterisk
def test_a_port_taken_before_asterisk_binds_it_is_picked_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process (another test process's sandbox) takes the phones' SIP port between
    picking and binding: the phones would run without it, and the PBX's calls would
    reach the other one's phones. The sandbox sees it and starts on other ports."""
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    picks: list[tuple[list[int], list[int]]] = []
    pick = sandbox_module._free_ports

    def first_pick_taken(tcp: int, udp: int) -> tuple[list[int], list[int]]:
        tcp_ports, udp_ports = pick(tcp, udp)
        if not picks:
            udp_ports[1] = taken.getsockname()[1]  # (PBX's SIP, phones' SIP)
        picks.append((tcp_ports, udp_ports))
        return tcp_ports, udp_ports

    monkeypatch.setattr(sandbox_module, "_free_ports", first_pick_taken)
    box = Sandbox()
    try:
        try:
            box.start()
        except SandboxUnavailable as exc:
            skip_or_fail_unavailable(exc)
        assert box.pbx and box.phones_instance
        assert len(picks) == 2, "the first ports were given up"
        assert box.phones_instance.sip_port != taken.getsockname()[1]
        for instance in (box.pbx, box.phones_instance):
            assert sandbox_module._holds_port(instance.pid, "udp", instance.sip_port)
            assert sandbox_module._holds_port(instance.pid, "tcp", instance.ami_port)
    finally:
        box.stop(keep_monitor=False)
        taken.close()


# ---------------------------------------------------------------- the PBX, for real


@pytest.mark.asterisk
async def test_pbx_runs_the_product_config_and_ami_sends_timestamps(sandbox: Sandbox) -> None:
    pbx = sandbox.pbx
    assert pbx is not None and sandbox.config is not None
    for name, text in render_pbx_config(sandbox.config).items():
        assert (pbx.dir / "etc" / name).read_text() == text, f"{name} differs"
    endpoints = pbx.rx("pjsip show endpoints")
    for endpoint in ("101", "102", "103", "201", "carrier"):
        assert re.search(rf"Endpoint:\s+{endpoint}\s", endpoints)
    log = EventLog()
    manager = await open_ami(pbx.ami_host, pbx.ami_port, pbx.ami_user, pbx.ami_secret)
    try:
        manager.register_event("*", log.add)
        response = await asyncio.wait_for(manager.send_action({"Action": "Ping"}), 5)
        assert response.success
        # A global Setvar is an event the CRM's read classes ("dialplan") let it see.
        probe = str(time.time())
        await manager.send_action({"Action": "Setvar", "Variable": "CRM_PROBE", "Value": probe})
        event = await log.wait(lambda e: e.get("Value") == probe, timeout=5)
        assert event["Event"] == "VarSet" and event["Channel"] == "none"
        assert abs(float(event["Timestamp"]) - time.time()) < 60
    finally:
        manager.close()
    with pytest.raises(ConnectionError):
        await open_ami(pbx.ami_host, pbx.ami_port, pbx.ami_user, "wrong-secret")


@pytest.mark.asterisk
async def test_client_call_to_did_rings_101_and_is_answered(
    crm_events: EventLog, phones: Any
) -> None:
    await phones.set_behaviour("101", answer_after=0.5)
    await phones.client_calls(CLIENT, DID_101, talk=1.5)
    first = await first_channel(crm_events, "from-carrier")
    linkedid = first["Linkedid"]
    assert first["Channel"].startswith("PJSIP/carrier-")
    assert first["CallerIDNum"] == CLIENT and first["Exten"] == DID_101
    dial = await crm_events.wait(lambda e: e.get("Event") == "DialBegin")
    assert dial["DestChannel"].startswith("PJSIP/101-")
    await call_ended(crm_events, linkedid)
    entered = crm_events.find(Event="BridgeEnter", Linkedid=linkedid)
    assert {e["Channel"] for e in entered} == {first["Channel"], dial["DestChannel"]}
    assert len({e["BridgeUniqueid"] for e in entered}) == 1
    variables = crm_events.varsets(linkedid)
    assert variables["__CRM_DIRECTION"] == "inbound"
    assert variables["__CRM_DID"] == DID_101
    assert variables["__CRM_CLIENT"] == CLIENT
    assert crm_events.find(Event="DialEnd", Linkedid=linkedid)[0]["DialStatus"] == "ANSWER"


@pytest.mark.asterisk
async def test_outbound_call_goes_through_the_carrier_and_busy_propagates(
    crm_events: EventLog, phones: Any
) -> None:
    await phones.set_behaviour(CLIENT, answer_after=0.3)
    await phones.manager_calls("101", "8 (916) 123-45-67", talk=1)
    first = await first_channel(crm_events, "from-managers")
    assert first["Channel"].startswith("PJSIP/101-")
    dial = await crm_events.wait(lambda e: e.get("Event") == "DialBegin")
    assert dial["DestChannel"].startswith("PJSIP/carrier-")
    await call_ended(crm_events, first["Linkedid"])
    variables = crm_events.varsets(first["Linkedid"])
    assert variables["__CRM_DIRECTION"] == "outbound"
    assert variables["__CRM_CLIENT"] == "89161234567"
    assert variables["DIALSTATUS"] == "ANSWER"

    crm_events.events.clear()
    await phones.set_behaviour(CLIENT, mode="busy")
    await phones.manager_calls("101", CLIENT, talk=1)
    busy = await crm_events.wait(lambda e: e.get("Event") == "VarSet"
                                 and e.get("Variable") == "DIALSTATUS" and e.get("Value"))
    assert busy["Value"] == "BUSY"
    hangup = await crm_events.wait(lambda e: e.get("Event") == "Hangup"
                                   and e["Channel"].startswith("PJSIP/101-"))
    assert hangup["Cause"] == "17", "the manager's phone hears busy (486)"


@pytest.mark.asterisk
async def test_answered_queue_call_is_recorded_in_the_date_layout(
    sandbox: Sandbox, crm_events: EventLog, phones: Any
) -> None:
    await phones.set_behaviour("101", mode="ring")
    await phones.set_behaviour("102", answer_after=0.3)
    await phones.client_calls(CLIENT, DID_QUEUE, talk=3)
    first = await first_channel(crm_events, "from-carrier")
    linkedid = first["Linkedid"]
    connect = await crm_events.wait(lambda e: e.get("Event") == "AgentConnect")
    assert connect["Queue"] == "sales" and connect["Interface"] == "PJSIP/102"
    await call_ended(crm_events, linkedid, channels=3)  # carrier leg, 101 (cancelled), 102
    variables = crm_events.varsets(linkedid)
    names = {role: variables[f"CRM_REC_{role.upper()}"] for role in ("mix", "manager", "client")}
    for role, name in names.items():
        assert re.fullmatch(rf"\d{{4}}/\d{{2}}/\d{{2}}/{re.escape(linkedid)}-{role}\.wav", name)
    assert variables["MIXMONITOR_FILENAME"].endswith("/monitor/" + names["mix"])
    monitor = sandbox.monitor_dir
    for _ in range(50):  # MixMonitor closes its files just after the hangup
        if all((monitor / n).exists() for n in names.values()):
            break
        await asyncio.sleep(0.1)
    for role, name in names.items():
        path = monitor / name
        assert path.stat().st_size > 2 * 16000 * 0.8, f"{role}: ~3 s of 8 kHz 16-bit audio"
        assert peak(path) > 1000, f"{role} leg is not silent"


@pytest.mark.asterisk
async def test_missed_call_leaves_no_recording(
    sandbox: Sandbox, crm_events: EventLog, phones: Any
) -> None:
    await phones.set_behaviour("101", mode="ring")
    await phones.client_calls(CLIENT, DID_101, talk=1, ring_timeout=1.5)
    first = await first_channel(crm_events, "from-carrier")
    linkedid = first["Linkedid"]
    await call_ended(crm_events, linkedid)
    dial_end = crm_events.find(Event="DialEnd", Linkedid=linkedid)[0]
    assert dial_end["DialStatus"] == "CANCEL", "the client gave up while 101 was ringing"
    assert not crm_events.find(Event="BridgeEnter", Linkedid=linkedid)
    await asyncio.sleep(0.5)  # the clean-up runs once MixMonitor has closed the files
    assert not list(sandbox.monitor_dir.rglob(f"{linkedid}-*.wav"))
