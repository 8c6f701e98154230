"""multipbx: several PBXs (a company with branches has one Asterisk each).

- ``pbxes``: each PBX's AMI login and recordings source; switched off, never deleted.
- ``calls.pbx``: the PBX a call happened on; every existing call is ``main`` (the PBX
  of ``TELECRM_AMI_*``), whose calls keep Asterisk's bare linkedid. Another PBX's
  linkedids and uniqueids are stored as ``<pbx>:<id>`` (150 characters still fit: a
  PBX name has at most 40, Asterisk's ids some 30 in practice).

Revision ID: 0019_multipbx
Revises: 0018_parties

Frozen once released: do not import application code here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_multipbx"
down_revision: str | None = "0018_parties"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pbxes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=80), nullable=False),
        sa.Column("secret", sa.String(length=255), nullable=False),
        sa.Column("recordings_source", sa.String(length=500), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pbxes")),
        sa.UniqueConstraint("name", name=op.f("uq_pbxes_name")),
    )
    op.add_column("calls", sa.Column("pbx", sa.String(length=40), nullable=False,
                                     server_default="main"))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("pbx")
    op.drop_table("pbxes")
