"""recordings: each file's side and the leg that recorded it.

``recordings.side`` (mix, manager, client, caller, callee) and ``recordings.leg_id``
(the leg whose channel ran MixMonitor) replace guessing from the file name. Rows
written before keep ``leg_id`` NULL; their side is read from the file-name suffix
the shipped dialplan gives (``-mix.wav``, ``-manager.wav``, ...).

Revision ID: 0012
Revises: 0011

Frozen once released: do not import application code here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SIDES = ("mix", "manager", "client", "caller", "callee")


def upgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.add_column(sa.Column("side", sa.String(10), nullable=True))
        batch.add_column(sa.Column("leg_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_recordings_leg_id_call_legs"), "call_legs",
                                 ["leg_id"], ["id"], ondelete="SET NULL")
        batch.create_index("ix_recordings_leg_id", ["leg_id"])
    recordings = sa.table("recordings", sa.column("path", sa.String), sa.column("side", sa.String))
    for side in _SIDES:
        op.execute(recordings.update()
                   .where(recordings.c.path.like(f"%-{side}.wav"), recordings.c.side.is_(None))
                   .values(side=side))


def downgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.drop_index("ix_recordings_leg_id")
        batch.drop_constraint(op.f("fk_recordings_leg_id_call_legs"), type_="foreignkey")
        batch.drop_column("leg_id")
        batch.drop_column("side")
