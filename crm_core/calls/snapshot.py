"""What the call tracker reports about a call: plain data, no database, no I/O.

The tracker (pbx_bridge) builds these; the call writer stores them. They import
nothing beyond the standard library, so the tracker stays sans-IO.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import PurePosixPath


@dataclass(frozen=True)
class LegData:
    """One channel of a call as the tracker saw it."""

    uniqueid: str
    channel: str
    role: str  # manager | client | supervisor | other
    extension: str | None
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    talk_seconds: float
    hangup_cause: int | None = None
    hold_seconds: float = 0.0  # counterpart on hold while bridged; not in talk_seconds
    bridged_at: datetime | None = None  # first moment the leg talked


@dataclass(frozen=True)
class RecordingRef:
    """One recording file as the PBX announced it: which side it holds, and on which leg.

    ``uniqueid`` is the channel whose dialplan announced the file (the one running
    MixMonitor), so the file can be tied to a leg rather than guessed from its name.
    """

    path: str  # relative to the recordings root, as in ``CallData.recordings``
    side: str  # mix | manager | client | caller | callee
    uniqueid: str | None = None


RECORDING_SIDES = ("mix", "manager", "client", "caller", "callee")


def side_from_path(path: str) -> str | None:
    """The side a shipped-dialplan file name ends with (``...-client.wav``), if any."""
    stem = PurePosixPath(path).stem
    side = stem.rpartition("-")[2]
    return side if "-" in stem and side in RECORDING_SIDES else None


@dataclass(frozen=True)
class CallData:
    """A snapshot of one call (everything sharing a ``linkedid``)."""

    linkedid: str
    direction: str  # inbound | outbound | internal
    status: str  # answered | missed | busy | no_answer | failed | in_progress
    client_number: str | None  # as the PBX gave it (any format; normalized here)
    did: str | None  # as the PBX gave it
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    ring_seconds: float
    talk_seconds: float
    transferred: bool
    managers: tuple[str, ...]  # extensions that talked, in order
    recordings: tuple[str, ...]  # paths relative to the recordings root
    legs: tuple[LegData, ...]
    rang: tuple[str, ...] = ()  # extensions whose phones rang (for lead ownership of missed calls)
    queue: str | None = None  # the Asterisk queue the call went through
    # Side and announcing channel of each file in ``recordings`` (same paths, same order).
    recording_details: tuple[RecordingRef, ...] = ()
    # Set on the last snapshot of a call absorbed by another (a consultation merged by an
    # attended transfer): its legs carry on in that call, which owns them from then on.
    merged_into: str | None = None
    # The PBX the call happened on; None until the pipeline labels it (then ``on_pbx``).
    pbx: str | None = None


# The PBX of ``TELECRM_AMI_*`` (and of every call stored before there were several). Its
# calls keep Asterisk's bare linkedid; another PBX's are stored as ``<pbx>:<linkedid>``
# (uniqueids likewise), because two PBXs number their calls alike.
DEFAULT_PBX = "main"
PBX_SEPARATOR = ":"


def pbx_key(pbx: str | None, asterisk_id: str) -> str:
    """How a linkedid or uniqueid of ``pbx`` is stored: unique across the PBXs."""
    if not pbx or pbx == DEFAULT_PBX:
        return asterisk_id
    return f"{pbx}{PBX_SEPARATOR}{asterisk_id}"


def asterisk_id(pbx: str | None, stored: str) -> str:
    """The id as Asterisk wrote it, from the stored one (``pbx_key`` undone)."""
    prefix = f"{pbx}{PBX_SEPARATOR}"
    if pbx and pbx != DEFAULT_PBX and stored.startswith(prefix):
        return stored[len(prefix):]
    return stored


def on_pbx(data: CallData, pbx: str) -> CallData:
    """The snapshot labelled with its PBX, its linkedid and uniqueids made unique across
    PBXs; a snapshot already labelled is returned as is (so labelling twice is harmless)."""
    if data.pbx is not None:
        return data
    if pbx == DEFAULT_PBX:
        return replace(data, pbx=pbx)
    return replace(
        data, pbx=pbx, linkedid=pbx_key(pbx, data.linkedid),
        legs=tuple(replace(leg, uniqueid=pbx_key(pbx, leg.uniqueid)) for leg in data.legs),
        recording_details=tuple(
            replace(ref, uniqueid=pbx_key(pbx, ref.uniqueid) if ref.uniqueid else None)
            for ref in data.recording_details),
        merged_into=pbx_key(pbx, data.merged_into) if data.merged_into else None)
