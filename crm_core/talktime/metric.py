"""Talk time: bridged conversation with clients, per manager and working day.

What counts: the manager's own legs (``role = manager``) of non-internal calls, by
their ``talk_seconds`` (bridged time, hold already excluded by the tracker), so a
transferred call gives each manager only his part; ringing, voicemail, internal
calls and spy (supervisor) legs never count. Legs shorter than the rule's
``min_call_seconds`` are ignored. A call counts on the day its talk began.

Midnight: a leg whose ``[bridged_at, ended_at]`` crosses a day boundary is split in
proportion to the wall time on each side. Where the hold fell inside the interval
is not stored, so hold is assumed spread evenly (the approximation is at most the
leg's hold time). Legs are assumed shorter than 24 h.

Live: a leg of a call still ``in_progress`` counts ``now - bridged_at - hold``
(at least its stored talk), so the figure grows while the manager talks.

Efficiency: one aggregate query buckets legs by local day (comparisons with the
period's midnights: ``width_bucket`` on PostgreSQL, a CASE elsewhere), reading legs
by the index ``(user_id, bridged_at)`` (covering on PostgreSQL); internal calls are
subtracted rather than joined; only the rare legs crossing midnight or still live
are fetched one by one. Finished days are counted once and kept in the per-day
rollup (:mod:`crm_core.talktime.rollup`); reports read it and count only the days
it lacks (today, and days a late write made it forget).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, case, distinct, func, literal, or_, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.calls.models import Call, CallLeg, CallStatus, Direction, LegRole
from crm_core.errors import ConflictError, DomainError
from crm_core.people.management import deactivation_periods
from crm_core.people.models import Role, User
from crm_core.talktime.models import Absence, Holiday, TalkTimeRule, Violation, ViolationStatus
from crm_core.talktime.rollup import read_rollup, write_rollup
from crm_core.timestamps import utcnow

DEFAULT_TARGET_SECONDS = 150 * 60


@dataclass(frozen=True)
class Rules:
    """The rules in force for one team on one day."""

    target_seconds: int = DEFAULT_TARGET_SECONDS
    working_weekdays: str = "12345"
    min_call_seconds: int = 0
    fine_amount: Decimal = Decimal("0")
    day_start_minute: int = 9 * 60  # the working hours the pace projection assumes
    day_end_minute: int = 18 * 60


@dataclass
class DayTalk:
    """One manager's talk on one day."""

    seconds: float = 0.0
    counted_calls: int = 0  # calls counted in SQL (their ids are not fetched)
    call_ids: set[int] = field(default_factory=set)  # calls of legs handled one by one
    live: bool = False  # a leg still open touches this day: the figure is not final

    @property
    def calls(self) -> int:
        return self.counted_calls + len(self.call_ids)


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The local day as a half-open UTC interval (DST-safe: 23 h or 25 h days stay whole)."""
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


def days_between(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last`` inclusive."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


# -- rules and calendar ---------------------------------------------------------------------


Period = tuple[datetime, datetime | None]  # an account switched off: from, until (None: still)


class Calendar:
    """Rules, holidays, absences and accounts for a period, asked per (manager, day).

    Only managers are judged: supervisors and admins have no talk-time target. Nor is
    a day judged that a manager could not work in full: before his account existed
    (``not_hired``), the day it was created after the working hours had begun
    (``first_day``), or any day his account was switched off during its working hours
    (``deactivated``).
    """

    def __init__(self, rules: Sequence[TalkTimeRule], holidays: Sequence[Holiday],
                 absences: Sequence[Absence], default: Rules, *,
                 switched_off: dict[int, list[Period]] | None = None,
                 tz: ZoneInfo | None = None) -> None:
        self._rules = sorted(rules, key=lambda r: r.effective_from, reverse=True)
        self._holidays = {(h.team_id, h.day): h.name for h in holidays}
        self._absences: dict[int, list[Absence]] = defaultdict(list)
        for a in absences:
            self._absences[a.user_id].append(a)
        self._default = default
        self._switched_off = switched_off or {}
        self._tz = tz or ZoneInfo("UTC")
        self._cache: dict[tuple[int | None, date], Rules] = {}

    def rules(self, team_id: int | None, day: date) -> Rules:
        """The newest rule effective on ``day``: the team's, else the company-wide one."""
        key = (team_id, day)
        if key not in self._cache:
            self._cache[key] = self._find(team_id, day)
        return self._cache[key]

    def _find(self, team_id: int | None, day: date) -> Rules:
        for wanted in ((team_id, None) if team_id is not None else (None,)):
            for rule in self._rules:
                if rule.team_id == wanted and rule.effective_from <= day:
                    return Rules(rule.target_seconds, rule.working_weekdays,
                                 rule.min_call_seconds, Decimal(rule.fine_amount),
                                 rule.day_start_minute, rule.day_end_minute)
        return self._default

    def working_hours(self, team_id: int | None, day: date) -> tuple[datetime, datetime]:
        """The day's working hours under its rules, as aware moments."""
        rules = self.rules(team_id, day)
        return (datetime.combine(day, minute_time(rules.day_start_minute), tzinfo=self._tz),
                datetime.combine(day, minute_time(rules.day_end_minute), tzinfo=self._tz))

    def _account(self, user: User, day: date) -> str | None:
        """Why the account keeps ``day`` from being judged, or None."""
        if user.role != Role.MANAGER:
            return "not_manager"
        begin, end = self.working_hours(user.team_id, day)
        created = user.created_at
        if created is not None:
            if created >= end or created.astimezone(self._tz).date() > day:
                return "not_hired"
            if created > begin:
                return "first_day"
        periods = self._switched_off.get(user.id, [])
        if not user.active and not any(until is None for _, until in periods):
            return "deactivated"  # switched off with no record of when: never judged
        for since, until in periods:
            if since < end and (until is None or until > begin):
                return "deactivated"
        return None

    def excluded(self, user: User, day: date) -> str | None:
        """Why ``day`` is not judged for ``user`` (account, absence, holiday, weekend), or None."""
        account = self._account(user, day)
        if account is not None:
            return account
        for absence in self._absences.get(user.id, ()):
            if absence.first_day <= day <= absence.last_day:
                return absence.kind
        if (None, day) in self._holidays or (user.team_id, day) in self._holidays:
            return "holiday"
        if str(day.isoweekday()) not in self.rules(user.team_id, day).working_weekdays:
            return "weekend"
        return None


