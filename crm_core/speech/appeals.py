"""Appeals of confirmed KKP fines: a manager disputes, another reviewer decides.

A fine people trust can be disputed: the manager fined gives a reason, and a
supervisor of his team or an admin who did not confirm the fine himself cancels it
or keeps it with a comment. Nothing is rewritten: the confirmation stays as it was,
the appeal row says whether the fine stands, and every step is audited. The pay
system reads the state through :func:`crm_core.speech.review.fines`.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.people.models import Role, User
from crm_core.speech.models import KkpAppeal, KkpReview
from crm_core.speech.review import (
    CANCELLED,
    CONFIRMED,
    KEPT,
    OPEN,
    ReviewConflictError,
    ReviewError,
    ReviewNotAllowedError,
    ReviewNotFoundError,
    visible_result,
)
from crm_core.timestamps import utcnow

MAX_TEXT = 2000


def _text(value: str | None, name: str) -> str | None:
    """The text stripped, None when blank; refused when longer than a page."""
    text = (value or "").strip()
    if len(text) > MAX_TEXT:
        raise ReviewError("request.too_long", f"{name} is too long", name=name, max=MAX_TEXT)
    return text or None


async def _fine(session: AsyncSession, user: User, review_id: int) -> KkpReview:
    """A confirmed fine ``user`` may see (its call's result is in his scope)."""
    review = await session.get(KkpReview, review_id)
    if review is None or await visible_result(session, user, review.result_id) is None:
        raise ReviewNotFoundError("speech.appeal.fine_not_found", "no such fine")
    if review.decision != CONFIRMED:
        raise ReviewConflictError("speech.appeal.not_a_fine", "only a confirmed fine is appealed")
    return review


async def file_appeal(session: AsyncSession, user: User, review_id: int,
                      reason: str | None) -> KkpAppeal:
    """The fined manager disputes his fine with a reason; audited, not committed."""
    text = _text(reason, "reason")
    if text is None:
        raise ReviewError("speech.appeal.reason_required", "a reason is required")
    review = await _fine(session, user, review_id)
    if user.role != Role.MANAGER or not user.extension or review.manager != user.extension:
        raise ReviewNotAllowedError("speech.appeal.own_fines_only",
                                    "a manager appeals his own fines only")
    if await session.scalar(select(KkpAppeal.id).where(KkpAppeal.review_id == review_id)):
        raise ReviewConflictError("speech.appeal.filed_already", "this fine is appealed already")
    appeal = KkpAppeal(review_id=review_id, filed_by=user.id, reason=text, filed_at=utcnow(),
                       state=OPEN)
    session.add(appeal)
    await session.flush()
    write_audit(session, actor=user.username, user_id=user.id, entity="kkp_appeal",
                entity_id=appeal.id, action=ACTION_CREATE,
                changes={"review_id": [None, review_id], "reason": [None, text],
                         "state": [None, OPEN]})
    return appeal


def may_decide_appeal(user: User, review: KkpReview) -> bool:
    """A supervisor or admin, never the one who confirmed the fine."""
    return user.role in (Role.SUPERVISOR, Role.ADMIN) and review.reviewer_id != user.id


async def decide_appeal(session: AsyncSession, user: User, review_id: int, decision: str,
                        comment: str | None) -> KkpAppeal:
    """Cancel or keep a disputed fine with a comment; audited, not committed."""
    if user.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise ReviewNotAllowedError("speech.appeal.bosses_only",
                                    "a supervisor or an admin decides an appeal")
    if decision not in (CANCELLED, KEPT):
        raise ReviewError("speech.appeal.decision_invalid",
                          "decision must be 'cancelled' or 'kept'")
    text = _text(comment, "comment")
    if text is None:
        raise ReviewError("speech.appeal.comment_required", "a comment is required")
    review = await _fine(session, user, review_id)
    if review.reviewer_id == user.id:
        raise ReviewNotAllowedError("speech.appeal.not_own_confirmation",
                                    "the one who confirmed the fine does not judge its appeal")
    appeal = await session.scalar(select(KkpAppeal).where(KkpAppeal.review_id == review_id))
    if appeal is None:
        raise ReviewNotFoundError("speech.appeal.not_found", "this fine is not appealed")
    if appeal.state != OPEN:
        raise ReviewConflictError("speech.appeal.decided_already", "the appeal is decided")
    appeal.state, appeal.comment = decision, text
    appeal.decided_by, appeal.decided_at = user.id, utcnow()
    write_audit(session, actor=user.username, user_id=user.id, entity="kkp_appeal",
                entity_id=appeal.id, action=ACTION_UPDATE,
                changes={"state": [OPEN, decision], "comment": [None, text],
                         "review_id": [review_id, review_id]})
    await session.flush()
    return appeal
