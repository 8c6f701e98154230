"""leads: site forms and callback requests with the visit's attribution (``ct_leads``).

Revision ID: 0029_leads
Revises: 0028_integrations

Frozen once released: do not import application code here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029_leads"
down_revision: str | None = "0028_integrations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(name: str, length: int = 200) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=True)


def _fk(column: str, table: str, ondelete: str | None = None) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{table}.id"], ondelete=ondelete,
                                   name=op.f(f"fk_ct_leads_{column}_{table}"))


def upgrade() -> None:
    op.create_table(
        "ct_leads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        _text("name"), _text("phone", 20), _text("email", 254), _text("message", 2000),
        _text("page", 1000), _text("channel"), _text("source"), _text("medium"),
        _text("campaign"), _text("utm_term"), _text("landing", 1000), _text("yclid"),
        _text("gclid"), _text("ym_uid", 100),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("created_client", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("call_id", sa.Integer(), nullable=True),
        _text("note", 300),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('form', 'callback')", name=op.f("ck_ct_leads_kind")),
        sa.CheckConstraint("status IN ('new', 'calling', 'connected')",
                           name=op.f("ck_ct_leads_status")),
        _fk("site_id", "ct_sites"),
        _fk("visit_id", "ct_visits"),
        _fk("client_id", "clients"),
        _fk("assignee_id", "users", "SET NULL"),
        _fk("task_id", "tasks", "SET NULL"),
        _fk("call_id", "calls", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ct_leads")),
        sa.UniqueConstraint("call_id", name=op.f("uq_ct_leads_call_id")),
    )
    for column in ("site_id", "visit_id", "phone", "channel", "client_id", "assignee_id",
                   "created_at"):
        op.create_index(op.f(f"ix_ct_leads_{column}"), "ct_leads", [column])


def downgrade() -> None:
    op.drop_table("ct_leads")
