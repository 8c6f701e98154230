"""The weekly random sample: N calls per manager put into the review queue.

A reviewer cannot listen to everything, and choosing by hand picks the calls that
confirm an opinion. So each team sets N; for a week, every manager of the team gets up
to N of his answered, recorded calls drawn at random, seeded by the week and his
extension: the same week drawn again on the same calls picks the same ones, so anyone
can check the draw was not steered. A call is drawn once ever (a unique key), and
drawing a week again only tops a manager up to N.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.calls.models import Call, CallLeg, Recording
from crm_core.people.models import Role, Team, User
from crm_core.speech.models import QcSample, QcSampleSetting, QcScore
from crm_core.speech.review import ReviewError, ReviewNotAllowedError
from crm_core.timestamps import utcnow

MAX_PER_MANAGER = 50


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def week_bounds(week: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """The week's [Monday 00:00, next Monday 00:00) in the working day's timezone."""
    start = datetime.combine(monday(week), time(0), tzinfo=tz)
    return start, datetime.combine(monday(week) + timedelta(days=7), time(0), tzinfo=tz)


def _teams_of(user: User) -> int | None:
    """The one team a supervisor manages; None: an admin, every team."""
    if user.role == Role.ADMIN:
        return None
    if user.role == Role.SUPERVISOR and user.team_id is not None:
        return user.team_id
    raise ReviewNotAllowedError("speech.sample.bosses_only",
                                "a supervisor (his team) or an admin sets the sample")


async def settings(session: AsyncSession, user: User) -> list[dict[str, Any]]:
    """N per team the user manages (0 where not set), by team name."""
    only = _teams_of(user)
    stmt = select(Team.id, Team.name).order_by(Team.name)
    if only is not None:
        stmt = stmt.where(Team.id == only)
    set_ = {s.team_id: s.per_manager for s in await session.scalars(select(QcSampleSetting))}
    return [{"team_id": tid, "team": name, "per_manager": set_.get(tid, 0)}
            for tid, name in await session.execute(stmt)]


async def set_per_manager(session: AsyncSession, user: User, team_id: int, n: int) -> None:
    """Set a team's N; audited, not committed."""
    only = _teams_of(user)
    if only is not None and only != team_id:
        raise ReviewNotAllowedError("speech.sample.own_team_only",
                                    "a supervisor sets his own team's sample")
    if not 0 <= n <= MAX_PER_MANAGER:
        raise ReviewError("speech.sample.count_out_of_range", "N is 0..50",
                          max=MAX_PER_MANAGER)
    row = await session.get(QcSampleSetting, team_id)
    old = row.per_manager if row is not None else None
    if row is None:
        row = QcSampleSetting(team_id=team_id)
        session.add(row)
    row.per_manager, row.updated_by, row.updated_at = n, user.id, utcnow()
    await session.flush()
    write_audit(session, actor=user.username, user_id=user.id, entity="qc_sample_setting",
                entity_id=team_id, action=ACTION_CREATE if old is None else ACTION_UPDATE,
                changes={"per_manager": [old, n]})


async def _candidates(session: AsyncSession, ext: str, since: datetime,
                      until: datetime) -> list[int]:
    """His answered calls with a recording in the period, never drawn, by id."""
    stmt = (select(Call.id, Call.managers)
            .where(Call.status == "answered", Call.started_at >= since, Call.started_at < until,
                   exists().where(Recording.call_id == Call.id),
                   exists().where(CallLeg.call_id == Call.id, CallLeg.extension == ext),
                   ~exists().where(QcSample.call_id == Call.id))
            .order_by(Call.id))
    return [cid for cid, managers in await session.execute(stmt)
            if managers and managers[0] == ext]


async def draw(session: AsyncSession, user: User | None, week: date, tz: tzinfo
               ) -> list[QcSample]:
    """Draw the week for the teams ``user`` manages (None: every team, the scheduled
    ``telecrm qc sample``); the new samples (audited, not committed). Seeded by week and
    extension, so the draw is reproducible."""
    only = _teams_of(user) if user is not None else None
    actor, actor_id = (user.username, user.id) if user is not None else ("cli", None)
    since, until = week_bounds(week, tz)
    key = monday(week).isoformat()
    counts = {s.team_id: s.per_manager for s in await session.scalars(select(QcSampleSetting))}
    stmt = (select(User).where(User.role == Role.MANAGER.value, User.active.is_(True),
                               User.extension.is_not(None), User.team_id.is_not(None))
            .order_by(User.extension))
    if only is not None:
        stmt = stmt.where(User.team_id == only)
    added = []
    for manager in await session.scalars(stmt):
        n = counts.get(manager.team_id or 0, 0)
        ext = manager.extension or ""
        taken = await session.scalar(select(func.count()).select_from(QcSample).where(
            QcSample.week == key, QcSample.manager == ext)) or 0
        if n <= taken:
            continue
        pool = await _candidates(session, ext, since, until)
        picked = random.Random(f"{key}:{ext}").sample(pool, min(n - taken, len(pool)))
        for call_id in sorted(picked):
            row = QcSample(call_id=call_id, week=key, manager=ext, team_id=manager.team_id,
                           drawn_by=actor_id, created_at=utcnow())
            session.add(row)
            added.append(row)
    await session.flush()
    for row in added:
        write_audit(session, actor=actor, user_id=actor_id, entity="qc_sample",
                    entity_id=row.id, action=ACTION_CREATE,
                    changes={"call_id": [None, row.call_id], "week": [None, row.week],
                             "manager": [None, row.manager]})
    return added


async def queue(session: AsyncSession, user: User, week: date) -> list[dict[str, Any]]:
    """The week's sampled calls the user may see, with how many reviewers scored each."""
    stmt = (select(QcSample, Call.started_at, User.name)
            .join(Call, Call.id == QcSample.call_id)
            .outerjoin(User, User.extension == QcSample.manager)
            .where(QcSample.week == monday(week).isoformat())
            .order_by(QcSample.manager, Call.started_at))
    if user.role != Role.ADMIN:
        if user.role == Role.SUPERVISOR and user.team_id is not None:
            stmt = stmt.where(QcSample.team_id == user.team_id)
        else:
            stmt = stmt.where(QcSample.manager == (user.extension or ""))
    rows = list(await session.execute(stmt))
    ids = [s.call_id for s, _, _ in rows]
    scored: dict[int, int] = {}
    for call_id in (await session.scalars(select(QcScore.call_id)
                                          .where(QcScore.call_id.in_(ids or [0])))):
        scored[call_id] = scored.get(call_id, 0) + 1
    return [{"call_id": s.call_id, "manager": s.manager, "manager_name": name or s.manager,
             "started_at": started.isoformat(), "scores": scored.get(s.call_id, 0)}
            for s, started, name in rows]
