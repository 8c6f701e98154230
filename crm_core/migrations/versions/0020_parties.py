"""parties: users' devices and mobiles, extensions of 2 to 8 digits.

- ``user_phones``: a user's phones besides his extension: Asterisk endpoints
  (``kind = 'device'``, ``SIP/150010001``) and mobile numbers (``kind = 'mobile'``,
  E.164). A value belongs to one user (unique).
- ``users.extension`` and ``kkp_reviews.manager`` hold extensions of 2 to 8 digits
  (were 3 or 4).

Revision ID: 0020_parties
Revises: 0015_people

Frozen once released: do not import application code here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_parties"
down_revision: str | None = "0015_people"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_phones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("value", sa.String(120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('device', 'mobile')", name=op.f("ck_user_phones_kind")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_user_phones_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_phones")),
        sa.UniqueConstraint("value", name=op.f("uq_user_phones_value")),
    )
    op.create_index(op.f("ix_user_phones_user_id"), "user_phones", ["user_id"])
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(op.f("ck_users_extension_length"), type_="check")
        batch.alter_column("extension", type_=sa.String(8), existing_type=sa.String(4),
                           existing_nullable=True)
        batch.create_check_constraint(op.f("ck_users_extension_length"),
                                     "length(extension) BETWEEN 2 AND 8")
    with op.batch_alter_table("kkp_reviews") as batch:
        batch.alter_column("manager", type_=sa.String(8), existing_type=sa.String(4),
                           existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("kkp_reviews") as batch:
        batch.alter_column("manager", type_=sa.String(4), existing_type=sa.String(8),
                           existing_nullable=True)
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(op.f("ck_users_extension_length"), type_="check")
        batch.alter_column("extension", type_=sa.String(4), existing_type=sa.String(8),
                           existing_nullable=True)
        batch.create_check_constraint(op.f("ck_users_extension_length"),
                                     "length(extension) BETWEEN 3 AND 4")
    op.drop_index(op.f("ix_user_phones_user_id"), table_name="user_phones")
    op.drop_table("user_phones")