async def load_calendar(session: AsyncSession, users: Sequence[User], first: date, last: date,
                        default: Rules | None = None, tz: ZoneInfo | None = None) -> Calendar:
    """Everything needed to judge ``users`` from ``first`` to ``last``, in four queries.

    ``tz`` is the workday's time zone, in which the working hours are read (UTC if None).
    """
    ids = [u.id for u in users]
    rules = list(await session.scalars(
        select(TalkTimeRule).where(TalkTimeRule.effective_from <= last)))
    holidays = list(await session.scalars(select(Holiday).where(
        Holiday.day >= first, Holiday.day <= last, Holiday.archived_at.is_(None))))
    absences = list(await session.scalars(select(Absence).where(
        Absence.user_id.in_(ids), Absence.first_day <= last, Absence.last_day >= first,
        Absence.archived_at.is_(None))))
    return Calendar(rules, holidays, absences, default or Rules(),
                    switched_off=await deactivation_periods(session, ids), tz=tz)


# -- counting -------------------------------------------------------------------------------


# When the leg started talking; legs stored before ``bridged_at`` existed fall back to
# the moment their channel answered.
BEGAN = func.coalesce(CallLeg.bridged_at, CallLeg.answered_at)


def _share(start: datetime, end: datetime, talk: float, lo: datetime, hi: datetime) -> float:
    """The part of ``talk`` (spread evenly over ``[start, end]``) that falls in ``[lo, hi)``."""
    span = (end - start).total_seconds()
    if span <= 0:
        return talk if lo <= start < hi else 0.0
    overlap = (min(end, hi) - max(start, lo)).total_seconds()
    return talk * max(0.0, overlap) / span


def _index(bounds: Sequence[tuple[datetime, datetime]], moment: datetime) -> int:
    return next(i for i, (lo, hi) in enumerate(bounds) if lo <= moment < hi)


