"""AMI actions the CRM takes on a user's behalf: click-to-call, and supervisors' ChanSpy.

Click-to-call rings the manager's own phone first (``Originate`` of his first
device, e.g. ``PJSIP/ivanov``, or ``PJSIP/<extension>`` when he has none); when he
picks up, Asterisk runs the managers' dialplan (``from-managers``, or the context
of a PBX that is not ours, e.g. FreePBX's ``from-internal``) with the client's
number, exactly as if he had dialled it, so the call is logged, recorded and
attributed like any other outbound call.

Nothing here retries: :class:`~pbx_bridge.ami.AmiSession` never re-sends an action
after a reconnect, and a failed or timed-out originate is reported, never repeated
(a second attempt could ring the manager, and then the client, twice).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from .ami import AmiError, AmiSession
from .ami_values import ami_value

CLICK_TO_CALL_CONTEXT = "from-managers"
_EXTENSION = re.compile(r"[0-9]{2,8}")
_NUMBER = re.compile(r"\+?[0-9]{5,20}")
# TECH/resource of a device (crm_core.people.users.validate_device), and of a channel
# (the same plus Asterisk's sequence suffix): nothing that could end an AMI header
# or separate ChanSpy's arguments.
_DEVICE = re.compile(r"[A-Za-z][A-Za-z0-9]{0,19}/[A-Za-z0-9_.+@:\-]{1,120}")
_CONTEXT = re.compile(r"[A-Za-z0-9_-]{1,80}")
# OriginateResponse "Reason" codes (Asterisk's AST_CONTROL_*): what the manager's phone
# did, as a kind the web layer words for the user, and a sentence for the log.
_REASONS = {
    0: ("failed", "the manager's phone could not be called"),
    1: ("hung_up", "the manager's phone hung up"),
    3: ("no_answer", "the manager's phone did not answer"),
    5: ("busy", "the manager's phone is busy"),
    8: ("unavailable", "the manager's phone is unavailable"),
}


class ClickToCallError(AmiError):
    """Asterisk refused the originate or the manager's phone did not take it.

    ``kind`` says which (``failed``, ``hung_up``, ``no_answer``, ``busy``,
    ``unavailable``, or ``refused`` for anything else); the message is Asterisk's own.
    """

    def __init__(self, message: str, kind: str = "refused") -> None:
        super().__init__(message)
        self.kind = kind


def caller_id_name(name: str) -> str:
    """A display name safe for an AMI header and any phone's screen (:func:`ami_value`)."""
    return ami_value(name, 40)


def new_action_id() -> str:
    return f"telecrm-c2c-{uuid.uuid4().hex}"


def phone_channel(extension: str, device: str | None = None) -> str:
    """What rings a user's phone: his first device, else ``PJSIP/<extension>``.

    A PBX that is not ours names phones ``PJSIP/ivanov`` or ``SIP/150010001``; the
    users table knows which is whose (``users add --device``).
    """
    if not _EXTENSION.fullmatch(extension):
        raise ValueError(f"extension {extension!r} must be 2 to 8 digits")
    if device is None:
        return f"PJSIP/{extension}"
    if not _DEVICE.fullmatch(device) or device.lower().startswith("local/"):
        raise ValueError(f"{device!r} is not a phone's device (TECH/name)")
    return device


def click_to_call_action(
    extension: str,
    number: str,
    *,
    caller_name: str | None = None,
    ring_timeout: float = 30.0,
    action_id: str | None = None,
    device: str | None = None,
    context: str = CLICK_TO_CALL_CONTEXT,
) -> dict[str, Any]:
    """The ``Originate`` action (validated: nothing from the caller reaches AMI unchecked).

    ``device``: the manager's first device (None: ``PJSIP/<extension>``); ``context``:
    where the PBX dials the number once he answers (ours: ``from-managers``).
    """
    channel = phone_channel(extension, device)
    if not _NUMBER.fullmatch(number):
        raise ValueError(f"{number!r} is not a dialable number (digits and a leading +)")
    if not _CONTEXT.fullmatch(context):
        raise ValueError(f"{context!r} is not a dialplan context")
    name = caller_id_name(caller_name or "") or number
    return {
        "Action": "Originate",
        "ActionID": action_id or new_action_id(),
        "Channel": channel,
        "Context": context,
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
    device: str | None = None,
    context: str = CLICK_TO_CALL_CONTEXT,
) -> str:
    """Ring ``extension`` (his ``device``); once answered, Asterisk dials ``number`` from it.

    Returns the ActionID when the manager's phone answered (the client's is then ringing).
    Raises ValueError for a bad extension or number, :class:`AmiError` when AMI is
    unreachable or silent, :class:`ClickToCallError` when Asterisk refused or the
    phone did not answer. Never retried here.
    """
    action = click_to_call_action(extension, number, caller_name=caller_name,
                                  ring_timeout=ring_timeout, action_id=action_id,
                                  device=device, context=context)
    response = await session.action(action, timeout=ring_timeout + 10)
    messages = response if isinstance(response, list) else [response]
    final = messages[-1]
    if str(final.get("Response", "")).lower() != "success":
        reason = _int(final.get("Reason"))
        kind, message = _REASONS.get(reason, ("refused", None)) if reason is not None else (
            "refused", None)
        raise ClickToCallError(message or str(final.get("Message") or "Asterisk refused the call"),
                               kind)
    return str(action["ActionID"])


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# -- supervisors listening in (ChanSpy) -------------------------------------------------------

