"""What the recordings feature adds to the call log: "has a recording" as a filter."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, not_

from crm_core.calls.models import Call, Recording
from crm_core.recordings.models import AudioStatus, CallAudio

# A recording removed by retention, or one that could not be stored, cannot be played.
_GONE = (AudioStatus.EXPIRED.value, AudioStatus.FAILED.value)


def has_recording(wanted: bool = True) -> ColumnElement[bool]:
    """Calls with a recording one can play (``wanted=False``: the others)."""
    playable = and_(
        exists().where(Recording.call_id == Call.id),
        ~exists().where(CallAudio.call_id == Call.id, CallAudio.status.in_(_GONE)),
    )
    return playable if wanted else not_(playable)
