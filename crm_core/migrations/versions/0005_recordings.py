"""recordings: tables and columns of the recordings feature.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call_audio",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("call_id", sa.Integer(), sa.ForeignKey("calls.id", ondelete="CASCADE"),
                  nullable=False, unique=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("backend", sa.String(20), nullable=True),
        sa.Column("key", sa.String(500), nullable=True),
        sa.Column("content_type", sa.String(50), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("duration_seconds", sa.Double(), nullable=True),
        sa.Column("channels", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("activity", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finalized_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_call_audio_status", "call_audio", ["status"])
    op.create_index("ix_call_audio_next_attempt_at", "call_audio", ["next_attempt_at"])
    op.create_index("ix_call_audio_team_id", "call_audio", ["team_id"])
    op.create_index("ix_call_audio_finalized_at", "call_audio", ["finalized_at"])
    op.create_table(
        "recording_retention",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id", ondelete="CASCADE"),
                  nullable=False, unique=True),
        sa.Column("days", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("recording_retention")
    op.drop_index("ix_call_audio_finalized_at", table_name="call_audio")
    op.drop_index("ix_call_audio_team_id", table_name="call_audio")
    op.drop_index("ix_call_audio_next_attempt_at", table_name="call_audio")
    op.drop_index("ix_call_audio_status", table_name="call_audio")
    op.drop_table("call_audio")
