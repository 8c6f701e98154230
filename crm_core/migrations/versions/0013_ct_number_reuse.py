"""call tracking: an archived number may be tracked again.

The numbers of ``ct_static_numbers.did`` and ``ct_pool_numbers.number`` were unique
over all rows, archived ones included, so a number given up and bought back later
could not be added again. They are now unique among the tracked (not archived) rows
only: a partial unique index (PostgreSQL and SQLite both have them), plus a plain
index for the lookups of attribution, which also read archived rows.

Downgrading restores the full unique constraints and fails while a number has an
archived and a tracked row (archive history is never deleted to make it fit).

Revision ID: 0013
Revises: 0012

Frozen once released: do not import application code here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = "archived_at IS NULL"
_TABLES = (("ct_static_numbers", "did"), ("ct_pool_numbers", "number"))


def upgrade() -> None:
    for table, column in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(f"uq_{table}_{column}"), type_="unique")
        op.create_index(f"ix_{table}_{column}", table, [column])
        op.create_index(f"uq_{table}_{column}_live", table, [column], unique=True,
                        postgresql_where=sa.text(_LIVE), sqlite_where=sa.text(_LIVE))


def downgrade() -> None:
    for table, column in _TABLES:
        op.drop_index(f"uq_{table}_{column}_live", table_name=table)
        op.drop_index(f"ix_{table}_{column}", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.create_unique_constraint(op.f(f"uq_{table}_{column}"), [column])
