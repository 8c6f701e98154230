"""sales: client status rules, payments and invoices, tasks rules, pipelines and deals, plans.

Revision ID: 0011
Revises: 0010

Frozen once released: do not import application code here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_MONEY = sa.Numeric(16, 2)

_CLIENT_COLUMNS = [
    sa.Column("annual_potential_items", sa.Integer(), nullable=True),
    sa.Column("abc_group", sa.String(1), nullable=True),
    sa.Column("qualified_at", _TS, nullable=True),
    sa.Column("contact_every_days", sa.Integer(), nullable=True),
    sa.Column("status_since", _TS, nullable=True),
    sa.Column("owner_since", _TS, nullable=True),
    sa.Column("last_contact_at", _TS, nullable=True),
]


def upgrade() -> None:
    for column in _CLIENT_COLUMNS:
        op.add_column("clients", column)
    # Contacts are archived, never deleted.
    op.add_column("contacts", sa.Column("archived_at", _TS, nullable=True))
    # The sales summary asks "did we talk to this client between these days?".
    answered = sa.text("answered_at IS NOT NULL")
    op.create_index("ix_calls_client_id_started_at", "calls", ["client_id", "started_at"],
                    postgresql_where=answered, sqlite_where=answered)
    # Clients that exist already: their stay is counted from their creation.
    op.execute("UPDATE clients SET status_since = created_at, owner_since = created_at")
    op.execute("UPDATE clients SET last_contact_at = (SELECT max(calls.started_at) FROM calls "
               "WHERE calls.client_id = clients.id AND calls.answered_at IS NOT NULL "
               "AND calls.direction <> 'internal')")

    op.create_table(
        "sales_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("new_period_days", sa.Integer(), nullable=False),
        sa.Column("lost_after_days", sa.Integer(), nullable=False),
        sa.Column("max_potential_days", sa.Integer(), nullable=False),
        sa.Column("max_new_days", sa.Integer(), nullable=False),
        sa.Column("abc_a_min", _MONEY, nullable=False),
        sa.Column("abc_b_min", _MONEY, nullable=False),
        sa.Column("contact_days_a", sa.Integer(), nullable=False),
        sa.Column("contact_days_b", sa.Integer(), nullable=False),
        sa.Column("contact_days_c", sa.Integer(), nullable=False),
        sa.Column("contact_days_none", sa.Integer(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("abc_a_min >= abc_b_min", name=op.f("ck_sales_settings_abc_order")),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], ondelete="CASCADE",
                                name=op.f("fk_sales_settings_team_id_teams")),
        sa.ForeignKeyConstraint(["updated_by_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_sales_settings_updated_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_settings")),
    )
    op.create_index("ix_sales_settings_team_id", "sales_settings", ["team_id"], unique=True)

    op.create_table(
        "invoices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(60), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("amount", _MONEY, nullable=False),
        sa.Column("paid_amount", _MONEY, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("archived_at", _TS, nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_invoices_amount_positive")),
        sa.CheckConstraint("status IN ('unpaid', 'partly_paid', 'paid')",
                           name=op.f("ck_invoices_status")),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"],
                                name=op.f("fk_invoices_client_id_clients")),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_invoices_created_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("number", name=op.f("uq_invoices_number")),
    )
    op.create_index("ix_invoices_client_id", "invoices", ["client_id"])
    op.create_index("ix_invoices_issued_on", "invoices", ["issued_on"])

    op.create_table(
        "payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column("amount", _MONEY, nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("ref", sa.String(100), nullable=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("archived_at", _TS, nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payments_amount_positive")),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"],
                                name=op.f("fk_payments_client_id_clients")),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"],
                                name=op.f("fk_payments_invoice_id_invoices")),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_payments_created_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("ref", name=op.f("uq_payments_ref")),
    )
    op.create_index("ix_payments_client_id_paid_on", "payments", ["client_id", "paid_on"])
    op.create_index("ix_payments_invoice_id", "payments", ["invoice_id"])
    op.create_index("ix_payments_paid_on", "payments", ["paid_on"])

    op.create_table(
        "client_status_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("old_status", sa.String(20), nullable=True),
        sa.Column("new_status", sa.String(20), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("cause", sa.String(300), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"],
                                name=op.f("fk_client_status_changes_client_id_clients")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_status_changes")),
    )
    op.create_index("ix_client_status_changes_client_id_at", "client_status_changes",
                    ["client_id", "at"])
    op.create_index("ix_client_status_changes_at", "client_status_changes", ["at"])

    op.create_table(
        "client_owner_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("old_owner_id", sa.Integer(), nullable=True),
        sa.Column("new_owner_id", sa.Integer(), nullable=True),
        sa.Column("at", _TS, nullable=False),
        sa.Column("by_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(300), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"],
                                name=op.f("fk_client_owner_changes_client_id_clients")),
        sa.ForeignKeyConstraint(["old_owner_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_client_owner_changes_old_owner_id_users")),
        sa.ForeignKeyConstraint(["new_owner_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_client_owner_changes_new_owner_id_users")),
        sa.ForeignKeyConstraint(["by_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_client_owner_changes_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_owner_changes")),
    )
    op.create_index("ix_client_owner_changes_client_id_at", "client_owner_changes",
                    ["client_id", "at"])

    op.add_column("tasks", sa.Column("due_moves", sa.Integer(), server_default="0",
                                     nullable=False))
    op.create_table(
        "client_stops",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("requested_at", _TS, nullable=False),
        sa.Column("request_task_id", sa.Integer(), nullable=True),
        sa.Column("approved_by_id", sa.Integer(), nullable=True),
        sa.Column("approved_at", _TS, nullable=True),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"],
                                name=op.f("fk_client_stops_client_id_clients")),
        sa.ForeignKeyConstraint(["requested_by_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_client_stops_requested_by_id_users")),
        sa.ForeignKeyConstraint(["request_task_id"], ["tasks.id"], ondelete="SET NULL",
                                name=op.f("fk_client_stops_request_task_id_tasks")),
        sa.ForeignKeyConstraint(["approved_by_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_client_stops_approved_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_stops")),
    )
    op.create_index("ix_client_stops_client_id", "client_stops", ["client_id"])

    op.create_table(
        "pipelines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("archived_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipelines")),
        sa.UniqueConstraint("name", name=op.f("uq_pipelines_name")),
    )
    op.create_table(
        "pipeline_stages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pipeline_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("code", sa.String(60), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("task_kind", sa.String(20), nullable=True),
        sa.Column("task_title", sa.String(300), nullable=True),
        sa.Column("task_due_days", sa.Integer(), nullable=False),
        sa.Column("task_assignee", sa.String(20), nullable=False),
        sa.Column("archived_at", _TS, nullable=True),
        sa.CheckConstraint("outcome IN ('open', 'won', 'lost')",
                           name=op.f("ck_pipeline_stages_outcome")),
        sa.CheckConstraint("task_assignee IN ('owner', 'supervisor')",
                           name=op.f("ck_pipeline_stages_task_assignee")),
        sa.ForeignKeyConstraint(["pipeline_id"], ["pipelines.id"],
                                name=op.f("fk_pipeline_stages_pipeline_id_pipelines")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_stages")),
    )
    op.create_index("ix_pipeline_stages_pipeline_id_position", "pipeline_stages",
                    ["pipeline_id", "position"], unique=True)
    op.create_table(
        "lose_reasons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lose_reasons")),
        sa.UniqueConstraint("name", name=op.f("uq_lose_reasons_name")),
    )
    op.create_table(
        "deals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("pipeline_id", sa.Integer(), nullable=False),
        sa.Column("stage_id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("amount", _MONEY, nullable=True),
        sa.Column("won_amount", _MONEY, nullable=True),
        sa.Column("lose_reason_id", sa.Integer(), nullable=True),
        sa.Column("lose_note", sa.String(500), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("stage_entered_at", _TS, nullable=False),
        sa.Column("closed_at", _TS, nullable=True),
        sa.Column("archived_at", _TS, nullable=True),
        sa.CheckConstraint("status IN ('open', 'won', 'lost')", name=op.f("ck_deals_status")),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"],
                                name=op.f("fk_deals_client_id_clients")),
        sa.ForeignKeyConstraint(["pipeline_id"], ["pipelines.id"],
                                name=op.f("fk_deals_pipeline_id_pipelines")),
        sa.ForeignKeyConstraint(["stage_id"], ["pipeline_stages.id"],
                                name=op.f("fk_deals_stage_id_pipeline_stages")),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_deals_owner_id_users")),
        sa.ForeignKeyConstraint(["lose_reason_id"], ["lose_reasons.id"],
                                name=op.f("fk_deals_lose_reason_id_lose_reasons")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deals")),
    )
    op.create_index("ix_deals_client_id_status", "deals", ["client_id", "status"])
    op.create_index("ix_deals_owner_id_closed_at", "deals", ["owner_id", "closed_at"])
    op.create_index("ix_deals_stage_id", "deals", ["stage_id"])
    op.create_table(
        "deal_stage_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deal_id", sa.Integer(), nullable=False),
        sa.Column("from_stage_id", sa.Integer(), nullable=True),
        sa.Column("to_stage_id", sa.Integer(), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("by_id", sa.Integer(), nullable=True),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"],
                                name=op.f("fk_deal_stage_changes_deal_id_deals")),
        sa.ForeignKeyConstraint(["from_stage_id"], ["pipeline_stages.id"],
                                name=op.f("fk_deal_stage_changes_from_stage_id_pipeline_stages")),
        sa.ForeignKeyConstraint(["to_stage_id"], ["pipeline_stages.id"],
                                name=op.f("fk_deal_stage_changes_to_stage_id_pipeline_stages")),
        sa.ForeignKeyConstraint(["by_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_deal_stage_changes_by_id_users")),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], ondelete="SET NULL",
                                name=op.f("fk_deal_stage_changes_task_id_tasks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deal_stage_changes")),
    )
    op.create_index("ix_deal_stage_changes_deal_id_at", "deal_stage_changes", ["deal_id", "at"])
    op.create_index("ix_deal_stage_changes_at", "deal_stage_changes", ["at"])
    op.create_index("ix_deal_stage_changes_by_id", "deal_stage_changes", ["by_id"])
    op.create_table(
        "sales_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("target", _MONEY, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("kind IN ('amount', 'count')", name=op.f("ck_sales_plans_kind")),
        sa.CheckConstraint("target > 0", name=op.f("ck_sales_plans_target_positive")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_sales_plans_user_id_users")),
        sa.ForeignKeyConstraint(["updated_by_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_sales_plans_updated_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_plans")),
    )
    op.create_index("ix_sales_plans_user_id_month", "sales_plans", ["user_id", "month"],
                    unique=True)


def downgrade() -> None:
    for table in ("sales_plans", "deal_stage_changes", "deals", "lose_reasons",
                  "pipeline_stages", "pipelines"):
        op.drop_table(table)
    op.drop_table("client_stops")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("due_moves")
    op.drop_table("client_owner_changes")
    op.drop_table("client_status_changes")
    op.drop_table("payments")
    op.drop_table("invoices")
    op.drop_table("sales_settings")
    op.drop_index("ix_calls_client_id_started_at", table_name="calls")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("archived_at")
    with op.batch_alter_table("clients") as batch:
        for column in reversed(_CLIENT_COLUMNS):
            batch.drop_column(column.name)
