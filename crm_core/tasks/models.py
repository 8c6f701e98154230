"""Tasks: what a person must do for a client, and when."""

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
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.db.base import Base, one_of
from crm_core.timestamps import utcnow

if TYPE_CHECKING:
    from crm_core.calls.models import Call
    from crm_core.clients.models import Client
    from crm_core.people.models import Team, User


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


class Task(Base):
    """Something a person must do for a client, e.g. call back after a missed call.

    ``(kind, call_id)`` is unique so a rule fired by a call creates its task once, however
    often the call is written; tasks typed by hand have no call and are not limited.
    """

    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint(one_of("kind", TaskKind), name="kind"),
        CheckConstraint(one_of("status", TaskStatus), name="status"),
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
