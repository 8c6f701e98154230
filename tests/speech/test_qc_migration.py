"""Migration 0025 (appeals, scorecards, scores, the weekly sample) down and up again."""

from __future__ import annotations

from typing import Any

from alembic import command
from sqlalchemy import inspect

from crm_core.db import alembic_config, create_engine, upgrade
from tests.support.db_fixtures import (  # noqa: F401
    empty_db_url_fixture,
)


async def test_migration_0025_downgrades_and_upgrades_again(empty_db_url: str) -> None:
    """The QC tables go on the way down and come back on the way up."""
    await upgrade(empty_db_url)
    config = alembic_config(empty_db_url)
    engine = create_engine(empty_db_url)
    qc = {"kkp_appeals", "qc_scorecards", "qc_scores", "qc_sample_settings", "qc_samples"}
    try:
        async with engine.connect() as conn:
            def down_and_up(sync_conn: Any) -> tuple[set[str], set[str]]:
                config.attributes["connection"] = sync_conn
                command.downgrade(config, "0024_transcript_search")
                down = set(inspect(sync_conn).get_table_names())
                command.upgrade(config, "head")
                return down, set(inspect(sync_conn).get_table_names())

            down, up = await conn.run_sync(down_and_up)
            await conn.commit()
    finally:
        await engine.dispose()
    assert not down & qc and "kkp_reviews" in down
    assert qc <= up
