"""recordings: shared object store and playback details.

No schema change: ``call_audio.backend`` and ``key`` (0005) already say which store
(directory or s3) holds a recording and under which key; the revision keeps its
place in the chain.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
