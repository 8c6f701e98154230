"""Two ``telecrm serve --listener`` processes for the sandbox PBX on one PostgreSQL
database: the active one is killed with SIGKILL in the middle of a real call, the
standby takes over within 10 s, and the call log is exact; each process's captures
replay into the same call log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from asterisk_conf.sandbox import Sandbox
from crm_core.calls.models import Call
from crm_core.db import create_engine, session_factory
from tests.support.browser import free_port
from tests.support.live import TELECRM, exported_calls, telecrm
from tests.support.nginx import Process

pytestmark = [pytest.mark.asterisk, pytest.mark.postgres]

ACTIVE = "election listener:main: this process is now the active one"


class ListenerProcess(Process):
    """One ``telecrm serve --listener`` with its own data directory, port and log."""

    def __init__(self, name: str, sandbox: Sandbox, db: str, root: Path) -> None:
        pbx = sandbox.pbx
        assert pbx is not None
        self.data_dir = root / name
        self.data_dir.mkdir()
        self.port = free_port()
        env = {**os.environ, "TELECRM_DATABASE_URL": db, "TELECRM_DATA_DIR": str(self.data_dir),
               "TELECRM_AMI_HOST": pbx.ami_host, "TELECRM_AMI_PORT": str(pbx.ami_port),
               "TELECRM_AMI_USER": pbx.ami_user, "TELECRM_AMI_SECRET": pbx.ami_secret,
               "TELECRM_RECORDINGS_SOURCE": str(pbx.monitor_dir)}
        super().__init__("serve", [TELECRM, "serve", "--listener", "--port", str(self.port)],
                         env, self.data_dir)
        self.name = name

    @property
    def captures(self) -> list[Path]:
        return sorted((self.data_dir / "ami").glob("*.ami"))

    async def healthy(self) -> bool:
        with contextlib.suppress(aiohttp.ClientError):
            async with aiohttp.ClientSession() as http, \
                    http.get(f"http://127.0.0.1:{self.port}/healthz") as response:
                return response.status == 200
        return False


@contextlib.contextmanager
def listeners(*processes: ListenerProcess) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            process.stop()


async def until(predicate: Any, timeout: float = 30.0, what: str = "") -> float:
    """Seconds until ``predicate()`` (sync or async) holds; fails after ``timeout``."""
    start = time.monotonic()
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not reached in {timeout} s: {what}")
        await asyncio.sleep(0.1)


async def stored(db: str) -> list[Call]:
    engine = create_engine(db)
    try:
        async with session_factory(engine)() as session:
            return list(await session.scalars(select(Call).order_by(Call.started_at)))
    finally:
        await engine.dispose()


async def answered_in_db(db: str, number: str) -> bool:
    return any(c.client_number == number and c.answered_at is not None for c in await stored(db))


async def test_kill_9_the_active_listener_mid_call_the_standby_takes_over_exactly(
        sandbox: Sandbox, pg_url: str, tmp_path: Path) -> None:
    telecrm("db", "upgrade", "--db", pg_url)
    first = ListenerProcess("first", sandbox, pg_url, tmp_path)
    second = ListenerProcess("second", sandbox, pg_url, tmp_path)
    with listeners(first, second):
        first.start()
        await until(lambda: ACTIVE in first.text() and "connected to Asterisk AMI" in first.text(),
                    what="the first listener is active and connected")
        second.start()
        await until(second.healthy, what="the second listener serves /healthz")
        await asyncio.sleep(2)  # a few rounds of trying the lock
        assert ACTIVE not in second.text() and "Asterisk AMI" not in second.text(), \
            "the standby neither leads nor connects to Asterisk"
        async with sandbox.phones() as phones:
            await phones.set_behaviour("101", answer_after=0.5)
            await phones.set_behaviour("102", answer_after=0.5)
            # A: answered while the first one is active, still talking when it dies.
            await phones.client_calls("79161234567", "74951110002", talk=12)
            await until(lambda: answered_in_db(pg_url, "+79161234567"),
                        what="call A is answered in the database")
            await asyncio.sleep(2)
            first.kill()
            killed = time.monotonic()
            # B: placed while nobody listens, answered through the queue.
            await phones.client_calls("79031234567", "74951110001", talk=6)
            await until(lambda: ACTIVE in second.text(), timeout=10,
                        what="the standby takes over")
            await until(lambda: "connected to Asterisk AMI" in second.text(), timeout=10)
            assert time.monotonic() - killed < 10, "the standby listens within 10 s"
            await phones.wait_idle(timeout=40)
            await until(lambda: _all_ended(pg_url, 2), what="both calls ended in the database")
    assert second.text().count(ACTIVE) == 1, "it took over once, and kept the lock"
    assert "lock was lost" not in first.text() + second.text()
    calls = exported_calls(pg_url)
    assert sorted(c["client_number"] for c in calls) == ["+79031234567", "+79161234567"], \
        "each call once"
    a, b = sorted(calls, key=lambda c: c["started_at"])
    assert (a["status"], a["managers"]) == ("answered", ["101"])
    assert a["talk_seconds"] == pytest.approx(12, abs=1.5), "A's talk time spans the takeover"
    assert b["status"] == "answered" and b["managers"]
    assert b["talk_seconds"] == pytest.approx(6, abs=1.5)
    # Each process captured what it received; replayed in the order they were active,
    # as the live processes did (a fresh tracker each), they give the same call log.
    assert first.captures and second.captures
    replay_db = f"sqlite:///{tmp_path / 'replay.db'}"
    env = {"TELECRM_RECORDINGS_SOURCE": first.env["TELECRM_RECORDINGS_SOURCE"]}
    for process in (first, second):
        telecrm("ami-replay", *map(str, process.captures), "--db", replay_db, env=env)
    assert _comparable(exported_calls(replay_db)) == _comparable(calls)


async def _all_ended(db: str, count: int) -> bool:
    calls = await stored(db)
    return len(calls) >= count and all(c.status != "in_progress" for c in calls)


def _comparable(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(({k: v for k, v in c.items() if k not in ("id", "client_id")}
                   for c in calls), key=lambda c: c["started_at"])
