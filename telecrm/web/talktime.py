"""Talk time per manager for one working day, straight from the call legs.

A simple, correct version (the talk-time issue will move a refined one into
crm_core): a manager's talk is the bridged time of his legs in calls that
started that day; ``calls`` counts the calls in which he actually talked.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.models import Call, CallLeg, LegRole, User
from crm_core.timestamps import ensure_utc


async def talk_time(session: AsyncSession, managers: Sequence[User], since: datetime,
                    until: datetime, target_seconds: int) -> list[dict[str, Any]]:
    """``extension, name, talk_seconds, calls, target_seconds, met`` per manager, by extension."""
    if not managers:
        return []
    ids = [m.id for m in managers]
    stmt = (
        select(
            CallLeg.user_id,
            func.coalesce(func.sum(CallLeg.talk_seconds), 0.0),
            func.count(distinct(CallLeg.call_id)).filter(CallLeg.talk_seconds > 0),
        )
        .join(Call, Call.id == CallLeg.call_id)
        .where(
            CallLeg.user_id.in_(ids),
            CallLeg.role == LegRole.MANAGER.value,
            Call.started_at >= ensure_utc(since),
            Call.started_at < ensure_utc(until),
        )
        .group_by(CallLeg.user_id)
    )
    totals = {row[0]: (float(row[1] or 0), int(row[2] or 0))
              for row in await session.execute(stmt)}
    out = []
    for manager in managers:
        seconds, calls = totals.get(manager.id, (0.0, 0))
        out.append({
            "extension": manager.extension,
            "name": manager.name,
            "talk_seconds": round(seconds, 3),
            "calls": calls,
            "target_seconds": target_seconds,
            "met": seconds >= target_seconds,
        })
    return out
