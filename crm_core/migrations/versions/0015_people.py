"""people management: forced password change, team heads, deactivation history.

- ``users.must_change_password``: set by a password reset; the user may only change
  his password after signing in.
- ``users.heads_team``: the supervisor who heads his team (one per team: a partial
  unique index).
- ``user_deactivations``: when an account was switched off and on again, so talk
  time never judges a day its owner could not work.

A team whose only active supervisor is obvious gets him as its head.

Users have had ``created_at`` since 0001. Talk time now judges no day before it, so
an account whose calls (a backfilled AMI capture) or violations predate it is moved
back to its first trace. A user inactive already is taken as switched off after his
last call (or at his creation when he never had one).

Revision ID: 0015_people
Revises: 0013

Frozen once released: do not import application code here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0015_people"
down_revision: str | None = "0014_client_card"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HEAD = "heads_team"


def _aware(value: object) -> datetime | None:
    """A stored timestamp as aware UTC (SQLite hands back naive UTC, or text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _stored(value: datetime, dialect: str) -> datetime:
    return value.replace(tzinfo=None) if dialect == "sqlite" else value


def upgrade() -> None:
    op.add_column("users", sa.Column("must_change_password", sa.Boolean(), nullable=False,
                                     server_default=sa.false()))
    op.add_column("users", sa.Column(_HEAD, sa.Boolean(), nullable=False,
                                     server_default=sa.false()))
    op.create_index("uq_users_team_id_head", "users", ["team_id"], unique=True,
                    sqlite_where=sa.text(_HEAD), postgresql_where=sa.text(_HEAD))
    op.create_table(
        "user_deactivations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deactivated_by", sa.String(100), nullable=False),
        sa.Column("reactivated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reactivated_by", sa.String(100), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_user_deactivations_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_deactivations")),
    )
    op.create_index(op.f("ix_user_deactivations_user_id"), "user_deactivations", ["user_id"])

    bind = op.get_bind()
    dialect = bind.dialect.name
    bind.execute(sa.text(
        "UPDATE users SET heads_team = :yes WHERE role = 'supervisor' AND active = :yes "
        "AND team_id IN (SELECT team_id FROM users WHERE role = 'supervisor' "
        "AND active = :yes AND team_id IS NOT NULL GROUP BY team_id HAVING COUNT(*) = 1)"),
        {"yes": True})
    users = bind.execute(sa.text(
        "SELECT u.id, u.created_at, u.active, "
        "(SELECT MIN(l.started_at) FROM call_legs l WHERE l.user_id = u.id), "
        "(SELECT MAX(l.started_at) FROM call_legs l WHERE l.user_id = u.id), "
        "(SELECT MIN(v.day) FROM talktime_violations v WHERE v.user_id = u.id) "
        "FROM users u")).all()
    for user_id, created, active, first_leg, last_leg, first_violation in users:
        created_at = _aware(created)
        assert created_at is not None
        earliest = created_at
        if (leg := _aware(first_leg)) is not None:
            earliest = min(earliest, leg)
        if first_violation is not None:
            day = (first_violation if not isinstance(first_violation, str)
                   else datetime.fromisoformat(first_violation).date())
            # a day before the violation in UTC: before that day began in any time zone
            earliest = min(earliest, datetime.combine(day, time(0), tzinfo=UTC)
                           - timedelta(days=1))
        if earliest < created_at:
            bind.execute(sa.text("UPDATE users SET created_at = :at WHERE id = :id"),
                         {"at": _stored(earliest, dialect), "id": user_id})
        if not active:
            off = max(_aware(last_leg) or earliest, earliest)
            bind.execute(sa.text(
                "INSERT INTO user_deactivations (user_id, deactivated_at, deactivated_by) "
                "VALUES (:id, :at, 'migration')"), {"at": _stored(off, dialect), "id": user_id})


def downgrade() -> None:
    op.drop_index(op.f("ix_user_deactivations_user_id"), table_name="user_deactivations")
    op.drop_table("user_deactivations")
    op.drop_index("uq_users_team_id_head", table_name="users")
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy of ``users`` would fire the
    # ON DELETE actions of every table that refers to it.
    op.drop_column("users", _HEAD)
    op.drop_column("users", "must_change_password")
