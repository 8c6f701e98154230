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

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db.base import Base, JSONType
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


class KkpAppeal(Base):
    """A manager's dispute of a confirmed fine, and another reviewer's decision on it.

    The confirmation (:class:`KkpReview`) is never changed: the appeal row says whether
    the fine stands. ``state`` is ``open`` until a supervisor or admin who did not
    confirm the fine decides ``cancelled`` or ``kept`` with a comment. One appeal per
    fine, so a kept fine cannot be disputed round and round.
    """

    __tablename__ = "kkp_appeals"

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("kkp_reviews.id", ondelete="CASCADE"),
                                           unique=True)
    filed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(Text)
    filed_at: Mapped[datetime] = mapped_column(default=utcnow)
    state: Mapped[str] = mapped_column(String(10), default="open", index=True)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    comment: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(index=True)


class QcScorecard(Base):
    """One version of a QC scorecard: checkpoints with weights and instant-fail items.

    Like script versions, never edited: saving the form adds a row, the newest row of a
    team (or of the company, ``team_id`` null) is in force, and every score keeps the
    version it was filled against. ``items``: ``[{"id", "title", "weight",
    "instant_fail"}]``.
    """

    __tablename__ = "qc_scorecards"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"),
                                                index=True)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QcScore(Base):
    """A reviewer's scorecard for one call: answers per item and the 0-100 score.

    One per call and reviewer (two reviewers on one call are the calibration); a
    reviewer's correction updates his row and is audited with the old answers.
    """

    __tablename__ = "qc_scores"
    __table_args__ = (UniqueConstraint("call_id", "reviewer_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                             index=True)
    scorecard_id: Mapped[int] = mapped_column(ForeignKey("qc_scorecards.id",
                                                         ondelete="CASCADE"), index=True)
    manager: Mapped[str | None] = mapped_column(String(8), index=True)  # the call's first
    # item id -> "yes" | "no" | "na" (checkpoints); "yes" on an instant-fail item: it happened
    answers: Mapped[dict[str, Any]] = mapped_column()
    score: Mapped[int] = mapped_column()
    instant_fail: Mapped[bool] = mapped_column(default=False)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class QcSampleSetting(Base):
    """How many calls per manager a team's weekly random sample takes (0: none)."""

    __tablename__ = "qc_sample_settings"

    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"),
                                         primary_key=True)
    per_manager: Mapped[int] = mapped_column(default=0)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class QcSample(Base):
    """A call the weekly random sample put into the review queue; a call is drawn once."""

    __tablename__ = "qc_samples"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"),
                                         unique=True)
    week: Mapped[str] = mapped_column(String(10), index=True)  # Monday, YYYY-MM-DD
    manager: Mapped[str] = mapped_column(String(8), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"),
                                                index=True)
    drawn_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
class TranscriptPhrase(Base):
    """One phrase of a transcript: the unit search finds and plays from its second.

    Rewritten whole with the transcript (``crm_core.speech.search.index_transcript``).
    ``lemmas`` holds the dictionary form of each word, space separated: what the
    backends' full-text indexes read (see :mod:`crm_core.speech.search`).
    """

    __tablename__ = "transcript_phrases"
    __table_args__ = (
        # Search walks a viewer's phrases newest first from this index alone (migration 0032).
        Index("ix_transcript_phrases_id_call_id", "id", "call_id"),
    )

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


class SpeechAlertRule(Base):
    """Tell the supervisors when a dictionary is said in a call (by the client, the manager
    or either), for one team's calls or the company's (``team_id`` None, admins only).

    Switched on and off, archived but never deleted: its alerts keep pointing at it.
    """

    __tablename__ = "speech_alert_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    dictionary_id: Mapped[int] = mapped_column(
        ForeignKey("phrase_dictionaries.id", ondelete="CASCADE"), index=True)
    speaker: Mapped[str] = mapped_column(String(10))  # client | manager | any
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"),
                                                index=True)
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    archived_at: Mapped[datetime | None] = mapped_column()
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SpeechAlert(Base):
    """A rule's hit in a call: one per rule and call, however often the call is transcribed.

    ``delivered_at`` is set once the live event and the e-mails went out (a sweeper
    delivers what a crashed or bus-less worker recorded but did not deliver).
    """

    __tablename__ = "speech_alerts"
    __table_args__ = (UniqueConstraint("rule_id", "call_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("speech_alert_rules.id", ondelete="CASCADE"))
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    speaker: Mapped[str] = mapped_column(String(10))
    start: Mapped[float] = mapped_column()
    text: Mapped[str] = mapped_column(Text)
    said: Mapped[str] = mapped_column(String(100))  # the dictionary's phrase that was said
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(index=True)


class SpeechAlertSeen(Base):
    """A user marked an alert «просмотрено» (each recipient for himself)."""

    __tablename__ = "speech_alert_seen"
    __table_args__ = (UniqueConstraint("alert_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("speech_alerts.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
