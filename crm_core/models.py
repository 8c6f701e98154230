"""The domain tables.

Closed vocabularies are plain strings guarded by CHECK constraints (not native
enums) so adding a value is a one-line migration on SQLite and PostgreSQL alike.
Nothing here is ever deleted by the product: clients and users are archived.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    MetaData,
    Numeric,
    String,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from crm_core.timestamps import UTCDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")


class Role(StrEnum):
    MANAGER = "manager"
    SUPERVISOR = "supervisor"
    MARKETER = "marketer"
    ADMIN = "admin"


class ClientStatus(StrEnum):
    POTENTIAL = "potential"
    NEW = "new"
    REGULAR = "regular"
    LOST = "lost"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


class CallStatus(StrEnum):
    ANSWERED = "answered"
    MISSED = "missed"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    IN_PROGRESS = "in_progress"


class TaskKind(StrEnum):
    CALLBACK = "callback"
    CALL = "call"
    MEETING = "meeting"
    EMAIL = "email"
    OTHER = "other"


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class LegRole(StrEnum):
    MANAGER = "manager"
    CLIENT = "client"
    SUPERVISOR = "supervisor"
    OTHER = "other"


def _one_of(column: str, values: type[StrEnum]) -> str:
    quoted = ", ".join(f"'{v.value}'" for v in values)
    return f"{column} IN ({quoted})"


class Base(AsyncAttrs, DeclarativeBase):
    """Declarative base; ``AsyncAttrs`` gives ``await obj.awaitable_attrs.rel`` for lazy loads."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSONType,
        list[str]: JSONType,
    }


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
        CheckConstraint(_one_of("role", Role), name="role"),
        CheckConstraint("length(extension) BETWEEN 3 AND 4", name="extension_length"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), default=Role.MANAGER.value)
    extension: Mapped[str | None] = mapped_column(String(4), unique=True)
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL"), index=True
    )
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    team: Mapped[Team | None] = relationship(back_populates="users")


class Client(Base):
    """A company. Its status is set by rules (services), never typed by hand."""

    __tablename__ = "clients"
    __table_args__ = (CheckConstraint(_one_of("status", ClientStatus), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300), index=True)
    status: Mapped[str] = mapped_column(String(20), default=ClientStatus.POTENTIAL.value)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    source: Mapped[str] = mapped_column(String(30), default="manual")
    annual_potential: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    # -- sales rules (crm_core.client_status): derived, never typed by a manager --------
    annual_potential_items: Mapped[int | None] = mapped_column()
    abc_group: Mapped[str | None] = mapped_column(String(1))  # A/B/C from the potential
    qualified_at: Mapped[datetime | None] = mapped_column()  # when ABC was first set
    contact_every_days: Mapped[int | None] = mapped_column()  # overrides the ABC frequency
    status_since: Mapped[datetime | None] = mapped_column(default=utcnow)
    owner_since: Mapped[datetime | None] = mapped_column(default=utcnow)
    # Start of the last answered customer call with the client (kept by the call rules).
    last_contact_at: Mapped[datetime | None] = mapped_column()
    archived_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    owner: Mapped[User | None] = relationship()
    phones: Mapped[list[Phone]] = relationship(
        back_populates="client", order_by="Phone.id", cascade="all, delete-orphan"
    )
    contacts: Mapped[list[Contact]] = relationship(
        back_populates="client", order_by="Contact.id", cascade="all, delete-orphan"
    )


