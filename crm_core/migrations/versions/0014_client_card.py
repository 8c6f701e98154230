"""client card: notes, e-mails and meetings logged on the card; call outcomes.

``client_activities`` holds notes and the contacts that were not calls (an e-mail sent
or received, a meeting held); ``call_outcomes`` the list of outcomes the head of sales
keeps, started with the usual ones; ``call_results`` each call's outcome and note.

Revision ID: 0014_client_card
Revises: 0013

Frozen once released: do not import application code here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_client_card"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
FIRST_OUTCOMES = ["Договорились о встрече", "Отправить КП", "Перезвонить", "Отказ",
                  "Не дозвонился"]


def upgrade() -> None:
    op.create_table(
        "client_activities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("happened_at", _TS, nullable=False),
        sa.Column("text", sa.String(4000), nullable=False),
        sa.Column("people", sa.String(300), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("archived_at", _TS, nullable=True),
        sa.Column("archived_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("kind IN ('note', 'email_out', 'email_in', 'meeting')",
                           name=op.f("ck_client_activities_kind")),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"],
                                name=op.f("fk_client_activities_client_id_clients")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_client_activities_user_id_users")),
        sa.ForeignKeyConstraint(["archived_by_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_client_activities_archived_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_activities")),
    )
    op.create_index("ix_client_activities_client_id_happened_at", "client_activities",
                    ["client_id", "happened_at"])
    op.create_index("ix_client_activities_user_id_happened_at", "client_activities",
                    ["user_id", "happened_at"])

    outcomes = op.create_table(
        "call_outcomes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_outcomes")),
        sa.UniqueConstraint("name", name=op.f("uq_call_outcomes_name")),
    )
    op.execute(outcomes.insert().values([
        {"name": name, "position": position, "active": True,
         "created_at": sa.func.current_timestamp()}
        for position, name in enumerate(FIRST_OUTCOMES, start=1)]))

    op.create_table(
        "call_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("outcome_id", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(1000), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], ondelete="CASCADE",
                                name=op.f("fk_call_results_call_id_calls")),
        sa.ForeignKeyConstraint(["outcome_id"], ["call_outcomes.id"],
                                name=op.f("fk_call_results_outcome_id_call_outcomes")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_call_results_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_results")),
        sa.UniqueConstraint("call_id", name=op.f("uq_call_results_call_id")),
    )
    op.create_index("ix_call_results_outcome_id", "call_results", ["outcome_id"])
    op.create_index("ix_call_results_user_id", "call_results", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_call_results_user_id", table_name="call_results")
    op.drop_index("ix_call_results_outcome_id", table_name="call_results")
    op.drop_table("call_results")
    op.drop_table("call_outcomes")
    op.drop_index("ix_client_activities_user_id_happened_at", table_name="client_activities")
    op.drop_index("ix_client_activities_client_id_happened_at", table_name="client_activities")
    op.drop_table("client_activities")
