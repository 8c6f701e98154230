"""The audit trail: one row per change, written in the same transaction as the change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db.base import Base
from crm_core.timestamps import utcnow


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


ACTION_CREATE = "create"
ACTION_UPDATE = "update"
ACTION_MERGE = "merge"


def write_audit(
    session: AsyncSession,
    *,
    actor: str,
    entity: str,
    entity_id: int,
    action: str,
    changes: dict[str, Any],
    user_id: int | None = None,
) -> AuditLog:
    """Add an audit row; ``changes`` must be JSON-serializable (``{"field": [old, new]}``)."""
    entry = AuditLog(
        actor=actor,
        user_id=user_id,
        entity=entity,
        entity_id=entity_id,
        action=action,
        changes=changes,
    )
    session.add(entry)
    return entry
