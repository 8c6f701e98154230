"""The client card ``/clients/{id}`` on a big floor: p50/p95 per role and its statements.

The card is half of the page views of the floor load benchmark, so its cost per view
decides how many web processes a floor needs. This loads a migrated SQLite file with
plain SQL: 500 managers in 10 teams with their supervisors, 1,000 clients (two per
manager) with 20 to 140 calls each (their legs, a recording per answered call, some
transcripts and call outcomes), open and closed tasks, an open deal with its stage
moves, notes and e-mails, invoices, payments, status and owner changes; and one client of
long standing with 1,000 calls, 300 notes and e-mails and 100 tasks. Then it serves
the real app on loopback and times, signed in over HTTP as the browser is:

- the card as a manager (his own clients; and his client of long standing, whose
  timeline the card shows a page at a time) and as a supervisor (his team's clients,
  50 managers to pick from in «Ответственный»);
- the call log ``/calls`` as the same people: the baseline of the same run.

For each it prints p50/p95 in ms and the SQL statements of one view (counted with an
SQLAlchemy event listener on every engine, the session lookup included).

    .venv/bin/python bench/client_card.py [--views 100] [--data DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from sqlalchemy import event
from sqlalchemy.engine import Engine

from crm_core.db import upgrade
from telecrm.passwords import hash_password
from telecrm.settings import Settings
from tests.support.browser import serve_app

PASSWORD = "bench-password"
TEAMS, PER_TEAM = 10, 50
MANAGERS = TEAMS * PER_TEAM
CLIENTS = 2 * MANAGERS
LONG = CLIENTS + 1  # m7's client of long standing: three years of calls, notes and tasks
LONG_CALLS, LONG_NOTES, LONG_TASKS = 1000, 300, 100
NOW = datetime.now(UTC).replace(microsecond=0)


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.000000")


def load(path: Path) -> None:
    """Fill the migrated file at ``path`` (seconds, not the minutes of the ORM)."""
    hashed = hash_password(PASSWORD, "light")
    t0 = _ts(NOW - timedelta(days=365))
    db = sqlite3.connect(path)
    db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;")
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                              "AND tbl_name IN ('calls', 'call_legs')").fetchall():
        db.execute(f"DROP TRIGGER {name}")  # talk-time rollups: nothing to invalidate
    db.execute("BEGIN")
    db.executemany("INSERT INTO teams (id, name, queue, created_at) VALUES (?, ?, ?, ?)",
                   [(t, f"Отдел {t}", f"q{t}", t0) for t in range(1, TEAMS + 1)])
    # managers 1..500 (extension 1000 + id, team 1 + (id - 1) // 50), supervisors 501..510
    db.executemany(
        "INSERT INTO users (id, username, name, role, extension, team_id, password_hash, "
        "active, created_at) VALUES (?, ?, ?, 'manager', ?, ?, ?, 1, ?)",
        [(i, f"m{i}", f"Менеджер {i}", str(1000 + i), 1 + (i - 1) // PER_TEAM, hashed, t0)
         for i in range(1, MANAGERS + 1)])
    db.executemany(
        "INSERT INTO users (id, username, name, role, extension, team_id, password_hash, "
        "active, created_at) VALUES (?, ?, ?, 'supervisor', ?, ?, ?, 1, ?)",
        [(MANAGERS + t, f"s{t}", f"Руководитель {t}", str(2000 + t), t, hashed, t0)
         for t in range(1, TEAMS + 1)])
    # clients 1..1000: client c is owned by manager 1 + (c - 1) % 500
    db.executemany(
        "INSERT INTO clients (id, name, name_key, status, owner_id, source, created_at, "
        "updated_at) VALUES (?, ?, ?, 'regular', ?, 'import', ?, ?)",
        [(c, f"ООО Клиент {c}", f"ооо клиент {c}", 1 + (c - 1) % MANAGERS, t0, t0)
         for c in range(1, CLIENTS + 1)] + [(LONG, "ООО Давний клиент", "ооо давний клиент",
                                              7, t0, t0)])
    db.execute("INSERT INTO phones (client_id, e164, raw, kind, created_at) "
               "SELECT id, '+7916' || printf('%07d', id), '8916' || printf('%07d', id), "
               "'mobile', created_at FROM clients")
    calls, legs, recs, transcripts, results = [], [], [], [], []
    call_id = 0
    for c in range(1, CLIENTS + 2):
        owner = 7 if c == LONG else 1 + (c - 1) % MANAGERS
        colleague = ((owner - 1) // PER_TEAM) * PER_TEAM + 1 + owner % PER_TEAM
        for k in range(LONG_CALLS if c == LONG else 20 + (c % 7) * 20):
            call_id += 1
            who = owner if k % 4 else colleague
            at = NOW - timedelta(hours=5 * k + c % 5, minutes=c % 60)
            answered = k % 10 < 7
            inbound = k % 3 == 0
            status = "answered" if answered else ("missed" if inbound else "no_answer")
            talk = float(20 + (k * 37) % 400) if answered else 0.0
            calls.append((call_id, f"b-{call_id}", "inbound" if inbound else "outbound",
                          status, f"+7916{c:07d}", c, _ts(at),
                          _ts(at + timedelta(seconds=4)) if answered else None,
                          _ts(at + timedelta(seconds=4 + talk)), talk,
                          f'["{1000 + who}"]' if answered else "[]", _ts(at),
                          f"q{1 + (who - 1) // PER_TEAM}" if inbound else None))
            legs.append((call_id, f"b-{call_id}-m", f"PJSIP/{1000 + who}-1", "manager",
                         str(1000 + who), who, _ts(at), talk, 1 if inbound else 0))
            legs.append((call_id, f"b-{call_id}-c", "PJSIP/carrier-1", "client", None, None,
                         _ts(at), talk, 0 if inbound else 1))
            if answered:
                recs.append((call_id, f"r/b-{call_id}-mix.wav", _ts(at)))
                if k % 5 == 0:
                    transcripts.append((call_id, _ts(at)))
                if k % 3 == 0:
                    results.append((call_id, 1 + k % 5, "Обсудили", who, _ts(at)))
    db.executemany(
        "INSERT INTO calls (id, linkedid, direction, status, client_number, client_id, "
        "started_at, answered_at, ended_at, ring_seconds, talk_seconds, transferred, managers, "
        "created_client, created_at, updated_at, queue) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 4.0,"
        " ?, 0, ?, 0, ?, ?, ?)", [(*r[:11], r[11], r[11], r[12]) for r in calls])
    db.executemany(
        "INSERT INTO call_legs (call_id, uniqueid, channel, role, extension, user_id, "
        "started_at, talk_seconds, seq, hold_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
        legs)
    db.executemany("INSERT INTO recordings (call_id, path, position, created_at, side) "
                   "VALUES (?, ?, 0, ?, 'mix')", recs)
    db.executemany("INSERT INTO transcripts (call_id, model, duration, data, created_at) "
                   "VALUES (?, 'bench', 60.0, '{}', ?)", transcripts)
    db.executemany("INSERT INTO call_results (call_id, outcome_id, note, user_id, created_at, "
                   "updated_at) VALUES (?, ?, ?, ?, ?, ?)", [(*r, r[4]) for r in results])
    db.execute("INSERT INTO pipelines (id, name, created_at) VALUES (1, 'Продажи', ?)", (t0,))
    db.executemany(
        "INSERT INTO pipeline_stages (id, pipeline_id, position, name, code, outcome, "
        "task_due_days, task_assignee) VALUES (?, 1, ?, ?, ?, ?, 1, 'owner')",
        [(1, 1, "Квалификация", "q", "open"), (2, 2, "КП", "kp", "open"),
         (3, 3, "Оплачено", "won", "won")])
    tasks, notes, deals, moves, statuses, owners, invoices, payments = ([] for _ in range(8))
    for c in range(1, CLIENTS + 2):
        owner = 7 if c == LONG else 1 + (c - 1) % MANAGERS
        team = 1 + (owner - 1) // PER_TEAM
        for k in range(LONG_TASKS if c == LONG else 8):  # two open, the rest done
            due = (NOW - timedelta(days=10 * (k - 1), hours=c % 9) if c == LONG
                   else NOW + timedelta(days=k - 1, hours=c % 9))
            done = k >= 2
            tasks.append((("call", "meeting", "email")[k % 3], f"Задача {k}",
                          "done" if done else "open", c, owner, team, _ts(due),
                          _ts(NOW - timedelta(days=k)), _ts(due - timedelta(days=2)) if done
                          else None, "Сделано" if done else None))
        for k in range(LONG_NOTES if c == LONG else 15):
            notes.append((c, ("note", "email_out", "email_in", "meeting")[k % 4],
                          _ts(NOW - timedelta(days=k, hours=2)), f"Запись {k} о клиенте",
                          owner))
        deals.append((c, f"Поставка {c}", c, owner, _ts(NOW - timedelta(days=10))))
        moves += [(c, None, 1, _ts(NOW - timedelta(days=30)), owner),
                  (c, 1, 2, _ts(NOW - timedelta(days=10)), owner)]
        statuses += [(c, "potential", "new", _ts(NOW - timedelta(days=200))),
                     (c, "new", "regular", _ts(NOW - timedelta(days=100)))]
        owners.append((c, None, owner, _ts(NOW - timedelta(days=300)), MANAGERS + team))
        for k in range(2):
            invoices.append((f"С-{c}-{k}", c, _ts(NOW - timedelta(days=20 + k)), owner))
        payments.append((c, f"С-{c}-0", _ts(NOW - timedelta(days=15)), owner))
    db.executemany(
        "INSERT INTO tasks (kind, title, status, client_id, assignee_id, team_id, due_at, "
        "created_at, updated_at, done_at, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(*t[:7], t[7], t[7], t[8], t[9]) for t in tasks])
    db.executemany("INSERT INTO client_activities (client_id, kind, happened_at, text, user_id,"
                   " created_at) VALUES (?, ?, ?, ?, ?, ?)", [(*n, n[2]) for n in notes])
    db.executemany(
        "INSERT INTO deals (id, title, client_id, pipeline_id, stage_id, owner_id, status, "
        "amount, created_at, stage_entered_at) VALUES (?, ?, ?, 1, 2, ?, 'open', 150000, ?, ?)",
        [(*d, d[4]) for d in deals])
    db.executemany("INSERT INTO deal_stage_changes (deal_id, from_stage_id, to_stage_id, at, "
                   "by_id) VALUES (?, ?, ?, ?, ?)", moves)
    db.executemany("INSERT INTO client_status_changes (client_id, old_status, new_status, at, "
                   "as_of, actor) VALUES (?, ?, ?, ?, date(?), 'rules')",
                   [(*s, s[3]) for s in statuses])
    db.executemany("INSERT INTO client_owner_changes (client_id, old_owner_id, new_owner_id, "
                   "at, by_id) VALUES (?, ?, ?, ?, ?)", owners)
    db.executemany("INSERT INTO invoices (number, client_id, amount, paid_amount, status, "
                   "issued_on, created_at, created_by_id) VALUES (?, ?, 50000, 0, 'unpaid', "
                   "date(?), ?, ?)", [(n, c, at, at, by) for n, c, at, by in invoices])
    db.executemany("INSERT INTO payments (client_id, invoice_id, amount, paid_on, source, "
                   "created_at, created_by_id) SELECT ?, id, 10000, date(?), 'manual', ?, ? "
                   "FROM invoices WHERE number = ?",
                   [(c, at, at, by, n) for c, n, at, by in payments])
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.close()


# -- measuring ------------------------------------------------------------------------------


class Statements:
    """Counts the SQL statements every engine of this process sends."""

    def __init__(self) -> None:
        self.count = 0
        event.listen(Engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: Any) -> None:
        self.count += 1

    def close(self) -> None:
        event.remove(Engine, "before_cursor_execute", self._seen)


async def _signed_in(base: str, username: str) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.post(base + "/api/login",
                         json={"username": username, "password": PASSWORD}) as response:
        assert response.status == 200, (username, response.status)
    return http


async def _views(http: aiohttp.ClientSession, base: str, paths: list[str],
                 statements: Statements) -> tuple[list[float], int]:
    """Milliseconds of each view of ``paths`` (in turn) and the statements of the first."""
    times, counted = [], -1
    for path in paths:
        before = statements.count
        t0 = time.perf_counter()
        async with http.get(base + path) as response:
            assert response.status == 200, (path, response.status)
            await response.read()
        times.append((time.perf_counter() - t0) * 1000)
        if counted < 0:
            counted = statements.count - before
    return times, counted


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(url: str, data: Path, views: int) -> None:
    settings = Settings(data_dir=data, database_url=url, recordings_source=data / "rec")
    statements = Statements()
    rows = []
    try:
        async with serve_app(settings) as (_, base):
            # manager m7 (team 1) opens his own clients; supervisor s3 his team's clients
            people = {"manager": ("m7", [7, 7 + MANAGERS]),
                      "manager, a client of long standing": ("m7", [LONG]),
                      "supervisor": ("s3", [c for c in range(1, CLIENTS + 1)
                                            if 1 + ((c - 1) % MANAGERS) // PER_TEAM == 3])}
            for role, (username, clients) in people.items():
                http = await _signed_in(base, username)
                try:
                    cards = [f"/clients/{clients[i % len(clients)]}" for i in range(views)]
                    await _views(http, base, cards[:10] + ["/calls"] * 5, statements)  # warm
                    card, card_sql = await _views(http, base, cards, statements)
                    log, log_sql = (await _views(http, base, ["/calls"] * views, statements)
                                    if clients != [LONG] else ([], 0))
                finally:
                    await http.close()
                rows.append((f"card /clients/{{id}} as {role}", card, card_sql))
                if log:
                    rows.append((f"call log /calls as {role}", log, log_sql))
    finally:
        statements.close()
    print(f"\n{views} views each, ms (load average {os.getloadavg()[0]:.1f})")
    print(f"{'page':<56}{'p50':>8}{'p95':>8}{'mean':>8}{'statements':>12}")
    for name, times, sql in rows:
        print(f"{name:<56}{_p(times, .5):>8.1f}{_p(times, .95):>8.1f}"
              f"{statistics.fmean(times):>8.1f}{sql:>12}")


async def main(args: argparse.Namespace) -> None:
    directory = args.data or Path(tempfile.mkdtemp(prefix="telecrm-bench-card-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        path = directory / "card-v2.sqlite3"  # v2: with the client of long standing
        if not path.exists():
            scratch = path.with_suffix(".loading")
            scratch.unlink(missing_ok=True)
            await upgrade(f"sqlite+aiosqlite:///{scratch}")
            t0 = time.perf_counter()
            await asyncio.to_thread(load, scratch)
            scratch.rename(path)
            print(f"loaded {MANAGERS} managers in {TEAMS} teams, {CLIENTS} clients in "
                  f"{time.perf_counter() - t0:.0f} s")
        await measure(f"sqlite+aiosqlite:///{path}", directory, args.views)
    finally:
        if args.data is None:
            shutil.rmtree(directory, ignore_errors=True)


def _parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=int, default=100, help="views of each page per role")
    parser.add_argument("--data", type=Path, default=None,
                        help="keep the loaded SQLite file here and reuse it next time")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(_parse()))
