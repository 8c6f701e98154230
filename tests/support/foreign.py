"""Call scenarios placed for real on the "foreign" sandbox profile.

The PBX runs ``asterisk_conf/templates/foreign/``: a FreePBX-style dialplan with
no ``CRM_*`` variables and no ``timestampevents``, phones named ``ivanov``,
``102-yealink`` and by account codes, a carrier trunk named ``beeline``. The CRM is
configured as an administrator of such a PBX would do it: users with their devices
and mobiles (:data:`USERS`, entered with ``telecrm users add --device/--mobile``),
the trunk named (``TELECRM_TRUNKS``), the recordings source set.

Captures live in ``tests/captures/foreign/``; regenerate them with
``python -m tests.support.foreign [SCENARIO...]``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from asterisk_conf.foreign import MOBILE_104, TRUNK
from asterisk_conf.render import PbxConfig
from asterisk_conf.sandbox import Sandbox, SandboxUnavailable
from crm_core.people.users import dialled_forms
from pbx_bridge.actions import click_to_call_action, spy_action
from pbx_bridge.channels import PartyRules
from tests.support.scenarios import CAPTURES, Recorded, Run, Scenario, ended_calls, record_many

FOREIGN_CAPTURES = CAPTURES / "foreign"
CLIENT = "79161234567"
CLIENT_B = "89031234567"
DID_IVANOV = "74951230001"  # -> ext-local 101 (PJSIP/ivanov)
DID_GROUP = "74951230002"  # -> ring group 600: Local/101, Local/102
DID_FOLLOWME = "74951230003"  # -> follow-me 104: his desk phone and his mobile
DID_SIDOROV = "74951230004"  # -> ext-local 103 (PJSIP/150010003)
RING_TIMEOUT = 6  # RINGTIMER of the foreign PBX in the scenarios
SUPERVISOR = "105"
# The users as the administrator enters them: login, name, extension, devices, mobiles.
USERS = (
    ("ivanov", "Иван Иванов", "101", ("PJSIP/ivanov",), ()),
    ("petrov", "Пётр Петров", "102", ("PJSIP/102-yealink",), ()),
    ("sidorov", "Сидор Сидоров", "103", ("PJSIP/150010003",), ()),
    ("kozlov", "Козьма Козлов", "104", ("PJSIP/150010004",), ("+7 916 000-00-04",)),
    ("nikolaev", "Николай Николаев", SUPERVISOR, ("PJSIP/150010005",), ()),
)
# Behaviour keys of the phones instance: the user part the PBX calls each phone at.
TARGETS = ("101", "102", "150010003", "150010004", "150010005", MOBILE_104, CLIENT,
           CLIENT_B)


def foreign_config() -> PbxConfig:
    """Timeouts of the recorded scenarios (the rest of PbxConfig does not apply)."""
    # A ring group's members get longer than a desk phone alone: the first call on a
    # PBX just started on a busy machine was seen answered only after the 6 s.
    return PbxConfig(ring_timeout=RING_TIMEOUT, group_timeout=15, outbound_timeout=20)


def foreign_rules() -> PartyRules:
    """What ``telecrm.wiring.party_rules`` builds from :data:`USERS` and ``TELECRM_TRUNKS``."""
    devices = {device: ext for _, _, ext, phones, _ in USERS for device in phones}
    mobiles = {form: ext for _, _, ext, _, numbers in USERS for number in numbers
               for form in dialled_forms("+" + "".join(c for c in number if c.isdigit()))}
    return PartyRules(trunks=frozenset({TRUNK}), devices=devices, mobiles=mobiles,
                      supervisors=frozenset({SUPERVISOR}))


def user_commands(password: str | None = None) -> list[list[str]]:
    """``telecrm users add`` arguments that give the CRM :data:`USERS` (one team)."""
    commands = []
    for login, name, ext, devices, mobiles in USERS:
        args = ["users", "add", login, "--name", name, "--extension", ext, "--team", "Продажи"]
        if password is not None:
            args += ["--password", password]
        if ext == SUPERVISOR:
            args += ["--role", "supervisor"]
        for device in devices:
            args += ["--device", device]
        for mobile in mobiles:
            args += ["--mobile", mobile]
        commands.append(args)
    return commands


SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


@scenario
async def inbound_answered(run: Run) -> None:
    """The DID rings Ivanov's phone PJSIP/ivanov; he answers after 1 s, talk 4 s."""
    await run.phones.set_behaviour("101", answer_after=1)
    await run.phones.client_calls(CLIENT, DID_IVANOV, talk=4)


@scenario
async def ring_group(run: Run) -> None:
    """Ring group 600 (Local/101, Local/102); Petrov's 102-yealink answers after 1 s."""
    await run.phones.set_behaviour("101", mode="ring")
    await run.phones.set_behaviour("102", answer_after=1)
    await run.phones.client_calls(CLIENT, DID_GROUP, talk=3)


@scenario
async def missed(run: Run) -> None:
    """Ivanov does not answer; the PBX gives up after RINGTIMER (6 s)."""
    await run.phones.set_behaviour("101", mode="ring")
    await run.phones.client_calls(CLIENT, DID_IVANOV, talk=5, ring_timeout=30)


@scenario
async def outbound(run: Run) -> None:
    """Ivanov dials a client from PJSIP/ivanov; the client answers after 1 s, talks 3 s."""
    await run.phones.set_behaviour(CLIENT_B, answer_after=1, talk=3)
    await run.phones.manager_calls("ivanov", CLIENT_B, talk=60)


