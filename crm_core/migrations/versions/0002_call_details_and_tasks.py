"""Call details (queue, leg hold time and first talk), team queues, and tasks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

Frozen: do not import application code here; later changes go in new revisions.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _index(table: str, *columns: str) -> None:
    op.create_index(op.f(f"ix_{table}_{'_'.join(columns)}"), table, list(columns))


def upgrade() -> None:
    # Only ADD COLUMN and CREATE INDEX: no table rebuild on SQLite, where rebuilding a
    # parent table with foreign keys on would fire ON DELETE actions on its children.
    op.add_column("calls", sa.Column("queue", sa.String(80), nullable=True))
    _index("calls", "queue")

    op.add_column(
        "call_legs", sa.Column("hold_seconds", sa.Double(), server_default="0", nullable=False)
    )
    op.add_column("call_legs", _ts("bridged_at", nullable=True))

    op.add_column("teams", sa.Column("queue", sa.String(80), nullable=True))
    op.create_index(op.f("ix_teams_queue"), "teams", ["queue"], unique=True)

    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        _ts("due_at", nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("done_at", nullable=True),
        sa.Column("result_call_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(1000), nullable=True),
        sa.CheckConstraint(
            "kind IN ('callback', 'call', 'meeting', 'email', 'other')",
            name=op.f("ck_tasks_kind"),
        ),
        sa.CheckConstraint(
            "status IN ('open', 'done', 'cancelled')", name=op.f("ck_tasks_status")
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_tasks_client_id_clients")
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_tasks_call_id_calls"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["assignee_id"],
            ["users.id"],
            name=op.f("fk_tasks_assignee_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_tasks_team_id_teams"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_tasks_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["result_call_id"],
            ["calls.id"],
            name=op.f("fk_tasks_result_call_id_calls"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint("kind", "call_id", name=op.f("uq_tasks_kind_call_id")),
    )
    _index("tasks", "client_id")
    _index("tasks", "assignee_id")
    _index("tasks", "team_id")
    _index("tasks", "due_at")
    op.create_index("ix_tasks_client_id_status", "tasks", ["client_id", "status"])


def downgrade() -> None:
    # Native DROP COLUMN (SQLite 3.35+) after dropping the indexes on those columns.
    op.drop_table("tasks")
    op.drop_index(op.f("ix_teams_queue"), table_name="teams")
    op.drop_column("teams", "queue")
    op.drop_column("call_legs", "bridged_at")
    op.drop_column("call_legs", "hold_seconds")
    op.drop_index(op.f("ix_calls_queue"), table_name="calls")
    op.drop_column("calls", "queue")