async def talk_by_day(session: AsyncSession, user_ids: Sequence[int], first: date, last: date,
                      tz: ZoneInfo, *, min_call_seconds: int = 0,
                      now: datetime | None = None) -> dict[tuple[int, date], DayTalk]:
    """Talk per (manager id, local day) from ``first`` to ``last`` inclusive."""
    out: dict[tuple[int, date], DayTalk] = defaultdict(DayTalk)
    if not user_ids:
        return out
    days = days_between(first, last)
    bounds = [day_bounds(d, tz) for d in days]
    start, end = bounds[0][0], bounds[-1][1]

    native = session.get_bind().dialect.name == "postgresql"
    n = len(days)

    def bucket(column: Any) -> Any:
        """The day index of ``column``: -1 before the period, ``n`` after it.

        Plain comparisons with the period's local midnights (DST-safe, no time zone
        arithmetic per row): PostgreSQL's ``width_bucket`` binary-searches them.
        """
        if native:
            marks = [literal(lo, DateTime(timezone=True)) for lo, _ in bounds]
            marks.append(literal(end, DateTime(timezone=True)))
            return func.width_bucket(column, postgresql.array(marks)) - 1
        return case((column < start, -1),
                    *[(column < hi, i) for i, (_, hi) in enumerate(bounds)], else_=n)

    base = [CallLeg.user_id.in_(list(user_ids)), CallLeg.role == LegRole.MANAGER.value,
            CallLeg.talk_seconds >= min_call_seconds]
    day_of = bucket(CallLeg.bridged_at)

    def whole(*extra: Any) -> Any:
        return (
            select(CallLeg.user_id, day_of, func.sum(CallLeg.talk_seconds),
                   func.count(distinct(CallLeg.call_id)))
            .where(*base, CallLeg.bridged_at >= start, CallLeg.bridged_at < end,
                   CallLeg.ended_at < end, *extra)
            .group_by(CallLeg.user_id, day_of)
        )

    # Legs ended within the period, each on the day its talk began (the few crossing a
    # midnight are moved below): all of them, minus those of internal calls.
    # Subtracting the few internal calls (found by their start) is much cheaper than
    # joining every leg to its call.
    internal = select(Call.id).where(Call.direction == Direction.INTERNAL.value,
                                     Call.started_at >= start - timedelta(days=1),
                                     Call.started_at < end)
    counted: dict[tuple[int, date], int] = defaultdict(int)
    for sign, stmt in ((1, whole()), (-1, whole(CallLeg.call_id.in_(internal)))):
        for user_id, index, seconds, calls in await session.execute(stmt):
            key = (user_id, days[index])
            out[key].seconds += sign * float(seconds or 0)
            counted[key] += sign * int(calls)
    # The rare rest, leg by leg: legs crossing a midnight (into, inside or out of the
    # period), legs still live, and legs stored before ``bridged_at`` existed.
    columns = (CallLeg.call_id, CallLeg.user_id, BEGAN, CallLeg.ended_at,
               CallLeg.talk_seconds, CallLeg.hold_seconds, CallLeg.bridged_at.is_not(None))
    odd = select(*columns).where(
        *base, CallLeg.bridged_at >= start - timedelta(days=1), CallLeg.bridged_at < end,
        or_(CallLeg.ended_at.is_(None), day_of != bucket(CallLeg.ended_at)))
    legacy = select(*columns).where(
        *base, CallLeg.bridged_at.is_(None), CallLeg.answered_at >= start - timedelta(days=1),
        CallLeg.answered_at < end)
    rows = [*await session.execute(odd), *await session.execute(legacy)]
    ids = sorted({r[0] for r in rows})
    calls_of = {cid: (direction, status) for cid, direction, status in await session.execute(
        select(Call.id, Call.direction, Call.status).where(Call.id.in_(ids)))}
    for call_id, user_id, bridged, ended, talk, hold, has_bridged in rows:
        direction, status = calls_of[call_id]
        if direction == Direction.INTERNAL.value:
            continue  # never counted (and netted out of the aggregate above)
        talk = float(talk or 0)
        live = False
        in_aggregate = bool(has_bridged) and ended is not None and start <= bridged and ended < end
        if in_aggregate:  # counted whole on its first day above: take it back to split it
            out[(user_id, days[_index(bounds, bridged)])].seconds -= talk
        if ended is None:
            if status != CallStatus.IN_PROGRESS.value or now is None:
                continue  # a stale open leg: no reliable end, not counted
            live = True
            ended = max(now, bridged)
            talk = max(talk, (ended - bridged).total_seconds() - float(hold or 0))
        for day, (lo, hi) in zip(days, bounds, strict=True):
            part = _share(bridged, ended, talk, lo, hi)
            if part > 0 or (lo <= bridged < hi):
                item = out[(user_id, day)]
                item.seconds += part
                item.live = item.live or live
                if lo <= bridged < hi and not in_aggregate:
                    item.call_ids.add(call_id)
    for key, calls in counted.items():
        out[key].counted_calls = calls
        if out[key].seconds < 1e-6:
            out[key].seconds = 0.0  # float residue of the subtraction
    return out


