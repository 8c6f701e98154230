"""QC people trust: appeals of confirmed fines.

``kkp_appeals`` holds a manager's dispute of a confirmed KKP fine and another
reviewer's decision (cancelled or kept, with a comment); the confirmation itself is
never changed.

Revision ID: 0025_qc_scorecards
Revises: 0023_routing_did_override

Frozen once released: do not import application code here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025_qc_scorecards"
down_revision: str | None = "0023_routing_did_override"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kkp_appeals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("review_id", sa.Integer(),
                  sa.ForeignKey("kkp_reviews.id", ondelete="CASCADE"), nullable=False,
                  unique=True),
        sa.Column("filed_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("decided_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_kkp_appeals_state", "kkp_appeals", ["state"])
    op.create_index("ix_kkp_appeals_decided_at", "kkp_appeals", ["decided_at"])


def downgrade() -> None:
    op.drop_table("kkp_appeals")
