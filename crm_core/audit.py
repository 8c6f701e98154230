"""The audit trail: one row per change, written in the same transaction as the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.models import AuditLog

ACTION_CREATE = "create"
ACTION_UPDATE = "update"


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
