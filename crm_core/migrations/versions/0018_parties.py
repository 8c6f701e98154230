"""parties: users' devices and mobiles, extensions of 2 to 8 digits.

- ``user_phones``: a user's phones besides his extension: Asterisk endpoints
  (``kind = 'device'``, ``SIP/150010001``) and mobile numbers (``kind = 'mobile'``,
  E.164). A value belongs to one user (unique).
- ``users.extension`` and ``kkp_reviews.manager`` hold extensions of 2 to 8 digits
  (were 3 or 4).

On SQLite the wider column and the looser CHECK are written into the stored schema
(SQLite's documented ``writable_schema`` procedure for changes that leave the stored
rows valid) rather than by rebuilding ``users``: dropping the old table would fire the
ON DELETE actions of every table that refers to users (sessions, deactivations, legs).

Revision ID: 0018_parties
Revises: 0017_call_log

Frozen once released: do not import application code here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

revision: str = "0018_parties"
down_revision: str | None = "0017_call_log"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_WIDE = (("users", "extension VARCHAR(4)", "extension VARCHAR(8)"),
         ("users", "CHECK (length(extension) BETWEEN 3 AND 4)",
          "CHECK (length(extension) BETWEEN 2 AND 8)"),
         ("kkp_reviews", "manager VARCHAR(4)", "manager VARCHAR(8)"))


def _rewrite_sqlite_schema(bind: Connection, edits: Sequence[tuple[str, str, str]]) -> None:
    """Edit stored CREATE TABLE statements in place (no table rebuild, no ON DELETE fired)."""
    version = int(bind.exec_driver_sql("PRAGMA schema_version").scalar() or 0)
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    try:
        for table, old, new in edits:
            sql = bind.execute(sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' "
                                       "AND name = :name"), {"name": table}).scalar()
            if not isinstance(sql, str) or old not in sql:
                raise RuntimeError(f"{table}: expected {old!r} in its stored schema")
            bind.execute(sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' "
                                 "AND name = :name"), {"sql": sql.replace(old, new),
                                                      "name": table})
        bind.exec_driver_sql(f"PRAGMA schema_version={version + 1}")
    finally:
        bind.exec_driver_sql("PRAGMA writable_schema=OFF")


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
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _rewrite_sqlite_schema(bind, _WIDE)
        return
    op.drop_constraint(op.f("ck_users_extension_length"), "users", type_="check")
    op.alter_column("users", "extension", type_=sa.String(8), existing_type=sa.String(4),
                    existing_nullable=True)
    op.create_check_constraint(op.f("ck_users_extension_length"), "users",
                               "length(extension) BETWEEN 2 AND 8")
    op.alter_column("kkp_reviews", "manager", type_=sa.String(8), existing_type=sa.String(4),
                    existing_nullable=True)


def downgrade() -> None:
    """Only while every extension still has 3 or 4 digits (the old CHECK must hold)."""
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _rewrite_sqlite_schema(bind, [(t, new, old) for t, old, new in _WIDE])
    else:
        op.alter_column("kkp_reviews", "manager", type_=sa.String(4),
                        existing_type=sa.String(8), existing_nullable=True)
        op.drop_constraint(op.f("ck_users_extension_length"), "users", type_="check")
        op.alter_column("users", "extension", type_=sa.String(4), existing_type=sa.String(8),
                        existing_nullable=True)
        op.create_check_constraint(op.f("ck_users_extension_length"), "users",
                                   "length(extension) BETWEEN 3 AND 4")
    op.drop_index(op.f("ix_user_phones_user_id"), table_name="user_phones")
    op.drop_table("user_phones")
