"""Helpers for tests that run the CRM against the sandbox Asterisk."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from asterisk_conf.sandbox import Sandbox
from crm_core.calls.services import export_calls
from crm_core.db import create_engine, session_factory, upgrade
from pbx_bridge.ami import AmiSettings
from pbx_bridge.pipeline import CaptureWriter, Listener
from pbx_bridge.store import CallStore
from telecrm.wiring import call_hooks
from tests.support.clock import subprocess_env

HOOKS = call_hooks()  # what the product does with each written call

TELECRM = str(Path(sys.executable).parent / "telecrm")


def telecrm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real ``telecrm`` command line (at the test's pinned clock, if any)."""
    env = {**os.environ, **subprocess_env()}
    result = subprocess.run([TELECRM, *args], capture_output=True, text=True, timeout=120,
                            env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"telecrm {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


def exported_calls(db_url: str, *extra: str) -> list[dict[str, Any]]:
    out = telecrm("calls", "export", "--format", "jsonl", "--db", db_url, *extra).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@contextlib.asynccontextmanager
async def live_listener(sandbox: Sandbox, db_url: str, capture_dir: Path | None = None, *,
                        port: int | None = None, **ami: Any) -> AsyncIterator[Listener]:
    """The CRM's listener, wired as ``telecrm serve`` wires it, on the sandbox PBX.

    ``port`` reaches AMI another way (a proxy on loopback); ``ami`` overrides
    :class:`AmiSettings` fields such as timeouts and backoff.
    """
    pbx = sandbox.pbx
    assert pbx is not None
    await upgrade(db_url)
    engine = create_engine(db_url)
    store = CallStore(session_factory(engine, writer=True), HOOKS)
    listener = Listener(
        AmiSettings(host=pbx.ami_host, port=port or pbx.ami_port, username=pbx.ami_user,
                    secret=pbx.ami_secret, **ami),
        store, close_orphans=store.close_orphans,
        capture=CaptureWriter(capture_dir) if capture_dir else None)
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(listener.session.connected.wait(), 15)
        yield listener
    finally:
        await listener.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await engine.dispose()


async def wait_for_ended_calls(db_url: str, count: int, timeout: float = 20) -> list[dict]:
    """Poll the database until ``count`` calls have ended (the writer is asynchronous)."""
    engine = create_engine(db_url)
    sessions = session_factory(engine)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while True:
            async with sessions() as session:
                calls = [c async for c in export_calls(session, hooks=HOOKS)]
            if len(calls) >= count or loop.time() > deadline:
                return calls
            await asyncio.sleep(0.2)
    finally:
        await engine.dispose()
