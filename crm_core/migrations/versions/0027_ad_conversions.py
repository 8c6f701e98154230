"""ad conversions: costs imported from the ad systems by day, and offline conversions.

- ``ct_campaign_costs``: one figure per ad system, campaign and day (a re-import of a
  day replaces it), with the file it came from;
- ``ct_ad_costs.source``: whether a monthly cost was typed ("manual") or loaded ("file");
- ``ad_conversion_accounts``: the marketer's Yandex Metrica and Google Ads accounts;
- ``ad_conversions``: one per system, goal and call or deal, so each is sent once;
- ``ad_conversion_uploads``: the log of uploads and their answers.

Revision ID: 0027_ad_conversions
Revises: 0026_speech_alerts

Frozen once released: do not import application code here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027_ad_conversions"
down_revision: str | None = "0026_speech_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ad_conversion_uploads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("system", sa.String(length=20), nullable=False),
        sa.Column("goal", sa.String(length=10), nullable=False),
        sa.Column("conversions", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("upload_id", sa.String(length=100), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ad_conversion_uploads")),
    )
    with op.batch_alter_table("ad_conversion_uploads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ad_conversion_uploads_at"), ["at"], unique=False)

    op.create_table(
        "ad_conversion_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=20), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("account_id", sa.String(length=30), nullable=False),
        sa.Column("call_goal", sa.String(length=200), nullable=True),
        sa.Column("deal_goal", sa.String(length=200), nullable=True),
        sa.Column("call_name", sa.String(length=200), nullable=True),
        sa.Column("deal_name", sa.String(length=200), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("min_talk_seconds", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=1000), nullable=True),
        sa.Column("developer_token", sa.String(length=200), nullable=True),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "system IN ('metrica', 'google_ads')", name=op.f("ck_ad_conversion_accounts_system")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["users.id"],
            name=op.f("fk_ad_conversion_accounts_updated_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ad_conversion_accounts")),
        sa.UniqueConstraint("system", name=op.f("uq_ad_conversion_accounts_system")),
    )
    op.create_table(
        "ct_campaign_costs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=20), nullable=False),
        sa.Column("campaign_key", sa.String(length=300), nullable=False),
        sa.Column("campaign_id", sa.String(length=50), nullable=True),
        sa.Column("campaign", sa.String(length=300), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("impressions", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("file_name", sa.String(length=300), nullable=False),
        sa.Column("imported_by", sa.Integer(), nullable=True),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "system IN ('yandex_direct', 'vk_ads', 'google_ads')",
            name=op.f("ck_ct_campaign_costs_system"),
        ),
        sa.ForeignKeyConstraint(
            ["imported_by"],
            ["users.id"],
            name=op.f("fk_ct_campaign_costs_imported_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ct_campaign_costs")),
        sa.UniqueConstraint(
            "system",
            "campaign_key",
            "day",
            name=op.f("uq_ct_campaign_costs_system_campaign_key_day"),
        ),
    )
    with op.batch_alter_table("ct_campaign_costs", schema=None) as batch_op:
        batch_op.create_index("ix_ct_campaign_costs_day", ["day"], unique=False)

    op.create_table(
        "ad_conversions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=20), nullable=False),
        sa.Column("goal", sa.String(length=10), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("upload_id", sa.String(length=100), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("goal IN ('call', 'deal')", name=op.f("ck_ad_conversions_goal")),
        sa.CheckConstraint(
            "status IN ('sending', 'sent', 'failed', 'rejected')",
            name=op.f("ck_ad_conversions_status"),
        ),
        sa.CheckConstraint(
            "system IN ('metrica', 'google_ads')", name=op.f("ck_ad_conversions_system")
        ),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
            name=op.f("fk_ad_conversions_call_id_calls"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ad_conversions")),
        sa.UniqueConstraint(
            "system", "goal", "object_id", name=op.f("uq_ad_conversions_system_goal_object_id")
        ),
    )
    with op.batch_alter_table("ad_conversions", schema=None) as batch_op:
        batch_op.create_index("ix_ad_conversions_status", ["status"], unique=False)

    with op.batch_alter_table("ct_ad_costs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "source", sa.String(length=20), server_default=sa.text("'manual'"), nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("ct_ad_costs", schema=None) as batch_op:
        batch_op.drop_column("source")

    with op.batch_alter_table("ad_conversions", schema=None) as batch_op:
        batch_op.drop_index("ix_ad_conversions_status")

    op.drop_table("ad_conversions")
    with op.batch_alter_table("ct_campaign_costs", schema=None) as batch_op:
        batch_op.drop_index("ix_ct_campaign_costs_day")

    op.drop_table("ct_campaign_costs")
    op.drop_table("ad_conversion_accounts")
    with op.batch_alter_table("ad_conversion_uploads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ad_conversion_uploads_at"))

    op.drop_table("ad_conversion_uploads")
