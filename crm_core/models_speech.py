"""ORM models of the speech feature (imported by crm_core.models so Alembic sees them).

One :class:`Transcript` per call and one :class:`KkpResult` per call and script
version: the worker may run a job twice (a crashed worker's job is claimed again),
so both are keyed by the call and written idempotently (crm_core.speech).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models import Base
from crm_core.timestamps import utcnow


class Transcript(Base):
    """A call's transcript in the fixed shape (``duration``, ``model``, ``speakers``)."""

    __tablename__ = "transcripts"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), unique=True)
    model: Mapped[str] = mapped_column(String(200))
    duration: Mapped[float] = mapped_column()
    data: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class KkpResult(Base):
    """A call checked against one version of a KKP script.

    ``script_version`` is a digest of the script's text, so editing a script gives
    new results without rewriting those a supervisor may already have reviewed.
    """

    __tablename__ = "kkp_results"
    __table_args__ = (UniqueConstraint("call_id", "script_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    script_name: Mapped[str] = mapped_column(String(300))
    script_version: Mapped[str] = mapped_column(String(64))
    score: Mapped[int] = mapped_column()
    result: Mapped[dict[str, Any]] = mapped_column()
    # Some violation must be confirmed by a person before anyone is fined.
    needs_review: Mapped[bool] = mapped_column(default=False, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
