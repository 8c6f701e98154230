"""The test processes' engines share compiled SQL (tests/support/statement_cache.py):
the same statement on another engine set up alike is not compiled again, each engine
still reads its own database, and a dialect set up otherwise keeps a cache of its own."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_core.db import create_engine

ROWS = Table("rows", MetaData(), Column("id", Integer, primary_key=True),
             Column("name", String))


async def _names(engine: AsyncEngine, name: str) -> tuple[list[str], str]:
    """The rows' names on this engine, after one insert, and how the select was compiled."""
    async with engine.begin() as connection:
        await connection.run_sync(ROWS.metadata.create_all)
        await connection.execute(insert(ROWS).values(name=name))
        result: CursorResult = await connection.execute(
            select(ROWS.c.name).where(ROWS.c.id > 0).order_by(ROWS.c.id))
        return list(result.scalars()), result.context.cache_hit.name


async def test_engines_set_up_alike_share_statements_and_keep_their_data(tmp_path: Path) -> None:
    first = create_engine(f"sqlite:///{tmp_path / 'first.sqlite3'}")
    second = create_engine(f"sqlite:///{tmp_path / 'second.sqlite3'}")
    other = create_engine(f"sqlite:///{tmp_path / 'other.sqlite3'}", label_length=40)
    try:
        names_first, _ = await _names(first, "Ромашка")
        names_second, compiled_second = await _names(second, "Вектор")
        names_other, compiled_other = await _names(other, "Сидоров")
    finally:
        for engine in (first, second, other):
            await engine.dispose()
    assert (names_first, names_second, names_other) == (["Ромашка"], ["Вектор"], ["Сидоров"])
    assert compiled_second == "CACHE_HIT"
    assert compiled_other == "CACHE_MISS"
