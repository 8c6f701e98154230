"""The product's one clock: every "now" and "today" in Telecrm is read here.

Nothing else in the product asks the system for the date, so a test pins time in
one way (time-machine in the process, libfaketime for a subprocess) and a day
boundary is computed the same everywhere: in the workday's time zone, not UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    """The current instant, aware, in UTC."""
    return datetime.now(UTC)


def local_now(tz: tzinfo | str) -> datetime:
    """The current instant as a wall clock in ``tz`` (a zone or its IANA name)."""
    return utcnow().astimezone(ZoneInfo(tz) if isinstance(tz, str) else tz)


def local_today(tz: tzinfo | str) -> date:
    """Today's date where the sales floor works: after midnight in ``tz`` it is the next day."""
    return local_now(tz).date()
