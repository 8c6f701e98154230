"""Timezone-aware UTC timestamps on every backend.

PostgreSQL keeps ``timestamptz`` natively; SQLite has no time zones and would
hand back naive values. ``UTCDateTime`` stores UTC on both and always returns
aware UTC datetimes, so comparisons and ISO output never depend on the backend.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from crm_core.clock import utcnow

__all__ = ["UTCDateTime", "aggregate_utc", "ensure_utc", "isoformat", "utcnow"]


def ensure_utc(value: datetime) -> datetime:
    """``value`` converted to UTC; naive datetimes are rejected (their zone is a guess)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} given; pass a timezone-aware one")
    return value.astimezone(UTC)


def isoformat(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with an explicit ``+00:00`` offset, or None."""
    return None if value is None else ensure_utc(value).isoformat()


def aggregate_utc(value: Any) -> datetime | None:
    """A timestamp out of an SQL aggregate (``max(started_at)``): the column type is lost
    there, so SQLite hands back ISO text (or a naive value) and PostgreSQL an aware one."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that accepts only aware values and returns aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = ensure_utc(value)
        if dialect.name == "sqlite":
            # Naive UTC text sorts and compares correctly in SQLite.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
