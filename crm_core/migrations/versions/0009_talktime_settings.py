"""talk time settings: working hours and what supervisors edit; the per-day rollup.

Revision ID: 0009
Revises: 0008

Frozen: do not import application code here; later changes go in new revisions.

``talktime_daily`` keeps finished days' talk per manager. It is never trusted
after a late write: triggers drop a manager's rows around any leg of his that is
inserted, changed or removed (the UTC day of the leg plus one day either side,
which covers every time zone), and every row of the managers of a call whose
direction changes (internal calls do not count). PostgreSQL uses statement-level
triggers with transition tables, so a bulk COPY costs one DELETE, not one per row.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_START = "coalesce({t}.bridged_at, {t}.answered_at, {t}.started_at)"
_END = "coalesce({t}.ended_at, {t}.bridged_at, {t}.answered_at, {t}.started_at)"

_SQLITE_FORGET = (
    "DELETE FROM talktime_daily WHERE user_id = {t}.user_id "
    "AND day BETWEEN date(" + _START + ", '-1 day') AND date(" + _END + ", '+1 day');"
)

_PG_FORGET_FUNCTION = """
CREATE FUNCTION talktime_daily_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM talktime_daily) THEN
    DELETE FROM talktime_daily d USING changed_legs c
     WHERE c.user_id IS NOT NULL AND d.user_id = c.user_id
       AND d.day BETWEEN (""" + _START.format(t="c") + """ AT TIME ZONE 'UTC')::date - 1
                     AND (""" + _END.format(t="c") + """ AT TIME ZONE 'UTC')::date + 1;
  END IF;
  RETURN NULL;
END $$
"""

_PG_CALL_FUNCTION = """
CREATE FUNCTION talktime_daily_forget_call() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM talktime_daily
   WHERE user_id IN (SELECT user_id FROM call_legs WHERE call_id = NEW.id);
  RETURN NULL;
END $$
"""

_PG_TRIGGERS = [
    ("talktime_daily_legs_insert", "INSERT", "NEW"),
    ("talktime_daily_legs_delete", "DELETE", "OLD"),
    ("talktime_daily_legs_update_old", "UPDATE", "OLD"),
    ("talktime_daily_legs_update_new", "UPDATE", "NEW"),
]


def _triggers_up() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FORGET_FUNCTION)
        op.execute(_PG_CALL_FUNCTION)
        for name, event, side in _PG_TRIGGERS:
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON call_legs "
                       f"REFERENCING {side} TABLE AS changed_legs "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION talktime_daily_forget()")
        op.execute("CREATE TRIGGER talktime_daily_call_direction AFTER UPDATE OF direction "
                   "ON calls FOR EACH ROW WHEN (OLD.direction IS DISTINCT FROM NEW.direction) "
                   "EXECUTE FUNCTION talktime_daily_forget_call()")
        return
    forget_new, forget_old = _SQLITE_FORGET.format(t="NEW"), _SQLITE_FORGET.format(t="OLD")
    op.execute("CREATE TRIGGER talktime_daily_legs_insert AFTER INSERT ON call_legs "
               f"WHEN NEW.user_id IS NOT NULL BEGIN {forget_new} END")
    op.execute("CREATE TRIGGER talktime_daily_legs_delete AFTER DELETE ON call_legs "
               f"WHEN OLD.user_id IS NOT NULL BEGIN {forget_old} END")
    op.execute("CREATE TRIGGER talktime_daily_legs_update AFTER UPDATE ON call_legs "
               f"BEGIN {forget_old} {forget_new} END")
    op.execute("CREATE TRIGGER talktime_daily_call_direction AFTER UPDATE OF direction "
               "ON calls WHEN OLD.direction IS NOT NEW.direction BEGIN "
               "DELETE FROM talktime_daily WHERE user_id IN "
               "(SELECT user_id FROM call_legs WHERE call_id = NEW.id); END")


def _triggers_down() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, _, _ in _PG_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON call_legs")
        op.execute("DROP TRIGGER IF EXISTS talktime_daily_call_direction ON calls")
        op.execute("DROP FUNCTION IF EXISTS talktime_daily_forget()")
        op.execute("DROP FUNCTION IF EXISTS talktime_daily_forget_call()")
        return
    for name in ("talktime_daily_legs_insert", "talktime_daily_legs_delete",
                 "talktime_daily_legs_update", "talktime_daily_call_direction"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")


def upgrade() -> None:
    with op.batch_alter_table("talktime_rules") as batch:
        batch.add_column(sa.Column("day_start_minute", sa.Integer(), nullable=False,
                                   server_default="540"))
        batch.add_column(sa.Column("day_end_minute", sa.Integer(), nullable=False,
                                   server_default="1080"))
        batch.add_column(sa.Column("created_by", sa.String(100), nullable=True))
    with op.batch_alter_table("talktime_holidays") as batch:
        batch.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("talktime_absences") as batch:
        batch.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "talktime_daily",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("tz", sa.String(64), nullable=False),
        sa.Column("min_call_seconds", sa.Integer(), nullable=False),
        sa.Column("talk_seconds", sa.Double(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_talktime_daily_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "day", "tz", "min_call_seconds",
                                name=op.f("pk_talktime_daily")),
    )
    _triggers_up()


def downgrade() -> None:
    _triggers_down()
    op.drop_table("talktime_daily")
    with op.batch_alter_table("talktime_absences") as batch:
        batch.drop_column("archived_at")
    with op.batch_alter_table("talktime_holidays") as batch:
        batch.drop_column("archived_at")
    with op.batch_alter_table("talktime_rules") as batch:
        batch.drop_column("created_by")
        batch.drop_column("day_end_minute")
        batch.drop_column("day_start_minute")
