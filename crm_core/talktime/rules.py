"""What a supervisor edits for talk time: his team's rules, holidays and absences.

Who may: a supervisor his own team (and its managers), an admin any team and the
company-wide defaults; nobody else. Every change is audited.

History is never rewritten: a rule change is a new row from a day on, and a rule
already in force on a past day cannot be changed (a day judged under it stays
judged so). A rule starting today or later may still be edited: no day has been
judged under it yet. Holidays and absences are archived when removed, never deleted.
A holiday or absence entered for days already judged (sick leave is often entered
afterwards) excuses their open violations with it as the reason; a violation the
supervisor already decided stays decided.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.errors import ConflictError, DomainError, NotAllowedError, NotFoundError
from crm_core.people.models import Role, Team, User
from crm_core.talktime.metric import Rules
from crm_core.talktime.models import (
    Absence,
    AbsenceKind,
    Holiday,
    TalkTimeRule,
    Violation,
    ViolationStatus,
)
from crm_core.timestamps import isoformat, utcnow

MAX_TARGET_MINUTES = 24 * 60
MAX_MIN_CALL_SECONDS = 3600
MAX_FINE = Decimal("100000000")
MAX_ABSENCE_DAYS = 366
MAX_IMPORT_LINES = 400  # a year of days and a header: each line is work in one transaction
KIND_NAMES = {"day_off": "отгул", "sick": "больничный", "vacation": "отпуск"}


class SettingsError(DomainError):
    """A talk-time settings change refused (``talktime.*``): a bad value here, the kinds
    below for the rest."""


class SettingsNotAllowedError(NotAllowedError, SettingsError):
    """The actor's role or team may not change this."""


class SettingsNotFoundError(NotFoundError, SettingsError):
    """No such team, manager, holiday or absence."""


class SettingsConflictError(ConflictError, SettingsError):
    """The day is a holiday already."""


# -- who may edit what -------------------------------------------------------------------------


def editable_team(actor: User | None, team_id: int | None) -> int | None:
    """``team_id`` if ``actor`` may edit it (None: the company-wide defaults); else refuse.

    ``actor`` None is the command line, run by whoever administers the server.
    """
    if actor is None or actor.role == Role.ADMIN:
        return team_id
    if actor.role != Role.SUPERVISOR or actor.team_id is None:
        raise SettingsNotAllowedError("talktime.settings_for_bosses",
                                      "only a supervisor or an admin changes talk-time settings")
    if team_id != actor.team_id:
        raise SettingsNotAllowedError("talktime.own_team_only",
                                      "a supervisor changes only his own team's settings")
    return team_id


async def team_by_key(session: AsyncSession, key: str) -> Team:
    """A team by its id or name."""
    stmt = select(Team).where(Team.id == int(key)) if key.isdigit() else select(Team).where(
        Team.name == key.strip())
    team = await session.scalar(stmt)
    if team is None:
        raise SettingsNotFoundError("talktime.team_not_found", f"no team {key!r}", team=key)
    return team


# -- rules ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleChange:
    """The fields to change; None keeps the value in force on that day."""

    target_minutes: int | None = None
    working_weekdays: str | None = None
    min_call_seconds: int | None = None
    fine_amount: Decimal | None = None
    day_start: time | None = None
    day_end: time | None = None


def parse_weekdays(value: str) -> str:
    """ISO weekdays as digits (``12345``), any order, each once; returns them sorted."""
    digits = value.replace(",", "").replace(" ", "")
    if not digits or any(c not in "1234567" for c in digits) or len(set(digits)) != len(digits):
        raise SettingsError("talktime.weekdays_invalid",
                            "weekdays must be digits 1 (Monday) to 7 (Sunday), each once")
    return "".join(sorted(digits))


def parse_clock(value: str, name: str) -> time:
    """``HH:MM`` on the 24-hour clock."""
    try:
        hours, minutes = value.strip().split(":")
        if len(minutes) != 2:
            raise ValueError
        return time(int(hours), int(minutes))
    except ValueError:
        raise SettingsError("talktime.clock_invalid", f"{name} must be a time HH:MM",
                            field=name) from None


def parse_fine(value: str) -> Decimal:
    try:
        fine = Decimal(value.strip().replace(",", "."))
    except InvalidOperation:
        raise SettingsError("talktime.fine_not_number", "the fine must be a number") from None
    if not fine.is_finite() or fine < 0 or fine >= MAX_FINE or fine != round(fine, 2):
        raise SettingsError("talktime.fine_out_of_range",
                            "the fine must be between 0 and 99999999.99 with at most 2 decimals")
    return fine


