"""Calibration: how far reviewers agree when they score the same call.

A score means something only if another reviewer would give the same one. Every call
scored by two or more reviewers on the same scorecard version gives pairs; for each
pair, each checkpoint agrees when both answered alike. The head of sales reads, per
checkpoint, how often pairs agree (a vague checkpoint shows up low), and overall the
share of agreeing answers and the average gap between the two scores.
"""

from __future__ import annotations

from datetime import datetime
from itertools import combinations
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import Call
from crm_core.people.models import User
from crm_core.speech.models import QcScore, QcScorecard
from crm_core.speech.review import scope
from crm_core.timestamps import ensure_utc


def _pct(agree: int, total: int) -> float | None:
    return round(100 * agree / total, 1) if total else None


async def report(session: AsyncSession, user: User, *, since: datetime,
                 until: datetime) -> dict[str, Any]:
    """Pairs per call, agreement per checkpoint and overall, for calls started in the
    period whose manager ``user`` sees."""
    allowed = await scope(session, user)
    stmt = (select(QcScore, Call.started_at, QcScorecard, User.name)
            .join(Call, Call.id == QcScore.call_id)
            .join(QcScorecard, QcScorecard.id == QcScore.scorecard_id)
            .join(User, User.id == QcScore.reviewer_id)
            .where(Call.started_at >= ensure_utc(since), Call.started_at < ensure_utc(until))
            .order_by(QcScore.call_id, QcScore.id))
    if allowed is not None:
        stmt = stmt.where(QcScore.manager.in_(sorted(allowed) or [""]))
    groups: dict[tuple[int, int], list[tuple[QcScore, str]]] = {}
    started: dict[int, datetime] = {}
    cards: dict[int, QcScorecard] = {}
    for score, at, card, name in await session.execute(stmt):
        groups.setdefault((score.call_id, card.id), []).append((score, name))
        started[score.call_id], cards[card.id] = at, card
    names = {e: n for e, n in await session.execute(select(User.extension, User.name))
             if e is not None}
    per_item: dict[str, list[int]] = {}  # checkpoint title -> [agreeing pairs, pairs]
    pairs_out = []
    agree_all = total_all = 0
    gaps = []
    for (call_id, card_id), scored in groups.items():
        if len(scored) < 2:
            continue
        items = cards[card_id].items
        for (a, a_name), (b, b_name) in combinations(scored, 2):
            same = [i for i in items if a.answers.get(i["id"]) == b.answers.get(i["id"])]
            for item in items:
                counts = per_item.setdefault(item["title"], [0, 0])
                counts[0] += item in same
                counts[1] += 1
            agree_all += len(same)
            total_all += len(items)
            gaps.append(abs(a.score - b.score))
            pairs_out.append({
                "call_id": call_id, "started_at": started[call_id].isoformat(),
                "manager": a.manager, "manager_name": names.get(a.manager or "", a.manager),
                "scorecard": cards[card_id].name,
                "reviewers": [a_name, b_name], "scores": [a.score, b.score],
                "gap": abs(a.score - b.score), "agreement": _pct(len(same), len(items)),
                "disagree": [i["title"] for i in items if i not in same]})
    return {"pairs": pairs_out,
            "checkpoints": sorted(({"title": t, "pairs": c[1], "agreement": _pct(c[0], c[1])}
                                   for t, c in per_item.items()),
                                  key=lambda r: (r["agreement"] or 0, r["title"])),
            "overall": {"pairs": len(pairs_out), "agreement": _pct(agree_all, total_all),
                        "average_gap": round(sum(gaps) / len(gaps), 1) if gaps else None}}
