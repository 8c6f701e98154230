"""the call log: a person's legs and a queue's calls by time.

The call log's filter by manager or team looks for the people's legs around the
period (``crm_core.calls.log.legs_of``) instead of testing every call of the period
for their legs, and for the team's queue calls of the period. The single-column
indexes on ``call_legs.user_id``, ``call_legs.extension`` and ``calls.queue`` become
(column, started_at): the lookups by that column alone still use them, and a
person's legs (a queue's calls) of a week are one range of the index.

Revision ID: 0017_call_log
Revises: 0016_clients

Frozen once released: do not import application code here.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0017_call_log"
down_revision: str | None = "0016_clients"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (("call_legs", "user_id"), ("call_legs", "extension"), ("calls", "queue"))


def upgrade() -> None:
    for table, column in _COLUMNS:
        op.create_index(f"ix_{table}_{column}_started_at", table, [column, "started_at"])
        op.drop_index(f"ix_{table}_{column}", table_name=table)


def downgrade() -> None:
    for table, column in _COLUMNS:
        op.create_index(f"ix_{table}_{column}", table, [column])
        op.drop_index(f"ix_{table}_{column}_started_at", table_name=table)
