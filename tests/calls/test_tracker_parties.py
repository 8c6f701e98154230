"""Whose phone is it: devices named any way, a manager's mobile, a withheld caller.

The captures in ``tests/captures/parties/`` are real captures of the sandbox PBX with
channel names or numbers replaced by ``sed`` (the exact commands are in that folder's
README.md): a manager's phone named ``SIP/150010001``, ``PJSIP/101-yealink`` or
``PJSIP/ivanov``; a call the PBX forwards to a manager's mobile through the carrier
trunk (``DialString: +79160000001@carrier``), answered there; a withheld caller ID.
Each is replayed with the rules the CRM builds from its users table, and, for
contrast, with none (what the CRM did before the phone was entered).
"""

from __future__ import annotations

from pbx_bridge.channels import PartyRules, dialled_number, parse_channel
from pbx_bridge.tracker import FactKind
from tests.support.scenarios import CAPTURES, ended_calls, replay_capture

EDITED = CAPTURES / "parties"
# What the users table says (crm_core.people.users.party_directory builds the same).
RULES = PartyRules(
    devices={"SIP/150010001": "201", "PJSIP/101-yealink": "101", "PJSIP/ivanov": "201"},
    mobiles={"79160000001": "201", "89160000001": "201", "9160000001": "201"},
)


def only_call(name: str, rules: PartyRules = RULES):
    _, facts = replay_capture(EDITED / f"{name}.ami", rules)
    (call,) = ended_calls(facts)
    return call, facts


def test_a_sip_peer_named_by_digits_is_the_manager_it_belongs_to() -> None:
    call, facts = only_call("device_sip_peer")
    assert (call.direction, call.status, call.managers) == ("inbound", "answered", ("201",))
    assert call.talk_seconds > 1 and call.client_number == "79161234567"
    (phone,) = [leg for leg in call.legs if leg.channel.startswith("SIP/")]
    assert (phone.channel, phone.role, phone.extension) == (
        "SIP/150010001-00000001", "manager", "201")
    assert [f.extension for f in facts if f.kind is FactKind.RINGING] == ["201"], \
        "his screen pops by his extension"
    # Unmapped, a 9-digit endpoint is a trunk (today's rule): nobody answered.
    before, _ = only_call("device_sip_peer", PartyRules())
    assert (before.status, before.managers) == ("missed", ())


def test_a_second_phone_named_with_a_dash_is_still_his() -> None:
    assert parse_channel("PJSIP/101-yealink-00000012").resource == "101-yealink"
    call, _ = only_call("device_yealink")
    assert (call.status, call.managers) == ("answered", ("101",))
    (phone,) = [leg for leg in call.legs if "yealink" in leg.channel]
    assert (phone.role, phone.extension) == ("manager", "101")


def test_a_phone_named_after_the_manager_calls_out_as_him() -> None:
    call, _ = only_call("device_named")
    assert (call.direction, call.status, call.managers) == ("outbound", "answered", ("201",))
    assert call.client_number == "89031234567" and call.talk_seconds > 1
    (phone,) = [leg for leg in call.legs if leg.channel.startswith("PJSIP/ivanov")]
    assert (phone.role, phone.extension) == ("manager", "201")


def test_an_answer_on_the_managers_mobile_is_his_answered_call() -> None:
    call, facts = only_call("mobile_answer")
    assert (call.direction, call.status, call.managers) == ("inbound", "answered", ("201",))
    assert call.talk_seconds > 1 and call.answered_at is not None
    assert call.client_number == "79161234567", "the caller, not the mobile"
    (mobile,) = [leg for leg in call.legs if leg.channel == "PJSIP/carrier-00000001"]
    assert (mobile.role, mobile.extension) == ("manager", "201")
    assert mobile.talk_seconds > 1
    assert [f.extension for f in facts if f.kind is FactKind.ANSWERED] == ["201"]
    # Without his mobile on record the forward is a second client: a missed call.
    before, _ = only_call("mobile_answer", PartyRules())
    assert (before.status, before.managers) == ("missed", ())


def test_dialled_numbers_are_read_from_any_dial_string() -> None:
    assert dialled_number("+79160000001@carrier") == "79160000001"
    assert dialled_number("trunk/+79160000001") == "79160000001"
    assert dialled_number("carrier/sip:89160000001@10.0.0.1") == "89160000001"
    assert dialled_number("PJSIP/89160000001@carrier") == "89160000001"
    assert dialled_number("101") == "101" and dialled_number("ivanov") == ""
    assert RULES.mobile_owner("trunk/+79160000001") == "201"
    assert RULES.mobile_owner("89031234567@carrier") is None


def test_named_trunks_are_never_phones() -> None:
    digits = parse_channel("PJSIP/74951110000-0000002a")
    assert PartyRules().role(digits) == "client", "nine digits and more: a trunk anyway"
    short = parse_channel("PJSIP/4951110-0000002a")
    assert PartyRules().extension(short) == "4951110", "2 to 8 digits: an extension"
    trunks = PartyRules(trunks=frozenset({"4951110"}))
    assert trunks.role(short) == "client" and trunks.extension(short) is None
    by_tech = PartyRules(trunks=frozenset({"PJSIP/4951110"}))
    assert by_tech.role(short) == "client"


def test_a_withheld_caller_is_kept_as_the_pbx_gave_it() -> None:
    """The tracker reports what AMI said; the call writer decides it is no number."""
    call, _ = only_call("withheld_missed")
    assert (call.direction, call.status, call.client_number) == (
        "inbound", "missed", "anonymous")
