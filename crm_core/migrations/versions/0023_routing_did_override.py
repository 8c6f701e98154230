"""routing: a DID's switch says on, off or as the team.

``routing_rules.enabled`` becomes nullable: on a DID's row NULL means "as the owner's
team", True "ring the owner first whatever his team says", False "always the queue". A
team's row keeps a plain on/off (a check constraint). Until now a DID's True had no
effect of its own (it meant "as the team"), so those rows become NULL.

Downgrading turns NULL back into True, and a DID switched on loses its override (True
meant "as the team" before).

Revision ID: 0023_routing_did_override
Revises: 0022_presence_routing

Frozen once released: do not import application code here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_routing_did_override"
down_revision: str | None = "0022_presence_routing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RULES = sa.table("routing_rules", sa.column("did", sa.String()),
                  sa.column("enabled", sa.Boolean()))


def upgrade() -> None:
    with op.batch_alter_table("routing_rules") as batch:
        batch.alter_column("enabled", existing_type=sa.Boolean(), nullable=True)
        batch.create_check_constraint(op.f("ck_routing_rules_team_enabled"),
                                      "team_id IS NULL OR enabled IS NOT NULL")
    op.execute(_RULES.update().where(_RULES.c.did.is_not(None), _RULES.c.enabled.is_(True))
               .values(enabled=None))


def downgrade() -> None:
    op.execute(_RULES.update().where(_RULES.c.enabled.is_(None)).values(enabled=True))
    with op.batch_alter_table("routing_rules") as batch:
        batch.drop_constraint(op.f("ck_routing_rules_team_enabled"), type_="check")
        batch.alter_column("enabled", existing_type=sa.Boolean(), nullable=False)
