"""The supervisor's QC queue over KKP results: listing, decisions (fines), metrics.

A violation counts against a manager only after a supervisor of his team (or an
admin) confirms it: the confirmation is a fine of the amount configured on the
script version, recorded with who decided and when, and audited. A dismissal needs
a reason. A manager sees his own results and cannot decide.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_CREATE, write_audit
from crm_core.calls.models import Call, CallLeg
from crm_core.errors import ConflictError, DomainError, NotAllowedError, NotFoundError
from crm_core.people.models import Role, User
from crm_core.speech.models import KkpAppeal, KkpResult, KkpReview, KkpScriptVersion
from crm_core.timestamps import ensure_utc, utcnow

CONFIRMED, DISMISSED = "confirmed", "dismissed"
OPEN, CANCELLED, KEPT = "open", "cancelled", "kept"  # appeal states
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


def fine_state(review: KkpReview, appeal: KkpAppeal | None) -> str:
    """What a decision means for pay: ``dismissed`` (no fine), ``active``, ``appealed``
    (disputed, not decided yet: still due), ``kept`` (disputed, upheld) or ``cancelled``."""
    if review.decision != CONFIRMED:
        return "dismissed"
    if appeal is None:
        return "active"
    return {OPEN: "appealed", KEPT: "kept", CANCELLED: "cancelled"}[appeal.state]


async def appeals_of(session: AsyncSession, review_ids: list[int]) -> dict[int, KkpAppeal]:
    """Appeals (crm_core.speech.appeals) by the confirmation they dispute."""
    if not review_ids:
        return {}
    rows = await session.scalars(select(KkpAppeal).where(KkpAppeal.review_id.in_(review_ids)))
    return {a.review_id: a for a in rows}


def appeal_to_dict(appeal: KkpAppeal, names: dict[int, str]) -> dict[str, Any]:
    return {"id": appeal.id, "state": appeal.state, "reason": appeal.reason,
            "filed_by": names.get(appeal.filed_by or 0),
            "filed_at": appeal.filed_at.isoformat(),
            "decided_by": names.get(appeal.decided_by or 0), "comment": appeal.comment,
            "decided_at": appeal.decided_at.isoformat() if appeal.decided_at else None}


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
    appeals = await appeals_of(session, [v.id for rs in reviews.values() for v in rs])
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
                     "needs_review": bool(open_review),
                     "appealed": sum(1 for r in reviews.get(result.id, [])
                                     if fine_state(r, appeals.get(r.id)) == "appealed")})
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


def review_to_dict(review: KkpReview, names: dict[int, str],
                   appeal: KkpAppeal | None = None) -> dict[str, Any]:
    return {"id": review.id, "violation_index": review.violation_index,
            "violation_id": review.violation_id, "decision": review.decision,
            "reason": review.reason, "amount": review.amount, "manager": review.manager,
            "reviewer": names.get(review.reviewer_id or 0), "reviewer_id": review.reviewer_id,
            "decided_at": review.decided_at.isoformat(), "state": fine_state(review, appeal),
            "appeal": appeal_to_dict(appeal, names) if appeal is not None else None}


async def detail(session: AsyncSession, result: KkpResult, call: Call) -> dict[str, Any]:
    """A result with its evidence and the decisions taken, for the evidence panel."""
    reviews = (await _reviews(session, [result.id])).get(result.id, [])
    appeals = await appeals_of(session, [r.id for r in reviews])
    people = {r.reviewer_id for r in reviews} | {a.filed_by for a in appeals.values()} | {
        a.decided_by for a in appeals.values()}
    people.discard(None)
    names = {}
    if people:
        found = await session.execute(select(User.id, User.name).where(User.id.in_(people)))
        names = {user_id: name for user_id, name in found}
    by_index = {r.violation_index: review_to_dict(r, names, appeals.get(r.id))
                for r in reviews}
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
    appeals = await appeals_of(session, [v.id for rs in reviews.values() for v in rs])
    names = await _names(session)
    weeks = max((ensure_utc(until) - ensure_utc(since)).total_seconds() / (7 * 86400), 1 / 7)
    per: dict[str, dict[str, Any]] = {}
    for result, call in pairs:
        ext = _manager(call) or ""
        m = per.setdefault(ext, {"manager": ext or None, "manager_name": names.get(ext, ext),
                                 "calls": 0, "score_sum": 0, "violations": 0, "confirmed": 0,
                                 "dismissed": 0, "cancelled": 0, "fines": 0})
        m["calls"] += 1
        m["score_sum"] += result.score
        m["violations"] += len(result.result.get("violations") or [])
        for review in reviews.get(result.id, []):
            state = fine_state(review, appeals.get(review.id))
            m["confirmed" if review.decision == CONFIRMED else "dismissed"] += 1
            if state == CANCELLED:  # cancelled on appeal: counted, not charged
                m["cancelled"] += 1
            else:
                m["fines"] += review.amount
    rows = []
    for m in per.values():
        score_sum = m.pop("score_sum")
        rows.append({**m, "average_score": round(score_sum / m["calls"], 1),
                     "violations_per_week": round(m["violations"] / weeks, 2)})
    return sorted(rows, key=lambda r: (r["average_score"], r["manager"] or ""))


async def fines(session: AsyncSession, user: User, *, since: datetime,
                until: datetime) -> list[dict[str, Any]]:
    """What the pay system deducts: fines confirmed in [since, until), and fines whose
    appeal was decided in it (a fine cancelled after last month's payroll comes back
    with ``amount`` 0, so the deduction can be returned).

    ``fine_amount`` is what was confirmed, ``amount`` what is due now (0 once cancelled),
    ``status`` is ``active``, ``appealed`` (still due until decided), ``kept`` or
    ``cancelled``.
    """
    allowed = await scope(session, user)
    lo, hi = ensure_utc(since), ensure_utc(until)
    stmt = (select(KkpReview, KkpResult.call_id, KkpAppeal)
            .join(KkpResult, KkpResult.id == KkpReview.result_id)
            .outerjoin(KkpAppeal, KkpAppeal.review_id == KkpReview.id)
            .where(KkpReview.decision == CONFIRMED,
                   or_(and_(KkpReview.decided_at >= lo, KkpReview.decided_at < hi),
                       and_(KkpAppeal.decided_at >= lo, KkpAppeal.decided_at < hi)))
            .order_by(KkpReview.decided_at))
    users = {k: v for k, v in await session.execute(select(User.id, User.username))}
    out = []
    for review, call_id, appeal in await session.execute(stmt):
        if allowed is not None and review.manager not in allowed:
            continue
        state = fine_state(review, appeal)
        decided = appeal is not None and appeal.state != OPEN
        out.append({"call_id": call_id, "result_id": review.result_id,
                    "fine_id": review.id, "manager": review.manager,
                    "violation": review.violation_id,
                    "amount": 0 if state == CANCELLED else review.amount,
                    "fine_amount": review.amount, "status": state,
                    "confirmed_by": users.get(review.reviewer_id or 0),
                    "confirmed_at": review.decided_at.isoformat(),
                    "appeal_decided_by": users.get(appeal.decided_by or 0) if decided else None,
                    "appeal_decided_at": (appeal.decided_at.isoformat()
                                          if decided and appeal.decided_at else None)})
    return out
