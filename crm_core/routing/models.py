"""Sticky routing tables: the switches per team and per DID, and the PBX's tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db.base import Base
from crm_core.timestamps import utcnow


class RoutingRule(Base):
    """Sticky routing for a team's clients (``team_id``) or for calls to a DID (``did``).

    A team's rule is on or off (``enabled``). A DID's rule overrides the owner's team for
    calls to that number: on (True: a support line's clients still reach their manager
    though the team has it off), off (False: always the queue), or as the team (NULL).
    """

    __tablename__ = "routing_rules"
    __table_args__ = (
        CheckConstraint("(team_id IS NULL) <> (did IS NULL)", name="team_or_did"),
        CheckConstraint("ring_seconds BETWEEN 5 AND 120", name="ring_seconds"),
        CheckConstraint("team_id IS NULL OR enabled IS NOT NULL", name="team_enabled"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), unique=True)
    did: Mapped[str | None] = mapped_column(String(20), unique=True)  # E.164
    enabled: Mapped[bool | None] = mapped_column(default=False)  # a DID's NULL: as the team
    ring_seconds: Mapped[int] = mapped_column(default=15, server_default="15")
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PbxToken(Base):
    """A token the PBX's dialplan presents to ask for an owner; only its SHA-256 is kept."""

    __tablename__ = "pbx_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()
