"""Client search at 100,000 clients and 300,000 phones, on SQLite and on a real PostgreSQL.

Loads synthetic clients (names of a legal form and one or two made-up words, a valid
INN, three phones each, a contact person for every third, an e-mail for every other),
builds the search words by the product's own rules (``crm_core.clients.terms``), then
times ``crm_core.clients.search.search_clients`` (one page of 50, as ``GET /api/clients``
asks; each search's median of three runs) for a mix of what people type: a phone number
written three ways, a name prefix, two words, an INN, an e-mail, a contact's surname;
as the admin (the whole base) and as one of 50 managers (his clients only). In the
same run, the plain ``LIKE '%…%'`` scan a first version would do (name, INN, phones,
contacts, e-mails).

    .venv/bin/python bench/client_search.py [--clients 100000] [--queries 300] [--scans 20]
        [--backend sqlite postgresql]

Target: p95 < 50 ms per search.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import ColumnElement, insert, or_, select, text, true

from bench._common import Databases
from crm_core.clients.models import Client, ClientSearchTerm, Contact, Email, Phone
from crm_core.clients.search import ClientQuery, _base, search_clients
from crm_core.clients.terms import client_terms, fold
from crm_core.db import create_engine, session_factory
from crm_core.people import access
from crm_core.people.models import Team, User

TARGET_MS = 50.0
FORMS = ["ООО", "АО", "ИП", "ЗАО", "ПАО"]
SYLLABLES = ["ро", "ма", "шка", "век", "тор", "аль", "фа", "гам", "сиб", "тех", "про", "ком",
             "стр", "ой", "лес", "агро", "мет", "алл", "нефть", "газ", "бал", "тик", "вол",
             "га", "дон", "ура", "лмаш", "хим", "пром", "торг", "снаб", "инвест", "кра", "мир",
             "зем", "ле", "сер", "вис", "бор", "ок", "нор", "д", "гид", "ро", "тран", "зит",
             "луч", "свет", "град", "стан", "кор", "пус", "лин", "ия", "ан", "ок", "ель", "дуб",
             "рав", "ена", "фор", "тис", "мост", "бел", "ник", "жел", "ез", "то", "ка", "рт"]
FIRST = ["Иван", "Пётр", "Анна", "Ольга", "Сергей", "Мария", "Алексей", "Елена", "Дмитрий",
         "Наталья", "Андрей", "Татьяна", "Михаил", "Ирина", "Николай", "Светлана"]
LAST = ["Иванов", "Петров", "Сидоров", "Смирнов", "Кузнецов", "Попов", "Васильев", "Соколов",
        "Михайлов", "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов",
        "Егоров", "Павлов", "Козлов", "Степанов", "Николаев", "Орлов", "Андреев", "Макаров"]
_W10 = (2, 4, 10, 3, 5, 9, 4, 6, 8)


def inn(rng: random.Random) -> str:
    digits = "".join(str(rng.randrange(10)) for _ in range(9))
    check = sum(int(d) * w for d, w in zip(digits, _W10, strict=True)) % 11 % 10
    return digits + str(check)


def word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


def build(n: int, managers: int, seed: int = 20261205) -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(seed)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    clients, phones, contacts, emails = [], [], [], []
    numbers = rng.sample(range(10**9), 3 * n)  # distinct subscriber numbers
    for c in range(1, n + 1):
        name = f"{rng.choice(FORMS)} «{word(rng)}{' ' + word(rng) if c % 3 == 0 else ''}»"
        clients.append({"id": c, "name": name, "name_key": fold(name), "status": "potential",
                        "owner_id": 1 + c % managers, "source": "import", "inn": inn(rng),
                        "created_at": now, "updated_at": now, "status_since": now,
                        "owner_since": now})
        for k in range(3):
            e164 = f"+79{numbers[3 * (c - 1) + k]:09d}"
            phones.append({"client_id": c, "e164": e164, "raw": e164, "kind": "mobile",
                           "created_at": now})
        if c % 3 == 0:
            contacts.append({"id": len(contacts) + 1, "client_id": c, "created_at": now,
                             "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}"})
        if c % 2 == 0:
            emails.append({"client_id": c, "address": f"info{c}@{word(rng).lower()}.ru",
                           "created_at": now})
    return {"clients": clients, "phones": phones, "contacts": contacts, "emails": emails}


def queries(data: dict[str, list[dict[str, Any]]], count: int, seed: int = 7
            ) -> list[tuple[str, str]]:
    """(kind, what a person types), a fixed mix."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        client = rng.choice(data["clients"])
        kind = ["phone 8 (9xx)", "phone +7(9xx)", "phone 10 digits", "name prefix",
                "two words", "INN", "e-mail", "contact"][i % 8]
        if kind.startswith("phone"):
            d = rng.choice(data["phones"])["e164"][2:]
            typed = {"phone 8 (9xx)": f"8 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}",
                     "phone +7(9xx)": f"+7({d[:3]}){d[3:]}", "phone 10 digits": d}[kind]
        elif kind == "name prefix":
            typed = re.findall(r"\w+", client["name"])[1][:rng.randint(4, 6)]
        elif kind == "two words":
            form, first = re.findall(r"\w+", client["name"])[:2]
            typed = f"{form.lower()} {first[:3].lower()}"
        elif kind == "INN":
            typed = client["inn"]
        elif kind == "e-mail":
            typed = rng.choice(data["emails"])["address"].split("@")[0] + "@"
        else:
            typed = rng.choice(data["contacts"])["name"].split()[1]
        out.append((kind, typed))
    return out


