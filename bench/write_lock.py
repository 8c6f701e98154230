"""How long the largest allowed bulk request holds SQLite's write lock (issue 17, item 6).

Two requests whose body chooses how many rows a write transaction touches, run through
the same steps as their handlers, each in a writer session (``BEGIN IMMEDIATE``: the lock
is held from the transaction's first statement to its commit, which is what is timed):

- ``POST /api/clients/reassign``: the most clients one request may give away
  (``MAX_BULK``), each with an open deal that moves with him, as an admin;
- ``POST /api/clients``: the largest body the handler accepts (within the server's
  64 KiB): as many contact persons as are allowed, each with as many phones and
  e-mails as are allowed; with no bound on contacts, as many bare contacts as fit.

    .venv/bin/python bench/write_lock.py [--repeats 3]

Target: under 0.5 s each (a sign-in waits no longer than that for the lock).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select

from crm_core.clients.models import Client
from crm_core.db import create_engine, session_factory, upgrade
from crm_core.people.access import unopenable_clients
from crm_core.people.models import User
from crm_core.people.users import add_user
from crm_core.sales.clients import MAX_BULK, reassign_clients
from crm_core.sales.deals import StageSpec, create_pipeline
from crm_core.sales.models import Deal, PipelineStage
from telecrm.clients import service
from telecrm.clients.api import company_input
from telecrm.settings import Settings
from telecrm.web.errors import ApiError

BODY_LIMIT = 64 * 1024


def largest_create_body() -> dict[str, Any]:
    """The ``POST /api/clients`` body with the most rows that the handler takes and the
    server's 64 KiB hold: full contacts, contacts with a few numbers each, or (when their
    count is unbounded) as many bare contacts as fit."""
    def person(i: int, phones: int, emails: int) -> dict[str, Any]:
        return {"name": f"Контакт {i}", "position": "Закупки",
                "phones": [f"+7916{i:03d}{j:04d}" for j in range(phones)],
                "emails": [f"c{i}.{j}@example.com" for j in range(emails)]}

    def rows(body: dict[str, Any]) -> int:
        return len(body["contacts"]) + sum(len(c.get("phones", [])) + len(c.get("emails", []))
                                           for c in body["contacts"])

    shapes = [[person(i, p, e) for i in range(n)]
              for n, p, e in ((20, 50, 50), (20, 3, 2), (20, 5, 0), (1, 50, 50), (2, 25, 25))]
    shapes.append([{"name": f"К{i}"} for i in range(3400)])
    accepted = []
    for contacts in shapes:
        while contacts:
            body = {"name": "ООО Большой", "contacts": contacts}
            if len(json.dumps(body, ensure_ascii=False).encode()) <= BODY_LIMIT:
                break
            contacts = contacts[:-1]
        try:
            company_input(body, creating=True)
        except ApiError:
            continue
        accepted.append(body)
    return max(accepted, key=rows)


async def seed(url: str, clients: int) -> dict[str, User]:
    await upgrade(url)
    engine = create_engine(url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            people = {
                "admin": await add_user(session, "admin", name="Админ", role="admin"),
                "ivan": await add_user(session, "ivan", name="Иван", role="manager",
                                       extension="101", team="Продажи"),
                "olga": await add_user(session, "olga", name="Ольга", role="manager",
                                       extension="102", team="Продажи"),
            }
            await create_pipeline(session, "B2B", [StageSpec.parse("Квалификация"),
                                                   StageSpec.parse("Выиграна:won"),
                                                   StageSpec.parse("Проиграна:lost")], by=None)
            stage = await session.scalar(select(PipelineStage).order_by(PipelineStage.id))
            assert stage is not None
            ids = (await session.scalars(insert(Client).returning(Client.id), [
                {"name": f"Клиент {i}", "owner_id": people["ivan"].id}
                for i in range(clients)])).all()
            await session.execute(insert(Deal), [
                {"title": "Поставка", "client_id": cid, "pipeline_id": stage.pipeline_id,
                 "stage_id": stage.id, "owner_id": people["ivan"].id} for cid in ids])
        return people
    finally:
        await engine.dispose()


async def timed(url: str, work: Any) -> float:
    """Seconds from the writer transaction's first statement to its commit."""
    engine = create_engine(url)
    try:
        async with session_factory(engine, writer=True)() as session:
            started = time.perf_counter()
            async with session.begin():
                await work(session)
            return time.perf_counter() - started
    finally:
        await engine.dispose()


async def run(repeats: int) -> dict[str, Any]:
    reassign, create = [], []
    body = largest_create_body()
    contacts = body["contacts"]
    rows = len(contacts) + sum(len(c.get("phones", [])) + len(c.get("emails", []))
                               for c in contacts)
    for n in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{tmp}/lock{n}.sqlite3"
            people = await seed(url, MAX_BULK)
            admin, olga = people["admin"], people["olga"]
            ids = list(range(1, MAX_BULK + 1))

            async def give(session: Any, admin: int = admin.id, olga: int = olga.id,
                           ids: list[int] = ids) -> None:
                who = await session.get(User, admin)
                assert not await unopenable_clients(session, who, ids)
                moved = await reassign_clients(session, ids, olga, by=who, actor="bench")
                assert len(moved) == MAX_BULK

            reassign.append(await timed(url, give))
            settings = Settings(data_dir=Path(tmp), database_url=url)

            async def make(session: Any, admin: int = admin.id,
                           settings: Settings = settings) -> None:
                who = await session.get(User, admin)
                await service.create(session, who, company_input(body, creating=True), settings)

            create.append(await timed(url, make))
    return {"reassign_clients": MAX_BULK,
            "reassign_lock_s": {"best": min(reassign), "median": statistics.median(reassign)},
            "create_body_bytes": len(json.dumps(body, ensure_ascii=False).encode()),
            "create_contacts": len(contacts), "create_rows": rows,
            "create_lock_s": {"best": min(create), "median": statistics.median(create)}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args.repeats)), ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
