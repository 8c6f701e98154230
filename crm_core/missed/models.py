"""Tables of the missed-calls feature: mail server, addresses, escalation rules, alerts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db.base import Base, one_of
from crm_core.timestamps import utcnow

DEFAULT_ESCALATE_MINUTES = 30


class MailSecurity(StrEnum):
    STARTTLS = "starttls"
    NONE = "none"


class MailSettings(Base):
    """The SMTP server the administrator configured; one row (id 1), none until set.

    The password is kept because the CRM must log in unattended; it is never shown,
    logged or audited (only whether one is set).
    """

    __tablename__ = "mail_settings"
    __table_args__ = (CheckConstraint(one_of("security", MailSecurity), name="security"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column()
    security: Mapped[str] = mapped_column(String(10), default=MailSecurity.STARTTLS.value)
    username: Mapped[str | None] = mapped_column(String(255))
    password: Mapped[str | None] = mapped_column(String(255))
    sender: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MailAddress(Base):
    """Where a user's notices by e-mail go (a user without one gets them in the browser only)."""

    __tablename__ = "mail_addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         unique=True)
    email: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MissedCallRule(Base):
    """A team's escalation: not called back within this many minutes, the supervisor is told."""

    __tablename__ = "missed_call_rules"
    __table_args__ = (CheckConstraint("escalate_after_minutes BETWEEN 1 AND 1440",
                                      name="minutes"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), unique=True)
    escalate_after_minutes: Mapped[int] = mapped_column(default=DEFAULT_ESCALATE_MINUTES)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MissedCallAlert(Base):
    """What was told about one missed call, so each is told once and escalated once, even
    across restarts of ``telecrm serve``."""

    __tablename__ = "missed_call_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), unique=True)
    # The owner (or the team) was told at this moment.
    notified_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The supervisor was told (nobody called back in time); NULL while not (yet) escalated.
    escalated_at: Mapped[datetime | None] = mapped_column(index=True)
    # No escalation will ever be due: called back before the deadline, or found too late.
    settled_at: Mapped[datetime | None] = mapped_column()
