"""The order of a manager's call list and the retry rule: pure functions, no database.

Overdue tasks come first (the oldest promise), then the client's ABC group (A = the
biggest potential), then the due time. A retry task (a busy or unanswered number tried
again) waits for its due time: calling back a busy line a minute later helps nobody.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from crm_core.timestamps import ensure_utc

RETRY_STATUSES = frozenset({"busy", "no_answer", "failed"})
_ABC_RANK = {"A": 0, "B": 1, "C": 2}


@dataclass(frozen=True)
class QueueItem:
    """One open call task as the dialer orders it."""

    task_id: int
    due_at: datetime
    abc_group: str | None
    is_retry: bool = False


def sort_key(item: QueueItem, now: datetime) -> tuple[int, int, datetime, int]:
    due = ensure_utc(item.due_at)
    return (0 if due < ensure_utc(now) else 1, _ABC_RANK.get(item.abc_group or "", 3), due,
            item.task_id)


def ordered(items: Iterable[QueueItem], now: datetime) -> list[QueueItem]:
    """Overdue first, then A, B, C, no group, then by due time (then the older task)."""
    return sorted(items, key=lambda item: sort_key(item, now))


def callable_now(items: Sequence[QueueItem], now: datetime,
                 skipped: Iterable[int] = ()) -> list[QueueItem]:
    """The ordered items that may be called now: retries not before their time, skipped
    ones left out."""
    put_aside = set(skipped)
    return [item for item in ordered(items, now) if item.task_id not in put_aside
            and not (item.is_retry and ensure_utc(item.due_at) > ensure_utc(now))]


@dataclass(frozen=True)
class Rules:
    """The head of sales' rule: ``max_attempts`` tries in all, ``retry_minutes`` apart."""

    max_attempts: int = 3
    retry_minutes: int = 30


@dataclass(frozen=True)
class Retry:
    """The retry a failed attempt earns: its number, when it is due, and its title."""

    attempt: int
    due_at: datetime
    last: bool

    def title(self, client_name: str, of: int) -> str:
        what = "последняя попытка" if self.last else "попытка"
        return f"Повторный звонок ({what} {self.attempt} из {of}): {client_name}"


def retry_for(rules: Rules, status: str, attempt: int, ended_at: datetime) -> Retry | None:
    """The retry after attempt number ``attempt`` ended with ``status``; None when the
    client answered, or when that was the last try the rules allow."""
    if status not in RETRY_STATUSES or attempt >= rules.max_attempts:
        return None
    following = attempt + 1
    return Retry(attempt=following,
                 due_at=ensure_utc(ended_at) + timedelta(minutes=rules.retry_minutes),
                 last=following >= rules.max_attempts)
