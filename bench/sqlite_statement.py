"""What one SQLite statement costs through the product's engine, against its baselines.

Three engines on the same migrated-size file, in the same run:

- **one hop**: ``crm_core.db.create_engine``, where each statement is one trip to the
  connection's thread (``crm_core/db/sqlite_one_hop.py``);
- **stock**: the same engine (WAL, real BEGIN) without that adapter: SQLAlchemy's
  aiosqlite adapter, four trips per statement (open a cursor, execute, fetch, close);
- **sync**: SQLAlchemy's synchronous SQLite driver, no thread at all: the floor.

Each runs the same rounds: in one transaction a SELECT of 20 rows by a bound parameter
and a primary-key SELECT, then in another an INSERT ... RETURNING; seven statements
with BEGIN and COMMIT, as a page's read and a small write are. Printed: wall and
processor µs per round (best and median of the repeats) and the ratios. The synchronous
driver uses pysqlite's own transactions (no explicit BEGIN), so it is a floor, not a
like-for-like baseline.

    .venv/bin/python bench/sqlite_statement.py [--rounds 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.asyncio import create_async_engine as stock_engine

from crm_core.db import _configure_sqlite, create_engine

SETUP = ["CREATE TABLE IF NOT EXISTS clients (id INTEGER PRIMARY KEY, name TEXT, "
         "owner_id INTEGER)",
         "CREATE INDEX IF NOT EXISTS clients_owner ON clients(owner_id)"]
SELECT_FEW = text("SELECT id, name FROM clients WHERE owner_id = :owner ORDER BY id")
SELECT_ONE = text("SELECT id, name, owner_id FROM clients WHERE id = :id")
INSERT = text("INSERT INTO clients (name, owner_id) VALUES (:name, :owner) RETURNING id")


async def _fill(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        for statement in SETUP:
            await connection.exec_driver_sql(statement)
        await connection.execute(text("DELETE FROM clients"))
        await connection.execute(INSERT, [{"name": f"ООО Клиент {i}", "owner": i % 50}
                                          for i in range(1_000)])


async def _async_work(engine: AsyncEngine, rounds: int) -> tuple[float, float]:
    """(wall µs, processor µs) per round: two reads in a transaction, then a write in
    another (BEGIN, SELECT, SELECT, COMMIT, BEGIN, INSERT, COMMIT)."""
    async with engine.connect() as connection:
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(rounds):
            async with connection.begin():
                rows = (await connection.execute(SELECT_FEW, {"owner": i % 50})).all()
                assert len(rows) >= 20
                assert (await connection.execute(SELECT_ONE, {"id": rows[0].id})).one()
            async with connection.begin():
                await connection.execute(INSERT, {"name": "ООО Новый", "owner": 99})
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall / rounds * 1e6, cpu / rounds * 1e6


def _sync_work(url: str, rounds: int) -> tuple[float, float]:
    engine = create_sync_engine(url)
    try:
        with engine.connect() as connection:
            wall, cpu = time.perf_counter(), time.process_time()
            for i in range(rounds):
                with connection.begin():
                    rows = connection.execute(SELECT_FEW, {"owner": i % 50}).all()
                    assert len(rows) >= 20
                    assert connection.execute(SELECT_ONE, {"id": rows[0].id}).one()
                with connection.begin():
                    connection.execute(INSERT, {"name": "ООО Новый", "owner": 99})
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        engine.dispose()
    return wall / rounds * 1e6, cpu / rounds * 1e6


def _stock(url: str) -> AsyncEngine:
    engine = stock_engine(url, connect_args={"timeout": 10})
    _configure_sqlite(engine)
    return engine


async def _measure(make: Callable[[], AsyncEngine], rounds: int) -> tuple[float, float]:
    engine = make()
    try:
        await _fill(engine)
        return await _async_work(engine, rounds)
    finally:
        await engine.dispose()


def _summary(name: str, runs: list[tuple[float, float]]) -> tuple[float, float]:
    walls, cpus = [w for w, _ in runs], [c for _, c in runs]
    print(f"{name:8} µs per round: wall best {min(walls):7.1f} median "
          f"{statistics.median(walls):7.1f} | processor best {min(cpus):7.1f} median "
          f"{statistics.median(cpus):7.1f}")
    return min(walls), min(cpus)


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.sqlite3"
        url = f"sqlite+aiosqlite:///{path}"
        runs: dict[str, list[tuple[float, float]]] = {"one hop": [], "stock": [], "sync": []}
        makers: dict[str, Callable[[], AsyncEngine]] = {
            "one hop": lambda: create_engine(url), "stock": lambda: _stock(url)}
        for _ in range(args.repeats):  # interleaved: the machine's load hits all alike
            for name, make in makers.items():
                runs[name].append(await _measure(make, args.rounds))
            runs["sync"].append(_sync_work(f"sqlite:///{path}", args.rounds))
        best = {name: _summary(name, result) for name, result in runs.items()}
    hop, stock, sync = best["one hop"], best["stock"], best["sync"]
    print(f"one hop / stock: wall x{hop[0] / stock[0]:.2f}, processor x{hop[1] / stock[1]:.2f}")
    print(f"one hop / sync:  wall x{hop[0] / sync[0]:.2f}, processor x{hop[1] / sync[1]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