def _check(change: RuleChange) -> None:
    if change.target_minutes is not None and not 1 <= change.target_minutes <= MAX_TARGET_MINUTES:
        raise SettingsError("talktime.target_out_of_range",
                            f"the threshold must be 1 to {MAX_TARGET_MINUTES} minutes",
                            max=MAX_TARGET_MINUTES)
    if (change.min_call_seconds is not None
            and not 0 <= change.min_call_seconds <= MAX_MIN_CALL_SECONDS):
        raise SettingsError("talktime.min_call_out_of_range",
                            f"the minimum call length must be 0 to {MAX_MIN_CALL_SECONDS} s",
                            max=MAX_MIN_CALL_SECONDS)
    if change.working_weekdays is not None:
        parse_weekdays(change.working_weekdays)
    if change.fine_amount is not None:
        parse_fine(str(change.fine_amount))


def _minute(t: time) -> int:
    return t.hour * 60 + t.minute


def clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


async def rule_in_force(session: AsyncSession, team_id: int | None, day: date,
                        default: Rules | None = None) -> tuple[Rules, TalkTimeRule | None]:
    """The rules for ``team_id`` on ``day`` (the team's, else company-wide, else defaults)."""
    for wanted in ((team_id, None) if team_id is not None else (None,)):
        owner = (TalkTimeRule.team_id.is_(None) if wanted is None
                 else TalkTimeRule.team_id == wanted)
        row = await session.scalar(select(TalkTimeRule).where(
            owner, TalkTimeRule.effective_from <= day).order_by(
            TalkTimeRule.effective_from.desc()).limit(1))
        if row is not None:
            return rules_of(row), row
    return default or Rules(), None


def rules_of(row: TalkTimeRule) -> Rules:
    return Rules(row.target_seconds, row.working_weekdays, row.min_call_seconds,
                 Decimal(row.fine_amount), row.day_start_minute, row.day_end_minute)


_FIELDS = ("target_seconds", "working_weekdays", "min_call_seconds", "fine_amount",
           "day_start_minute", "day_end_minute")


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


async def set_rule(session: AsyncSession, actor: User | None, team_id: int | None,
                   effective_from: date, change: RuleChange, *, today: date,
                   default: Rules | None = None, actor_name: str = "cli") -> TalkTimeRule:
    """The team's rules from ``effective_from`` on: a new row, or an edit of a future one."""
    team_id = editable_team(actor, team_id)
    if effective_from < today:
        raise SettingsError(
            "talktime.past_rules",
            f"rules for past days cannot be changed: choose {today.isoformat()} or later",
            today=today)
    _check(change)
    base, _ = await rule_in_force(session, team_id, effective_from, default)
    start = _minute(change.day_start) if change.day_start else base.day_start_minute
    end = _minute(change.day_end) if change.day_end else base.day_end_minute
    if start >= end:
        raise SettingsError("talktime.day_reversed", "the working day must start before it ends")
    values = {
        "target_seconds": (change.target_minutes * 60 if change.target_minutes is not None
                           else base.target_seconds),
        "working_weekdays": (parse_weekdays(change.working_weekdays)
                             if change.working_weekdays is not None else base.working_weekdays),
        "min_call_seconds": (change.min_call_seconds if change.min_call_seconds is not None
                             else base.min_call_seconds),
        "fine_amount": (change.fine_amount if change.fine_amount is not None
                        else base.fine_amount),
        "day_start_minute": start, "day_end_minute": end,
    }
    owner = TalkTimeRule.team_id.is_(None) if team_id is None else TalkTimeRule.team_id == team_id
    row = await session.scalar(select(TalkTimeRule).where(
        owner, TalkTimeRule.effective_from == effective_from))
    who = actor.username if actor else actor_name
    if row is None:
        row = TalkTimeRule(team_id=team_id, effective_from=effective_from, created_by=who,
                           **values)
        session.add(row)
        await session.flush()
        write_audit(session, actor=who, user_id=actor.id if actor else None,
                    entity="talktime_rule", entity_id=row.id, action=ACTION_CREATE,
                    changes={"team_id": team_id, "effective_from": effective_from.isoformat(),
                             **{k: _jsonable(v) for k, v in values.items()}})
        return row
    diff = {k: [_jsonable(getattr(row, k)), _jsonable(v)] for k, v in values.items()
            if getattr(row, k) != v}
    for key, value in values.items():
        setattr(row, key, value)
    if diff:
        write_audit(session, actor=who, user_id=actor.id if actor else None,
                    entity="talktime_rule", entity_id=row.id, action=ACTION_UPDATE,
                    changes=diff)
    return row


