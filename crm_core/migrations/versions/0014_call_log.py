"""the call log: a person's legs by time.

The call log's filter by manager or team looks for the person's legs around the
period (``crm_core.calls.log.legs_of``) instead of testing every call of the period
for his legs. The single-column indexes on ``call_legs.user_id`` and
``call_legs.extension`` become (column, started_at): the same lookups by person still
use them, and a person's legs of a week are one range of the index.

Revision ID: 0014_call_log
Revises: 0013

Frozen once released: do not import application code here.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014_call_log"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("user_id", "extension")


def upgrade() -> None:
    for column in _COLUMNS:
        op.create_index(f"ix_call_legs_{column}_started_at", "call_legs",
                        [column, "started_at"])
        op.drop_index(f"ix_call_legs_{column}", table_name="call_legs")


def downgrade() -> None:
    for column in _COLUMNS:
        op.create_index(f"ix_call_legs_{column}", "call_legs", [column])
        op.drop_index(f"ix_call_legs_{column}_started_at", table_name="call_legs")
