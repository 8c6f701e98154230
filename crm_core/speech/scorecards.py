"""QC scorecards: versions the head of sales builds, and reviewers' scores of calls.

The automatic check says which phrases were said; a scorecard says what a person
heard: checkpoints with weights (yes, no, not applicable) and instant-fail items
(rudeness, a lie about the price) that make the score 0. The score is
``100 * weight of "yes" / weight of "yes" and "no"``, rounded. A supervisor keeps his
team's scorecard, an admin any team's or the company's; every score keeps the
version it was filled against.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import desc, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.calls.models import Call
from crm_core.errors import DomainError
from crm_core.people.models import Role, User
from crm_core.speech.models import QcScore, QcScorecard
from crm_core.speech.review import (
    ReviewConflictError,
    ReviewNotAllowedError,
    ReviewNotFoundError,
    scope,
)
from crm_core.timestamps import ensure_utc, utcnow

MAX_ITEMS, MAX_TITLE, MAX_WEIGHT = 40, 200, 100
YES, NO, NA = "yes", "no", "na"


class ScorecardError(DomainError):
    """A scorecard or a score that cannot be saved (``speech.scorecard.*``)."""


def may_build(user: User) -> bool:
    """Supervisors (their team's) and admins (any) build scorecards and score calls."""
    return user.role in (Role.SUPERVISOR, Role.ADMIN)


def check_items(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validated items with ids ``k1``, ``k2``...: a title, a weight (checkpoints only),
    ``instant_fail``; at least one checkpoint, so a score can be computed."""
    if len(raw) > MAX_ITEMS:
        raise ScorecardError("speech.scorecard.too_many", "too many items", max=MAX_ITEMS)
    items = []
    for n, entry in enumerate(raw, 1):
        title = str(entry.get("title") or "").strip()
        if not title:
            raise ScorecardError("speech.scorecard.title_required", "an item has no title", n=n)
        if len(title) > MAX_TITLE:
            raise ScorecardError("speech.scorecard.title_too_long", "a title is too long",
                                 n=n, max=MAX_TITLE)
        fail = bool(entry.get("instant_fail"))
        weight = 0
        if not fail:
            try:
                weight = int(str(entry.get("weight") or "").strip())
            except ValueError:
                raise ScorecardError("speech.scorecard.weight_invalid", "a weight is 1..100",
                                     n=n, max=MAX_WEIGHT) from None
            if not 1 <= weight <= MAX_WEIGHT:
                raise ScorecardError("speech.scorecard.weight_invalid", "a weight is 1..100",
                                     n=n, max=MAX_WEIGHT)
        items.append({"id": f"k{n}", "title": title, "weight": weight, "instant_fail": fail})
    if not any(not i["instant_fail"] for i in items):
        raise ScorecardError("speech.scorecard.no_checkpoints", "no checkpoint with a weight")
    return items


async def add_version(session: AsyncSession, user: User, *, name: str, team_id: int | None,
                      items: list[dict[str, Any]]) -> QcScorecard:
    """A new version in force from now; audited, not committed."""
    if not may_build(user):
        raise ReviewNotAllowedError("speech.scorecard.bosses_only",
                                    "supervisors and admins build scorecards")
    if user.role == Role.SUPERVISOR and (team_id is None or team_id != user.team_id):
        raise ReviewNotAllowedError("speech.scorecard.own_team_only",
                                    "a supervisor builds his own team's scorecard")
    name = name.strip()
    if not name or len(name) > 300:
        raise ScorecardError("speech.scorecard.name_required", "a scorecard needs a name")
    checked = check_items(items)
    row = QcScorecard(name=name, team_id=team_id, items=checked, created_by=user.id,
                      created_at=utcnow())
    session.add(row)
    await session.flush()
    write_audit(session, actor=user.username, user_id=user.id, entity="qc_scorecard",
                entity_id=row.id, action=ACTION_CREATE,
                changes={"name": [None, name], "team_id": [None, team_id],
                         "items": [None, checked]})
    return row


async def versions(session: AsyncSession, team_id: int | None = None, *,
                   every: bool = False) -> list[QcScorecard]:
    """Versions newest first: of one team (None: the company's), or of all (``every``)."""
    stmt = select(QcScorecard).order_by(desc(QcScorecard.id))
    if not every:
        stmt = stmt.where(QcScorecard.team_id.is_(None) if team_id is None
                          else QcScorecard.team_id == team_id)
    return list(await session.scalars(stmt))


async def in_force(session: AsyncSession, team_id: int | None) -> QcScorecard | None:
    """The newest version of the team's scorecard, else the company's."""
    for key in ([team_id] if team_id is not None else []) + [None]:
        found = await versions(session, key)
        if found:
            return found[0]
    return None


async def team_of_call(session: AsyncSession, call: Call) -> int | None:
    ext = call.managers[0] if call.managers else None
    if ext is None:
        return None
    return await session.scalar(select(User.team_id).where(User.extension == ext))


def compute(items: list[dict[str, Any]], answers: dict[str, Any]) -> tuple[int, bool]:
    """The 0-100 score and whether an instant-fail item happened; every item answered."""
    got, total, failed = 0, 0, False
    for item in items:
        answer = answers.get(item["id"])
        allowed = (YES, NO) if item["instant_fail"] else (YES, NO, NA)
        if answer not in allowed:
            raise ScorecardError("speech.scorecard.unanswered", "an item is not answered",
                                 item=item["title"])
        if item["instant_fail"]:
            failed = failed or answer == YES
        elif answer != NA:
            total += item["weight"]
            got += item["weight"] if answer == YES else 0
    if total == 0:
        raise ScorecardError("speech.scorecard.all_not_applicable",
                             "at least one checkpoint must apply")
    return (0 if failed else round(100 * got / total)), failed


async def save_score(session: AsyncSession, user: User, call: Call, scorecard_id: int,
                     answers: dict[str, Any], comment: str | None) -> QcScore:
    """The reviewer's score of a call he may see (the caller checked); one per call and
    reviewer, a correction updates it; audited, not committed."""
    if not may_build(user):
        raise ReviewNotAllowedError("speech.scorecard.reviewers_only",
                                    "supervisors and admins score calls")
    mine = await session.scalar(select(QcScore).where(QcScore.call_id == call.id,
                                                      QcScore.reviewer_id == user.id))
    current = await in_force(session, await team_of_call(session, call))
    allowed = {current.id if current else 0, mine.scorecard_id if mine else 0}
    if scorecard_id not in allowed:
        raise ReviewConflictError("speech.scorecard.version_changed",
                                  "the scorecard was changed: open the call again")
    card = await session.get(QcScorecard, scorecard_id)
    if card is None:
        raise ReviewNotFoundError("speech.scorecard.not_found", "no such scorecard")
    score, failed = compute(card.items, answers)
    answers = {i["id"]: answers[i["id"]] for i in card.items}
    text = (comment or "").strip()[:2000] or None
    now = utcnow()
    if mine is None:
        mine = QcScore(call_id=call.id, reviewer_id=user.id, scorecard_id=card.id,
                       manager=call.managers[0] if call.managers else None, answers=answers,
                       score=score, instant_fail=failed, comment=text, created_at=now,
                       updated_at=now)
        session.add(mine)
        await session.flush()
        write_audit(session, actor=user.username, user_id=user.id, entity="qc_score",
                    entity_id=mine.id, action=ACTION_CREATE,
                    changes={"call_id": [None, call.id], "score": [None, score],
                             "answers": [None, answers], "comment": [None, text]})
        return mine
    write_audit(session, actor=user.username, user_id=user.id, entity="qc_score",
                entity_id=mine.id, action=ACTION_UPDATE,
                changes={"score": [mine.score, score], "answers": [mine.answers, answers],
                         "comment": [mine.comment, text]})
    mine.scorecard_id, mine.answers, mine.score = card.id, answers, score
    mine.instant_fail, mine.comment, mine.updated_at = failed, text, now
    await session.flush()
    return mine


async def scores_of_call(session: AsyncSession, call_id: int) -> list[dict[str, Any]]:
    """Every reviewer's score of the call, oldest first, with the items answered."""
    rows = await session.execute(
        select(QcScore, User.name, QcScorecard)
        .join(User, User.id == QcScore.reviewer_id)
        .join(QcScorecard, QcScorecard.id == QcScore.scorecard_id)
        .where(QcScore.call_id == call_id).order_by(QcScore.created_at, QcScore.id))
    return [{"id": s.id, "reviewer": name, "reviewer_id": s.reviewer_id, "score": s.score,
             "instant_fail": s.instant_fail, "comment": s.comment, "answers": s.answers,
             "scorecard_id": card.id, "scorecard": card.name, "items": card.items,
             "updated_at": s.updated_at.isoformat()} for s, name, card in rows]


def week_start(moment: datetime, tz: tzinfo) -> datetime:
    """Monday 00:00 of the moment's week in the working day's timezone (as a naive date)."""
    local = moment.astimezone(tz)
    return (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0,
                                                             microsecond=0)


async def weekly(session: AsyncSession, user: User, *, since: datetime, until: datetime,
                 tz: tzinfo) -> list[dict[str, Any]]:
    """Per manager and week (of the call): how many scores and their average."""
    allowed = await scope(session, user)
    stmt = (select(QcScore.manager, QcScore.score, Call.started_at)
            .join(Call, Call.id == QcScore.call_id)
            .where(Call.started_at >= ensure_utc(since), Call.started_at < ensure_utc(until)))
    if allowed is not None:
        stmt = stmt.where(QcScore.manager.in_(sorted(allowed) or [""]))
    per: dict[tuple[str, str], list[int]] = {}
    for manager, score, started in await session.execute(stmt):
        week = week_start(started, tz).date().isoformat()
        per.setdefault((manager or "", week), []).append(score)
    names = {e: n for e, n in await session.execute(select(User.extension, User.name))
             if e is not None}
    return [{"manager": m or None, "manager_name": names.get(m, m), "week": week,
             "scores": len(v), "average": round(sum(v) / len(v), 1)}
            for (m, week), v in sorted(per.items(), key=lambda kv: (kv[0][1], kv[0][0]))]
