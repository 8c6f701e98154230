"""phrase walk: transcript phrases indexed by (id, call_id), call legs by their person's call.

Revision ID: 0032_phrase_call_walk
Revises: 0031_sales_rollups

Frozen once released: do not import application code here.

Transcript search for a manager or a supervisor first lists the calls he sees (his
people's legs: ``(user_id, call_id)`` and ``(extension, call_id)`` give them from the
index alone), then walks those calls' phrases newest first (``crm_core.speech.search``):
a backward scan of ``(id, call_id)`` reads the call of each phrase without reading the
phrase. Building them reads each table once (11 s for 18 million phrases on PostgreSQL
on the benchmark's machine), holding writes to the table meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0032_phrase_call_walk"
down_revision: str | None = "0031_sales_rollups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_transcript_phrases_id_call_id", "transcript_phrases", ["id", "call_id"])
    op.create_index("ix_call_legs_user_id_call_id", "call_legs", ["user_id", "call_id"])
    op.create_index("ix_call_legs_extension_call_id", "call_legs", ["extension", "call_id"])


def downgrade() -> None:
    op.drop_index("ix_call_legs_extension_call_id", table_name="call_legs")
    op.drop_index("ix_call_legs_user_id_call_id", table_name="call_legs")
    op.drop_index("ix_transcript_phrases_id_call_id", table_name="transcript_phrases")