def rule_to_dict(row: TalkTimeRule, team_names: dict[int, str] | None = None) -> dict[str, Any]:
    return {"id": row.id, "team_id": row.team_id,
            "team": (team_names or {}).get(row.team_id) if row.team_id else None,
            "effective_from": row.effective_from.isoformat(),
            "target_minutes": row.target_seconds // 60, "target_seconds": row.target_seconds,
            "working_weekdays": row.working_weekdays, "min_call_seconds": row.min_call_seconds,
            "fine_amount": str(row.fine_amount), "day_start": clock(row.day_start_minute),
            "day_end": clock(row.day_end_minute), "created_by": row.created_by}


async def list_rules(session: AsyncSession, actor: User | None) -> list[TalkTimeRule]:
    """Rule rows ``actor`` may see: his team's and the company-wide ones (admin: all)."""
    stmt = select(TalkTimeRule).order_by(TalkTimeRule.team_id, TalkTimeRule.effective_from)
    if actor is not None and actor.role != Role.ADMIN:
        stmt = stmt.where(or_(TalkTimeRule.team_id.is_(None),
                              TalkTimeRule.team_id == actor.team_id))
    return list(await session.scalars(stmt))


async def team_names(session: AsyncSession) -> dict[int, str]:
    return {t.id: t.name for t in await session.scalars(select(Team).order_by(Team.name))}


# -- days excluded after they were judged -------------------------------------------------------


async def excuse_open_violations(session: AsyncSession, actor: User | None, user_ids: Sequence[int],
                                 first: date, last: date, reason: str, *,
                                 actor_name: str = "cli") -> int:
    """Excuse the still-open violations of days that turned out excluded (sick leave entered
    afterwards); decided ones stay as they were. Returns how many."""
    if not user_ids:
        return 0
    rows = list(await session.scalars(select(Violation).where(
        Violation.user_id.in_(list(user_ids)), Violation.day >= first, Violation.day <= last,
        Violation.status == ViolationStatus.OPEN.value)))
    now = utcnow()
    for v in rows:
        v.status, v.reason, v.fine_amount = ViolationStatus.EXCUSED.value, reason[:1000], Decimal(0)
        v.decided_by_id, v.decided_at = (actor.id if actor else None), now
        write_audit(session, actor=actor.username if actor else actor_name,
                    user_id=actor.id if actor else None, entity="talktime_violation",
                    entity_id=v.id, action=ACTION_UPDATE,
                    changes={"status": [ViolationStatus.OPEN.value, v.status],
                             "reason": [None, v.reason]})
    return len(rows)


# -- holidays ------------------------------------------------------------------------------------


def _holiday_owner(actor: User | None, team_id: int | None) -> int | None:
    """Supervisors enter their team's holidays; the company calendar is the admin's."""
    if actor is not None and actor.role == Role.SUPERVISOR and team_id is None:
        team_id = actor.team_id
    return editable_team(actor, team_id)


async def add_holiday(session: AsyncSession, actor: User | None, day: date, name: str,
                      team_id: int | None = None, *, actor_name: str = "cli") -> Holiday:
    """A non-working day (of a team, or of the company when ``team_id`` is None)."""
    team_id = _holiday_owner(actor, team_id)
    if team_id is not None and await session.get(Team, team_id) is None:
        raise SettingsNotFoundError("talktime.team_missing", f"no team with id {team_id}")
    name = name.strip()[:200]
    owner = Holiday.team_id.is_(None) if team_id is None else Holiday.team_id == team_id
    row = await session.scalar(select(Holiday).where(Holiday.day == day, owner))
    who = actor.username if actor else actor_name
    if row is not None and row.archived_at is None:
        raise SettingsConflictError("talktime.holiday_exists",
                                    f"{day.isoformat()} is already a holiday", day=day)
    if row is None:
        row = Holiday(day=day, team_id=team_id, name=name)
        session.add(row)
        await session.flush()
        write_audit(session, actor=who, user_id=actor.id if actor else None,
                    entity="talktime_holiday", entity_id=row.id, action=ACTION_CREATE,
                    changes={"day": day.isoformat(), "team_id": team_id, "name": name})
    else:
        write_audit(session, actor=who, user_id=actor.id if actor else None,
                    entity="talktime_holiday", entity_id=row.id, action=ACTION_UPDATE,
                    changes={"archived_at": [isoformat(row.archived_at), None],
                             "name": [row.name, name]})
        row.archived_at, row.name = None, name
    managers = select(User.id).where(User.role == Role.MANAGER.value)
    if team_id is not None:
        managers = managers.where(User.team_id == team_id)
    await excuse_open_violations(session, actor, list(await session.scalars(managers)), day, day,
                                 f"Праздник: {name}" if name else "Праздник",
                                 actor_name=actor_name)
    return row


