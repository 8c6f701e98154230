"""QC people trust: appeals of confirmed fines, scorecards and reviewers' scores.

``kkp_appeals`` holds a manager's dispute of a confirmed KKP fine and another
reviewer's decision (cancelled or kept, with a comment); the confirmation itself is
never changed. ``qc_scorecards`` are versions of a team's scorecard (checkpoints
with weights, instant-fail items); ``qc_scores`` one reviewer's score of one call; ``qc_sample_settings`` and
``qc_samples`` the weekly random sample per manager.

Revision ID: 0025_qc_scorecards
Revises: 0024_transcript_search

Frozen once released: do not import application code here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0025_qc_scorecards"
down_revision: str | None = "0024_transcript_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json(name: str) -> sa.Column:
    return sa.Column(name, sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                     nullable=False)


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
    op.create_table(
        "qc_scorecards",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id", ondelete="SET NULL"),
                  nullable=True),
        _json("items"),
        sa.Column("created_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_qc_scorecards_team_id", "qc_scorecards", ["team_id"])
    op.create_table(
        "qc_scores",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("call_id", sa.Integer(), sa.ForeignKey("calls.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("reviewer_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("scorecard_id", sa.Integer(),
                  sa.ForeignKey("qc_scorecards.id", ondelete="CASCADE"), nullable=False),
        sa.Column("manager", sa.String(8), nullable=True),
        _json("answers"),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("instant_fail", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("call_id", "reviewer_id"),
    )
    for column in ("call_id", "reviewer_id", "scorecard_id", "manager", "updated_at"):
        op.create_index(f"ix_qc_scores_{column}", "qc_scores", [column])
    op.create_table(
        "qc_sample_settings",
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("per_manager", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "qc_samples",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("call_id", sa.Integer(), sa.ForeignKey("calls.id", ondelete="CASCADE"),
                  nullable=False, unique=True),
        sa.Column("week", sa.String(10), nullable=False),
        sa.Column("manager", sa.String(8), nullable=False),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("drawn_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    for column in ("week", "manager", "team_id"):
        op.create_index(f"ix_qc_samples_{column}", "qc_samples", [column])


def downgrade() -> None:
    op.drop_table("qc_samples")
    op.drop_table("qc_sample_settings")
    op.drop_table("qc_scores")
    op.drop_table("qc_scorecards")
    op.drop_table("kkp_appeals")
