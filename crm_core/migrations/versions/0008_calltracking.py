"""call tracking: static numbers, pools, visits, leases, ad costs.

Revision ID: 0008
Revises: 0007

Frozen: do not import application code here; later changes go in new revisions.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _pk(table: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}"))


def _fk(table: str, column: str, target: str, ondelete: str | None = None
        ) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"],
                                   name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete)


def _text(name: str, length: int = 200, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.String(length), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "ct_static_numbers",
        sa.Column("id", sa.Integer(), nullable=False),
        _text("did", 20, False), _text("channel", 200, False),
        _text("source"), _text("medium"), _text("campaign"),
        sa.Column("cost_per_month", sa.Numeric(14, 2), nullable=False),
        _ts("archived_at", True), _ts("created_at"),
        _pk("ct_static_numbers"),
        sa.UniqueConstraint("did", name=op.f("uq_ct_static_numbers_did")),
    )
    op.create_table(
        "ct_sites",
        sa.Column("id", sa.Integer(), nullable=False),
        _text("host", 253, False),
        sa.Column("default_numbers", JSONType, nullable=False),
        _text("selector", 300, False),
        sa.Column("allowed_origins", JSONType, nullable=False),
        sa.Column("hold_seconds", sa.Integer(), nullable=False),
        sa.Column("cooldown_seconds", sa.Integer(), nullable=False),
        sa.Column("heartbeat_seconds", sa.Integer(), nullable=False),
        sa.Column("grace_seconds", sa.Integer(), nullable=False),
        sa.Column("reuse_live_leases", sa.Boolean(), server_default=sa.false(), nullable=False),
        _text("channel", 200, False),
        _text("token_key", 64, False),
        _ts("archived_at", True), _ts("created_at"),
        _pk("ct_sites"),
        sa.UniqueConstraint("host", name=op.f("uq_ct_sites_host")),
    )
    op.create_table(
        "ct_pool_numbers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        _text("number", 20, False),
        _ts("archived_at", True), _ts("created_at"),
        _fk("ct_pool_numbers", "site_id", "ct_sites"),
        _pk("ct_pool_numbers"),
        sa.UniqueConstraint("number", name=op.f("uq_ct_pool_numbers_number")),
    )
    op.create_index(op.f("ix_ct_pool_numbers_site_id"), "ct_pool_numbers", ["site_id"])
    op.create_table(
        "ct_visits",
        sa.Column("id", sa.Integer(), nullable=False),
        _text("session", 64, False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        _text("utm_source"), _text("utm_medium"), _text("utm_campaign"), _text("utm_term"),
        _text("utm_content"), _text("gclid"), _text("yclid"),
        _text("referrer", 1000), _text("landing", 1000, False),
        sa.Column("pages", JSONType, nullable=False),
        sa.Column("client_ids", JSONType, nullable=False),
        _text("user_agent", 300),
        sa.Column("is_bot", sa.Boolean(), server_default=sa.false(), nullable=False),
        _ts("first_seen"), _ts("last_seen"),
        _fk("ct_visits", "site_id", "ct_sites"),
        _pk("ct_visits"),
        sa.UniqueConstraint("session", name=op.f("uq_ct_visits_session")),
    )
    op.create_index(op.f("ix_ct_visits_site_id"), "ct_visits", ["site_id"])
    op.create_index(op.f("ix_ct_visits_first_seen"), "ct_visits", ["first_seen"])
    op.create_table(
        "ct_leases",
        sa.Column("id", sa.Integer(), nullable=False),
        _text("number", 20, False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        _ts("started_at"), _ts("ends_at"),
        sa.Column("shared", sa.Boolean(), server_default=sa.false(), nullable=False),
        _fk("ct_leases", "site_id", "ct_sites"),
        _fk("ct_leases", "visit_id", "ct_visits"),
        _pk("ct_leases"),
    )
    op.create_index(op.f("ix_ct_leases_site_id"), "ct_leases", ["site_id"])
    op.create_index(op.f("ix_ct_leases_visit_id"), "ct_leases", ["visit_id"])
    op.create_index("ix_ct_leases_number_started_at", "ct_leases", ["number", "started_at"])
    op.create_table(
        "ct_pool_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        _ts("at"),
        _text("kind", 20, False),
        sa.Column("live_leases", sa.Integer(), nullable=False),
        _fk("ct_pool_events", "site_id", "ct_sites"),
        _pk("ct_pool_events"),
    )
    op.create_index(op.f("ix_ct_pool_events_site_id"), "ct_pool_events", ["site_id"])
    op.create_index(op.f("ix_ct_pool_events_at"), "ct_pool_events", ["at"])
    op.create_table(
        "ct_attributions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        _text("kind", 20, False),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        _text("channel"), _text("source"), _text("medium"), _text("campaign"),
        _text("landing", 1000),
        sa.Column("ambiguous", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("candidates", JSONType, nullable=False),
        _ts("created_at"),
        sa.CheckConstraint("kind IN ('static', 'dynamic', 'repeat', 'unidentified')",
                           name=op.f("ck_ct_attributions_kind")),
        _fk("ct_attributions", "call_id", "calls", "CASCADE"),
        _fk("ct_attributions", "visit_id", "ct_visits"),
        _pk("ct_attributions"),
        sa.UniqueConstraint("call_id", name=op.f("uq_ct_attributions_call_id")),
    )
    op.create_index(op.f("ix_ct_attributions_visit_id"), "ct_attributions", ["visit_id"])
    op.create_index(op.f("ix_ct_attributions_channel"), "ct_attributions", ["channel"])
    op.create_table(
        "ct_ad_costs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        _text("channel", 200, False),
        sa.Column("amount", sa.Numeric(14, 2), nullable=False),
        _ts("created_at"),
        _pk("ct_ad_costs"),
        sa.UniqueConstraint("month", "channel", name=op.f("uq_ct_ad_costs_month_channel")),
    )


def downgrade() -> None:
    for table in ("ct_ad_costs", "ct_attributions", "ct_pool_events", "ct_leases", "ct_visits",
                  "ct_pool_numbers", "ct_sites", "ct_static_numbers"):
        op.drop_table(table)
