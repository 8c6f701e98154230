"""SQLite statements in one trip to the connection's thread (crm_core/db/sqlite_one_hop.py):
the trips counted on the real aiosqlite connection, and everything SQLAlchemy reads of a
statement (rows, row counts, new ids, errors, streamed results) as the stock adapter
gives it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from crm_core.db import create_engine
from crm_core.db.sqlite_one_hop import OneHopConnection

CLIENTS = Table("clients", MetaData(), Column("id", Integer, primary_key=True),
                Column("name", String, nullable=False, unique=True))


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    async with engine.begin() as connection:
        await connection.run_sync(CLIENTS.metadata.create_all)
    yield engine
    await engine.dispose()


class Trips:
    """Counts the calls aiosqlite hands to its connection's thread."""

    def __init__(self) -> None:
        self.count = 0

    async def watch(self, connection: AsyncConnection) -> None:
        raw = await connection.get_raw_connection()
        assert isinstance(raw.dbapi_connection, OneHopConnection)
        driver = raw.driver_connection
        original = driver._execute

        async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await original(fn, *args, **kwargs)

        driver._execute = counted


async def test_a_statement_is_one_trip_and_a_transaction_three(engine: AsyncEngine) -> None:
    trips = Trips()
    async with engine.connect() as connection:
        await trips.watch(connection)
        await connection.execute(insert(CLIENTS).values(name="ООО Ромашка"))
        await connection.commit()
        trips.count = 0
        rows = (await connection.execute(select(CLIENTS.c.name))).scalars().all()
        assert rows == ["ООО Ромашка"]
        await connection.rollback()
        # BEGIN and the SELECT; the ROLLBACK goes through aiosqlite's own call (one trip)
        assert trips.count == 3
        trips.count = 0
        async with connection.begin():
            await connection.execute(insert(CLIENTS).values(name="ООО Вектор"))
        assert trips.count == 3  # BEGIN, INSERT, COMMIT


async def test_rows_counts_ids_and_returning_read_as_sqlalchemy_expects(
        engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        result = await connection.execute(insert(CLIENTS).values(name="ООО Ромашка"))
        assert result.inserted_primary_key == (1,)  # the driver's lastrowid
        many = await connection.execute(insert(CLIENTS), [{"name": f"ООО Клиент {i}"}
                                                          for i in range(5)])
        assert many.rowcount == 5  # executemany
        returned = await connection.execute(
            insert(CLIENTS).returning(CLIENTS.c.id), [{"name": "ООО Один"}, {"name": "ООО Два"}])
        assert sorted(returned.scalars()) == [7, 8]
        changed = await connection.execute(
            update(CLIENTS).where(CLIENTS.c.id > 5).values(name=CLIENTS.c.name + "!"))
        assert changed.rowcount == 3
        empty = await connection.execute(select(CLIENTS).where(CLIENTS.c.id > 100))
        assert list(empty.keys()) == ["id", "name"] and empty.all() == []
        chunks = [len(part) for part in
                  (await connection.execute(select(CLIENTS.c.id))).partitions(3)]
        assert chunks == [3, 3, 2]


async def test_an_error_is_sqlalchemys_and_the_connection_goes_on(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(insert(CLIENTS).values(name="ООО Ромашка"))
        await connection.commit()
        with pytest.raises(IntegrityError, match="UNIQUE"):
            await connection.execute(insert(CLIENTS).values(name="ООО Ромашка"))
        await connection.rollback()
        assert (await connection.execute(select(CLIENTS.c.name))).scalar_one() == "ООО Ромашка"


async def test_streamed_results_still_come_a_chunk_at_a_time(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(insert(CLIENTS), [{"name": f"ООО Клиент {i:03}"}
                                                   for i in range(250)])
    async with engine.connect() as connection:
        streamed = await connection.stream(select(CLIENTS.c.name).order_by(CLIENTS.c.id))
        names = [name async for name in streamed.scalars()]
    assert len(names) == 250 and names[0] == "ООО Клиент 000" and names[-1] == "ООО Клиент 249"
