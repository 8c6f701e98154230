"""client status days: each client's status by the rules at the end of a finished day
(``sales_client_status``), for the sales summary.

Revision ID: 0034_client_status_days
Revises: 0033_client_contact_probe

Frozen once released: do not import application code here.

The summary judges every client twice (at the end of the period and of the one before)
from all his payments and contacts: 100,000 clients cost one pass over every payment and
13,000 probes of the calls. A finished day's verdicts cannot change unless a fact dated
on or before that day does, so they are stored, and triggers drop a client's rows from
the first day a late write could change: a payment written, changed or removed (from
its date), a contact call or logged contact (from the day before its UTC day, which
covers every time zone), a client's creation time changed or the client removed. A row
records the rules it was judged by; a report uses it only under the same rules. It also
carries what the summary counts beside the verdict (the client's owner, potential and
whether he is archived), kept the same as the client's by a trigger, so a month's funnel
is one pass over a day's rows, not a join of every client.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0034_client_status_days"
down_revision: str | None = "0033_client_contact_probe"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "sales_client_status"

# (table, columns whose change may change a verdict, the day expression for a row alias)
_SOURCES = {
    "payments": ("client_id, paid_on, archived_at", "{t}.paid_on"),
    "calls": ("client_id, started_at, answered_at, direction", "{t}.started_at"),
    "client_activities": ("client_id, happened_at, kind, archived_at", "{t}.happened_at"),
}


# What a summary reads of the client beside his verdict, copied into the row and kept
# the same by a trigger: whose he is, his potential, whether he is archived.
_COPIED = "owner_id, annual_potential, archived_at"
_COPY_CLIENT = (f"UPDATE {_TABLE} SET owner_id = NEW.owner_id, potential = NEW.annual_potential,"
                " archived = (NEW.archived_at IS NOT NULL) WHERE client_id = NEW.id")


def _pg_day(table: str, alias: str) -> str:
    expr = _SOURCES[table][1].format(t=alias)
    return expr if table == "payments" else f"(({expr}) AT TIME ZONE 'UTC')::date - 1"


def _sqlite_day(table: str, alias: str) -> str:
    expr = _SOURCES[table][1].format(t=alias)
    return expr if table == "payments" else f"date({expr}, '-1 day')"


def _changed(columns: str, distinct: str) -> str:
    return " OR ".join(f"OLD.{c} {distinct} NEW.{c}" for c in columns.split(", "))


def _pg_up() -> None:
    for table in _SOURCES:
        columns = _SOURCES[table][0]
        op.execute(f"""
CREATE FUNCTION {_TABLE}_forget_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM {_TABLE} s USING changed_rows c
   WHERE s.client_id = c.client_id AND s.day >= {_pg_day(table, 'c')};
  RETURN NULL;
END $$""")
        op.execute(f"""
CREATE FUNCTION {_TABLE}_forget_{table}_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM {_TABLE} WHERE client_id = OLD.client_id AND day >= {_pg_day(table, 'OLD')};
  DELETE FROM {_TABLE} WHERE client_id = NEW.client_id AND day >= {_pg_day(table, 'NEW')};
  RETURN NULL;
END $$""")
        for event, side in (("insert", "NEW"), ("delete", "OLD")):
            op.execute(f"CREATE TRIGGER {_TABLE}_{table}_{event} AFTER {event.upper()} ON "
                       f"{table} REFERENCING {side} TABLE AS changed_rows FOR EACH STATEMENT "
                       f"EXECUTE FUNCTION {_TABLE}_forget_{table}()")
        op.execute(f"CREATE TRIGGER {_TABLE}_{table}_update AFTER UPDATE OF {columns} ON "
                   f"{table} FOR EACH ROW WHEN ({_changed(columns, 'IS DISTINCT FROM')}) "
                   f"EXECUTE FUNCTION {_TABLE}_forget_{table}_row()")
    op.execute(f"""
CREATE FUNCTION {_TABLE}_forget_client() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM {_TABLE} WHERE client_id = OLD.id;
  RETURN NULL;
END $$""")
    op.execute(f"CREATE TRIGGER {_TABLE}_clients_update AFTER UPDATE OF created_at ON clients "
               "FOR EACH ROW WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at) "
               f"EXECUTE FUNCTION {_TABLE}_forget_client()")
    op.execute(f"CREATE TRIGGER {_TABLE}_clients_delete AFTER DELETE ON clients "
               f"FOR EACH ROW EXECUTE FUNCTION {_TABLE}_forget_client()")
    op.execute(f"""
