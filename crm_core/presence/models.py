"""Presence tables: the pause reasons and each manager's history of states.

A manager with no history is «на месте»: switching the feature on changes nothing for
a floor that never touches it. A change is one row from its moment on, never updated,
so the day's time in each state is read back from the rows alone.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.db.base import Base
from crm_core.timestamps import utcnow


class PresenceReason(Base):
    """Why a manager is away from his phone («обед», «встреча»...); archived, never deleted."""

    __tablename__ = "presence_reasons"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    # Pausing his queue membership in Asterisk: a manager at a meeting takes no queue calls.
    pauses_queue: Mapped[bool] = mapped_column(default=True, server_default=true())
    position: Mapped[int] = mapped_column(default=0, server_default="0")
    archived_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PresenceChange(Base):
    """From ``at`` on, the manager is paused for ``reason_id`` (NULL: back «на месте»)."""

    __tablename__ = "presence_changes"
    __table_args__ = (Index("ix_presence_changes_user_id_at", "user_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    reason_id: Mapped[int | None] = mapped_column(
        ForeignKey("presence_reasons.id", ondelete="RESTRICT"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    changed_by: Mapped[str] = mapped_column(String(100))

    reason: Mapped[PresenceReason | None] = relationship()
