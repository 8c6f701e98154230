"""Processor time per page of the floor: what a web process and PostgreSQL spend on each.

The floor benchmark (``floor_load.py``) showed that its page p99 is decided by how much
processor time each page costs: at 50 pages a second on two cores shared with the PBX,
a few milliseconds more per page is the difference between a queue that drains and one
that grows. Its latencies are noisy; the processor time of one page is not. This bench
seeds the floor bench's database (managers in teams of 20, two clients and a task
each, six past calls each) on a private PostgreSQL 15 with Redis, starts one real
``telecrm serve --web``, and asks for each page of the floor's mix (client card, call
log, tasks) ``--views`` times, one request at a time, as random managers with their
own sessions. For each page it prints the web process's processor time per view
(from ``/proc``), PostgreSQL's (every ``postgres`` process of the machine) and the wall
time, against ``/healthz`` in the same run: the cost of a request that does no work,
the baseline.

    .venv/bin/python bench/page_cost.py [--managers 500] [--views 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from bench._common import Databases, quiet_logs
from bench.floor_load import floor, seed
from telecrm.web.config import SESSION_COOKIE
from tests.support.browser import free_port
from tests.support.live import TELECRM
from tests.support.nginx import Process, running, until
from tests.support.redis_server import RedisServer

TICK = os.sysconf("SC_CLK_TCK")


def _cpu_of_pid(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _cpu_of_program(name: str) -> float:
    """CPU seconds of every live process of the machine called ``name``."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if stat.split("(", 1)[1].rsplit(")", 1)[0] == name:
            fields = stat.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
    return total


async def _page_up(base: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(base + "/login") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def _views(http: aiohttp.ClientSession, base: str,
                 visits: list[tuple[str, str]]) -> list[float]:
    times = []
    for token, path in visits:
        started = time.perf_counter()
        async with http.get(base + path, allow_redirects=False,
                            headers={"Cookie": f"{SESSION_COOKIE}={token}"}) as response:
            await response.read()
            assert response.status == 200, (path, response.status)
        times.append((time.perf_counter() - started) * 1000)
    return times


async def main_async(args: argparse.Namespace) -> int:
    people = floor(args.managers, 0)
    with Databases() as dbs, RedisServer() as redis:
        if dbs.pg is None:
            print(f"PostgreSQL unavailable: {dbs.pg_error}")
            return 1
        url = await dbs.fresh("postgresql")
        await seed(url, people, 6)
        root = Path(tempfile.mkdtemp(prefix="telecrm-page-cost-"))
        port = free_port()
        env = {**os.environ, "TELECRM_DATABASE_URL": url, "TELECRM_REDIS_URL": redis.url(),
               "TELECRM_DATA_DIR": str(root), "TELECRM_HTTP_HOST": "127.0.0.1"}
        web = Process("web", [TELECRM, "serve", "--web", "--port", str(port)], env, root)
        base = f"http://127.0.0.1:{port}"
        rnd = random.Random(7)
        today = datetime.now(ZoneInfo("Europe/Moscow")).date()
        week = ((today - timedelta(days=6)).isoformat(), today.isoformat())
        pages = {
            "/healthz (baseline)": lambda m: "/healthz",
            "client card": lambda m: f"/clients/{rnd.choice(m.clients)}",
            # the last 7 days, which hold every seeded call: "today" alone would be empty
            # just after midnight and full late in the day
            "call log": lambda m: f"/calls?since={week[0]}&until={week[1]}",
            "tasks": lambda m: "/tasks",
        }
        rows = []
        with running(web):
            await until(lambda: _page_up(base), timeout=60, what="the web process")
            assert web.process is not None
            pid = web.process.pid
            print(f"web process {pid}; {len(people)} managers; load "
                  f"{os.getloadavg()[0]:.2f}", flush=True)
            async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
                for name, path_of in pages.items():
                    warm = [(m.token, path_of(m)) for m in rnd.sample(people, 20)]
                    await _views(http, base, warm)
                    visits = [(m.token, path_of(m))
                              for m in (rnd.choice(people) for _ in range(args.views))]
                    web0, pg0 = _cpu_of_pid(pid), _cpu_of_program("postgres")
                    times = await _views(http, base, visits)
                    web1, pg1 = _cpu_of_pid(pid), _cpu_of_program("postgres")
                    rows.append((name, (web1 - web0) * 1000 / args.views,
                                 (pg1 - pg0) * 1000 / args.views, statistics.median(times)))
        base_web = rows[0][1] or 1e-9
        print(f"\n{args.views} views each, one at a time (load {os.getloadavg()[0]:.2f})")
        print(f"{'page':<22}{'web CPU ms':>12}{'x healthz':>11}{'PG CPU ms':>11}"
              f"{'wall p50 ms':>13}")
        for name, web_ms, pg_ms, wall in rows:
            print(f"{name:<22}{web_ms:>12.2f}{web_ms / base_web:>11.1f}{pg_ms:>11.2f}"
                  f"{wall:>13.1f}")
        mix = {"client card": 5, "call log": 3, "tasks": 2}
        per_page = sum(w * next(r[1] + r[2] for r in rows if r[0] == k)
                       for k, w in mix.items()) / sum(mix.values())
        print(f"\nthe floor's mix (5 cards, 3 call logs, 2 task lists in 10): {per_page:.2f} ms "
              f"of processor per page, web and PostgreSQL; at 50 pages/s "
              f"{per_page * 50 / 1000:.2f} cores")
    return 0


def _parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--managers", type=int, default=500)
    parser.add_argument("--views", type=int, default=300, help="views of each page")
    return parser.parse_args(argv)


if __name__ == "__main__":
    quiet_logs()
    raise SystemExit(asyncio.run(main_async(_parse())))
