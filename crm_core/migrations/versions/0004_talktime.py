"""talktime: rules per team from a day on, holidays, absences, violations.

Revision ID: 0004
Revises: 0003

Frozen: do not import application code here; later changes go in new revisions.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _team_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["team_id"], ["teams.id"],
                                   name=op.f(f"fk_{table}_team_id_teams"), ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "talktime_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("target_seconds", sa.Integer(), nullable=False),
        sa.Column("working_weekdays", sa.String(7), nullable=False),
        sa.Column("min_call_seconds", sa.Integer(), nullable=False),
        sa.Column("fine_amount", sa.Numeric(12, 2), nullable=False),
        _ts("created_at"),
        _team_fk("talktime_rules"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_talktime_rules")),
        sa.UniqueConstraint("team_id", "effective_from",
                            name=op.f("uq_talktime_rules_team_id_effective_from")),
    )
    op.create_table(
        "talktime_holidays",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        _team_fk("talktime_holidays"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_talktime_holidays")),
        sa.UniqueConstraint("day", "team_id", name=op.f("uq_talktime_holidays_day_team_id")),
    )
    op.create_index(op.f("ix_talktime_holidays_day"), "talktime_holidays", ["day"])
    op.create_table(
        "talktime_absences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("note", sa.String(500), nullable=False),
        _ts("created_at"),
        sa.CheckConstraint("kind IN ('day_off', 'sick', 'vacation')",
                           name=op.f("ck_talktime_absences_kind")),
        sa.CheckConstraint("last_day >= first_day", name=op.f("ck_talktime_absences_range")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_talktime_absences_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_talktime_absences")),
    )
    op.create_index(op.f("ix_talktime_absences_user_id"), "talktime_absences", ["user_id"])
    op.create_table(
        "talktime_violations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("talk_seconds", sa.Double(), nullable=False),
        sa.Column("target_seconds", sa.Integer(), nullable=False),
        sa.Column("shortfall_seconds", sa.Double(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("fine_amount", sa.Numeric(12, 2), nullable=True),
        sa.Column("reason", sa.String(1000), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        _ts("decided_at", nullable=True),
        _ts("created_at"),
        sa.CheckConstraint("status IN ('open', 'confirmed', 'excused')",
                           name=op.f("ck_talktime_violations_status")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_talktime_violations_user_id_users"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["decided_by_id"], ["users.id"],
                                name=op.f("fk_talktime_violations_decided_by_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_talktime_violations")),
        sa.UniqueConstraint("user_id", "day", name=op.f("uq_talktime_violations_user_id_day")),
    )
    op.create_index(op.f("ix_talktime_violations_day"), "talktime_violations", ["day"])
    op.create_index(op.f("ix_call_legs_user_id_bridged_at"), "call_legs",
                    ["user_id", "bridged_at"],
                    postgresql_include=["answered_at", "ended_at", "talk_seconds",
                                        "hold_seconds", "role", "call_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_call_legs_user_id_bridged_at"), table_name="call_legs")
    op.drop_index(op.f("ix_talktime_violations_day"), table_name="talktime_violations")
    op.drop_table("talktime_violations")
    op.drop_index(op.f("ix_talktime_absences_user_id"), table_name="talktime_absences")
    op.drop_table("talktime_absences")
    op.drop_index(op.f("ix_talktime_holidays_day"), table_name="talktime_holidays")
    op.drop_table("talktime_holidays")
    op.drop_table("talktime_rules")
