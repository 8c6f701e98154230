"""ORM models of the recordings feature (registered by crm_core.schema so Alembic sees them).

One :class:`CallAudio` row per call: the finalize job's state and, once stored, where
the stereo file lives and what it holds. Asterisk's raw WAVs stay listed in
``recordings`` (crm_core.calls.models.Recording) until the stored copy is committed.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db.base import Base
from crm_core.timestamps import utcnow


class AudioStatus(StrEnum):
    PENDING = "pending"  # waiting for Asterisk to close the files, or retrying
    STORED = "stored"  # the compact stereo file is in the store; originals removed
    FAILED = "failed"  # gave up after retries: a supervisor must look (originals kept)
    EXPIRED = "expired"  # removed by the retention job


class CallAudio(Base):
    """The finalized (or finalizing) audio of one call."""

    __tablename__ = "call_audio"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(
        ForeignKey("calls.id", ondelete="CASCADE"), unique=True)
    status: Mapped[str] = mapped_column(String(10), default=AudioStatus.PENDING.value,
                                        index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    error: Mapped[str | None] = mapped_column(Text)
    # the team whose retention applies (the first manager's team at finalize time)
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL"), index=True)
    backend: Mapped[str | None] = mapped_column(String(20))
    key: Mapped[str | None] = mapped_column(String(500))
    content_type: Mapped[str | None] = mapped_column(String(50))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    duration_seconds: Mapped[float | None] = mapped_column()
    channels: Mapped[int | None] = mapped_column()
    sha256: Mapped[str | None] = mapped_column(String(64))
    # {"manager": [[start, end], ...], "client": [...]} in seconds (or caller/callee/mixed)
    activity: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finalized_at: Mapped[datetime | None] = mapped_column(index=True)


class RetentionPolicy(Base):
    """How long a team's recordings are kept; teams without a row use the default."""

    __tablename__ = "recording_retention"

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"),
                                         unique=True)
    days: Mapped[int] = mapped_column()
