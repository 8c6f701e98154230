"""kkp scripts: versioned sales scripts, assignments and QC review.

Revision ID: 0007
Revises: 0006

Frozen: do not import application code here; later changes go in new revisions.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kkp_scripts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("stage", sa.String(100), nullable=True),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("fine_amount", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_kkp_scripts_team_id", "kkp_scripts", ["team_id"])
    op.create_index("ix_kkp_scripts_stage", "kkp_scripts", ["stage"])
    op.create_index("ix_kkp_scripts_effective_from", "kkp_scripts", ["effective_from"])
    with op.batch_alter_table("kkp_results") as batch:
        batch.add_column(sa.Column("script_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_kkp_results_script_id", "kkp_scripts", ["script_id"],
                                 ["id"], ondelete="SET NULL")
        batch.create_index("ix_kkp_results_script_id", ["script_id"])
    op.create_table(
        "kkp_reviews",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("result_id", sa.Integer(),
                  sa.ForeignKey("kkp_results.id", ondelete="CASCADE"), nullable=False),
        sa.Column("violation_index", sa.Integer(), nullable=False),
        sa.Column("violation_id", sa.String(200), nullable=False),
        sa.Column("decision", sa.String(10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("amount", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("manager", sa.String(4), nullable=True),
        sa.Column("reviewer_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("result_id", "violation_index"),
    )
    op.create_index("ix_kkp_reviews_result_id", "kkp_reviews", ["result_id"])
    op.create_index("ix_kkp_reviews_manager", "kkp_reviews", ["manager"])
    op.create_index("ix_kkp_reviews_decided_at", "kkp_reviews", ["decided_at"])


def downgrade() -> None:
    op.drop_table("kkp_reviews")
    with op.batch_alter_table("kkp_results") as batch:
        batch.drop_index("ix_kkp_results_script_id")
        batch.drop_constraint("fk_kkp_results_script_id", type_="foreignkey")
        batch.drop_column("script_id")
    op.drop_index("ix_kkp_scripts_effective_from", table_name="kkp_scripts")
    op.drop_index("ix_kkp_scripts_stage", table_name="kkp_scripts")
    op.drop_index("ix_kkp_scripts_team_id", table_name="kkp_scripts")
    op.drop_table("kkp_scripts")
