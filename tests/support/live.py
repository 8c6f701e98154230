"""Helpers for tests that run the CRM against the sandbox Asterisk."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from asterisk_conf.sandbox import Sandbox
from crm_core.calls.services import export_calls
from crm_core.db import create_engine, session_factory
from pbx_bridge.ami import AmiSettings
from pbx_bridge.pipeline import CaptureWriter, Listener
from pbx_bridge.store import CallStore
from telecrm.wiring import call_hooks
from tests.support.clock import subprocess_env
from tests.support.db_fixtures import copy_migrated_sqlite, migrated

HOOKS = call_hooks()  # what the product does with each written call

TELECRM = str(Path(sys.executable).parent / "telecrm")


def telecrm(*args: str, check: bool = True, process: bool = False,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real ``telecrm`` command line (at the test's pinned clock, if any).

    By default its ``main()`` runs in this process, on a thread of its own (it starts
    its own event loop), with ``sys.stdout``/``sys.stderr`` captured: the same code
    as the installed command, without two seconds of interpreter start and imports
    per call. ``process=True`` runs the installed ``telecrm`` executable instead, for
    what only a real process shows (its entry point, its environment, its logging).
    ``env`` adds variables (in-process: for the duration of the call).
    """
    _give_new_sqlite_a_migrated_copy(list(args), env or {})
    if process:
        full_env = {**os.environ, **(env or {}), **subprocess_env()}
        result = subprocess.run([TELECRM, *args], capture_output=True, text=True,
                                timeout=120, env=full_env)
    else:
        result = _in_process(list(args), env or {})
    if check and result.returncode != 0:
        raise AssertionError(f"telecrm {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


def _give_new_sqlite_a_migrated_copy(args: list[str], env: dict[str, str]) -> None:
    """A command's new SQLite database starts as a copy of the migrated template.

    Every command brings the schema to head first; from nothing that takes seconds
    of Alembic per test. Not for ``db`` (the migrations' own command), ``demo``
    (its own database), ``backup`` or ``restore`` (a missing or empty database is what
    they are about), whose tests are about exactly that.
    """
    from telecrm.settings import Settings, SettingsError

    if args[:1] in (["db"], ["demo"], ["backup"], ["restore"]):
        return
    if "--db" in args[:-1]:
        url = args[args.index("--db") + 1]
    else:
        try:
            url = Settings.load({**os.environ, **env}).resolved_database_url
        except SettingsError:
            return
    copy_migrated_sqlite(url)


def _in_process(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    from telecrm.cli import main

    out, err = io.StringIO(), io.StringIO()
    code: list[int] = []

    def run() -> None:
        try:
            code.append(main(args))
        except SystemExit as exc:  # argparse: --help, usage errors
            code.append(exc.code if isinstance(exc.code, int) else (0 if exc.code is None
                                                                     else 2))
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)

    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            worker = threading.Thread(target=run, name="telecrm-cli")
            worker.start()
            worker.join(120)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    if worker.is_alive():
        raise AssertionError(f"telecrm {' '.join(args)} did not finish in 120 s")
    if not code:
        raise AssertionError(f"telecrm {' '.join(args)} crashed:\n{err.getvalue()}")
    return subprocess.CompletedProcess(["telecrm", *args], code[0], out.getvalue(),
                                       err.getvalue())


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
    await migrated(db_url)
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