async def period_talk(session: AsyncSession, users: Sequence[User], first: date, last: date,
                      tz: ZoneInfo, calendar: Calendar, *, now: datetime | None = None,
                      use_rollup: bool = True) -> dict[tuple[int, date], DayTalk]:
    """Talk per (manager, day), each day under the minimum-length rule in force then.

    Finished days stored in the rollup are read from it; the rest is counted.
    """
    days = days_between(first, last)
    needed: dict[int, list[int]] = defaultdict(list)
    mins: dict[tuple[int, date], int] = {}
    for user in users:
        for day in days:
            m = calendar.rules(user.team_id, day).min_call_seconds
            mins[(user.id, day)] = m
            if user.id not in needed[m]:
                needed[m].append(user.id)
    stored = (await read_rollup(session, [u.id for u in users], first, last, tz.key)
              if use_rollup else {})
    result: dict[tuple[int, date], DayTalk] = defaultdict(DayTalk)
    for m, ids in needed.items():
        missing: set[tuple[int, date]] = set()
        for uid in ids:
            for day in days:
                if mins[(uid, day)] != m:
                    continue
                hit = stored.get((uid, day, m))
                if hit is None:
                    missing.add((uid, day))
                else:
                    result[(uid, day)] = DayTalk(seconds=hit[0], counted_calls=hit[1])
        if not missing:
            continue
        part = await talk_by_day(session, sorted({uid for uid, _ in missing}),
                                 min(d for _, d in missing), max(d for _, d in missing), tz,
                                 min_call_seconds=m, now=now)
        for key, value in part.items():
            if key in missing:
                result[key] = value
    return result


async def refresh_rollup(session: AsyncSession, users: Sequence[User], first: date, last: date,
                         tz: ZoneInfo, *, now: datetime | None = None,
                         default: Rules | None = None) -> int:
    """Count the finished days from ``first`` to ``last`` afresh and store them; returns rows.

    Days not over yet, and days a still-open leg touches, are left out (their
    figures can still change).
    """
    now = now or utcnow()
    while last >= first and day_bounds(last, tz)[1] > now:
        last -= timedelta(days=1)
    if last < first or not users:
        return 0
    calendar = await load_calendar(session, users, first, last, default, tz)
    talk = await period_talk(session, users, first, last, tz, calendar, now=now,
                             use_rollup=False)
    rows = []
    for user in users:
        for day in days_between(first, last):
            item = talk.get((user.id, day), DayTalk())
            if not item.live:
                rows.append(((user.id, day, calendar.rules(user.team_id, day).min_call_seconds),
                             round(item.seconds, 3), item.calls))
    return await write_rollup(session, [u.id for u in users], first, last, tz.key, rows)


# -- reports --------------------------------------------------------------------------------


def _day_row(user: User, day: date, talk: DayTalk, calendar: Calendar) -> dict[str, Any]:
    rules = calendar.rules(user.team_id, day)
    seconds = round(talk.seconds, 3)
    calls = talk.calls
    excluded = calendar.excluded(user, day)
    return {"date": day.isoformat(), "talk_seconds": seconds, "calls": calls,
            "target_seconds": rules.target_seconds, "met": seconds >= rules.target_seconds,
            "working": excluded is None, "excluded": excluded,
            "avg_call_seconds": round(seconds / calls, 1) if calls else 0.0,
            "day_start_minute": rules.day_start_minute, "day_end_minute": rules.day_end_minute}


