"""phrase walk: an index on transcript phrases by (id, call_id).

Revision ID: 0032_phrase_call_walk
Revises: 0031_sales_rollups

Frozen once released: do not import application code here.

Transcript search for a manager or a supervisor walks the phrases of the calls he sees,
newest first (``crm_core.speech.search``): a backward scan of this index reads the call
of each phrase without reading the phrase. Building it reads the table once (about a
minute per ten million phrases on PostgreSQL), holding writes to the phrases meanwhile.
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


def downgrade() -> None:
    op.drop_index("ix_transcript_phrases_id_call_id", table_name="transcript_phrases")