async def remove_holiday(session: AsyncSession, actor: User | None, holiday_id: int, *,
                         actor_name: str = "cli") -> Holiday:
    """Archive a holiday: its day is a working day again (for days not yet judged)."""
    row = await session.get(Holiday, holiday_id)
    if row is None or row.archived_at is not None:
        raise SettingsNotFoundError("talktime.holiday_not_found", "no such holiday")
    if actor is not None and actor.role == Role.SUPERVISOR and row.team_id != actor.team_id:
        raise SettingsNotAllowedError("talktime.own_team_holidays",
                                      "a supervisor removes only his own team's holidays")
    editable_team(actor, row.team_id)
    row.archived_at = utcnow()
    write_audit(session, actor=actor.username if actor else actor_name,
                user_id=actor.id if actor else None, entity="talktime_holiday",
                entity_id=row.id, action=ACTION_UPDATE,
                changes={"archived_at": [None, row.archived_at.isoformat()]})
    return row


async def list_holidays(session: AsyncSession, actor: User | None, first: date | None = None,
                        last: date | None = None) -> list[Holiday]:
    """Active holidays ``actor`` is concerned by: the company's and his team's (admin: all)."""
    stmt = select(Holiday).where(Holiday.archived_at.is_(None)).order_by(Holiday.day,
                                                                           Holiday.team_id)
    if first is not None:
        stmt = stmt.where(Holiday.day >= first)
    if last is not None:
        stmt = stmt.where(Holiday.day <= last)
    if actor is not None and actor.role != Role.ADMIN:
        stmt = stmt.where(or_(Holiday.team_id.is_(None), Holiday.team_id == actor.team_id))
    return list(await session.scalars(stmt))


def parse_holiday_csv(text: str) -> list[tuple[date, str]]:
    """``date[,name]`` lines (a header line is skipped); any bad line refuses the whole file."""
    out: list[tuple[date, str]] = []
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    if len(rows) > MAX_IMPORT_LINES:
        raise SettingsError("talktime.import_too_long",
                            f"at most {MAX_IMPORT_LINES} lines per file",
                            max=MAX_IMPORT_LINES)
    for number, row in enumerate(rows, 1):
        if not row or not "".join(row).strip():
            continue
        raw = row[0].strip()
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            if number == 1 and not raw[:1].isdigit():
                continue  # a header
            raise SettingsError("talktime.import_bad_date",
                                f"line {number}: {raw!r} is not a date (YYYY-MM-DD)",
                                line=number, value=raw) from None
        out.append((day, ",".join(row[1:]).strip()[:200]))
    if not out:
        raise SettingsError("talktime.import_no_dates", "the file has no dates")
    return out


async def import_holidays(session: AsyncSession, actor: User | None, text: str,
                          team_id: int | None = None, *,
                          actor_name: str = "cli") -> tuple[int, int]:
    """Add every date of a CSV; days already holidays are skipped. Returns (added, skipped)."""
    return await add_holidays(session, actor, parse_holiday_csv(text), team_id,
                              actor_name=actor_name)


async def add_holidays(session: AsyncSession, actor: User | None,
                       rows: list[tuple[date, str]], team_id: int | None = None, *,
                       actor_name: str = "cli") -> tuple[int, int]:
    """Add parsed holidays (at most :data:`MAX_IMPORT_LINES`, checked by the parser, which
    the web runs on a thread before the transaction). Returns (added, skipped)."""
    added = skipped = 0
    for day, name in rows:
        try:
            await add_holiday(session, actor, day, name, team_id, actor_name=actor_name)
            added += 1
        except ConflictError:
            skipped += 1
    return added, skipped


