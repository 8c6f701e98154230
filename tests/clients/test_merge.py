"""Merging duplicates: everything with a ``client_id`` moves to the client kept, the duplicate
is archived and points at him, both are audited; only a supervisor (his team) or an admin."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import AuditLog
from crm_core.calls.models import Call
from crm_core.clients.cards import add_contact, create_company
from crm_core.clients.merge import client_tables, merge_clients
from crm_core.clients.models import Client, Contact, Email, Phone
from crm_core.clients.search import ClientQuery, search_clients
from crm_core.db.base import Base
from crm_core.errors import DomainError, NotAllowedError
from crm_core.people.models import User
from crm_core.people.users import add_user
from crm_core.sales.clients import reassign_clients
from crm_core.sales.deals import StageSpec, create_deal, create_pipeline
from crm_core.sales.models import (
    ClientOwnerChange,
    ClientStatusChange,
    ClientStop,
    Deal,
    Invoice,
    Payment,
)
from crm_core.sales.payments import record_invoice, record_payment
from crm_core.sales.tasks import plan_task, request_stop
from crm_core.tasks.models import Task
from tests.support.db_fixtures import (  # noqa: F401
    db_session_fixture,
    db_url_fixture,
)

MOVED = (Call, Task, Deal, Invoice, Payment, ClientStatusChange, ClientOwnerChange, ClientStop,
         Contact, Email)


def test_every_table_with_a_client_id_is_found() -> None:
    import crm_core.schema  # noqa: F401  (every feature's tables, as a session factory has)

    names = {table.name for table, _ in client_tables()}
    assert {"calls", "tasks", "deals", "invoices", "payments", "client_status_changes",
            "client_owner_changes", "client_stops", "contacts", "phones", "emails"} <= names
    assert "client_search_terms" not in names  # rebuilt, not moved
    expected = {t.name for t in Base.metadata.sorted_tables if "client_id" in t.c
                and t.info.get("merge") != "rebuild"}
    assert names == expected


async def _count(session: AsyncSession, model: Any, client_id: int) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)
                                    .where(model.client_id == client_id)) or 0)


async def _floor(s: AsyncSession) -> dict[str, Any]:
    u = {
        "boss": await add_user(s, "boss", name="Мария", role="supervisor", extension="201",
                               team="Продажи"),
        "ivan": await add_user(s, "ivan", name="Иван", extension="101", team="Продажи"),
        "olga": await add_user(s, "olga", name="Ольга", extension="102", team="Продажи"),
        "kuz": await add_user(s, "kuz", name="Кузьма", extension="103", team="Второй"),
        "other_boss": await add_user(s, "other", name="Пётр", role="supervisor",
                                     extension="202", team="Второй"),
    }
    kept = await create_company(s, name="ООО «Ромашка»", phones=["+79265550099"],
                                owner_id=u["ivan"].id, by=None, actor="t")
    lead = await create_company(s, name="+7 903 123-45-67",
                                phones=["+79031234567", "+74951110001"],
                                emails=["zakaz@romashka.ru"],
                                details={"inn": "7707083893", "region": "Москва"},
                                owner_id=u["olga"].id, by=None, actor="t")
    await add_contact(s, lead, name="Анна Петрова", phones=["+79160001122"],
                      emails=["anna@romashka.ru"], by=None, actor="t")
    # the same number on both cards (a shared switchboard)
    s.add(Phone(client_id=kept.id, e164="+74951110001", raw="8 495 111-00-01"))
    start = datetime(2026, 11, 10, 9, tzinfo=UTC)
    for n, (client, answered) in enumerate(((kept, True), (lead, True), (lead, False))):
        s.add(Call(linkedid=f"m-{n}", direction="inbound",
                   status="answered" if answered else "missed", client_id=client.id,
                   client_number=client.phones[0].e164, started_at=start + timedelta(days=n),
                   answered_at=start + timedelta(days=n) if answered else None,
                   ended_at=start + timedelta(days=n, minutes=1), managers=[]))
    lead.last_contact_at = start + timedelta(days=1)
    pipeline = await create_pipeline(s, "B2B", [StageSpec.parse(x) for x in (
        "Квалификация:call:1", "Выиграна:won", "Проиграна:lost")], by=None)
    await create_deal(s, client_id=lead.id, pipeline_id=pipeline.id, title="Поставка",
                      amount="500000", by=None)
    await record_invoice(s, client=lead, number="СЧ-1", amount="100000",
                         issued_on=date(2026, 11, 1))
    await record_payment(s, client=lead, amount="40000", paid_on=date(2026, 11, 5),
                         invoice="СЧ-1", today=date(2026, 11, 20))
    await plan_task(s, client_id=lead.id, kind="call", due_at=start + timedelta(days=20),
                    by=None)
    await request_stop(s, lead.id, "Дубль", by=u["olga"])
    await reassign_clients(s, [lead.id], u["olga"].id, by=None)  # no change: already hers
    await reassign_clients(s, [lead.id], u["ivan"].id, by=None)
    await reassign_clients(s, [lead.id], u["olga"].id, by=None)
    await s.commit()
    return {**u, "kept": kept.id, "lead": lead.id}


async def test_a_merge_moves_everything_and_is_audited(db_session: AsyncSession) -> None:
    w = await _floor(db_session)
    kept_id, lead_id = w["kept"], w["lead"]
    before = {m.__tablename__: await _count(db_session, m, lead_id) for m in MOVED}
    assert all(before.values()), before  # the duplicate has a bit of everything
    assert before["tasks"] >= 3  # the deal's stage task, the planned call, the stop request
    kept_before = {m.__tablename__: await _count(db_session, m, kept_id) for m in MOVED}

    result = await merge_clients(db_session, kept_id, lead_id, by=w["boss"], actor="boss")
    await db_session.commit()

    for model in MOVED:
        name = model.__tablename__
        assert await _count(db_session, model, lead_id) == 0, name
        assert await _count(db_session, model, kept_id) == kept_before[name] + before[name]
        assert result.moved[name] == before[name]
    # the shared number stays with the archived duplicate; the others moved
    phones = {(p.client_id, p.e164) for p in await db_session.scalars(select(Phone))}
    assert phones == {(kept_id, "+79265550099"), (kept_id, "+74951110001"),
                      (kept_id, "+79031234567"), (kept_id, "+79160001122"),
                      (lead_id, "+74951110001")}
    assert result.stayed == {"phones": 1}

    kept = await db_session.get(Client, kept_id, populate_existing=True)
    lead = await db_session.get(Client, lead_id, populate_existing=True)
    assert kept is not None and lead is not None
    assert lead.archived_at is not None and lead.merged_into_id == kept_id
    assert kept.archived_at is None and kept.owner_id == w["ivan"].id  # his card, his owner
    assert (kept.inn, kept.region) == ("7707083893", "Москва")  # filled from the duplicate
    assert kept.last_contact_at == datetime(2026, 11, 11, 9, tzinfo=UTC)
    audit = {r.entity_id: r for r in await db_session.scalars(
        select(AuditLog).where(AuditLog.entity == "client", AuditLog.action == "merge"))}
    assert audit[kept_id].changes["merged"] == lead_id
    assert audit[kept_id].changes["moved"]["calls"] == 2
    assert audit[kept_id].actor == "boss" and audit[kept_id].user_id == w["boss"].id
    assert audit[lead_id].changes["merged_into"] == kept_id
    assert await db_session.scalar(select(func.count()).select_from(Client)) == 2  # no delete

    # the duplicate's numbers, INN and people now find the kept client
    for typed in ("8 903 123-45-67", "7707083893", "анна", "zakaz@romashka.ru"):
        page = await search_clients(db_session, ClientQuery(text=typed),
                                    visible=Client.id.is_not(None))
        assert [c.id for c in page.clients] == [kept_id], typed


async def test_who_may_merge(db_session: AsyncSession) -> None:
    w = {k: v.id if isinstance(v, User) else v for k, v in (await _floor(db_session)).items()}
    far = await create_company(db_session, name="ЗАО Далёкое", owner_id=w["kuz"], by=None,
                               actor="t")
    far_id = far.id
    await db_session.commit()
    for who, pair, code in (
            ("ivan", (w["kept"], w["lead"]), "clients.merge_not_allowed"),
            ("other_boss", (w["kept"], w["lead"]), "clients.merge_not_in_team"),
            ("boss", (w["kept"], far_id), "clients.merge_not_in_team")):
        by = await db_session.get(User, w[who], populate_existing=True)
        with pytest.raises(NotAllowedError) as refused:
            await merge_clients(db_session, *pair, by=by, actor=who)
        assert refused.value.code == code
        await db_session.rollback()
    with pytest.raises(DomainError) as refused:
        await merge_clients(db_session, w["kept"], w["kept"], by=None, actor="admin")
    assert refused.value.code == "clients.merge_same"
    await merge_clients(db_session, w["kept"], w["lead"], by=None, actor="admin")
    await db_session.commit()
    with pytest.raises(DomainError) as refused:  # an archived duplicate is not merged again
        await merge_clients(db_session, w["kept"], w["lead"], by=None, actor="admin")
    assert refused.value.code == "clients.merge_archived"


async def test_a_new_table_with_a_client_id_moves_without_a_change(
        db_session: AsyncSession) -> None:
    """Another feature (notes, a timeline) registers a table with ``client_id``: it moves."""
    w = await _floor(db_session)
    extra = MetaData()
    Table("clients", extra, Column("id", Integer, primary_key=True))
    notes = Table("client_notes_test", extra, Column("id", Integer, primary_key=True),
                  Column("client_id", Integer, ForeignKey("clients.id"), nullable=False),
                  Column("text", String(200)))
    await db_session.execute(text("CREATE TABLE client_notes_test (id INTEGER PRIMARY KEY, "
                                  "client_id INTEGER NOT NULL REFERENCES clients(id), "
                                  "text VARCHAR(200))"))
    await db_session.execute(notes.insert(), [
        {"id": 1, "client_id": w["lead"], "text": "Звонить после 15"},
        {"id": 2, "client_id": w["lead"], "text": "Бухгалтер Анна"}])
    result = await merge_clients(db_session, w["kept"], w["lead"], by=None, actor="admin",
                                 metadatas=(Base.metadata, extra))
    await db_session.commit()
    assert result.moved["client_notes_test"] == 2
    assert result.moved["calls"] == 2  # and the product's tables too
    rows = (await db_session.execute(select(notes.c.client_id))).scalars().all()
    assert rows == [w["kept"], w["kept"]]

