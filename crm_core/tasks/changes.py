"""How a task is made and closed: its fields and its audit row's changes, in one place.

``create_task`` and ``complete_task`` (one task, flushed at once) and the call rules
(a batch of calls, flushed once) build the same rows and the same audit trail here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crm_core.tasks.models import Task, TaskStatus
from crm_core.timestamps import ensure_utc, isoformat, utcnow

AUDIT_ENTITY = "task"
RULE_ACTOR = "call"  # audit actor of what the call rules do


def new_task(*, kind: str, title: str, client_id: int | None, call_id: int | None,
             assignee_id: int | None, team_id: int | None, due_at: datetime | None,
             created_by_id: int | None) -> Task:
    """An open task (not yet added to a session); ``title`` already stripped and checked."""
    return Task(
        kind=kind,
        title=title[:300],
        status=TaskStatus.OPEN.value,
        client_id=client_id,
        call_id=call_id,
        assignee_id=assignee_id,
        team_id=team_id,
        due_at=ensure_utc(due_at) if due_at is not None else None,
        created_by_id=created_by_id,
    )


def created_changes(task: Task, audit_extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``changes`` of a new task's audit row."""
    return {
        "kind": task.kind,
        "client_id": task.client_id,
        "call_id": task.call_id,
        "assignee_id": task.assignee_id,
        "team_id": task.team_id,
        "due_at": isoformat(task.due_at),
        **(audit_extra or {}),
    }


def finish(task: Task, status: TaskStatus, *, at: datetime | None, note: str | None,
           result_call_id: int | None, audit_extra: dict[str, Any] | None = None
           ) -> dict[str, Any]:
    """Close the open ``task`` in memory; returns its audit row's ``changes``."""
    done_at = ensure_utc(at) if at is not None else utcnow()
    changes = {
        "status": [task.status, status.value],
        "done_at": [None, isoformat(done_at)],
        "result_call_id": [task.result_call_id, result_call_id],
        "note": note,
        **(audit_extra or {}),
    }
    task.status = status.value
    task.done_at = done_at
    task.note = note[:1000] if note else None
    task.result_call_id = result_call_id
    task.updated_at = utcnow()
    return changes
