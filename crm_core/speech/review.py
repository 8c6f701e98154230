"""The supervisor's QC queue over KKP results: listing, decisions (fines), metrics.

A violation counts against a manager only after a supervisor of his team (or an
admin) confirms it: the confirmation is a fine of the amount configured on the
script version, recorded with who decided and when, and audited. A dismissal needs
a reason. A manager sees his own results and cannot decide.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_CREATE, write_audit
from crm_core.calls.models import Call, CallLeg
from crm_core.errors import ConflictError, DomainError, NotAllowedError, NotFoundError
from crm_core.people.models import Role, User
from crm_core.speech.models import KkpResult, KkpReview, KkpScriptVersion
from crm_core.timestamps import ensure_utc, utcnow

CONFIRMED, DISMISSED = "confirmed", "dismissed"
MAX_ROWS = 5000


class ReviewError(DomainError):
    """A decision that cannot be taken (``speech.review.*``; who may not decide, what is
    missing or already decided are the family's subclasses below)."""


class ReviewNotAllowedError(NotAllowedError, ReviewError):
    """Only a supervisor of the manager's team (or an admin) decides."""


class ReviewNotFoundError(NotFoundError, ReviewError):
    """No such result or violation that the reviewer may see."""


class ReviewConflictError(ConflictError, ReviewError):
    """The violation was decided already."""


def may_decide(user: User) -> bool:
    """Only supervisors (of the manager's team) and admins turn a violation into a fine."""
    return user.role in (Role.SUPERVISOR, Role.ADMIN)


async def scope(session: AsyncSession, user: User) -> dict[str, str] | None:
    """Extension -> name of the managers whose results ``user`` sees; None: everyone."""
    if user.role == Role.ADMIN:
        return None
    if user.role == Role.SUPERVISOR and user.team_id is not None:
        rows = await session.execute(select(User.extension, User.name)
                                     .where(User.team_id == user.team_id,
                                            User.extension.is_not(None)))
        return {ext: name for ext, name in rows if ext is not None}
    if user.role in (Role.MANAGER, Role.SUPERVISOR) and user.extension:
        return {user.extension: user.name}
    return {}


def _manager(call: Call) -> str | None:
    return call.managers[0] if call.managers else None


async def _results(session: AsyncSession, user: User, since: datetime, until: datetime,
                   manager: str | None = None) -> list[tuple[KkpResult, Call]]:
    """Results of calls started in [since, until) whose first manager ``user`` sees."""
    allowed = await scope(session, user)
    stmt = (select(KkpResult, Call).join(Call, Call.id == KkpResult.call_id)
            .where(Call.started_at >= ensure_utc(since), Call.started_at < ensure_utc(until))
            .order_by(KkpResult.score, Call.started_at.desc()).limit(MAX_ROWS))
    wanted = [manager] if manager else (sorted(allowed) if allowed is not None else None)
    if wanted is not None:  # narrow in SQL first (the first-manager rule is applied below)
        stmt = stmt.where(exists().where(CallLeg.call_id == Call.id,
                                         CallLeg.extension.in_(wanted or [""])))
    out = []
    for result, call in await session.execute(stmt):
        ext = _manager(call)
        if allowed is not None and ext not in allowed:
            continue
        if manager and ext != manager:
            continue
        out.append((result, call))
    return out


async def _reviews(session: AsyncSession, result_ids: list[int]) -> dict[int, list[KkpReview]]:
    by_result: dict[int, list[KkpReview]] = {}
    if result_ids:
        rows = await session.scalars(select(KkpReview).where(KkpReview.result_id.in_(result_ids))
                                     .order_by(KkpReview.violation_index))
        for review in rows:
            by_result.setdefault(review.result_id, []).append(review)
    return by_result


async def _names(session: AsyncSession) -> dict[str, str]:
    rows = await session.execute(select(User.extension, User.name)
                                 .where(User.extension.is_not(None)))
    return {ext: name for ext, name in rows if ext is not None}


async def queue(session: AsyncSession, user: User, *, since: datetime, until: datetime,
                manager: str | None = None, needs_review_only: bool = False,
                limit: int = 200) -> list[dict[str, Any]]:
    """Checked calls, lowest score first, with how many violations are still open."""
    pairs = await _results(session, user, since, until, manager)
    reviews = await _reviews(session, [r.id for r, _ in pairs])
    names = await _names(session)
    rows = []
    for result, call in pairs:
        violations = result.result.get("violations") or []
        decided = {r.violation_index for r in reviews.get(result.id, [])}
        open_review = [i for i, v in enumerate(violations)
                       if v.get("needs_review") and i not in decided]
        if needs_review_only and not open_review:
            continue
        ext = _manager(call)
        rows.append({"id": result.id, "call_id": call.id,
                     "started_at": call.started_at.isoformat(), "manager": ext,
                     "manager_name": names.get(ext or "", ext), "score": result.score,
                     "script": result.script_name, "violations": len(violations),
                     "open": len([i for i in range(len(violations)) if i not in decided]),
                     "needs_review": bool(open_review)})
        if len(rows) >= limit:
            break
    return rows


async def visible_result(session: AsyncSession, user: User,
                         result_id: int) -> tuple[KkpResult, Call] | None:
    """The result and its call if ``user`` may see it (else None: answer 404)."""
    row = (await session.execute(select(KkpResult, Call).join(Call, Call.id == KkpResult.call_id)
                                 .where(KkpResult.id == result_id))).first()
    if row is None:
        return None
    allowed = await scope(session, user)
    if allowed is not None and _manager(row[1]) not in allowed:
        return None
    return row[0], row[1]


def review_to_dict(review: KkpReview, names: dict[int, str]) -> dict[str, Any]:
    return {"violation_index": review.violation_index, "violation_id": review.violation_id,
            "decision": review.decision, "reason": review.reason, "amount": review.amount,
            "manager": review.manager, "reviewer": names.get(review.reviewer_id or 0),
            "decided_at": review.decided_at.isoformat()}


async def detail(session: AsyncSession, result: KkpResult, call: Call) -> dict[str, Any]:
    """A result with its evidence and the decisions taken, for the evidence panel."""
    reviews = (await _reviews(session, [result.id])).get(result.id, [])
    reviewer_ids = {r.reviewer_id for r in reviews if r.reviewer_id}
    names = {}
    if reviewer_ids:
        found = await session.execute(select(User.id, User.name)
                                      .where(User.id.in_(reviewer_ids)))
        names = {user_id: name for user_id, name in found}
    by_index = {r.violation_index: review_to_dict(r, names) for r in reviews}
    violations = [{**v, "index": i, "review": by_index.get(i)}
                  for i, v in enumerate(result.result.get("violations") or [])]
    return {"id": result.id, "call_id": call.id, "started_at": call.started_at.isoformat(),
            "manager": _manager(call), "score": result.score, "script": result.script_name,
            "script_version": result.script_version, "script_id": result.script_id,
            "stages": result.result.get("stages") or [],
            "violations": violations}


async def decide(session: AsyncSession, user: User, result_id: int, index: int,
                 decision: str, reason: str | None) -> KkpReview:
    """Confirm (a fine) or dismiss (with a reason) one violation; audited, not committed."""
    if not may_decide(user):
        raise ReviewNotAllowedError("speech.review.bosses_only",
                                    "only a supervisor of the manager's team may decide")
    if decision not in (CONFIRMED, DISMISSED):
        raise ReviewError("speech.review.decision_invalid",
                          "decision must be 'confirmed' or 'dismissed'")
    reason = (reason or "").strip() or None
    if decision == DISMISSED and not reason:
        raise ReviewError("speech.review.dismissal_needs_reason", "a dismissal needs a reason")
    found = await visible_result(session, user, result_id)
    if found is None:
        raise ReviewNotFoundError("speech.review.result_not_found", "no such result of your team")
    result, call = found
    violations = result.result.get("violations") or []
    if not 0 <= index < len(violations):
        raise ReviewNotFoundError("speech.review.violation_not_found",
                                  f"the result has no violation {index}", index=index)
    taken = await session.scalar(select(KkpReview).where(KkpReview.result_id == result_id,
                                                         KkpReview.violation_index == index))
    if taken is not None:
        raise ReviewConflictError("speech.review.confirmed_already" if taken.decision == CONFIRMED
                                  else "speech.review.dismissed_already",
                                  f"this violation was already {taken.decision}")
    amount = 0
    if decision == CONFIRMED and result.script_id is not None:
        script = await session.get(KkpScriptVersion, result.script_id)
        amount = script.fine_amount if script is not None else 0
    review = KkpReview(result_id=result_id, violation_index=index,
                       violation_id=str(violations[index].get("id") or ""), decision=decision,
                       reason=reason, amount=amount, manager=_manager(call),
                       reviewer_id=user.id, decided_at=utcnow())
    session.add(review)
    await session.flush()
    write_audit(session, actor=user.username, user_id=user.id, entity="kkp_review",
                entity_id=review.id, action=ACTION_CREATE,
                changes={"result_id": [None, result_id], "violation_index": [None, index],
                         "decision": [None, decision], "reason": [None, reason],
                         "amount": [None, amount], "manager": [None, review.manager]})
    return review


async def metrics(session: AsyncSession, user: User, *, since: datetime,
                  until: datetime) -> list[dict[str, Any]]:
    """Per manager: checked calls, average score, violations (all and per week), fines."""
    pairs = await _results(session, user, since, until)
    reviews = await _reviews(session, [r.id for r, _ in pairs])
    names = await _names(session)
    weeks = max((ensure_utc(until) - ensure_utc(since)).total_seconds() / (7 * 86400), 1 / 7)
    per: dict[str, dict[str, Any]] = {}
    for result, call in pairs:
        ext = _manager(call) or ""
        m = per.setdefault(ext, {"manager": ext or None, "manager_name": names.get(ext, ext),
                                 "calls": 0, "score_sum": 0, "violations": 0, "confirmed": 0,
                                 "dismissed": 0, "fines": 0})
        m["calls"] += 1
        m["score_sum"] += result.score
        m["violations"] += len(result.result.get("violations") or [])
        for review in reviews.get(result.id, []):
            m["confirmed" if review.decision == CONFIRMED else "dismissed"] += 1
            m["fines"] += review.amount
    rows = []
    for m in per.values():
        score_sum = m.pop("score_sum")
        rows.append({**m, "average_score": round(score_sum / m["calls"], 1),
                     "violations_per_week": round(m["violations"] / weeks, 2)})
    return sorted(rows, key=lambda r: (r["average_score"], r["manager"] or ""))


async def fines(session: AsyncSession, user: User, *, since: datetime,
                until: datetime) -> list[dict[str, Any]]:
    """Confirmed violations decided in [since, until): what the pay system deducts."""
    allowed = await scope(session, user)
    stmt = (select(KkpReview, KkpResult.call_id)
            .join(KkpResult, KkpResult.id == KkpReview.result_id)
            .where(KkpReview.decision == CONFIRMED,
                   KkpReview.decided_at >= ensure_utc(since),
                   KkpReview.decided_at < ensure_utc(until))
            .order_by(KkpReview.decided_at))
    reviewers = {k: v for k, v in await session.execute(select(User.id, User.username))}
    out = []
    for review, call_id in await session.execute(stmt):
        if allowed is not None and review.manager not in allowed:
            continue
        out.append({"call_id": call_id, "result_id": review.result_id,
                    "manager": review.manager, "violation": review.violation_id,
                    "amount": review.amount, "confirmed_by": reviewers.get(review.reviewer_id or 0),
                    "confirmed_at": review.decided_at.isoformat()})
    return out
