"""missed_calls: no missed call forgotten.

- ``mail_settings``: the SMTP server notices go through (one row, set by an admin);
- ``mail_addresses``: a user's e-mail address for notices;
- ``missed_call_rules``: per team, after how many minutes without a callback the
  supervisor is told;
- ``missed_call_alerts``: per missed call, when the owner was told and when (if ever)
  the supervisor was, so a restart neither repeats nor forgets a notice.

Revision ID: 0020_missed_calls
Revises: 0019_multipbx

Frozen once released: do not import application code here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_missed_calls"
down_revision: str | None = "0019_multipbx"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "mail_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("security", sa.String(length=10), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=True),
        sa.Column("password", sa.String(length=255), nullable=True),
        sa.Column("sender", sa.String(length=255), nullable=False),
        sa.Column("updated_at", STAMP, nullable=False),
        sa.CheckConstraint("security IN ('starttls', 'none')",
                           name=op.f("ck_mail_settings_security")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_settings")),
    )
    op.create_table(
        "mail_addresses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("updated_at", STAMP, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE",
                                name=op.f("fk_mail_addresses_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_addresses")),
        sa.UniqueConstraint("user_id", name=op.f("uq_mail_addresses_user_id")),
    )
    op.create_table(
        "missed_call_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("escalate_after_minutes", sa.Integer(), nullable=False),
        sa.Column("updated_at", STAMP, nullable=False),
        sa.CheckConstraint("escalate_after_minutes BETWEEN 1 AND 1440",
                           name=op.f("ck_missed_call_rules_minutes")),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], ondelete="CASCADE",
                                name=op.f("fk_missed_call_rules_team_id_teams")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_missed_call_rules")),
        sa.UniqueConstraint("team_id", name=op.f("uq_missed_call_rules_team_id")),
    )
    op.create_table(
        "missed_call_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("notified_at", STAMP, nullable=False),
        sa.Column("escalated_at", STAMP, nullable=True),
        sa.Column("settled_at", STAMP, nullable=True),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], ondelete="CASCADE",
                                name=op.f("fk_missed_call_alerts_call_id_calls")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_missed_call_alerts")),
        sa.UniqueConstraint("call_id", name=op.f("uq_missed_call_alerts_call_id")),
    )
    op.create_index(op.f("ix_missed_call_alerts_escalated_at"), "missed_call_alerts",
                    ["escalated_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_missed_call_alerts_escalated_at"), table_name="missed_call_alerts")
    op.drop_table("missed_call_alerts")
    op.drop_table("missed_call_rules")
    op.drop_table("mail_addresses")
    op.drop_table("mail_settings")