async def day_report(session: AsyncSession, managers: Sequence[User], day: date, tz: ZoneInfo,
                     *, now: datetime | None = None,
                     default: Rules | None = None) -> list[dict[str, Any]]:
    """Per manager: ``extension, name, talk_seconds, calls, target_seconds, met`` (and more)."""
    calendar = await load_calendar(session, managers, day, day, default, tz)
    talk = await period_talk(session, managers, day, day, tz, calendar, now=now)
    return [{"extension": m.extension, "name": m.name, "user_id": m.id, "team_id": m.team_id,
             **_day_row(m, day, talk.get((m.id, day), DayTalk()), calendar)}
            for m in managers]


async def period_report(session: AsyncSession, managers: Sequence[User], first: date,
                        last: date, tz: ZoneInfo, *, now: datetime | None = None,
                        default: Rules | None = None) -> dict[str, Any]:
    """Per manager his days and totals (days met/missed), and per team the sums."""
    if last < first:
        raise DomainError("talktime.period_reversed", "the period ends before it starts")
    if (last - first).days > 366:
        raise DomainError("talktime.period_too_long", "the period is longer than a year")
    calendar = await load_calendar(session, managers, first, last, default, tz)
    talk = await period_talk(session, managers, first, last, tz, calendar, now=now)
    today = (now or utcnow()).astimezone(tz).date()
    rows = []
    teams: dict[int | None, dict[str, Any]] = {}
    for m in managers:
        days = [_day_row(m, d, talk.get((m.id, d), DayTalk()), calendar)
                for d in days_between(first, last)]
        working = [d for d in days if d["working"]]
        # A day not over yet is not missed (yet): it can still be met.
        judged = [d for d in working if d["met"] or date.fromisoformat(d["date"]) < today]
        seconds = round(sum(d["talk_seconds"] for d in days), 3)
        calls = sum(d["calls"] for d in days)
        row = {"extension": m.extension, "name": m.name, "user_id": m.id, "team_id": m.team_id,
               "talk_seconds": seconds, "calls": calls,
               "target_seconds": sum(d["target_seconds"] for d in working),
               "working_days": len(working), "excluded_days": len(days) - len(working),
               "days_met": sum(d["met"] for d in judged),
               "days_missed": sum(not d["met"] for d in judged), "days": days}
        row["met"] = row["days_missed"] == 0
        rows.append(row)
        team = teams.setdefault(m.team_id, {"team_id": m.team_id, "managers": 0,
                                            "talk_seconds": 0.0, "calls": 0, "days_met": 0,
                                            "days_missed": 0})
        team["managers"] += 1
        team["talk_seconds"] = round(team["talk_seconds"] + seconds, 3)
        team["calls"] += calls
        team["days_met"] += row["days_met"]
        team["days_missed"] += row["days_missed"]
    return {"from": first.isoformat(), "to": last.isoformat(), "managers": rows,
            "teams": list(teams.values())}


def projection(talk_seconds: float, target_seconds: int, now: datetime, tz: ZoneInfo,
               day_start: time = time(9), day_end: time = time(18), *,
               paused_seconds: float = 0.0) -> dict[str, Any]:
    """Minutes so far, minutes left and whether the current pace makes the target by day end.

    The pace is talk per second of his working time gone by (``day_start`` to now, less
    ``paused_seconds`` of breaks, lunch, meetings: a manager back from lunch is not behind
    for it), extended over what is left of the working hours until ``day_end``.
    """
    local = now.astimezone(tz)
    begin = datetime.combine(local.date(), day_start, tzinfo=tz)
    finish = datetime.combine(local.date(), day_end, tzinfo=tz)
    elapsed = max(0.0, (min(local, finish) - begin).total_seconds() - max(0.0, paused_seconds))
    remaining = max(0.0, (finish - max(local, begin)).total_seconds())
    pace = talk_seconds / elapsed if elapsed else 0.0
    projected = talk_seconds + pace * remaining
    return {"talk_minutes": round(talk_seconds / 60, 1),
            "left_minutes": round(max(0.0, target_seconds - talk_seconds) / 60, 1),
            "projected_minutes": round(projected / 60, 1),
            "projected_seconds": round(projected, 1),
            "on_track": projected >= target_seconds,
            "day_start": day_start.strftime("%H:%M"), "day_end": day_end.strftime("%H:%M")}


