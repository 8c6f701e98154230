"""ORM models of the client's activities and call outcomes (registered by crm_core.schema).

Nothing here is deleted: a note or a logged contact put in by mistake is archived (it
leaves the card, the audit log keeps it); an outcome taken off the list is archived and
the calls that got it keep their outcome.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, true
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db.base import Base, one_of
from crm_core.timestamps import utcnow


class ActivityKind(StrEnum):
    NOTE = "note"
    EMAIL_OUT = "email_out"  # an e-mail sent to the client
    EMAIL_IN = "email_in"  # an e-mail received from him
    MEETING = "meeting"  # a meeting held


# Kinds that are a contact with the client, as an answered call is (status rules, ЧЧК, reports).
CONTACT_KINDS = (ActivityKind.EMAIL_OUT.value, ActivityKind.EMAIL_IN.value,
                 ActivityKind.MEETING.value)
EMAIL_KINDS = (ActivityKind.EMAIL_OUT.value, ActivityKind.EMAIL_IN.value)


class ClientActivity(Base):
    """A note about a client, or a contact that was not a call (an e-mail, a meeting).

    ``happened_at`` is when the contact took place (the manager says so when he logs it
    later); for a note, when it was written.
    """

    __tablename__ = "client_activities"
    __table_args__ = (
        CheckConstraint(one_of("kind", ActivityKind), name="kind"),
        Index("ix_client_activities_client_id_happened_at", "client_id", "happened_at"),
        Index("ix_client_activities_user_id_happened_at", "user_id", "happened_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    kind: Mapped[str] = mapped_column(String(20))
    happened_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The note's text, the e-mail's subject and gist, or the meeting's result.
    text: Mapped[str] = mapped_column(String(4000))
    # Who wrote or was written to, who took part in the meeting (free text).
    people: Mapped[str | None] = mapped_column(String(300))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column()
    archived_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))


class CallOutcome(Base):
    """One outcome a manager may give a call («Договорились о встрече», «Отказ», ...)."""

    __tablename__ = "call_outcomes"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CallResult(Base):
    """What came of a call: its outcome from the list and the manager's note; one per call."""

    __tablename__ = "call_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"),
                                         unique=True)
    outcome_id: Mapped[int] = mapped_column(ForeignKey("call_outcomes.id"), index=True)
    note: Mapped[str | None] = mapped_column(String(1000))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"),
                                                index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
