"""Initial schema: teams, users, clients, contacts, phones, calls, legs, recordings, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Frozen: do not import application code here; later changes go in new revisions.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str) -> sa.Column:
    return sa.Column(name, sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False)


def _pk(table: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}"))


def _index(table: str, *columns: str) -> None:
    op.create_index(op.f(f"ix_{table}_{'_'.join(columns)}"), table, list(columns))


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        _ts("created_at"),
        _pk("teams"),
        sa.UniqueConstraint("name", name=op.f("uq_teams_name")),
    )

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("extension", sa.String(4), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        _ts("created_at"),
        sa.CheckConstraint(
            "role IN ('manager', 'supervisor', 'marketer', 'admin')", name=op.f("ck_users_role")
        ),
        sa.CheckConstraint(
            "length(extension) BETWEEN 3 AND 4", name=op.f("ck_users_extension_length")
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_users_team_id_teams"), ondelete="SET NULL"
        ),
        _pk("users"),
        sa.UniqueConstraint("extension", name=op.f("uq_users_extension")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    _index("users", "team_id")

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        _ts("at"),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("entity", sa.String(50), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        _json("changes"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_audit_log_user_id_users"), ondelete="SET NULL"
        ),
        _pk("audit_log"),
    )
    _index("audit_log", "at")
    op.create_index("ix_audit_log_entity_entity_id", "audit_log", ["entity", "entity_id"])

    op.create_table(
        "clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(30), nullable=False),
        sa.Column("annual_potential", sa.Numeric(16, 2), nullable=True),
        _ts("archived_at", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(
            "status IN ('potential', 'new', 'regular', 'lost')", name=op.f("ck_clients_status")
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_clients_owner_id_users"), ondelete="SET NULL"
        ),
        _pk("clients"),
    )
    _index("clients", "name")
    _index("clients", "owner_id")

    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("linkedid", sa.String(150), nullable=False),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("client_number", sa.String(20), nullable=True),
        sa.Column("did", sa.String(20), nullable=True),
        sa.Column("client_id", sa.Integer(), nullable=True),
        _ts("started_at"),
        _ts("answered_at", nullable=True),
        _ts("ended_at", nullable=True),
        sa.Column("ring_seconds", sa.Double(), nullable=False),
        sa.Column("talk_seconds", sa.Double(), nullable=False),
        sa.Column("transferred", sa.Boolean(), server_default=sa.false(), nullable=False),
        _json("managers"),
        sa.Column("created_client", sa.Boolean(), server_default=sa.false(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(
            "direction IN ('inbound', 'outbound', 'internal')", name=op.f("ck_calls_direction")
        ),
        sa.CheckConstraint(
            "status IN ('answered', 'missed', 'busy', 'no_answer', 'failed', 'in_progress')",
            name=op.f("ck_calls_status"),
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_calls_client_id_clients")
        ),
        _pk("calls"),
        sa.UniqueConstraint("linkedid", name=op.f("uq_calls_linkedid")),
    )
    _index("calls", "client_id")
    _index("calls", "client_number")
    _index("calls", "did")
    _index("calls", "started_at")

    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("position", sa.String(200), nullable=True),
        sa.Column("email", sa.String(320), nullable=True),
        _ts("created_at"),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_contacts_client_id_clients")
        ),
        _pk("contacts"),
    )
    _index("contacts", "client_id")

    op.create_table(
        "call_legs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("uniqueid", sa.String(150), nullable=False),
        sa.Column("channel", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("extension", sa.String(80), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        _ts("started_at"),
        _ts("answered_at", nullable=True),
        _ts("ended_at", nullable=True),
        sa.Column("talk_seconds", sa.Double(), nullable=False),
        sa.Column("hangup_cause", sa.Integer(), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "role IN ('manager', 'client', 'supervisor', 'other')", name=op.f("ck_call_legs_role")
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_call_legs_call_id_calls"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_call_legs_user_id_users"), ondelete="SET NULL"
        ),
        _pk("call_legs"),
        sa.UniqueConstraint("uniqueid", name=op.f("uq_call_legs_uniqueid")),
    )
    _index("call_legs", "call_id")
    _index("call_legs", "extension")
    _index("call_legs", "started_at")
    _index("call_legs", "user_id")

    op.create_table(
        "phones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("e164", sa.String(20), nullable=False),
        sa.Column("raw", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_phones_client_id_clients")
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_phones_contact_id_contacts"),
            ondelete="SET NULL",
        ),
        _pk("phones"),
        sa.UniqueConstraint("client_id", "e164", name=op.f("uq_phones_client_id_e164")),
    )
    _index("phones", "client_id")
    _index("phones", "contact_id")
    _index("phones", "e164")

    op.create_table(
        "recordings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_recordings_call_id_calls"), ondelete="CASCADE"
        ),
        _pk("recordings"),
        sa.UniqueConstraint("call_id", "path", name=op.f("uq_recordings_call_id_path")),
    )
    _index("recordings", "call_id")


def downgrade() -> None:
    for table in (
        "recordings",
        "phones",
        "call_legs",
        "contacts",
        "calls",
        "clients",
        "audit_log",
        "users",
        "teams",
    ):
        op.drop_table(table)