@scenario
async def followme_mobile(run: Run) -> None:
    """Follow-me of 104: his desk phone rings on, his mobile (over the trunk) answers."""
    await run.phones.set_behaviour("150010004", mode="ring")
    await run.phones.set_behaviour(MOBILE_104, answer_after=2)
    await run.phones.client_calls(CLIENT, DID_FOLLOWME, talk=5)


@scenario
async def pickup(run: Run) -> None:
    """The call rings Sidorov's 150010003; after 2 s Petrov dials *8 on 102-yealink."""
    await run.phones.set_behaviour("150010003", mode="ring")
    await run.phones.client_calls(CLIENT, DID_SIDOROV, talk=4)
    await run.until("103 ringing", lambda: any("103" in c.rang for c in run.live()))
    await asyncio.sleep(2)
    await run.phones.manager_calls("102-yealink", "*8", talk=60)


@scenario
async def blind_transfer(run: Run) -> None:
    """Ivanov talks 2 s, then presses ## 102 on his phone; Petrov answers after 1 s."""
    await run.phones.set_behaviour("101", answer_after=1)
    await run.phones.set_behaviour("102", answer_after=1)
    await run.phones.client_calls(CLIENT, DID_IVANOV, talk=8)
    await run.until_talking("101")
    await asyncio.sleep(2)
    await run.phones.press("101", "##102", gap=0.1)


@scenario
async def attended_transfer(run: Run) -> None:
    """Ivanov talks 2 s, presses *2 102, consults Petrov 2 s, then hangs up."""
    await run.phones.set_behaviour("101", answer_after=1)
    await run.phones.set_behaviour("102", answer_after=1)
    await run.phones.client_calls(CLIENT, DID_IVANOV, talk=11)
    await run.until_talking("101")
    await asyncio.sleep(2)
    await run.phones.press("101", "*2102", gap=0.1)
    await asyncio.sleep(3.5)  # 0.5 s of keys, 1 s ringing, 2 s of consultation
    await run.phones.hang_up("101")


@scenario
async def withheld(run: Run) -> None:
    """A caller with a withheld number ("anonymous") reaches Ivanov, talk 3 s."""
    await run.phones.set_behaviour("101", answer_after=1)
    await run.phones.client_calls("anonymous", DID_IVANOV, talk=3)


@scenario
async def click_to_call(run: Run) -> None:
    """The CRM rings Ivanov's own device PJSIP/ivanov (no PJSIP/101 exists); once he
    answers, the PBX dials the client in FreePBX's from-internal (TELECRM_DIAL_CONTEXT)."""
    await run.phones.set_behaviour("101", answer_after=1)
    await run.phones.set_behaviour(CLIENT_B, answer_after=1, talk=3)
    await run.pbx(click_to_call_action("101", CLIENT_B, caller_name="Клиент",
                                       device="PJSIP/ivanov", context="from-internal"))


@scenario
async def listen_in(run: Run) -> None:
    """Ivanov talks with a client; Nikolaev (PJSIP/150010005) listens in on his leg,
    found as the CRM's listen route finds it (ChanSpy by application: no crm-listen here)."""
    await run.phones.set_behaviour("101", answer_after=1)
    await run.phones.set_behaviour("150010005", answer_after=0.5)
    await run.phones.client_calls(CLIENT, DID_IVANOV, talk=7)
    await run.until_talking("101")
    await asyncio.sleep(1)
    await run.pbx(spy_action(SUPERVISOR, run.channel_of("101"), "listen",
                             device="PJSIP/150010005", own_dialplan=False))


def record_options() -> dict[str, object]:
    """What ``record_many`` needs to run the foreign scenarios."""
    return {"scenarios": SCENARIOS, "rules": foreign_rules(), "targets": TARGETS}


def start_sandboxes(count: int) -> list[Sandbox]:
    """``count`` foreign PBXs (each with its phones), started; stopped on failure."""
    boxes: list[Sandbox] = []
    try:
        for _ in range(count):
            boxes.append(Sandbox(foreign_config(), profile="foreign").start())
    except BaseException:
        for box in boxes:
            box.stop(keep_monitor=False)
        raise
    return boxes


def main(argv: list[str] | None = None) -> int:
    """Record the named foreign scenarios (default: all) into tests/captures/foreign/."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.foreign")
    parser.add_argument("scenarios", nargs="*", choices=[[], *SCENARIOS], metavar="SCENARIO")
    # One PBX by default: its linkedids never collide, so every capture can be
    # replayed into one database as calls of one PBX.
    parser.add_argument("--sandboxes", type=int, default=1)
    parser.add_argument("--out", type=Path, default=FOREIGN_CAPTURES)
    args = parser.parse_args(argv)
    names = args.scenarios or list(SCENARIOS)
    try:
        boxes = start_sandboxes(max(1, min(args.sandboxes, len(names))))
    except SandboxUnavailable as exc:
        print(f"error: the sandbox is unavailable: {exc}", file=sys.stderr)
        return 2
    try:
        results = asyncio.run(record_many(boxes, names, args.out, **record_options()))
    finally:
        for box in boxes:
            box.stop(keep_monitor=False)
    failed = 0
    for name in names:
        rec = results[name]
        if not isinstance(rec, Recorded):
            failed += 1
            print(f"{name}: FAILED: {rec!r}", file=sys.stderr)
            continue
        print(f"{name}: " + ", ".join(
            f"{c.direction}/{c.status} {list(c.managers)} talk {c.talk_seconds:.1f} "
            f"client {c.client_number} rec {list(c.recordings)}"
            for c in ended_calls(rec.facts)))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
