"""speech alerts: rules that tell supervisors when a dictionary is said, and their alerts.

- ``speech_alert_rules``: a dictionary, whose speech (client, manager, any), a team (or
  the company), on/off, archived (never deleted);
- ``speech_alerts``: one per rule and call (unique), with the phrase and its second;
- ``speech_alert_seen``: who marked an alert «просмотрено».

Revision ID: 0026_speech_alerts
Revises: 0025_qc_scorecards

Frozen once released: do not import application code here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026_speech_alerts"
down_revision: str | None = "0025_qc_scorecards"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "speech_alert_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dictionary_id", sa.Integer(), nullable=False),
        sa.Column("speaker", sa.String(length=10), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["dictionary_id"], ["phrase_dictionaries.id"],
                                ondelete="CASCADE",
                                name=op.f("fk_speech_alert_rules_dictionary_id_phrase_dictionaries")),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], ondelete="SET NULL",
                                name=op.f("fk_speech_alert_rules_team_id_teams")),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_speech_alert_rules_created_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_speech_alert_rules")),
    )
    op.create_index(op.f("ix_speech_alert_rules_dictionary_id"), "speech_alert_rules",
                    ["dictionary_id"])
    op.create_index(op.f("ix_speech_alert_rules_team_id"), "speech_alert_rules", ["team_id"])
    op.create_table(
        "speech_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("speaker", sa.String(length=10), nullable=False),
        sa.Column("start", sa.Double(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("said", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["rule_id"], ["speech_alert_rules.id"], ondelete="CASCADE",
                                name=op.f("fk_speech_alerts_rule_id_speech_alert_rules")),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], ondelete="CASCADE",
                                name=op.f("fk_speech_alerts_call_id_calls")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_speech_alerts")),
        sa.UniqueConstraint("rule_id", "call_id",
                            name=op.f("uq_speech_alerts_rule_id_call_id")),
    )
    op.create_index(op.f("ix_speech_alerts_call_id"), "speech_alerts", ["call_id"])
    op.create_index(op.f("ix_speech_alerts_created_at"), "speech_alerts", ["created_at"])
    op.create_index(op.f("ix_speech_alerts_delivered_at"), "speech_alerts", ["delivered_at"])
    op.create_table(
        "speech_alert_seen",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["speech_alerts.id"], ondelete="CASCADE",
                                name=op.f("fk_speech_alert_seen_alert_id_speech_alerts")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE",
                                name=op.f("fk_speech_alert_seen_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_speech_alert_seen")),
        sa.UniqueConstraint("alert_id", "user_id",
                            name=op.f("uq_speech_alert_seen_alert_id_user_id")),
    )
    op.create_index(op.f("ix_speech_alert_seen_user_id"), "speech_alert_seen", ["user_id"])


def downgrade() -> None:
    op.drop_table("speech_alert_seen")
    op.drop_table("speech_alerts")
    op.drop_table("speech_alert_rules")
