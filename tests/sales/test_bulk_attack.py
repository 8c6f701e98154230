"""Bulk requests cannot hold the write lock (issue 17, item 6): ``POST /api/clients/reassign``
with the review's ``[1]*6000`` is refused before any transaction, the largest allowed one
is a few set-based statements, and a new card's contact persons are bounded."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select

from crm_core.audit import AuditLog
from crm_core.clients.models import Client
from crm_core.db import create_engine, session_factory
from crm_core.people.models import User
from crm_core.people.users import add_user
from crm_core.sales.clients import MAX_BULK, owner_history, reassign_clients
from crm_core.sales.deals import StageSpec, create_pipeline
from crm_core.sales.models import ClientOwnerChange, Deal, PipelineStage
from telecrm.settings import Settings
from tests.support.browser import seed_world, serve_app
from tests.support.db_fixtures import db_url_fixture  # noqa: F401
from tests.support.hostile import call, login

pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")


async def test_a_huge_reassign_is_refused_fast_and_sign_in_goes_on(
        db_url: str, tmp_path: Path) -> None:
    world = await seed_world(db_url, tmp_path / "monitor")
    settings = Settings(data_dir=tmp_path, database_url=db_url,
                        recordings_source=tmp_path / "monitor")
    async with serve_app(settings) as (_, base):
        petrov, boss = await login(base, "petrov"), await login(base, "sokolova")
        url = f"{base}/api/clients/reassign"
        try:
            async def attack() -> list[tuple[int, object]]:
                return list(await asyncio.gather(*(
                    call(petrov, "POST", url, {"client_ids": [1] * 6000,
                                               "owner_id": world.users["petrov"]})
                    for _ in range(5))))

            async def sign_in() -> float:
                started = time.perf_counter()
                other = await login(base, "smirnova")
                await other.close()
                return time.perf_counter() - started

            started = time.perf_counter()
            answers, signed_in = await asyncio.gather(attack(), sign_in())
            assert time.perf_counter() - started < 2
            assert signed_in < 2
            for status, body in answers:
                assert status == 400
                assert body == {"error": "За один раз можно передать не больше 1000 клиентов.",
                                "code": "sales.client.reassign_too_many"}

            # the role is checked before any transaction: a manager's short list is a 403
            mine = world.clients["101"]
            status, body = await call(petrov, "POST", url, {
                "client_ids": [mine, mine], "owner_id": world.users["smirnova"]})
            assert status == 403 and body["code"] == "sales.bosses_only"
            # another team's client is not found, in one query, and nothing moves
            theirs = world.clients["103"]
            status, body = await call(boss, "POST", url, {
                "client_ids": [mine, theirs], "owner_id": world.users["smirnova"]})
            assert status == 404
            status, body = await call(boss, "POST", url, {
                "client_ids": [mine, mine, mine], "owner_id": world.users["smirnova"]})
            assert (status, body["reassigned"]) == (200, 1)
        finally:
            await petrov.close()
            await boss.close()


async def test_the_largest_reassign_is_a_few_statements_whatever_it_lists(db_url: str) -> None:
    """The most clients one request may give away (1,000), each with an open deal, cost the
    same statements in the write transaction as two: nothing is done per listed client."""
    engine = create_engine(db_url)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    try:
        sessions = session_factory(engine, writer=True)
        async with sessions() as session, session.begin():
            admin = await add_user(session, "admin", name="Админ", role="admin")
            ivan = await add_user(session, "ivan", name="Иван Петров", role="manager",
                                  extension="101", team="Продажи")
            olga = await add_user(session, "olga", name="Ольга Смирнова", role="manager",
                                  extension="102", team="Продажи")
            await create_pipeline(session, "B2B", [StageSpec.parse("Квалификация"),
                                                   StageSpec.parse("Выиграна:won"),
                                                   StageSpec.parse("Проиграна:lost")], by=None)
            stage = await session.scalar(select(PipelineStage).order_by(PipelineStage.id))
            assert stage is not None
            ids = list((await session.scalars(insert(Client).returning(Client.id), [
                {"name": f"Клиент {i}", "owner_id": ivan.id} for i in range(MAX_BULK)])).all())
            deal = {"title": "Поставка", "pipeline_id": stage.pipeline_id, "stage_id": stage.id}
            await session.execute(insert(Deal), [{**deal, "client_id": cid, "owner_id": ivan.id}
                                                 for cid in ids])
            # a colleague's deal with the first client stays hers
            await session.execute(insert(Deal), [{**deal, "client_id": ids[0],
                                                  "owner_id": olga.id}])
        event.listen(engine.sync_engine, "before_cursor_execute", count)
        spent = []
        for chosen, to in ((ids[:2], olga), (ids, olga)):
            statements.clear()
            async with sessions() as session, session.begin():
                by = await session.get(User, admin.id)
                assert by is not None
                moved = await reassign_clients(session, chosen, to.id, by=by, reason="отпуск")
            spent.append(len(statements))
            assert len(moved) == (2 if len(chosen) == 2 else MAX_BULK - 2)
        assert spent[0] == spent[1] <= 12
        event.remove(engine.sync_engine, "before_cursor_execute", count)

        async with sessions() as session:
            owners = dict((await session.execute(select(Client.id, Client.owner_id))).all())
            assert set(owners.values()) == {olga.id}
            history = await session.scalar(select(func.count()).select_from(ClientOwnerChange)
                                           .where(ClientOwnerChange.old_owner_id == ivan.id,
                                                  ClientOwnerChange.new_owner_id == olga.id,
                                                  ClientOwnerChange.reason == "отпуск"))
            assert history == MAX_BULK
            deals = (await session.execute(select(Deal.owner_id, func.count())
                                           .group_by(Deal.owner_id))).all()
            assert deals == [(olga.id, MAX_BULK + 1)]
            audited = dict((await session.execute(
                select(AuditLog.entity, func.count()).where(AuditLog.user_id == admin.id)
                .group_by(AuditLog.entity))).all())
            # each client and each of his deals that moved: one row; the colleague's: none
            assert audited == {"client": MAX_BULK, "deal": MAX_BULK}
            first = (await owner_history(session, ids[0]))[-1]
            assert (first["from"], first["to"], first["by"]) == (ivan.id, olga.id, admin.id)
    finally:
        await engine.dispose()


async def test_a_new_card_takes_a_bounded_number_of_people_and_numbers(
        db_url: str, tmp_path: Path) -> None:
    await seed_world(db_url, tmp_path / "monitor")
    settings = Settings(data_dir=tmp_path, database_url=db_url,
                        recordings_source=tmp_path / "monitor")

    def person(i: int, phones: int) -> dict[str, Any]:
        return {"name": f"Контакт {i}", "phones": [f"+7916{i:03d}{j:04d}" for j in range(phones)]}

    async with serve_app(settings) as (_, base):
        petrov = await login(base, "petrov")
        url = f"{base}/api/clients"
        try:
            # 64 KiB of bare contacts: each was a few statements under the write lock
            status, body = await call(petrov, "POST", url, {
                "name": "ООО Атака", "contacts": [{"name": f"К{i}"} for i in range(2000)]})
            assert (status, body) == (400, {
                "error": "С новой карточкой можно добавить не больше 20 контактных лиц; "
                         "остальных добавьте в карточке.",
                "code": "clients.contacts_too_many"})
            status, body = await call(petrov, "POST", url, {
                "name": "ООО Атака", "phones": ["+74950000000"],
                "contacts": [person(i, 5) for i in range(20)]})
            assert (status, body["error"]) == (400, (
                "За один раз можно записать не больше 100 телефонов и адресов почты вместе с "
                "контактными лицами; остальные добавьте в карточке."))
            status, found = await call(petrov, "GET", f"{url}?q=Атака")
            assert status == 200 and found["clients"] == []

            # the most a new card takes: twenty people with five numbers each
            status, card = await call(petrov, "POST", url, {
                "name": "ООО Большая", "contacts": [person(i, 5) for i in range(20)]})
            assert status == 201, card
            assert len(card["contacts"]) == 20
            assert all(len(c["phones"]) == 5 for c in card["contacts"])
            status, found = await call(petrov, "GET", f"{url}?q=+7 916 019 0004")
            assert status == 200 and [c["name"] for c in found["clients"]] == ["ООО Большая"]
        finally:
            await petrov.close()