def like_scan(typed: str) -> ColumnElement[bool]:
    """The first version's search: substring LIKE over every field, no index can help."""
    pattern = f"%{fold(typed)}%"
    digits = re.sub(r"\D", "", typed)
    digits = "7" + digits[1:] if digits.startswith("8") else digits
    clauses = [Client.name_key.like(pattern), Client.inn.like(pattern),
               Client.id.in_(select(Contact.client_id).where(Contact.name.ilike(pattern))),
               Client.id.in_(select(Email.client_id).where(Email.address.like(pattern)))]
    if len(digits) >= 3:
        clauses.append(Client.id.in_(select(Phone.client_id)
                                     .where(Phone.e164.like(f"%{digits}%"))))
    return or_(*clauses)


async def load(url: str, data: dict[str, list[dict[str, Any]]], managers: int) -> float:
    engine = create_engine(url)
    t0 = time.perf_counter()
    try:
        async with session_factory(engine)() as session, session.begin():
            await session.execute(insert(Team), [{"id": t, "name": f"Отдел {t}",
                                                  "created_at": datetime.now(UTC)}
                                                 for t in range(1, 6)])
            await session.execute(insert(User), [
                {"id": m, "username": f"m{m}", "name": f"Менеджер {m}", "role": "manager",
                 "extension": str(100 + m), "team_id": 1 + m % 5, "active": True,
                 "created_at": datetime.now(UTC)} for m in range(1, managers + 1)]
                + [{"id": managers + 1, "username": "admin", "name": "Админ", "role": "admin",
                    "active": True, "created_at": datetime.now(UTC)}])
            for table, model in (("clients", Client), ("phones", Phone),
                                 ("contacts", Contact), ("emails", Email)):
                rows = data[table]
                for start in range(0, len(rows), 5000):
                    await session.execute(insert(model.__table__), rows[start:start + 5000])
            # the words, by the product's own rules (crm_core.clients.terms)
            people: dict[int, list[str]] = {}
            for row in data["contacts"]:
                people.setdefault(row["client_id"], []).append(row["name"])
            mails = {row["client_id"]: [row["address"]] for row in data["emails"]}
            numbers: dict[int, list[str]] = {}
            for row in data["phones"]:
                numbers.setdefault(row["client_id"], []).append(row["e164"])
            terms = [{"term": term, "client_id": c["id"]} for c in data["clients"]
                     for term in client_terms(name=c["name"], inn=c["inn"],
                                              contact_names=people.get(c["id"], ()),
                                              emails=mails.get(c["id"], ()),
                                              phones=numbers[c["id"]])]
            for start in range(0, len(terms), 10000):
                await session.execute(insert(ClientSearchTerm.__table__),
                                      terms[start:start + 10000])
        # what autovacuum (PostgreSQL) and ``PRAGMA optimize`` (SQLite) keep up in production
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            vacuum = "VACUUM ANALYZE" if url.startswith("postgresql") else "ANALYZE"
            await conn.execute(text(vacuum))
    finally:
        await engine.dispose()
    return time.perf_counter() - t0


