"""Calls as stored: the conversation, its legs (channels) and recording files."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.db.base import Base, one_of
from crm_core.timestamps import utcnow

if TYPE_CHECKING:
    from crm_core.clients.models import Client
    from crm_core.people.models import User


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


class LegRole(StrEnum):
    MANAGER = "manager"
    CLIENT = "client"
    SUPERVISOR = "supervisor"
    OTHER = "other"


class Call(Base):
    """One customer-facing conversation: everything sharing an Asterisk ``linkedid``."""

    __tablename__ = "calls"
    __table_args__ = (
        CheckConstraint(one_of("direction", Direction), name="direction"),
        CheckConstraint(one_of("status", CallStatus), name="status"),
        # "Did we talk to this client between these days?" (sales summary; migration 0011),
        # from the index alone: the direction tells a contact from an internal call (0033)
        Index("ix_calls_client_id_started_at", "client_id", "started_at", "direction",
              postgresql_where=text("answered_at IS NOT NULL"),
              sqlite_where=text("answered_at IS NOT NULL")),
        # A team's calls through its queue in a period (the call log; migration 0014).
        Index("ix_calls_queue_started_at", "queue", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Asterisk's linkedid; ``<pbx>:<linkedid>`` for a PBX other than the default one
    # (crm_core.calls.snapshot.pbx_key), so two PBXs' calls never collide.
    # insert_sentinel: unique and always given, so a batch INSERT matches its returned
    # ids by it and SQLite writes many rows a statement, not one (insertmanyvalues).
    linkedid: Mapped[str] = mapped_column(String(150), unique=True, insert_sentinel=True)
    # The PBX (``telecrm pbx list``) the call happened on (migration 0019).
    pbx: Mapped[str] = mapped_column(String(40), default="main", server_default="main")
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
    queue: Mapped[str | None] = mapped_column(String(80))
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
    __table_args__ = (
        CheckConstraint(one_of("role", LegRole), name="role"),
        # A person's legs by time: the call log's manager and team filters (migration 0014).
        Index("ix_call_legs_user_id_started_at", "user_id", "started_at"),
        Index("ix_call_legs_extension_started_at", "extension", "started_at"),
        # A person's calls from the index alone (transcript search; migration 0032).
        Index("ix_call_legs_user_id_call_id", "user_id", "call_id"),
        Index("ix_call_legs_extension_call_id", "extension", "call_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    # Unique and an insert sentinel, as Call.linkedid.
    uniqueid: Mapped[str] = mapped_column(String(150), unique=True, insert_sentinel=True)
    channel: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    extension: Mapped[str | None] = mapped_column(String(80))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
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
