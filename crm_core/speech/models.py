"""ORM models of the speech feature (registered by crm_core.schema so Alembic sees them).

:class:`TranscriptPhrase` is the search index's row (a phrase of a transcript with its
lemmas); the full-text part of the index is each backend's own (an FTS5 table on
SQLite, a generated ``tsvector`` column on PostgreSQL: migration 0024, not modelled).

One :class:`Transcript` per call and one :class:`KkpResult` per call and script
version: the worker may run a job twice (a crashed worker's job is claimed again),
so both are keyed by the call and written idempotently (crm_core.speech).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db.base import Base
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
    # the stored script version (None: a script file given to the worker)
    script_id: Mapped[int | None] = mapped_column(
        ForeignKey("kkp_scripts.id", ondelete="SET NULL"), index=True)
    score: Mapped[int] = mapped_column()
    result: Mapped[dict[str, Any]] = mapped_column()
    # Some violation must be confirmed by a person before anyone is fined.
    needs_review: Mapped[bool] = mapped_column(default=False, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class KkpScriptVersion(Base):
    """One uploaded version of a sales script for a team, a pipeline stage or the company.

    Never edited or deleted: a new upload is a new row, and a call is checked against
    the row in force at the call's start (``effective_from``), so a result can always
    be explained by the text it was checked against. Lookup order: stage, team, company
    (both keys null).
    """

    __tablename__ = "kkp_scripts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"),
                                                index=True)
    # the ``code`` of a deal pipeline stage (kept as text: a version outlives a renamed stage)
    stage: Mapped[str | None] = mapped_column(String(100), index=True)
    effective_from: Mapped[datetime] = mapped_column(index=True)
    text: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64))
    # what one confirmed violation costs the manager (rubles; 0: no money, a warning)
    fine_amount: Mapped[int] = mapped_column(default=0)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class KkpReview(Base):
    """A supervisor's decision on one violation of a result: a confirmed one is a fine."""

    __tablename__ = "kkp_reviews"
    __table_args__ = (UniqueConstraint("result_id", "violation_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("kkp_results.id", ondelete="CASCADE"),
                                           index=True)
    violation_index: Mapped[int] = mapped_column()
    violation_id: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(10))  # confirmed | dismissed
    reason: Mapped[str | None] = mapped_column(Text)
    amount: Mapped[int] = mapped_column(default=0)  # the fine; 0 when dismissed
    manager: Mapped[str | None] = mapped_column(String(8), index=True)  # extension fined
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class TranscriptPhrase(Base):
    """One phrase of a transcript: the unit search finds and plays from its second.

    Rewritten whole with the transcript (``crm_core.speech.search.index_transcript``).
    ``lemmas`` holds the dictionary form of each word, space separated: what the
    backends' full-text indexes read (see :mod:`crm_core.speech.search`).
    """

    __tablename__ = "transcript_phrases"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    speaker: Mapped[str] = mapped_column(String(10))  # manager | client | mixed
    start: Mapped[float] = mapped_column()
    end: Mapped[float] = mapped_column()
    text: Mapped[str] = mapped_column(Text)
    lemmas: Mapped[str] = mapped_column(Text)


class PhraseDictionary(Base):
    """A named list of phrases (competitors, objections, rudeness...) counted per manager.

    Edited in a form by supervisors and admins, every change audited; never deleted:
    an archived dictionary leaves the reports and keeps its history.
    """

    __tablename__ = "phrase_dictionaries"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    phrases: Mapped[list[str]] = mapped_column(default=list)
    archived_at: Mapped[datetime | None] = mapped_column()
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