class Contact(Base):
    """A person at a client."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column()  # never deleted (migration 0011)

    client: Mapped[Client] = relationship(back_populates="contacts")
    phones: Mapped[list[Phone]] = relationship(back_populates="contact", order_by="Phone.id")


class Phone(Base):
    """A client's number; lookups go through ``e164``, ``raw`` keeps what was typed.

    The same number may belong to two clients (a shared switchboard), never twice
    to one client.
    """

    __tablename__ = "phones"
    __table_args__ = (UniqueConstraint("client_id", "e164"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    e164: Mapped[str] = mapped_column(String(20), index=True)
    raw: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20), default="other")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    client: Mapped[Client] = relationship(back_populates="phones")
    contact: Mapped[Contact | None] = relationship(back_populates="phones")


class Call(Base):
    """One customer-facing conversation: everything sharing an Asterisk ``linkedid``."""

    __tablename__ = "calls"
    __table_args__ = (
        CheckConstraint(_one_of("direction", Direction), name="direction"),
        CheckConstraint(_one_of("status", CallStatus), name="status"),
        # "Did we talk to this client between these days?" (sales summary; migration 0011)
        Index("ix_calls_client_id_started_at", "client_id", "started_at",
              postgresql_where=text("answered_at IS NOT NULL"),
              sqlite_where=text("answered_at IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(150), unique=True)  # AST_MAX_UNIQUEID
    direction: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20))
    client_number: Mapped[str | None] = mapped_column(String(20), index=True)
    did: Mapped[str | None] = mapped_column(String(20), index=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(index=True)
    answered_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    ring_seconds: Mapped[float] = mapped_column(default=0.0)
    talk_seconds: Mapped[float] = mapped_column(default=0.0)
    transferred: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The Asterisk queue the call went through, if any (routes missed-call callbacks).
    queue: Mapped[str | None] = mapped_column(String(80), index=True)
    # Extensions that talked, in order, as the call tracker reported them.
    managers: Mapped[list[str]] = mapped_column(default=list)
    # True when this call created its client (a lead); its owner follows the call.
    created_client: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    client: Mapped[Client | None] = relationship()
    legs: Mapped[list[CallLeg]] = relationship(
        back_populates="call", order_by="CallLeg.seq", cascade="all, delete-orphan"
    )
    recordings: Mapped[list[Recording]] = relationship(
        back_populates="call", order_by="Recording.position", cascade="all, delete-orphan"
    )


class CallLeg(Base):
    """One Asterisk channel of a call (``uniqueid``): who was on it and for how long."""

    __tablename__ = "call_legs"
    __table_args__ = (CheckConstraint(_one_of("role", LegRole), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    uniqueid: Mapped[str] = mapped_column(String(150), unique=True)
    channel: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    extension: Mapped[str | None] = mapped_column(String(80), index=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    started_at: Mapped[datetime] = mapped_column(index=True)
    answered_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    talk_seconds: Mapped[float] = mapped_column(default=0.0)
    # Time the leg's counterpart was on hold while bridged (not part of talk_seconds).
    hold_seconds: Mapped[float] = mapped_column(default=0.0, server_default="0")
    # The first moment this leg talked (answered_at is when its channel picked up).
    bridged_at: Mapped[datetime | None] = mapped_column()
    hangup_cause: Mapped[int | None] = mapped_column()
    seq: Mapped[int] = mapped_column(default=0)

    call: Mapped[Call] = relationship(back_populates="legs")
    user: Mapped[User | None] = relationship()


class Recording(Base):
    """A recording file of a call, by its path relative to the recordings root."""

    __tablename__ = "recordings"
    __table_args__ = (UniqueConstraint("call_id", "path"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(String(500))
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # mix | manager | client | caller | callee, as the dialplan announced it (NULL: unknown).
    side: Mapped[str | None] = mapped_column(String(10))
    # The leg whose channel ran MixMonitor and announced the file (NULL: unknown).
    leg_id: Mapped[int | None] = mapped_column(
        ForeignKey("call_legs.id", ondelete="SET NULL"), index=True
    )

    call: Mapped[Call] = relationship(back_populates="recordings")
    # Joined so the call JSON can name the leg without a lazy load (async sessions).
    leg: Mapped[CallLeg | None] = relationship(lazy="joined")


class Task(Base):
    """Something a person must do for a client, e.g. call back after a missed call.

    ``(kind, call_id)`` is unique so a rule fired by a call creates its task once, however
    often the call is written; tasks typed by hand have no call and are not limited.
    """

    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint(_one_of("kind", TaskKind), name="kind"),
        CheckConstraint(_one_of("status", TaskStatus), name="status"),
        UniqueConstraint("kind", "call_id"),
        Index("ix_tasks_client_id_status", "client_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), default=TaskStatus.OPEN.value)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"), index=True)
    # The call that caused the task (a missed call for a callback).
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL"), index=True
    )
    due_at: Mapped[datetime | None] = mapped_column(index=True)
    # NULL when a rule created the task rather than a person.
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    done_at: Mapped[datetime | None] = mapped_column()
    # The call that completed the task (e.g. the client was reached), and a note why.
    result_call_id: Mapped[int | None] = mapped_column(
        ForeignKey("calls.id", ondelete="SET NULL")
    )
    note: Mapped[str | None] = mapped_column(String(1000))
    # How often the due date was moved (each move has a reason in the audit log).
    due_moves: Mapped[int] = mapped_column(default=0, server_default="0")

    client: Mapped[Client | None] = relationship()
    call: Mapped[Call | None] = relationship(foreign_keys=[call_id])
    result_call: Mapped[Call | None] = relationship(foreign_keys=[result_call_id])
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    team: Mapped[Team | None] = relationship()


class AuditLog(Base):
    """Who changed what: written by the services, never updated."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity_entity_id", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    entity: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[int] = mapped_column()
    action: Mapped[str] = mapped_column(String(20))
    changes: Mapped[dict[str, Any]] = mapped_column(default=dict)


# -- web sign-in (owned by the web app; keep other tables above this line) -------------


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


# Feature models live in their own modules; importing them here registers their
# tables on Base.metadata for Alembic and the schema tests.
from crm_core import (  # noqa: E402, F401
    models_calltracking,
    models_recordings,
    models_sales,
    models_speech,
    models_talktime,
)
