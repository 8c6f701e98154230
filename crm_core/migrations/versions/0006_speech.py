"""speech: tables and columns of the speech feature.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                     nullable=False)


def upgrade() -> None:
    op.create_table(
        "transcripts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("call_id", sa.Integer(), sa.ForeignKey("calls.id", ondelete="CASCADE"),
                  nullable=False, unique=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("duration", sa.Double(), nullable=False),
        _json("data"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_transcripts_created_at", "transcripts", ["created_at"])
    op.create_table(
        "kkp_results",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("call_id", sa.Integer(), sa.ForeignKey("calls.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("script_name", sa.String(300), nullable=False),
        sa.Column("script_version", sa.String(64), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        _json("result"),
        sa.Column("needs_review", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("call_id", "script_version"),
    )
    op.create_index("ix_kkp_results_call_id", "kkp_results", ["call_id"])
    op.create_index("ix_kkp_results_needs_review", "kkp_results", ["needs_review"])
    op.create_index("ix_kkp_results_created_at", "kkp_results", ["created_at"])


def downgrade() -> None:
    op.drop_table("kkp_results")
    op.drop_index("ix_transcripts_created_at", table_name="transcripts")
    op.drop_table("transcripts")
