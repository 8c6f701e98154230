"""dialer: «Обзвон», the progressive dialer through a manager's call tasks.

- ``dialer_rules``: how many tries and how many minutes apart a busy or unanswered
  client is called again, per team (``team_id`` NULL: the company's);
- ``dialer_sessions``: a manager working his list (state, phase, current task);
- ``dialer_attempts``: each call placed from a session, and the retry task it made.

Revision ID: 0021_dialer
Revises: 0020_missed_calls

Frozen once released: do not import application code here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_dialer"
down_revision: str | None = "0020_missed_calls"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "dialer_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("retry_minutes", sa.Integer(), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("max_attempts BETWEEN 1 AND 20",
                           name=op.f("ck_dialer_rules_max_attempts")),
        sa.CheckConstraint("retry_minutes BETWEEN 1 AND 10080",
                           name=op.f("ck_dialer_rules_retry_minutes")),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], ondelete="CASCADE",
                                name=op.f("fk_dialer_rules_team_id_teams")),
        sa.ForeignKeyConstraint(["updated_by_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_dialer_rules_updated_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dialer_rules")),
        sa.UniqueConstraint("team_id", name=op.f("uq_dialer_rules_team_id")),
    )
    op.create_table(
        "dialer_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("phase", sa.String(length=10), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("number", sa.String(length=32), nullable=True),
        sa.Column("skipped", _JSON, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("state IN ('active', 'paused', 'ended')",
                           name=op.f("ck_dialer_sessions_state")),
        sa.CheckConstraint("phase IN ('idle', 'calling', 'wrap_up', 'countdown')",
                           name=op.f("ck_dialer_sessions_phase")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_dialer_sessions_user_id_users")),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], ondelete="SET NULL",
                                name=op.f("fk_dialer_sessions_task_id_tasks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dialer_sessions")),
    )
    op.create_index(op.f("ix_dialer_sessions_user_id"), "dialer_sessions", ["user_id"])
    op.create_table(
        "dialer_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("retry_task_id", sa.Integer(), nullable=True),
        sa.Column("talk_seconds", sa.Double(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["dialer_sessions.id"],
                                name=op.f("fk_dialer_attempts_session_id_dialer_sessions")),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], ondelete="SET NULL",
                                name=op.f("fk_dialer_attempts_task_id_tasks")),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"],
                                name=op.f("fk_dialer_attempts_client_id_clients")),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], ondelete="SET NULL",
                                name=op.f("fk_dialer_attempts_call_id_calls")),
        sa.ForeignKeyConstraint(["retry_task_id"], ["tasks.id"], ondelete="SET NULL",
                                name=op.f("fk_dialer_attempts_retry_task_id_tasks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dialer_attempts")),
        sa.UniqueConstraint("call_id", name=op.f("uq_dialer_attempts_call_id")),
    )
    op.create_index(op.f("ix_dialer_attempts_session_id"), "dialer_attempts", ["session_id"])
    op.create_index(op.f("ix_dialer_attempts_task_id"), "dialer_attempts", ["task_id"])
    op.create_index(op.f("ix_dialer_attempts_retry_task_id"), "dialer_attempts",
                    ["retry_task_id"])


def downgrade() -> None:
    op.drop_table("dialer_attempts")
    op.drop_table("dialer_sessions")
    op.drop_table("dialer_rules")
