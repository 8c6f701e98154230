"""sales rollups: finished days' calls per client owner (``sales_contact_daily``); payments
indexed for the summary (``ix_payments_live_client_paid_on``: each client's first and last
payment and the period's money from the index alone).

Revision ID: 0031_sales_rollups
Revises: 0029_leads

Frozen once released: do not import application code here.

The contact-frequency report reads its calls and talk per owner from this table for
finished days instead of re-reading the month's calls. A row is never trusted after a
late write: triggers drop an owner's rows around any call of his clients that is
inserted, changed or removed (the call's UTC day plus one day either side, which covers
every time zone), and every row of both owners of a client that changes owner, is
archived or restored, changes its creation time or is removed. PostgreSQL uses
statement-level triggers with transition tables for inserted and removed calls, so a
bulk COPY costs one DELETE, not one per row.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031_sales_rollups"
down_revision: str | None = "0029_leads"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_FORGET_CALL = (
    "DELETE FROM sales_contact_daily WHERE owner_id = "
    "(SELECT owner_id FROM clients WHERE id = {t}.client_id) "
    "AND day BETWEEN date({t}.started_at, '-1 day') AND date({t}.started_at, '+1 day');"
)

_PG_FORGET_CALLS = """
CREATE FUNCTION sales_contact_daily_forget_calls() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM sales_contact_daily) THEN
    DELETE FROM sales_contact_daily d USING changed_calls c JOIN clients cl ON cl.id = c.client_id
     WHERE d.owner_id = cl.owner_id
       AND d.day BETWEEN (c.started_at AT TIME ZONE 'UTC')::date - 1
                     AND (c.started_at AT TIME ZONE 'UTC')::date + 1;
  END IF;
  RETURN NULL;
END $$
"""

_PG_FORGET_CALL_ROW = """
CREATE FUNCTION sales_contact_daily_forget_call() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM sales_contact_daily
   WHERE owner_id IN (SELECT owner_id FROM clients WHERE id IN (OLD.client_id, NEW.client_id))
     AND (day BETWEEN (OLD.started_at AT TIME ZONE 'UTC')::date - 1
                  AND (OLD.started_at AT TIME ZONE 'UTC')::date + 1
          OR day BETWEEN (NEW.started_at AT TIME ZONE 'UTC')::date - 1
                     AND (NEW.started_at AT TIME ZONE 'UTC')::date + 1);
  RETURN NULL;
END $$
"""

_PG_FORGET_OWNERS = """
CREATE FUNCTION sales_contact_daily_forget_owners() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    DELETE FROM sales_contact_daily WHERE owner_id = OLD.owner_id;
  ELSE
    DELETE FROM sales_contact_daily WHERE owner_id IN (OLD.owner_id, NEW.owner_id);
  END IF;
  RETURN NULL;
END $$
"""

_CALL_COLUMNS = "client_id, started_at, direction, talk_seconds"
_CALL_CHANGED = ("OLD.client_id IS DISTINCT FROM NEW.client_id OR OLD.started_at IS DISTINCT "
                 "FROM NEW.started_at OR OLD.direction IS DISTINCT FROM NEW.direction OR "
                 "OLD.talk_seconds IS DISTINCT FROM NEW.talk_seconds")
_CLIENT_COLUMNS = "owner_id, archived_at, created_at"
_CLIENT_CHANGED = ("OLD.owner_id IS DISTINCT FROM NEW.owner_id OR OLD.archived_at IS DISTINCT "
                   "FROM NEW.archived_at OR OLD.created_at IS DISTINCT FROM NEW.created_at")
_SQLITE_NAMES = ("sales_contact_daily_calls_insert", "sales_contact_daily_calls_delete",
                 "sales_contact_daily_calls_update", "sales_contact_daily_clients_update",
                 "sales_contact_daily_clients_delete")


def _triggers_up() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FORGET_CALLS)
        op.execute(_PG_FORGET_CALL_ROW)
        op.execute(_PG_FORGET_OWNERS)
        for name, event, side in (("sales_contact_daily_calls_insert", "INSERT", "NEW"),
                                  ("sales_contact_daily_calls_delete", "DELETE", "OLD")):
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON calls "
                       f"REFERENCING {side} TABLE AS changed_calls FOR EACH STATEMENT "
                       "EXECUTE FUNCTION sales_contact_daily_forget_calls()")
        op.execute(f"CREATE TRIGGER sales_contact_daily_calls_update AFTER UPDATE OF "
                   f"{_CALL_COLUMNS} ON calls FOR EACH ROW WHEN ({_CALL_CHANGED}) "
                   "EXECUTE FUNCTION sales_contact_daily_forget_call()")
        op.execute(f"CREATE TRIGGER sales_contact_daily_clients_update AFTER UPDATE OF "
                   f"{_CLIENT_COLUMNS} ON clients FOR EACH ROW WHEN ({_CLIENT_CHANGED}) "
                   "EXECUTE FUNCTION sales_contact_daily_forget_owners()")
        op.execute("CREATE TRIGGER sales_contact_daily_clients_delete AFTER DELETE ON clients "
                   "FOR EACH ROW EXECUTE FUNCTION sales_contact_daily_forget_owners()")
        return
    new, old = _SQLITE_FORGET_CALL.format(t="NEW"), _SQLITE_FORGET_CALL.format(t="OLD")
    op.execute("CREATE TRIGGER sales_contact_daily_calls_insert AFTER INSERT ON calls "
               f"WHEN NEW.client_id IS NOT NULL BEGIN {new} END")
    op.execute("CREATE TRIGGER sales_contact_daily_calls_delete AFTER DELETE ON calls "
               f"WHEN OLD.client_id IS NOT NULL BEGIN {old} END")
    op.execute(f"CREATE TRIGGER sales_contact_daily_calls_update AFTER UPDATE OF "
               f"{_CALL_COLUMNS} ON calls WHEN {_CALL_CHANGED.replace('IS DISTINCT FROM', 'IS NOT')} "
               f"BEGIN {old} {new} END")
    op.execute(f"CREATE TRIGGER sales_contact_daily_clients_update AFTER UPDATE OF "
               f"{_CLIENT_COLUMNS} ON clients "
               f"WHEN {_CLIENT_CHANGED.replace('IS DISTINCT FROM', 'IS NOT')} BEGIN "
               "DELETE FROM sales_contact_daily WHERE owner_id IN (OLD.owner_id, NEW.owner_id); "
               "END")
    op.execute("CREATE TRIGGER sales_contact_daily_clients_delete AFTER DELETE ON clients "
               "BEGIN DELETE FROM sales_contact_daily WHERE owner_id = OLD.owner_id; END")


def _triggers_down() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, table in zip(_SQLITE_NAMES, ("calls", "calls", "calls", "clients", "clients"),
                               strict=True):
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        for function in ("sales_contact_daily_forget_calls", "sales_contact_daily_forget_call",
                         "sales_contact_daily_forget_owners"):
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
        return
    for name in _SQLITE_NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")


def upgrade() -> None:
    op.create_table(
        "sales_contact_daily",
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("tz", sa.String(64), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("talk_seconds", sa.Double(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner_id", "day", "tz", name=op.f("pk_sales_contact_daily")),
    )
    _triggers_up()
    op.create_index("ix_payments_live_client_paid_on", "payments",
                    ["client_id", "paid_on", "amount"],
                    postgresql_where=sa.text("archived_at IS NULL"),
                    sqlite_where=sa.text("archived_at IS NULL"))


def downgrade() -> None:
    op.drop_index("ix_payments_live_client_paid_on", table_name="payments")
    _triggers_down()
    op.drop_table("sales_contact_daily")
