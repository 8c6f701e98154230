"""ORM models of call tracking (imported by crm_core.models so Alembic sees them)."""

from __future__ import annotations

from crm_core.models import Base  # noqa: F401