SPY_MODES = {"listen": "crm-listen", "whisper": "crm-whisper", "barge": "crm-barge"}
SPY_OPTIONS = {"listen": "qE", "whisper": "qwE", "barge": "qBE"}  # as crm-spy runs ChanSpy
_SPIED = re.compile(r"PJSIP/([0-9]{2,8})(?:-[0-9a-fA-F]+)?")


def spy_action(supervisor_ext: str, target_channel: str, mode: str, *,
               ring_timeout: float = 30.0, action_id: str | None = None,
               device: str | None = None, own_dialplan: bool = True) -> dict[str, Any]:
    """``Originate`` of the supervisor's phone (his first ``device``) into ChanSpy.

    A ``PJSIP/<extension>-…`` channel on our own dialplan goes through
    crm-listen|crm-whisper|crm-barge (``ChanSpy(PJSIP/<ext>-, q|qw|qB + E)``). Any other
    phone channel (``PJSIP/ivanov-…``, a PBX that is not ours: ``own_dialplan=False``)
    gets ``ChanSpy`` as the originate's application on exactly that channel, with
    ``CRM_SPY`` set on the supervisor's leg. Either way the supervisor is never a
    bridged party (the tracker does not count him).
    """
    channel = phone_channel(supervisor_ext, device)
    if mode not in SPY_MODES:
        raise ValueError(f"mode must be one of {', '.join(SPY_MODES)}")
    match = _SPIED.fullmatch(target_channel) if own_dialplan else None
    if match is None:
        if not _DEVICE.fullmatch(target_channel) or "-" not in target_channel \
                or target_channel.lower().startswith("local/"):
            raise ValueError(f"{target_channel!r} is not a manager's phone channel")
        return {
            "Action": "Originate",
            "ActionID": action_id or f"telecrm-spy-{uuid.uuid4().hex}",
            "Channel": channel,
            "Application": "ChanSpy",
            "Data": f"{target_channel},{SPY_OPTIONS[mode]}",
            "CallerID": f'"{mode}" <{supervisor_ext}>',
            "Timeout": str(int(ring_timeout * 1000)),
            "Variable": [f"CRM_SPY={mode}", "CRM_ORIGIN=spy"],
            "Async": "true",
        }
    return {
        "Action": "Originate",
        "ActionID": action_id or f"telecrm-spy-{uuid.uuid4().hex}",
        "Channel": channel,
        "Context": SPY_MODES[mode],
        "Exten": match.group(1),
        "Priority": "1",
        "CallerID": f'"{mode}" <{match.group(1)}>',
        "Timeout": str(int(ring_timeout * 1000)),
        "Variable": "CRM_ORIGIN=spy",
        "Async": "true",
    }


async def spy(session: AmiSession, supervisor_ext: str, target_channel: str, mode: str, *,
              ring_timeout: float = 30.0, device: str | None = None,
              own_dialplan: bool = True) -> str:
    """Ring the supervisor's phone; once answered he listens, whispers or barges in.

    Returns the ActionID; raises like :func:`originate_click_to_call`. Never retried.
    """
    action = spy_action(supervisor_ext, target_channel, mode, ring_timeout=ring_timeout,
                        device=device, own_dialplan=own_dialplan)
    response = await session.action(action, timeout=ring_timeout + 10)
    messages = response if isinstance(response, list) else [response]
    if str(messages[-1].get("Response", "")).lower() != "success":
        raise ClickToCallError(str(messages[-1].get("Message") or "the supervisor's phone "
                                   "did not answer"), "failed")
    return str(action["ActionID"])


