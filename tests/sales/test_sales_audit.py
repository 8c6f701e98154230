"""Nothing is deleted and every change of owner, status, stage or amount is audited.

A head of sales performs each change through the services and reads the audit log
back; contacts and deals are archived (and restored), never deleted, and neither the
web app nor the CLI offers any way to delete a client, contact, deal or call.
"""

from __future__ import annotations

import argparse
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import AuditLog
from crm_core.clients.models import Contact
from crm_core.db import create_engine, session_factory
from crm_core.sales.archive import archive_contact, archive_deal, set_deal_amount
from crm_core.sales.clients import reassign_clients
from crm_core.sales.deals import DealError, DealNotAllowedError, create_deal, move_deal
from crm_core.sales.models import Deal
from crm_core.sales.payments import record_payment
from telecrm.app import create_app
from telecrm.cli import build_parser
from telecrm.settings import Settings
from tests.sales.test_sales_api import Api, api  # noqa: F401
from tests.sales.test_sales_deals import _floor
from tests.support.db_fixtures import db_session_fixture, db_url_fixture  # noqa: F401


async def _log(session: AsyncSession, entity: str, entity_id: int) -> list[dict[str, Any]]:
    return list((await session.scalars(select(AuditLog.changes).where(
        AuditLog.entity == entity, AuditLog.entity_id == entity_id)
        .order_by(AuditLog.id))).all())


async def test_each_change_is_in_the_audit_log(db_session: AsyncSession) -> None:
    w = await _floor(db_session)
    boss, ivan, olga, client = w["boss"], w["ivan"], w["olga"], w["client"]
    # owner: the client and his open deal go to Ольга
    open_deal = await create_deal(db_session, client_id=client.id, pipeline_id=w["pipeline"].id,
                                  title="Открытая", by=ivan)
    await reassign_clients(db_session, [client.id], olga.id, by=boss, reason="перегружен")
    assert open_deal.owner_id == olga.id
    assert (await _log(db_session, "deal", open_deal.id))[-1] == {
        "owner_id": [ivan.id, olga.id], "reason": "перегружен"}
    # status: the first payment makes him *new*
    today = date(2026, 11, 20)
    await record_payment(db_session, client=client.id, amount="15000", paid_on=today,
                         user_id=boss.id, actor="boss", today=today)
    assert client.status == "new"
    # stage and amounts of a deal
    deal = await create_deal(db_session, client_id=client.id, pipeline_id=w["pipeline"].id,
                             title="Поставка", amount="100000", by=olga)
    await set_deal_amount(db_session, deal, "120 000", by=olga)
    with pytest.raises(DealNotAllowedError):
        await set_deal_amount(db_session, deal, "1", by=ivan)
    await move_deal(db_session, deal, w["stages"][2].id, by=olga)
    await move_deal(db_session, deal, w["stages"][4].id, by=olga, amount="118000")
    with pytest.raises(DealError, match="amount is final"):
        await set_deal_amount(db_session, deal, "1", by=boss)

    client_log = await _log(db_session, "client", client.id)
    assert {"owner_id": [ivan.id, olga.id], "reason": "перегружен"} in client_log
    status = [c for c in client_log if isinstance(c.get("status"), list)]
    assert [(c["status"], c.get("as_of")) for c in status] == [(["potential", "new"], "2026-11-20")]
    assert status[-1]["cause"].startswith("payment"), client_log
    deal_log = await _log(db_session, "deal", deal.id)
    stages = w["stages"]
    assert deal_log[0]["amount"] == "100000.00" and deal_log[0]["owner_id"] == olga.id
    assert deal_log[1] == {"amount": ["100000.00", "120000.00"]}
    assert deal_log[2] == {"stage_id": [stages[1].id, stages[2].id]}
    assert deal_log[3]["stage_id"] == [stages[2].id, stages[4].id]
    assert deal_log[3]["won_amount"] == [None, "118000.00"]
    assert deal_log[3]["status"] == ["open", "won"]
    payment_log = (await db_session.scalars(select(AuditLog.changes).where(
        AuditLog.entity == "payment"))).all()
    assert payment_log[0]["amount"] == "15000.00"