def minute_time(minute: int) -> time:
    """Minutes after midnight as a clock time (24:00 is the last minute of the day)."""
    return time(23, 59) if minute >= 24 * 60 else time(minute // 60, minute % 60)


# -- end of the working day -------------------------------------------------------------------


async def close_day(session: AsyncSession, managers: Sequence[User], day: date, tz: ZoneInfo,
                    *, actor: str = "system", default: Rules | None = None) -> list[Violation]:
    """Write a violation for each manager below target on a working day; idempotent.

    Whoever is not judged that day gets none: supervisors and admins (no target), and
    a manager whose account did not exist yet or was switched off (see :class:`Calendar`).

    A day already judged keeps its violation (and the supervisor's decision) as is,
    so running the job twice, or after a rule change, never rewrites history.
    """
    rows = await day_report(session, managers, day, tz, default=default)
    existing = set(await session.scalars(
        select(Violation.user_id).where(Violation.day == day)))
    created = []
    for row in rows:
        if not row["working"] or row["met"] or row["user_id"] in existing:
            continue
        shortfall = round(row["target_seconds"] - row["talk_seconds"], 3)
        violation = Violation(user_id=row["user_id"], day=day, talk_seconds=row["talk_seconds"],
                              target_seconds=row["target_seconds"], shortfall_seconds=shortfall)
        session.add(violation)
        await session.flush()
        write_audit(session, actor=actor, entity="talktime_violation", entity_id=violation.id,
                    action=ACTION_CREATE, changes={"day": day.isoformat(),
                                                   "talk_seconds": row["talk_seconds"],
                                                   "target_seconds": row["target_seconds"]})
        created.append(violation)
    await refresh_rollup(session, managers, day, day, tz, default=default)
    return created


async def decide_violation(session: AsyncSession, violation: Violation, supervisor: User, *,
                           confirm: bool, reason: str | None = None,
                           default: Rules | None = None) -> Violation:
    """Confirm (the fine in force that day applies) or excuse (a reason is required)."""
    if violation.status != ViolationStatus.OPEN.value:
        raise ConflictError("talktime.violation_decided", "this violation has already been decided")
    if not confirm and not (reason or "").strip():
        raise DomainError("talktime.excuse_needs_reason", "an excuse needs a reason")
    owner = await session.get(User, violation.user_id)
    calendar = await load_calendar(session, [owner] if owner else [], violation.day,
                                   violation.day, default)
    old = violation.status
    violation.status = (ViolationStatus.CONFIRMED if confirm else ViolationStatus.EXCUSED).value
    violation.fine_amount = (calendar.rules(owner.team_id if owner else None, violation.day)
                             .fine_amount if confirm else Decimal("0"))
    violation.reason = (reason or "").strip() or None
    violation.decided_by_id = supervisor.id
    violation.decided_at = utcnow()
    write_audit(session, actor=supervisor.username, user_id=supervisor.id,
                entity="talktime_violation", entity_id=violation.id, action=ACTION_UPDATE,
                changes={"status": [old, violation.status], "reason": [None, violation.reason],
                         "fine_amount": [None, str(violation.fine_amount)]})
    return violation


def violation_to_dict(v: Violation, user: User | None = None) -> dict[str, Any]:
    return {"id": v.id, "user_id": v.user_id, "extension": user.extension if user else None,
            "name": user.name if user else None, "date": v.day.isoformat(),
            "talk_seconds": v.talk_seconds, "target_seconds": v.target_seconds,
            "shortfall_seconds": v.shortfall_seconds, "status": v.status,
            "fine_amount": None if v.fine_amount is None else str(v.fine_amount),
            "reason": v.reason}