# -- presence: pausing a manager's queue membership ------------------------------------------

_INTERFACE = re.compile(r"[A-Za-z0-9_]+/[A-Za-z0-9_.@+-]{1,100}")


def queue_pause_action(interface: str, paused: bool, *, reason: str = "",
                       action_id: str | None = None) -> dict[str, Any]:
    """``QueuePause`` of ``interface`` (``PJSIP/101``) in every queue it is a member of.

    The reason goes to queue_log and ``QueueMemberPause`` events; it is transliterated
    (AMI is ASCII, and a CR/LF would inject a header).
    """
    if not _INTERFACE.fullmatch(interface):
        raise ValueError(f"{interface!r} is not an Asterisk interface (TECH/resource)")
    action = {
        "Action": "QueuePause",
        "ActionID": action_id or f"telecrm-pause-{uuid.uuid4().hex}",
        "Interface": interface,
        "Paused": "true" if paused else "false",
    }
    if reason and paused:
        action["Reason"] = caller_id_name(reason)
    return action


async def queue_pause(session: AmiSession, interface: str, paused: bool, *,
                      reason: str = "", timeout: float = 5.0) -> bool:
    """Pause (or unpause) ``interface`` in its queues; False when it is no queue's member.

    Raises :class:`AmiError` when AMI is unreachable or silent.
    """
    response = await session.action(queue_pause_action(interface, paused, reason=reason),
                                    timeout=timeout)
    messages = response if isinstance(response, list) else [response]
    return str(messages[-1].get("Response", "")).lower() == "success"


# -- live prompts: a passive tap of one side of a call (ChanSpy -> AudioSocket) ----------------

LIVE_TAP_CONTEXT = "crm-live-tap"  # the ;2 half: ChanSpy(<channel>,qoE)
LIVE_SOCK_CONTEXT = "crm-live-sock"  # the ;1 half: AudioSocket(<id>,<CRM host:port>)
_ADDRESS = re.compile(r"(?:[A-Za-z0-9.\-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]):[0-9]{1,5}")


def live_tap_action(target_channel: str, stream_id: str, address: str, *,
                    action_id: str | None = None) -> dict[str, Any]:
    """``Originate`` of a Local pair that streams what ``target_channel``'s party says.

    ``Local/s@crm-live-tap`` (the ;2 half) runs ``ChanSpy(<channel>,qoE)``: quiet, only
    the audio that channel's party sends (``o``), leaving when it hangs up (``E``). The ;1
    half runs ``AudioSocket(<stream_id>,<address>)`` in ``crm-live-sock``, which sends
    that audio to the CRM. ChanSpy only reads an audiohook of the call: the call gets no
    new bridge, no delay, and when the CRM or the socket fails only the pair hangs up.
    """
    if (not _DEVICE.fullmatch(target_channel) or "-" not in target_channel
            or target_channel.lower().startswith("local/")):
        raise ValueError(f"{target_channel!r} is not a phone or trunk channel")
    if not _ADDRESS.fullmatch(address):
        raise ValueError(f"{address!r} is not host:port")
    stream = str(uuid.UUID(stream_id))
    return {
        "Action": "Originate",
        "ActionID": action_id or f"telecrm-live-{stream}",
        "Channel": f"Local/s@{LIVE_TAP_CONTEXT}",
        "Context": LIVE_SOCK_CONTEXT,
        "Exten": "s",
        "Priority": "1",
        "CallerID": '"live" <0>',
        "Timeout": "5000",
        "Variable": [f"__CRM_LIVE_SPY={target_channel}", f"__CRM_LIVE_ID={stream}",
                     f"__CRM_LIVE_ADDR={address}", "CRM_ORIGIN=live"],
        "Async": "true",
    }


async def live_tap(session: AmiSession, target_channel: str, stream_id: str,
                   address: str) -> None:
    """Start one tap; raises :class:`AmiError` when Asterisk refuses. Never retried."""
    action = live_tap_action(target_channel, stream_id, address)
    response = await session.action(action, timeout=10)
    messages = response if isinstance(response, list) else [response]
    if str(messages[-1].get("Response", "")).lower() != "success":
        raise AmiError(str(messages[-1].get("Message") or "Originate refused"))