def p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20)[-1] if len(times) >= 20 else max(times)


async def measure(url: str, mix: list[tuple[str, str]], scans: int, repeats: int
                  ) -> dict[str, Any]:
    engine = create_engine(url)
    out: dict[str, Any] = {}
    try:
        async with session_factory(engine)() as session:
            manager = await session.get(User, 7)
            assert manager is not None
            scopes = {"admin": true(), "manager": await access.clients_filter(session, manager)}
            for viewer, visible in scopes.items():
                for _, typed in mix[:16]:  # warm the caches
                    await search_clients(session, ClientQuery(text=typed), visible=visible)
                times, by_kind, found = [], {}, 0
                for kind, typed in mix:
                    runs = []
                    for _ in range(repeats):  # the median of a few: the machine is shared
                        t0 = time.perf_counter()
                        page = await search_clients(session, ClientQuery(text=typed, limit=50),
                                                    visible=visible)
                        runs.append((time.perf_counter() - t0) * 1000)
                    elapsed = statistics.median(runs)
                    times.append(elapsed)
                    by_kind.setdefault(kind, []).append(elapsed)
                    found += bool(page.clients)
                out[viewer] = {"p50": statistics.median(times), "p95": p95(times),
                               "max": max(times), "found": found,
                               "kinds": {k: p95(v) for k, v in by_kind.items()}}
            scan_times = []
            for _, typed in mix[:scans]:
                t0 = time.perf_counter()
                await session.execute(select(Client.id).where(Client.archived_at.is_(None),
                                                              like_scan(typed))
                                      .order_by(Client.name_key, Client.id).limit(51))
                scan_times.append((time.perf_counter() - t0) * 1000)
            out["scan"] = {"p50": statistics.median(scan_times), "p95": p95(scan_times)}
            stmt = (await _base(session, true(), ClientQuery(text=mix[3][1]), ())).order_by(
                Client.name_key, Client.id).limit(51)
            compiled = stmt.compile(session.bind, compile_kwargs={"literal_binds": True})
            if session.bind.dialect.name == "sqlite":
                plan = await session.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
                out["plan"] = " | ".join(str(r[-1]) for r in plan)
            else:
                plan = await session.execute(text(f"EXPLAIN ANALYZE {compiled}"))
                out["plan"] = "\n    ".join(r[0] for r in plan)
    finally:
        await engine.dispose()
    return out


async def main(args: argparse.Namespace) -> None:
    data = build(args.clients, args.managers)
    mix = queries(data, args.queries)
    print(f"{len(data['clients']):,} clients, {len(data['phones']):,} phones, "
          f"{len(data['contacts']):,} contacts, {len(data['emails']):,} e-mails; "
          f"{len(mix)} searches per viewer (median of {args.repeats} runs each), "
          f"{args.scans} LIKE scans")
    with Databases(want_pg="postgresql" in args.backend) as dbs:
        for backend in args.backend:
            url = await dbs.fresh(backend)
            seconds = await load(url, data, args.managers)
            result = await measure(url, mix, args.scans, args.repeats)
            print(f"\n{backend}: loaded and indexed in {seconds:.0f} s")
            print(f"  {'viewer':<9}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}  target  found")
            for viewer in ("admin", "manager"):
                r = result[viewer]
                ok = "ok" if r["p95"] < TARGET_MS else "OVER"
                print(f"  {viewer:<9}{r['p50']:>8.1f}{r['p95']:>8.1f}{r['max']:>8.1f}  "
                      f"{ok:<6}  {r['found']}/{len(mix)}")
            kinds = ", ".join(f"{k} {v:.1f}" for k, v in result["admin"]["kinds"].items())
            print(f"  p95 by kind (admin): {kinds}")
            scan = result["scan"]
            print(f"  LIKE '%…%' scan: p50 {scan['p50']:.1f} ms, p95 {scan['p95']:.1f} ms; "
                  f"ratio of p95 {scan['p95'] / result['admin']['p95']:.0f}x")
            print(f"  plan of a name search: {result['plan']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--managers", type=int, default=50)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--scans", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of each search; its median counts")
    parser.add_argument("--backend", nargs="+", choices=["sqlite", "postgresql"],
                        default=["sqlite", "postgresql"])
    asyncio.run(main(parser.parse_args()))