async def test_contacts_and_deals_are_archived_not_deleted(db_session: AsyncSession) -> None:
    w = await _floor(db_session)
    boss, ivan, client = w["boss"], w["ivan"], w["client"]
    contact = Contact(client_id=client.id, name="Пётр, закупщик")
    db_session.add(contact)
    await db_session.flush()
    deal = await create_deal(db_session, client_id=client.id, pipeline_id=w["pipeline"].id,
                             title="Ошибочная", by=ivan)
    with pytest.raises(DealNotAllowedError):  # a manager cannot make anything vanish
        await archive_contact(db_session, contact.id, by=ivan)
    with pytest.raises(DealNotAllowedError):
        await archive_deal(db_session, deal.id, by=ivan)
    await archive_contact(db_session, contact.id, by=boss, reason="уволился")
    await archive_deal(db_session, deal.id, by=boss, reason="открыта по ошибке")
    with pytest.raises(DealError, match="archived already"):
        await archive_deal(db_session, deal.id, by=boss)
    with pytest.raises(DealError, match="is archived"):
        await move_deal(db_session, deal, w["stages"][2].id, by=ivan)
    assert await db_session.scalar(select(func.count(Contact.id))) == 1
    assert await db_session.scalar(select(func.count(Deal.id))) == 1
    contact_log = await _log(db_session, "contact", contact.id)
    assert contact_log[0]["reason"] == "уволился" and contact_log[0]["archived_at"][1]
    await archive_deal(db_session, deal.id, by=boss, restore=True)
    assert deal.archived_at is None
    assert [c["archived_at"][1] is None for c in await _log(db_session, "deal", deal.id)
            if "archived_at" in c] == [False, True]


async def test_archive_through_the_api(api: tuple[Api, Any], db_url: str) -> None:  # noqa: F811
    crm, world = api
    mine = world.clients["101"]
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            contact = Contact(client_id=mine, name="Пётр")
            session.add(contact)
            await session.flush()
            contact_id = contact.id
    finally:
        await engine.dispose()
    status, err = await crm.call("petrov", "POST", f"/api/contacts/{contact_id}/archive", {})
    assert status == 403 and err == {"error": "Это меняет руководитель отдела или администратор.",
                                     "code": "sales.bosses_only"}
    status, _ = await crm.call("kuznetsov", "POST", f"/api/contacts/{contact_id}/archive", {})
    assert status == 404  # another team's client
    status, row = await crm.call("sokolova", "POST", f"/api/contacts/{contact_id}/archive",
                                 {"reason": "уволился"})
    assert status == 200 and row["archived_at"]
    status, card = await crm.call("petrov", "GET", f"/api/clients/{mine}")
    assert status == 200 and card["contacts"] == []
    status, row = await crm.call("sokolova", "POST", f"/api/contacts/{contact_id}/archive",
                                 {"restore": True})
    assert status == 200 and row["archived_at"] is None
    status, card = await crm.call("petrov", "GET", f"/api/clients/{mine}")
    assert [c["name"] for c in card.get("contacts", [])] == ["Пётр"], card
    status, _ = await crm.call("sokolova", "POST", "/api/deals/999999/archive", {})
    assert status == 404


def test_no_route_and_no_command_deletes(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, database_url="sqlite+aiosqlite:///"
                              + str(tmp_path / "x.db")), with_listener=False)
    protected = re.compile(r"client|contact|deal|call(?!-tracking|tracking)")
    deleting = [(r.method, r.resource.canonical) for r in app.router.routes()
                if r.resource is not None and r.method == "DELETE"
                and protected.search(r.resource.canonical)]
    assert deleting == []
    archiving = {r.resource.canonical for r in app.router.routes()
                 if r.resource is not None and r.method == "POST"}
    assert {"/api/clients/{id}/archive", "/api/contacts/{id}/archive",
            "/api/deals/{id}/archive"} <= archiving

    def commands(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
        found = []
        for action in parser._actions:  # argparse keeps subcommands only here
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found.append(f"{prefix}{name}")
                    found += commands(sub, f"{prefix}{name} ")
        return found

    names = commands(build_parser())
    assert "clients archive" in names or any(n.endswith("archive") for n in names)
    assert [n for n in names if re.search(r"delete|remove|purge|drop", n)
            and protected.search(n)] == []
