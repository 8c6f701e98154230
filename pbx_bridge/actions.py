"""AMI actions the CRM takes on a user's behalf: click-to-call, and supervisors' ChanSpy.

Click-to-call rings the manager's own phone first (``Originate`` of
``PJSIP/<extension>``); when he picks up, Asterisk runs the managers' dialplan
(``from-managers``) with the client's number, exactly as if he had dialled it, so
the call is logged, recorded and attributed like any other outbound call.

Nothing here retries: :class:`~pbx_bridge.ami.AmiSession` never re-sends an action
after a reconnect, and a failed or timed-out originate is reported, never repeated
(a second attempt could ring the manager, and then the client, twice).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from .ami import AmiError, AmiSession

CLICK_TO_CALL_CONTEXT = "from-managers"
_EXTENSION = re.compile(r"[0-9]{2,8}")
_NUMBER = re.compile(r"\+?[0-9]{5,20}")
# OriginateResponse "Reason" codes (Asterisk's AST_CONTROL_*): what the manager's phone did.
_REASONS = {
    0: "the manager's phone could not be called",
    1: "the manager's phone hung up",
    3: "the manager's phone did not answer",
    5: "the manager's phone is busy",
    8: "the manager's phone is unavailable",
}
_TRANSLIT = dict(zip(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "i", "k", "l", "m", "n", "o", "p",
     "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya"],
    strict=True,
))


class ClickToCallError(AmiError):
    """Asterisk refused the originate or the manager's phone did not take it."""


def caller_id_name(name: str) -> str:
    """A display name safe for an AMI header and any phone's screen: ASCII, no quotes.

    panoramisk writes AMI in ASCII, and a CR/LF in a header would inject AMI
    commands, so Cyrillic is transliterated and everything else unsafe is dropped.
    """
    out = []
    for char in name:
        lower = char.lower()
        if lower in _TRANSLIT:
            latin = _TRANSLIT[lower]
            out.append(latin.capitalize() if char != lower else latin)
        elif char.isascii() and char.isprintable() and char not in '"<>\\;':
            out.append(char)
        else:
            out.append(" ")
    return " ".join("".join(out).split())[:40]


def new_action_id() -> str:
    return f"telecrm-c2c-{uuid.uuid4().hex}"


def click_to_call_action(
    extension: str,
    number: str,
    *,
    caller_name: str | None = None,
    ring_timeout: float = 30.0,
    action_id: str | None = None,
) -> dict[str, Any]:
    """The ``Originate`` action (validated: nothing from the caller reaches AMI unchecked)."""
    if not _EXTENSION.fullmatch(extension):
        raise ValueError(f"extension {extension!r} must be 2 to 8 digits")
    if not _NUMBER.fullmatch(number):
        raise ValueError(f"{number!r} is not a dialable number (digits and a leading +)")
    name = caller_id_name(caller_name or "") or number
    return {
        "Action": "Originate",
        "ActionID": action_id or new_action_id(),
        "Channel": f"PJSIP/{extension}",
        "Context": CLICK_TO_CALL_CONTEXT,
        "Exten": number,
        "Priority": "1",
        # What the manager's phone shows while it rings: the client, not "unknown".
        "CallerID": f'"{name}" <{number}>',
        "Timeout": str(int(ring_timeout * 1000)),
        "Variable": "CRM_ORIGIN=click-to-call",
        "Async": "true",
    }


async def originate_click_to_call(
    session: AmiSession,
    extension: str,
    number: str,
    *,
    caller_name: str | None = None,
    ring_timeout: float = 30.0,
    action_id: str | None = None,
) -> str:
    """Ring ``extension``; once answered, Asterisk dials ``number`` from it. Returns the ActionID.

    Returns when the manager's phone answered (the client's phone is then ringing).
    Raises ValueError for a bad extension or number, :class:`AmiError` when AMI is
    unreachable or silent, :class:`ClickToCallError` when Asterisk refused or the
    phone did not answer. Never retried here.
    """
    action = click_to_call_action(extension, number, caller_name=caller_name,
                                  ring_timeout=ring_timeout, action_id=action_id)
    response = await session.action(action, timeout=ring_timeout + 10)
    messages = response if isinstance(response, list) else [response]
    final = messages[-1]
    if str(final.get("Response", "")).lower() != "success":
        reason = _int(final.get("Reason"))
        message = _REASONS.get(reason) if reason is not None else None
        raise ClickToCallError(message or str(final.get("Message") or "Asterisk refused the call"))
    return str(action["ActionID"])


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# -- supervisors listening in (ChanSpy) -------------------------------------------------------

SPY_MODES = {"listen": "crm-listen", "whisper": "crm-whisper", "barge": "crm-barge"}
_SPIED = re.compile(r"PJSIP/([0-9]{2,8})(?:-[0-9a-fA-F]+)?")


def spy_action(supervisor_ext: str, target_channel: str, mode: str, *,
               ring_timeout: float = 30.0, action_id: str | None = None) -> dict[str, Any]:
    """``Originate`` of the supervisor's phone into crm-listen|crm-whisper|crm-barge.

    The dialplan runs ``ChanSpy(PJSIP/<ext>-, q|qw|qB + E)`` on the manager's channel,
    so the supervisor is never a bridged party (the tracker does not count him).
    """
    if not _EXTENSION.fullmatch(supervisor_ext):
        raise ValueError(f"extension {supervisor_ext!r} must be 2 to 8 digits")
    if mode not in SPY_MODES:
        raise ValueError(f"mode must be one of {', '.join(SPY_MODES)}")
    match = _SPIED.fullmatch(target_channel)
    if match is None:
        raise ValueError(f"{target_channel!r} is not a manager's phone channel")
    return {
        "Action": "Originate",
        "ActionID": action_id or f"telecrm-spy-{uuid.uuid4().hex}",
        "Channel": f"PJSIP/{supervisor_ext}",
        "Context": SPY_MODES[mode],
        "Exten": match.group(1),
        "Priority": "1",
        "CallerID": f'"{mode}" <{match.group(1)}>',
        "Timeout": str(int(ring_timeout * 1000)),
        "Variable": "CRM_ORIGIN=spy",
        "Async": "true",
    }


async def spy(session: AmiSession, supervisor_ext: str, target_channel: str, mode: str, *,
              ring_timeout: float = 30.0) -> str:
    """Ring the supervisor's phone; once answered he listens, whispers or barges in.

    Returns the ActionID; raises like :func:`originate_click_to_call`. Never retried.
    """
    action = spy_action(supervisor_ext, target_channel, mode, ring_timeout=ring_timeout)
    response = await session.action(action, timeout=ring_timeout + 10)
    messages = response if isinstance(response, list) else [response]
    if str(messages[-1].get("Response", "")).lower() != "success":
        raise ClickToCallError(str(messages[-1].get("Message") or "the supervisor's phone "
                                   "did not answer"))
    return str(action["ActionID"])
