"""ORM models of the talktime feature (registered by crm_core.schema so Alembic sees them).

Rules are rows with an ``effective_from`` day: a change of threshold applies from
that day on and never rewrites how past days were judged.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.calls.models import CallLeg
from crm_core.db.base import Base
from crm_core.people.models import User
from crm_core.timestamps import utcnow


class AbsenceKind(StrEnum):
    DAY_OFF = "day_off"
    SICK = "sick"
    VACATION = "vacation"


class ViolationStatus(StrEnum):
    OPEN = "open"  # written by the end-of-day job, waiting for the supervisor
    CONFIRMED = "confirmed"  # counts for pay: the fine applies
    EXCUSED = "excused"  # waived, with a reason


class TalkTimeRule(Base):
    """The talk-time rules of a team (or of everyone when ``team_id`` is NULL) from a day on."""

    __tablename__ = "talktime_rules"
    __table_args__ = (UniqueConstraint("team_id", "effective_from"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    effective_from: Mapped[date] = mapped_column()
    target_seconds: Mapped[int] = mapped_column(default=150 * 60)
    # ISO weekdays that are working days, e.g. "12345" for Monday to Friday.
    working_weekdays: Mapped[str] = mapped_column(String(7), default="12345")
    # Legs shorter than this do not count (a "hello, wrong number" is not work).
    min_call_seconds: Mapped[int] = mapped_column(default=0)
    fine_amount: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("0"))
    # The working hours, in minutes after local midnight: the pace projection spreads
    # the rest of the target over what is left of them.
    day_start_minute: Mapped[int] = mapped_column(default=9 * 60, server_default="540")
    day_end_minute: Mapped[int] = mapped_column(default=18 * 60, server_default="1080")
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Holiday(Base):
    """A non-working day in the calendar (of a team, or of everyone when ``team_id`` is NULL)."""

    __tablename__ = "talktime_holidays"
    __table_args__ = (UniqueConstraint("day", "team_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200), default="")
    # Removed days are archived, not deleted; adding the day again brings the row back.
    archived_at: Mapped[datetime | None] = mapped_column()


class Absence(Base):
    """A manager's day off, sick leave or vacation: those days are not judged."""

    __tablename__ = "talktime_absences"
    __table_args__ = (
        CheckConstraint("kind IN ('day_off', 'sick', 'vacation')", name="kind"),
        CheckConstraint("last_day >= first_day", name="range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    first_day: Mapped[date] = mapped_column()
    last_day: Mapped[date] = mapped_column()
    kind: Mapped[str] = mapped_column(String(20), default=AbsenceKind.DAY_OFF.value)
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column()  # cancelled, kept for the record


class Violation(Base):
    """A working day a manager ended below the threshold; one per manager and day."""

    __tablename__ = "talktime_violations"
    __table_args__ = (
        UniqueConstraint("user_id", "day"),
        CheckConstraint("status IN ('open', 'confirmed', 'excused')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(index=True)
    talk_seconds: Mapped[float] = mapped_column()
    target_seconds: Mapped[int] = mapped_column()
    shortfall_seconds: Mapped[float] = mapped_column()
    status: Mapped[str] = mapped_column(String(10), default=ViolationStatus.OPEN.value)
    fine_amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    reason: Mapped[str | None] = mapped_column(String(1000))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(foreign_keys=[user_id])


class TalkTimeDaily(Base):
    """A finished day's talk of one manager, counted once and kept (the month table's rollup).

    Keyed by the time zone and the minimum call length it was counted with, so a
    settings change never reads a figure counted by other rules. Database triggers
    (migration 0009) drop a manager's rows around any leg of his that is written or
    changed later, and a call whose direction changes; the end-of-day job refills.
    """

    __tablename__ = "talktime_daily"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    tz: Mapped[str] = mapped_column(String(64), primary_key=True)
    min_call_seconds: Mapped[int] = mapped_column(primary_key=True)
    talk_seconds: Mapped[float] = mapped_column()
    calls: Mapped[int] = mapped_column()
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


# The month table reads a manager's legs by the moment they started talking; on
# PostgreSQL the index carries every column it needs (an index-only scan).
Index("ix_call_legs_user_id_bridged_at", CallLeg.user_id, CallLeg.bridged_at,
      postgresql_include=["answered_at", "ended_at", "talk_seconds", "hold_seconds", "role",
                          "call_id"])
