"""People: teams, users and their phones, the times an account was switched off, sessions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    false,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.db.base import Base, one_of
from crm_core.timestamps import utcnow


class Role(StrEnum):
    MANAGER = "manager"
    SUPERVISOR = "supervisor"
    MARKETER = "marketer"
    ADMIN = "admin"


class Team(Base):
    __tablename__ = "teams"
    # A unique index rather than a constraint: SQLite adds it without rebuilding the table.
    __table_args__ = (Index("ix_teams_queue", "queue", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # The Asterisk queue this team answers (queues.conf section name), so a call that went
    # through the queue lands with the team: one queue, one team.
    queue: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    users: Mapped[list[User]] = relationship(back_populates="team")


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(one_of("role", Role), name="role"),
        CheckConstraint("length(extension) BETWEEN 2 AND 8", name="extension_length"),
        # One head per team (a flag on the user rather than a column on the team: no
        # foreign-key cycle between the two tables).
        Index("uq_users_team_id_head", "team_id", unique=True,
              sqlite_where=text("heads_team"), postgresql_where=text("heads_team")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), default=Role.MANAGER.value)
    extension: Mapped[str | None] = mapped_column(String(8), unique=True)
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL"), index=True
    )
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    # Set by a password reset: after signing in he may only change it (telecrm.web.auth).
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The supervisor who heads his team (``team_id``); see crm_core.people.admin.
    heads_team: Mapped[bool] = mapped_column(default=False, server_default=false())
    # When the account began: talk time never judges a day before it (crm_core.talktime).
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    team: Mapped[Team | None] = relationship(back_populates="users")
    phones: Mapped[list[UserPhone]] = relationship(
        back_populates="user", order_by="UserPhone.id", cascade="all, delete-orphan")

    @property
    def devices(self) -> list[str]:
        """Asterisk endpoints of his phones (``SIP/150010001``); needs ``phones`` loaded."""
        return [p.value for p in self.phones if p.kind == PhoneKind.DEVICE]

    @property
    def mobiles(self) -> list[str]:
        """His mobile numbers, E.164; needs ``phones`` loaded."""
        return [p.value for p in self.phones if p.kind == PhoneKind.MOBILE]


class PhoneKind(StrEnum):
    DEVICE = "device"  # an Asterisk endpoint: TECH/resource
    MOBILE = "mobile"  # a number the PBX may forward his calls to, E.164


class UserPhone(Base):
    """A phone of a user besides his extension: a device or a mobile, one holder each.

    The call tracker names the manager by his extension whichever of them he used,
    so one value can never belong to two users (a unique ``value``).
    """

    __tablename__ = "user_phones"
    __table_args__ = (CheckConstraint(one_of("kind", PhoneKind), name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    value: Mapped[str] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(back_populates="phones")


class UserDeactivation(Base):
    """A stretch of time a user's account was switched off, kept for good.

    ``users.active`` says whether he may sign in now; these rows say when he could not,
    so a day he was away is never judged, even after he is switched back on.
    """

    __tablename__ = "user_deactivations"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    deactivated_at: Mapped[datetime] = mapped_column(default=utcnow)
    deactivated_by: Mapped[str] = mapped_column(String(100))
    reactivated_at: Mapped[datetime | None] = mapped_column()
    reactivated_by: Mapped[str | None] = mapped_column(String(100))


class WebSession(Base):
    """A signed-in browser or API client.

    Server-side so that sign-out, a disabled user or a password change end the session
    everywhere at once. Only a SHA-256 of the cookie token is stored: a copy of the
    database does not let anyone sign in as someone else.
    """

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))

    user: Mapped[User] = relationship()