CREATE FUNCTION {_TABLE}_copy_client() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  {_COPY_CLIENT};
  RETURN NULL;
END $$""")
    op.execute(f"CREATE TRIGGER {_TABLE}_clients_copy AFTER UPDATE OF {_COPIED} ON clients "
               f"FOR EACH ROW WHEN ({_changed(_COPIED, 'IS DISTINCT FROM')}) "
               f"EXECUTE FUNCTION {_TABLE}_copy_client()")


def _sqlite_up() -> None:
    for table in _SOURCES:
        columns = _SOURCES[table][0]

        def forget(alias: str, table: str = table) -> str:
            return (f"DELETE FROM {_TABLE} WHERE client_id = {alias}.client_id "
                    f"AND day >= {_sqlite_day(table, alias)};")

        op.execute(f"CREATE TRIGGER {_TABLE}_{table}_insert AFTER INSERT ON {table} "
                   f"BEGIN {forget('NEW')} END")
        op.execute(f"CREATE TRIGGER {_TABLE}_{table}_delete AFTER DELETE ON {table} "
                   f"BEGIN {forget('OLD')} END")
        op.execute(f"CREATE TRIGGER {_TABLE}_{table}_update AFTER UPDATE OF {columns} ON "
                   f"{table} WHEN {_changed(columns, 'IS NOT')} "
                   f"BEGIN {forget('OLD')} {forget('NEW')} END")
    op.execute(f"CREATE TRIGGER {_TABLE}_clients_update AFTER UPDATE OF created_at ON clients "
               "WHEN OLD.created_at IS NOT NEW.created_at "
               f"BEGIN DELETE FROM {_TABLE} WHERE client_id = OLD.id; END")
    op.execute(f"CREATE TRIGGER {_TABLE}_clients_delete AFTER DELETE ON clients "
               f"BEGIN DELETE FROM {_TABLE} WHERE client_id = OLD.id; END")
    op.execute(f"CREATE TRIGGER {_TABLE}_clients_copy AFTER UPDATE OF {_COPIED} ON clients "
               f"WHEN {_changed(_COPIED, 'IS NOT')} BEGIN {_COPY_CLIENT}; END")


def _triggers() -> list[tuple[str, str]]:
    names = [(f"{_TABLE}_{table}_{event}", table)
             for table in _SOURCES for event in ("insert", "delete", "update")]
    return [*names, (f"{_TABLE}_clients_update", "clients"),
            (f"{_TABLE}_clients_delete", "clients"), (f"{_TABLE}_clients_copy", "clients")]


def upgrade() -> None:
    op.create_table(
        _TABLE,
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("tz", sa.String(64), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("lost_after_days", sa.Integer(), nullable=False),
        sa.Column("new_period_days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("potential", sa.Numeric(16, 2), nullable=True),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", "tz", "client_id", name=op.f(f"pk_{_TABLE}")),
    )
    op.create_index(f"ix_{_TABLE}_client_id_day", _TABLE, ["client_id", "day"])
    op.create_index(f"ix_{_TABLE}_day_tz_owner_id", _TABLE, ["day", "tz", "owner_id"])
    if op.get_bind().dialect.name == "postgresql":
        _pg_up()
    else:
        _sqlite_up()


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name, table in _triggers():
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}" if postgresql
                   else f"DROP TRIGGER IF EXISTS {name}")
    if postgresql:
        for table in _SOURCES:
            op.execute(f"DROP FUNCTION IF EXISTS {_TABLE}_forget_{table}()")
            op.execute(f"DROP FUNCTION IF EXISTS {_TABLE}_forget_{table}_row()")
        op.execute(f"DROP FUNCTION IF EXISTS {_TABLE}_forget_client()")
        op.execute(f"DROP FUNCTION IF EXISTS {_TABLE}_copy_client()")
    op.drop_index(f"ix_{_TABLE}_day_tz_owner_id", table_name=_TABLE)
    op.drop_index(f"ix_{_TABLE}_client_id_day", table_name=_TABLE)
    op.drop_table(_TABLE)