def holiday_to_dict(row: Holiday, names: dict[int, str] | None = None) -> dict[str, Any]:
    return {"id": row.id, "date": row.day.isoformat(), "name": row.name,
            "team_id": row.team_id,
            "team": (names or {}).get(row.team_id) if row.team_id else None}


# -- absences ------------------------------------------------------------------------------------


async def _absent_manager(session: AsyncSession, actor: User | None, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None or user.role != Role.MANAGER:
        raise SettingsNotFoundError("talktime.manager_not_found", "no such manager")
    if actor is not None and actor.role == Role.SUPERVISOR and user.team_id != actor.team_id:
        raise SettingsNotAllowedError(
            "talktime.own_team_absences",
            "a supervisor enters absences only for his own team's managers")
    editable_team(actor, user.team_id)
    return user


async def manager_by_key(session: AsyncSession, key: str) -> User:
    """A manager by extension or username."""
    user = await session.scalar(select(User).where(
        or_(User.extension == key.strip(), User.username == key.strip())))
    if user is None or user.role != Role.MANAGER:
        raise SettingsNotFoundError("talktime.manager_key_not_found",
                                    f"no manager {key!r} (give an extension or a username)",
                                    key=key)
    return user


async def add_absence(session: AsyncSession, actor: User | None, user_id: int, first: date,
                      last: date, kind: str, note: str = "", *,
                      actor_name: str = "cli") -> Absence:
    """A manager's day off, sick leave or vacation: those days are not judged."""
    if kind not in {k.value for k in AbsenceKind}:
        raise SettingsError("talktime.absence_kind_invalid",
                            "the kind must be day_off, sick or vacation")
    if last < first:
        raise SettingsError("talktime.absence_reversed", "the absence ends before it starts")
    if (last - first).days >= MAX_ABSENCE_DAYS:
        raise SettingsError("talktime.absence_too_long",
                            f"an absence is at most {MAX_ABSENCE_DAYS} days",
                            max=MAX_ABSENCE_DAYS)
    user = await _absent_manager(session, actor, user_id)
    row = Absence(user_id=user.id, first_day=first, last_day=last, kind=kind,
                  note=note.strip()[:500])
    session.add(row)
    await session.flush()
    write_audit(session, actor=actor.username if actor else actor_name,
                user_id=actor.id if actor else None, entity="talktime_absence",
                entity_id=row.id, action=ACTION_CREATE,
                changes={"user_id": user.id, "first_day": first.isoformat(),
                         "last_day": last.isoformat(), "kind": kind, "note": row.note})
    reason = KIND_NAMES[kind].capitalize() + (f": {row.note}" if row.note else "")
    await excuse_open_violations(session, actor, [user.id], first, last, reason,
                                 actor_name=actor_name)
    return row


async def cancel_absence(session: AsyncSession, actor: User | None, absence_id: int, *,
                         actor_name: str = "cli") -> Absence:
    """Archive an absence entered by mistake."""
    row = await session.get(Absence, absence_id)
    if row is None or row.archived_at is not None:
        raise SettingsNotFoundError("talktime.absence_not_found", "no such absence")
    await _absent_manager(session, actor, row.user_id)
    row.archived_at = utcnow()
    write_audit(session, actor=actor.username if actor else actor_name,
                user_id=actor.id if actor else None, entity="talktime_absence",
                entity_id=row.id, action=ACTION_UPDATE,
                changes={"archived_at": [None, row.archived_at.isoformat()]})
    return row


async def list_absences(session: AsyncSession, managers: Sequence[User],
                        first: date | None = None, last: date | None = None) -> list[Absence]:
    """Active absences of ``managers`` overlapping ``[first, last]``."""
    stmt = select(Absence).where(Absence.archived_at.is_(None),
                                 Absence.user_id.in_([m.id for m in managers]))
    if first is not None:
        stmt = stmt.where(Absence.last_day >= first)
    if last is not None:
        stmt = stmt.where(Absence.first_day <= last)
    return list(await session.scalars(stmt.order_by(Absence.first_day, Absence.id)))


def absence_to_dict(row: Absence, user: User | None = None) -> dict[str, Any]:
    return {"id": row.id, "user_id": row.user_id,
            "extension": user.extension if user else None, "name": user.name if user else None,
            "from": row.first_day.isoformat(), "to": row.last_day.isoformat(),
            "kind": row.kind, "kind_name": KIND_NAMES.get(row.kind, row.kind), "note": row.note}
