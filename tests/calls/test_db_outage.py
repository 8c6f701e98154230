"""The database goes away for a while: no call is lost, none is written twice.

A real capture is fed, in batches, through the tracker and ``deliver()`` into
``CallStore`` on a real PostgreSQL server that crashes in the middle of a batch
(``pg_ctl stop -m immediate``) and comes back a few seconds later. The result must
equal a replay of the same capture with no outage.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select

from crm_core.audit import AuditLog
from crm_core.calls.models import Call, CallLeg, Recording
from crm_core.calls.services import export_calls
from crm_core.clients.models import Client
from crm_core.db import create_engine, session_factory, upgrade
from crm_core.db.base import Base
from crm_core.tasks.models import Task
from pbx_bridge.frames import FrameParser
from pbx_bridge.pipeline import FactSink, deliver
from pbx_bridge.store import CallStore
from pbx_bridge.tracker import CallTracker, Fact
from telecrm.wiring import call_hooks
from tests.support.db_fixtures import private_postgres_server_fixture  # noqa: F401
from tests.support.pg_server import PostgresServer

HOOKS = call_hooks()  # what the product does with each written call

pytestmark = pytest.mark.postgres

CAPTURE = Path(__file__).resolve().parents[2] / "bench" / "captures" / "sandbox_first_calls.ami"
BATCH_EVENTS = 40  # small batches: many chances for the crash to land mid-write
FAILED_ATTEMPTS_BEFORE_RESTART = 2


def fact_batches(path: Path) -> list[list[Fact]]:
    """The capture's facts in the batches the listener would form (non-empty only)."""
    parser, tracker = FrameParser(), CallTracker()
    frames = [*parser.feed(path.read_bytes()), *parser.close()]
    events = [frame.headers for frame in frames if frame.is_event]
    batches = []
    for start in range(0, len(events), BATCH_EVENTS):
        facts = [f for event in events[start:start + BATCH_EVENTS] for f in tracker.feed(event)]
        if facts:
            batches.append(facts)
    return batches


async def store_all(batches: list[list[Fact]], sink: FactSink) -> None:
    for facts in batches:  # strictly in order, one batch at a time, as Listener._consume
        await deliver(sink, facts, retry_max=1.0)


async def snapshot(url: str) -> dict[str, Any]:
    """What the database holds, free of ids that differ between two databases."""
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:

            async def count(model: type[Base]) -> int:
                return int(await session.scalar(select(func.count()).select_from(model)) or 0)

            calls = [
                {k: v for k, v in call.items() if k not in ("id", "client_id")}
                async for call in export_calls(session, include_in_progress=True, hooks=HOOKS)
            ]
            linkedids = list(await session.scalars(select(Call.linkedid)))
            tasks = [
                (t.kind, t.status, t.title, t.due_at, t.done_at)
                for t in await session.scalars(select(Task).order_by(Task.due_at))
            ]
            return {
                "calls": sorted(calls, key=lambda c: c["linkedid"]),
                "unique_linkedids": len(set(linkedids)) == len(linkedids),
                "counts": {m.__name__: await count(m)
                           for m in (Call, CallLeg, Recording, Client, Task, AuditLog)},
                "tasks": tasks,
            }  # fmt: skip
    finally:
        await engine.dispose()


async def fresh_database(server: PostgresServer, name: str) -> str:
    connection = await asyncpg.connect(server.dsn("postgres"))
    try:
        await connection.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await connection.close()
    url = server.url(name)
    await upgrade(url)
    return url


async def test_postgres_outage_mid_batch_loses_and_duplicates_nothing(
    private_postgres_server: PostgresServer,
) -> None:
    if not CAPTURE.is_file():
        pytest.skip(f"capture {CAPTURE} not present")
    server = private_postgres_server
    batches = fact_batches(CAPTURE)
    assert len(batches) >= 4, "the capture is too short to crash the database mid-way"

    reference_url = await fresh_database(server, "reference")
    reference_engine = create_engine(reference_url)
    try:
        await store_all(batches, CallStore(session_factory(reference_engine, writer=True), HOOKS))
    finally:
        await reference_engine.dispose()

    url = await fresh_database(server, "outage")
    engine = create_engine(url)
    store = CallStore(session_factory(engine, writer=True), HOOKS)
    crash_at = len(batches) // 2
    attempts = 0
    failures_while_down = 0
    down_for = 0.0

    async def crashing_sink(facts: list[Fact]) -> None:
        nonlocal attempts, failures_while_down, down_for
        attempts += 1
        if attempts == crash_at:
            # Crash while the batch is being written: it either committed before the
            # crash, or rolls back whole and deliver() writes it again.
            halting = asyncio.create_task(asyncio.to_thread(server.halt, "immediate"))
            try:
                await asyncio.sleep(0.005)
                await store(facts)
            finally:
                await halting
                down_for = time.monotonic()
            return
        if not server.running and failures_while_down >= FAILED_ATTEMPTS_BEFORE_RESTART:
            await asyncio.to_thread(server.resume)
            down_for = time.monotonic() - down_for
        try:
            await store(facts)
        except Exception:
            if not server.running:
                failures_while_down += 1
            raise

    started = time.monotonic()
    try:
        await asyncio.wait_for(store_all(batches, crashing_sink), timeout=120)
    finally:
        await engine.dispose()
        server.resume()
    elapsed = time.monotonic() - started

    assert failures_while_down >= FAILED_ATTEMPTS_BEFORE_RESTART  # the outage really happened
    assert down_for > 0.5, f"database down for {down_for:.1f} s only"
    got, expected = await snapshot(url), await snapshot(reference_url)
    assert got["unique_linkedids"]
    assert got["counts"] == expected["counts"]
    assert got["calls"] == expected["calls"]
    assert got["tasks"] == expected["tasks"]
    assert len(got["calls"]) > 0 and got["tasks"] and elapsed < 60
