"""presence and sticky routing: managers' states and pause reasons; calls to their owner.

- ``presence_reasons``: the reasons the head of sales keeps, seeded with «Перерыв»,
  «Обед», «Встреча», «Обучение», «Нет на месте»; archived, never deleted.
- ``presence_changes``: each manager's audited history of states (NULL reason: back
  «на месте»); nobody has a row at first, so everyone is «на месте».

Revision ID: 0022_presence_routing
Revises: 0021_dialer

Frozen once released: do not import application code here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0022_presence_routing"
down_revision: str | None = "0021_dialer"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REASONS = ("Перерыв", "Обед", "Встреча", "Обучение", "Нет на месте")


def upgrade() -> None:
    reasons = op.create_table(
        "presence_reasons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("pauses_queue", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_presence_reasons")),
        sa.UniqueConstraint("name", name=op.f("uq_presence_reasons_name")),
    )
    op.create_table(
        "presence_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("reason_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE",
                                name=op.f("fk_presence_changes_user_id_users")),
        sa.ForeignKeyConstraint(["reason_id"], ["presence_reasons.id"], ondelete="RESTRICT",
                                name=op.f("fk_presence_changes_reason_id_presence_reasons")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_presence_changes")),
    )
    op.create_index("ix_presence_changes_user_id_at", "presence_changes", ["user_id", "at"])
    op.create_table(
        "routing_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("did", sa.String(length=20), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("ring_seconds", sa.Integer(), server_default="15", nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("(team_id IS NULL) <> (did IS NULL)",
                           name=op.f("ck_routing_rules_team_or_did")),
        sa.CheckConstraint("ring_seconds BETWEEN 5 AND 120",
                           name=op.f("ck_routing_rules_ring_seconds")),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], ondelete="CASCADE",
                                name=op.f("fk_routing_rules_team_id_teams")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_rules")),
        sa.UniqueConstraint("did", name=op.f("uq_routing_rules_did")),
        sa.UniqueConstraint("team_id", name=op.f("uq_routing_rules_team_id")),
    )
    op.create_table(
        "pbx_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pbx_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_pbx_tokens_token_hash")),
    )
    now = datetime.now(UTC)
    op.bulk_insert(reasons, [{"name": name, "pauses_queue": True, "position": i + 1,
                              "created_at": now} for i, name in enumerate(REASONS)])


def downgrade() -> None:
    op.drop_table("pbx_tokens")
    op.drop_table("routing_rules")
    op.drop_index("ix_presence_changes_user_id_at", table_name="presence_changes")
    op.drop_table("presence_changes")
    op.drop_table("presence_reasons")
