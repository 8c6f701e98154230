"""Hand-built AMI for what no capture holds yet: a consultation from a phone's second line.

The sandbox transfers through the CRM (``Atxfer``: one linkedid), so the real
captures never hold two announced calls merged by ``AttendedTransfer``. These
events follow Asterisk 20's order for a phone-side attended transfer: the client
talks to 101, 101 holds and calls 102 on its second line (its own linkedid, an
internal call), completes the transfer, and the client talks to 102.
"""

from __future__ import annotations

from pathlib import Path

from .scenarios import CLIENT

T0 = 1795462400.0


def _ev(ts: float, event: str, **fields: str) -> dict[str, str]:
    return {"Event": event, "Privilege": "call,all", "Timestamp": f"{ts:.6f}", **fields}


def _chan(ts: float, uid: str, linkedid: str, name: str, num: str, exten: str
          ) -> list[dict[str, str]]:
    return [_ev(ts, "Newchannel", Channel=name, Uniqueid=uid, Linkedid=linkedid,
                CallerIDNum=num, Exten=exten, Context="from-pbx", ChannelState="0")]


def _up(ts: float, uid: str, linkedid: str, name: str) -> dict[str, str]:
    return _ev(ts, "Newstate", Channel=name, Uniqueid=uid, Linkedid=linkedid,
               ChannelState="6", ChannelStateDesc="Up")


def _enter(ts: float, uid: str, linkedid: str, name: str, bridge: str) -> dict[str, str]:
    return _ev(ts, "BridgeEnter", Channel=name, Uniqueid=uid, Linkedid=linkedid,
               BridgeUniqueid=bridge, BridgeType="basic")


def _leave(ts: float, uid: str, linkedid: str, name: str, bridge: str) -> dict[str, str]:
    return _ev(ts, "BridgeLeave", Channel=name, Uniqueid=uid, Linkedid=linkedid,
               BridgeUniqueid=bridge, BridgeType="basic")


def _hangup(ts: float, uid: str, linkedid: str, name: str) -> dict[str, str]:
    return _ev(ts, "Hangup", Channel=name, Uniqueid=uid, Linkedid=linkedid, Cause="16")


def second_line_transfer(t0: float = T0) -> list[dict[str, str]]:
    """Client talks 10 s to 101, 5 s of consultation 101-102, then 20 s with 102."""
    c, m1, m1b, m2 = ("PJSIP/carrier-00000010", "PJSIP/101-00000011",
                      "PJSIP/101-00000012", "PJSIP/102-00000013")
    a, b = f"{t0:.0f}.16", f"{t0 + 12:.0f}.18"  # the two linkedids
    u_c, u_m1, u_m1b, u_m2 = a, f"{t0:.0f}.17", b, f"{t0 + 12:.0f}.19"
    return [
        *_chan(t0, u_c, a, c, CLIENT, "74951110002"),
        _ev(t0, "VarSet", Channel=c, Uniqueid=u_c, Linkedid=a, Variable="CRM_DIRECTION",
            Value="inbound"),
        *_chan(t0 + 0.1, u_m1, a, m1, "101", "s"),
        _ev(t0 + 0.1, "DialBegin", Channel=c, Uniqueid=u_c, Linkedid=a, DestChannel=m1,
            DestUniqueid=u_m1, DestLinkedid=a, DialString="101"),
        _up(t0 + 2, u_m1, a, m1),
        _ev(t0 + 2, "DialEnd", Channel=c, Uniqueid=u_c, Linkedid=a, DestChannel=m1,
            DestUniqueid=u_m1, DestLinkedid=a, DialStatus="ANSWER"),
        _up(t0 + 2, u_c, a, c),
        _enter(t0 + 2, u_c, a, c, "b-1"),
        _enter(t0 + 2, u_m1, a, m1, "b-1"),
        _ev(t0 + 12, "Hold", Channel=m1, Uniqueid=u_m1, Linkedid=a),
        *_chan(t0 + 12, u_m1b, b, m1b, "101", "102"),
        *_chan(t0 + 12.1, u_m2, b, m2, "101", "s"),
        _ev(t0 + 12.1, "DialBegin", Channel=m1b, Uniqueid=u_m1b, Linkedid=b, DestChannel=m2,
            DestUniqueid=u_m2, DestLinkedid=b, DialString="102"),
        _up(t0 + 14, u_m2, b, m2),
        _ev(t0 + 14, "DialEnd", Channel=m1b, Uniqueid=u_m1b, Linkedid=b, DestChannel=m2,
            DestUniqueid=u_m2, DestLinkedid=b, DialStatus="ANSWER"),
        _up(t0 + 14, u_m1b, b, m1b),
        _enter(t0 + 14, u_m1b, b, m1b, "b-2"),
        _enter(t0 + 14, u_m2, b, m2, "b-2"),
        _leave(t0 + 19, u_m1, a, m1, "b-1"),
        _leave(t0 + 19, u_m1b, b, m1b, "b-2"),
        _leave(t0 + 19, u_m2, b, m2, "b-2"),
        _enter(t0 + 19, u_m2, b, m2, "b-1"),
        _ev(t0 + 19, "AttendedTransfer", Result="Success", OrigTransfererChannel=m1,
            OrigTransfererUniqueid=u_m1, OrigTransfererLinkedid=a,
            SecondTransfererChannel=m1b, SecondTransfererUniqueid=u_m1b,
            SecondTransfererLinkedid=b, TransferTargetUniqueid=u_m2,
            DestType="Bridge", DestBridgeUniqueid="b-1"),
        _hangup(t0 + 19.1, u_m1, a, m1),
        _hangup(t0 + 19.1, u_m1b, b, m1b),
        _leave(t0 + 39, u_c, a, c, "b-1"),
        _leave(t0 + 39, u_m2, b, m2, "b-1"),
        _hangup(t0 + 39, u_m2, b, m2),
        _hangup(t0 + 39, u_c, a, c),
    ]


def write_capture(path: Path, events: list[dict[str, str]]) -> Path:
    """The events as AMI sends them: ``Key: Value`` lines, a blank line after each."""
    path.write_bytes(b"".join(
        "".join(f"{key}: {value}\r\n" for key, value in event.items()).encode() + b"\r\n"
        for event in events))
    return path
