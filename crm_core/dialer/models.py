"""The dialer's tables: the head of sales' retry rules, sessions, and each dialled attempt."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db.base import Base, one_of
from crm_core.timestamps import utcnow


class SessionState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"


class SessionPhase(StrEnum):
    """Where an active session is in the work with its current client."""

    IDLE = "idle"  # the card is shown, no call yet
    CALLING = "calling"  # the phones ring or talk
    WRAP_UP = "wrap_up"  # the outcome-and-next-task form is open
    COUNTDOWN = "countdown"  # saved: the next client comes after the countdown


class DialerRules(Base):
    """How often a busy or unanswered client is tried again: per team, or the company's
    (``team_id`` NULL) for teams without their own."""

    __tablename__ = "dialer_rules"
    __table_args__ = (
        UniqueConstraint("team_id"),
        CheckConstraint("max_attempts BETWEEN 1 AND 20", name="max_attempts"),
        CheckConstraint("retry_minutes BETWEEN 1 AND 10080", name="retry_minutes"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    max_attempts: Mapped[int] = mapped_column(default=3)
    retry_minutes: Mapped[int] = mapped_column(default=30)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DialerSession(Base):
    """A manager working his call list: what he is on now, and whether he paused.

    One open (active or paused) session per manager; an ended one stays as history.
    ``skipped`` holds the ids of tasks he put aside in this session.
    """

    __tablename__ = "dialer_sessions"
    __table_args__ = (
        CheckConstraint(one_of("state", SessionState), name="state"),
        CheckConstraint(one_of("phase", SessionPhase), name="phase"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    state: Mapped[str] = mapped_column(String(10), default=SessionState.ACTIVE.value)
    phase: Mapped[str] = mapped_column(String(10), default=SessionPhase.IDLE.value)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    number: Mapped[str | None] = mapped_column(String(32))  # what was dialled last (E.164)
    skipped: Mapped[list[str]] = mapped_column(default=list)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    paused_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DialerAttempt(Base):
    """One call placed from a session for a task, and the retry task it caused, if any.

    Unique per call: the browser reporting a hang-up twice records it once.
    """

    __tablename__ = "dialer_attempts"
    __table_args__ = (UniqueConstraint("call_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("dialer_sessions.id"), index=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"),
                                                index=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"))
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20))  # the call's: answered, busy, ...
    attempt: Mapped[int] = mapped_column(default=1)  # 1 = the first try for this contact
    retry_task_id: Mapped[int | None] = mapped_column(
        ForeignKey("tasks.id", ondelete="SET NULL"), index=True)
    talk_seconds: Mapped[float] = mapped_column(default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
