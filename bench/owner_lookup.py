"""Sticky routing's owner lookup (``POST /pbx/owner``) at 200 requests/s, 100,000 clients.

Loads 100,000 synthetic clients with three phones each (bench/client_search.py's data)
owned by 50 managers in five teams with sticky routing on, into SQLite (the default
install), starts the real app (``create_app``, no AMI listener) in a child process, and
sends what Asterisk's ``CURL()`` sends: a form POST with the PBX token, the caller and
the DID, on a new TCP connection each time. Callers are 80 % known clients, 20 %
unknown numbers. The requests go out on a fixed schedule (open loop: a slow answer does
not slow the next request down), and each one's latency is from its scheduled moment.

In the same run, the baseline: a bare aiohttp app in a child process whose handler reads
the same form and answers a constant, hit the same way; the ratio says what the CRM adds.

    .venv/bin/python bench/owner_lookup.py [--clients 100000] [--rate 200] [--seconds 20]

Target: p99 < 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import insert

from bench.client_search import build
from crm_core.clients.models import Client, Phone
from crm_core.db import create_engine, session_factory, upgrade
from crm_core.people.models import Team, User
from crm_core.routing.models import RoutingRule
from crm_core.routing.services import issue_token

TARGET_MS = 20.0
DID = "74951110001"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def load(url: str, clients: int, managers: int = 50) -> tuple[str, list[str]]:
    """The floor and its clients; returns the PBX token and the clients' numbers."""
    await upgrade(url)
    data = build(clients, managers)
    engine = create_engine(url)
    now = datetime.now(UTC)
    try:
        async with session_factory(engine)() as session, session.begin():
            await session.execute(insert(Team), [{"id": t, "name": f"Отдел {t}",
                                                  "created_at": now} for t in range(1, 6)])
            await session.execute(insert(User), [
                {"id": m, "username": f"m{m}", "name": f"Менеджер {m}", "role": "manager",
                 "extension": str(100 + m), "team_id": 1 + m % 5, "active": True,
                 "created_at": now} for m in range(1, managers + 1)])
            await session.execute(insert(RoutingRule), [
                {"team_id": t, "enabled": True, "ring_seconds": 15, "updated_by": "bench",
                 "updated_at": now} for t in range(1, 6)])
            for model, rows in ((Client, data["clients"]), (Phone, data["phones"])):
                for start in range(0, len(rows), 5000):
                    await session.execute(insert(model.__table__), rows[start:start + 5000])
            token = await issue_token(session, "bench")
        async with engine.connect() as conn:
            from sqlalchemy import text

            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    return token, [row["e164"][1:] for row in data["phones"]]  # as the carrier sends them


def serve_crm(db_url: str, data_dir: str, port: int) -> None:
    """Child process: the real app, as ``telecrm serve`` builds it, minus the AMI listener."""
    import logging

    from telecrm.app import create_app
    from telecrm.settings import Settings

    logging.basicConfig(level=logging.WARNING)
    settings = Settings(data_dir=Path(data_dir), database_url=db_url)
    web.run_app(create_app(settings, with_listener=False), host="127.0.0.1", port=port,
                print=None, access_log=None)


def serve_bare(port: int) -> None:
    """Child process: the baseline, a bare aiohttp handler reading the same form."""
    async def handler(request: web.Request) -> web.Response:
        form = await request.post()
        return web.Response(text="15:PJSIP/101" if form.get("caller") else "",
                            content_type="text/plain")

    app = web.Application()
    app.router.add_post("/pbx/owner", handler)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def wait_up(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def ask(port: int, body: bytes) -> tuple[int, str, str]:
    """One request on a new connection, as CURL() makes it; (status, route, answer)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /pbx/owner HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                 b"Content-Type: application/x-www-form-urlencoded\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    raw = await reader.read(-1)
    writer.close()
    head, _, answer = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers.get("X-Telecrm-Route", ""), answer.decode()


async def hammer(port: int, token: str, callers: list[str], rate: float, seconds: float
                 ) -> tuple[list[float], dict[str, int]]:
    """Open loop at ``rate``/s: latency (ms) of each request from its scheduled moment.

    The client is raw asyncio streams (a pre-built request), so that the load generator
    costs little of the CPU it shares with the server.
    """
    latencies: list[float] = []
    answers: dict[str, int] = {}

    async def one(due: float, caller: str) -> None:
        body = urlencode({"token": token, "caller": caller, "did": DID}).encode()
        status, route, answer = await ask(port, body)
        assert status == 200, (status, answer)
        latencies.append((time.perf_counter() - due) * 1000)
        kind = "owner" if answer else route or "queue"
        answers[kind] = answers.get(kind, 0) + 1

    tasks = []
    start = time.perf_counter() + 0.2
    for i in range(int(rate * seconds)):
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(due, callers[i % len(callers)])))
    await asyncio.gather(*tasks)
    return latencies, answers


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(name: str, latencies: list[float]) -> dict[str, float]:
    row = {"p50": statistics.median(latencies), "p95": quantile(latencies, 0.95),
           "p99": quantile(latencies, 0.99), "max": max(latencies)}
    print(f"{name:<28} {row['p50']:7.2f} {row['p95']:7.2f} {row['p99']:7.2f} "
          f"{row['max']:8.2f}  ({len(latencies):,} requests)")
    return row


async def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="telecrm-bench-owner-"))
    db_url = f"sqlite+aiosqlite:///{workdir / 'crm.sqlite3'}"
    t0 = time.perf_counter()
    token, numbers = await load(db_url, args.clients)
    print(f"loaded {args.clients:,} clients, {len(numbers):,} phones in "
          f"{time.perf_counter() - t0:.0f} s (SQLite); load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    rng = random.Random(42)
    count = int(args.rate * args.seconds)
    callers = [rng.choice(numbers) if rng.random() < 0.8 else f"7999{rng.randrange(10**7):07d}"
               for _ in range(count)]
    results: dict[str, dict[str, float]] = {}
    ctx = multiprocessing.get_context("spawn")
    print(f"\n{args.rate:.0f} requests/s for {args.seconds:.0f} s, a new connection each; "
          f"latency in ms\n{'':<28} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>8}")
    for name, target in (("bare aiohttp (baseline)", serve_bare), ("POST /pbx/owner (CRM)",
                                                                   serve_crm)):
        port = free_port()
        child_args: tuple[Any, ...] = (port,) if target is serve_bare \
            else (db_url, str(workdir), port)
        child = ctx.Process(target=target, args=child_args, daemon=True)
        child.start()
        try:
            await wait_up(port)
            await asyncio.sleep(4 if target is serve_crm else 0.5)  # the first snapshot
            await hammer(port, token, callers[:200], args.rate, 1)  # warm up
            latencies, answers = await hammer(port, token, callers, args.rate, args.seconds)
        finally:
            child.terminate()
            child.join(10)
        results[name] = summary(name, latencies)
        if target is serve_crm:
            print(f"{'':<28} answers: " + ", ".join(f"{k} {v:,}" for k, v in
                                                    sorted(answers.items())))
    crm, bare = results["POST /pbx/owner (CRM)"], results["bare aiohttp (baseline)"]
    print(f"\nratio CRM / baseline: p50 {crm['p50'] / bare['p50']:.1f}x, "
          f"p99 {crm['p99'] / bare['p99']:.1f}x")
    met = crm["p99"] < TARGET_MS
    print(f"target p99 < {TARGET_MS:.0f} ms: {'met' if met else 'NOT met'} "
          f"({crm['p99']:.1f} ms)")
    return 0 if met else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
