"""What call tracking adds to the call log: the source of a call as a filter and its picker."""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import Call
from crm_core.calltracking.models import CtAttribution, CtSite, CtStaticNumber


def from_channel(channel: str) -> ColumnElement[bool]:
    """Calls attributed to ``channel`` (a billboard, a site), repeat callers included."""
    return exists().where(CtAttribution.call_id == Call.id, CtAttribution.channel == channel)


async def channels(session: AsyncSession) -> list[str]:
    """Every channel a call can be attributed to: of the static numbers and the sites.

    Read from those two small tables, not from the attributions (a million rows), and
    archived ones included: their old calls stay searchable.
    """
    names = union(select(CtStaticNumber.channel), select(CtSite.channel)).subquery()
    rows = await session.scalars(select(names.c[0]).where(names.c[0].is_not(None)))
    return sorted({name for name in rows if name}, key=str.casefold)
