"""Client status by rule, ABC, abandonment, payments, CSV import, owners and archive.

Expectations are computed by hand from the default rules (new for 90 days after the
first payment, lost after 180 days without payment or contact, A from 1 000 000,
B from 300 000) unless a test sets its own. Database tests run on SQLite and on a
real PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import AuditLog
from crm_core.calls.services import record_call
from crm_core.calls.snapshot import CallData, LegData
from crm_core.clients.models import Client
from crm_core.clients.services import create_client
from crm_core.people.users import add_user
from crm_core.sales.client_status import (
    ClientFacts,
    abc_group,
    compute_status,
    is_abandoned,
    recompute_all,
    recompute_client,
    status_history,
)
from crm_core.sales.clients import (
    SalesClientError,
    archive_client,
    owner_history,
    reassign_clients,
    set_potential,
)
from crm_core.sales.models import ClientOwnerChange, ClientStatusChange, Invoice, Payment
from crm_core.sales.payments import (
    PaymentError,
    import_payments_csv,
    record_invoice,
    record_payment,
)
from crm_core.sales.settings import SalesRuleError, StatusRules, rules_for_team, save_rules
from telecrm.wiring import call_hooks
from tests.support.db_fixtures import (  # noqa: F401
    db_session_fixture,
    db_url_fixture,
    empty_db_url_fixture,
)

pytestmark = pytest.mark.calendar  # dates relative to today: make test-calendar

HOOKS = call_hooks()  # what the product does with each written call

RULES = StatusRules()
TODAY = date(2026, 11, 23)


def days_ago(n: int) -> date:
    return TODAY - timedelta(days=n)


# -- the pure rules -------------------------------------------------------------------------


def test_never_paid_is_potential_whatever_the_contacts() -> None:
    assert compute_status(ClientFacts(), RULES, TODAY) == "potential"
    assert compute_status(ClientFacts(last_contact_on=days_ago(400)), RULES, TODAY) == "potential"


def test_new_for_exactly_new_period_days_after_first_payment() -> None:
    # first payment 89 days ago: still new; 90 days ago: regular (day 0 is the payment day)
    assert compute_status(ClientFacts(days_ago(89), days_ago(89)), RULES, TODAY) == "new"
    assert compute_status(ClientFacts(days_ago(90), days_ago(90)), RULES, TODAY) == "regular"
    assert compute_status(ClientFacts(TODAY, TODAY), RULES, TODAY) == "new"


def test_lost_after_lost_after_days_without_payment_or_contact() -> None:
    paid = ClientFacts(days_ago(400), days_ago(179))
    assert compute_status(paid, RULES, TODAY) == "regular"
    paid = ClientFacts(days_ago(400), days_ago(180))
    assert compute_status(paid, RULES, TODAY) == "lost"
    # a contact (call) 10 days ago keeps him regular although he paid 300 days ago
    called = ClientFacts(days_ago(400), days_ago(300), last_contact_on=days_ago(10))
    assert compute_status(called, RULES, TODAY) == "regular"
    # a second payment brings a lost client back: regular, not new (first payment is old)
    back = ClientFacts(days_ago(400), TODAY)
    assert compute_status(back, RULES, TODAY) == "regular"


def test_rules_are_settings() -> None:
    strict = StatusRules(new_period_days=30, lost_after_days=60)
    facts = ClientFacts(days_ago(45), days_ago(45))
    assert compute_status(facts, RULES, TODAY) == "new"
    assert compute_status(facts, strict, TODAY) == "regular"
    assert compute_status(ClientFacts(days_ago(100), days_ago(60)), strict, TODAY) == "lost"


def test_abc_thresholds_are_inclusive() -> None:
    assert abc_group(None, RULES) is None
    assert abc_group(Decimal("1000000"), RULES) == "A"
    assert abc_group(Decimal("999999.99"), RULES) == "B"
    assert abc_group(Decimal("300000"), RULES) == "B"
    assert abc_group(Decimal("299999.99"), RULES) == "C"


def test_abandoned_after_more_than_the_planned_days() -> None:
    assert RULES.contact_days("A") == 7 and RULES.contact_days(None) == 30
    assert not is_abandoned(days_ago(7), days_ago(100), 7, TODAY)
    assert is_abandoned(days_ago(8), days_ago(100), 7, TODAY)
    # never contacted: counted from when he came to the manager
    assert not is_abandoned(None, days_ago(30), 30, TODAY)
    assert is_abandoned(None, days_ago(31), 30, TODAY)


# -- with a database ------------------------------------------------------------------------


async def _floor(session: AsyncSession) -> dict[str, object]:
    users = {
        "boss": await add_user(session, "boss", name="Мария Соколова", role="supervisor",
                               extension="201", team="Продажи"),
        "ivan": await add_user(session, "ivan", name="Иван Петров", role="manager",
                               extension="101", team="Продажи"),
        "olga": await add_user(session, "olga", name="Ольга Смирнова", role="manager",
                               extension="102", team="Продажи"),
        "other": await add_user(session, "other", name="Алексей Кузнецов", role="manager",
                                extension="103", team="Второй"),
        "otherboss": await add_user(session, "otherboss", name="Пётр Второй",
                                    role="supervisor", extension="203", team="Второй"),
    }
    client = await create_client(session, "ООО Ромашка", phones=["+79161234567"],
                                 owner_id=users["ivan"].id, actor="test")
    await session.flush()
    return {**users, "client": client}


async def test_payments_drive_status_with_history_and_audit(db_session: AsyncSession) -> None:
    world = await _floor(db_session)
    client: Client = world["client"]  # type: ignore[assignment]
    assert client.status == "potential"
    invoice = await record_invoice(db_session, client=client.id, number="СЧ-1",
                                   amount="100 000,00", issued_on="2026-05-01")
    await record_payment(db_session, client="ООО Ромашка", amount="40000", paid_on="2026-05-10",
                         invoice="СЧ-1", today=date(2026, 5, 10))
    assert client.status == "new" and invoice.status == "partly_paid"
    assert invoice.paid_amount == Decimal("40000.00")
    await record_payment(db_session, client=client.id, amount="60000", paid_on="10.05.2026",
                         invoice="СЧ-1", today=date(2026, 5, 10))
    assert invoice.status == "paid"
    # 90 days after 2026-05-10 is 2026-08-08: regular; 180 days is 2026-11-06: lost
    assert await recompute_client(db_session, client, today=date(2026, 8, 7),
                                  actor="nightly") is None
    assert (await recompute_client(db_session, client, today=date(2026, 8, 8),
                                   actor="nightly")).new_status == "regular"
    await recompute_client(db_session, client, today=date(2026, 11, 6), actor="nightly")
    assert client.status == "lost"
    history = await status_history(db_session, client.id)
    assert [(h["from"], h["to"], h["actor"]) for h in history] == [
        ("potential", "new", "payment"), ("new", "regular", "nightly"),
        ("regular", "lost", "nightly")]
    assert history[0]["as_of"] == "2026-05-10"
    audits = (await db_session.scalars(select(AuditLog.changes).where(
        AuditLog.entity == "client", AuditLog.entity_id == client.id,
        AuditLog.action == "update"))).all()
    assert [a["status"] for a in audits if "status" in a] == [
        ["potential", "new"], ["new", "regular"], ["regular", "lost"]]


async def test_a_call_with_a_lost_client_makes_him_regular(db_session: AsyncSession) -> None:
    world = await _floor(db_session)
    client: Client = world["client"]  # type: ignore[assignment]
    today = datetime.now(UTC).date()
    await record_payment(db_session, client=client.id, amount=1000,
                         paid_on=today - timedelta(days=300), today=today)
    await recompute_client(db_session, client, today=today, actor="nightly")
    assert client.status == "lost"
    start = datetime.now(UTC) - timedelta(minutes=5)
    legs = (LegData("c-1", "PJSIP/trunk-1", "client", None, start, start, start
                    + timedelta(seconds=60), 58.0),
            LegData("c-1m", "PJSIP/101-1", "manager", "101", start, start, start
                    + timedelta(seconds=60), 58.0))
    await record_call(db_session, CallData(
        linkedid="c-1", direction="outbound", status="answered", client_number="+79161234567",
        did=None, started_at=start, answered_at=start, ended_at=start + timedelta(seconds=60),
        ring_seconds=2, talk_seconds=58, transferred=False, managers=("101",), recordings=(),
        legs=legs, rang=("101",)), hooks=HOOKS)
    assert client.status == "regular"
    change = await db_session.scalar(select(ClientStatusChange).where(
        ClientStatusChange.client_id == client.id, ClientStatusChange.new_status == "regular"))
    assert change is not None and change.actor == "call" and change.cause == "call c-1"


async def test_nightly_recompute_is_set_based_and_idempotent(db_session: AsyncSession) -> None:
    world = await _floor(db_session)
    ivan = world["ivan"]
    fresh = await create_client(db_session, "Свежий", owner_id=ivan.id, actor="test")  # type: ignore[attr-defined]
    old = await create_client(db_session, "Старый", owner_id=ivan.id, actor="test")  # type: ignore[attr-defined]
    for c, paid in ((fresh, days_ago(10)), (old, days_ago(200))):
        db_session.add(Payment(client_id=c.id, amount=Decimal(5), paid_on=paid))
    old.annual_potential = Decimal(2_000_000)
    await db_session.flush()
    counts = await recompute_all(db_session, today=TODAY)
    assert counts == {"clients": 3, "changed": 2, "abc_changed": 1}
    await db_session.refresh(fresh)
    await db_session.refresh(old)
    assert (fresh.status, old.status, old.abc_group) == ("new", "lost", "A")
    assert await recompute_all(db_session, today=TODAY) == {
        "clients": 3, "changed": 0, "abc_changed": 0}
    # a team's own rules apply to its managers' clients
    await save_rules(db_session, ivan.team_id, {"lost_after_days": 365}, by=None)  # type: ignore[attr-defined]
    counts = await recompute_all(db_session, today=TODAY)
    await db_session.refresh(old)
    assert counts["changed"] == 1 and old.status == "regular"


async def test_settings_edit_rights_and_validation(db_session: AsyncSession) -> None:
    world = await _floor(db_session)
    boss, ivan, other = world["boss"], world["ivan"], world["otherboss"]
    team = boss.team_id  # type: ignore[attr-defined]
    with pytest.raises(SalesRuleError, match="Only an admin"):
        await save_rules(db_session, team, {"new_period_days": 30}, by=ivan)  # type: ignore[arg-type]
    with pytest.raises(SalesRuleError, match="Only an admin"):
        await save_rules(db_session, team, {"new_period_days": 30}, by=other)  # type: ignore[arg-type]
    with pytest.raises(SalesRuleError, match="Only an admin"):
        await save_rules(db_session, None, {"new_period_days": 30}, by=boss)  # type: ignore[arg-type]
    with pytest.raises(SalesRuleError, match="between 1 and"):
        await save_rules(db_session, team, {"new_period_days": 0}, by=boss)  # type: ignore[arg-type]
    with pytest.raises(SalesRuleError, match="A threshold"):
        await save_rules(db_session, team, {"abc_a_min": "100"}, by=boss)  # type: ignore[arg-type]
    with pytest.raises(SalesRuleError, match="Unknown setting"):
        await save_rules(db_session, team, {"colour": 1}, by=boss)  # type: ignore[arg-type]
    await save_rules(db_session, None, {"contact_days_a": 5}, by=None)
    saved = await save_rules(db_session, team, {"new_period_days": "30"}, by=boss)  # type: ignore[arg-type]
    assert saved.new_period_days == 30 and saved.contact_days_a == 5  # starts from company's
    assert (await rules_for_team(db_session, team)).new_period_days == 30
    assert (await rules_for_team(db_session, other.team_id)).new_period_days == 90  # type: ignore[attr-defined]
    audit = await db_session.scalar(select(AuditLog).where(AuditLog.entity == "sales_settings")
                                    .order_by(AuditLog.id.desc()))
    assert audit.changes == {"team_id": team, "new_period_days": [90, 30]}
    assert audit.user_id == boss.id  # type: ignore[attr-defined]


async def test_payments_reject_bad_input_with_one_sentence(db_session: AsyncSession) -> None:
    world = await _floor(db_session)
    client: Client = world["client"]  # type: ignore[assignment]
    await record_invoice(db_session, client=client.id, number="A-1", amount=10, issued_on=TODAY)
    other = await create_client(db_session, "Другой", actor="test")
    cases = [
        ({"client": client.id, "amount": "-5", "paid_on": TODAY}, "greater than zero"),
        ({"client": client.id, "amount": "abc", "paid_on": TODAY}, "not an amount"),
        ({"client": client.id, "amount": 5, "paid_on": "2026-13-01"}, "not a date"),
        ({"client": 999999, "amount": 5, "paid_on": TODAY}, "no client with id"),
        ({"client": "Нет такого", "amount": 5, "paid_on": TODAY}, "no client named"),
        ({"client": other.id, "amount": 5, "paid_on": TODAY, "invoice": "A-1"},
         "another client"),
        ({"client": client.id, "amount": 5, "paid_on": TODAY, "invoice": "Z-9"}, "no invoice"),
    ]
    for kwargs, message in cases:
        with pytest.raises(PaymentError, match=message):
            await record_payment(db_session, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(PaymentError, match="exists already"):
        await record_invoice(db_session, client=client.id, number="A-1", amount=1,
                             issued_on=TODAY)
    await record_payment(db_session, client=client.id, amount=5, paid_on=TODAY, ref="bank-1")
    with pytest.raises(PaymentError, match="booked already"):
        await record_payment(db_session, client=client.id, amount=5, paid_on=TODAY, ref="bank-1")


async def test_csv_import_is_all_or_nothing(db_session: AsyncSession, tmp_path: Path) -> None:
    world = await _floor(db_session)
    client: Client = world["client"]  # type: ignore[assignment]
    cid = client.id
    await record_invoice(db_session, client=cid, number="СЧ-7", amount=300,
                         issued_on=TODAY)
    await db_session.commit()
    bad = tmp_path / "bad.csv"
    bad.write_text("date;client;amount;invoice;ref\n"
                   f"2026-11-01;{cid};100;СЧ-7;p1\n"
                   "2026-11-02;ООО Ромашка;12 000,50;;p2\n"
                   "2026-11-03;ООО Ромашка;двести;;p3\n", encoding="cp1251")
    with pytest.raises(PaymentError, match=r"^line 4: amount 'двести' is not an amount"):
        await import_payments_csv(db_session, bad)
    await db_session.rollback()
    assert await db_session.scalar(select(func.count()).select_from(Payment)) == 0
    short = tmp_path / "short.csv"
    short.write_text("date,client,amount\n2026-11-01,1\n", encoding="utf-8")
    with pytest.raises(PaymentError, match="line 2: expected 3 fields, found 2"):
        await import_payments_csv(db_session, short)
    header = tmp_path / "header.csv"
    header.write_text("day,client,sum\n", encoding="utf-8")
    with pytest.raises(PaymentError, match="line 1: the header lacks date, amount"):
        await import_payments_csv(db_session, header)

    good = tmp_path / "good.csv"
    good.write_text("\ufeffdate,client,amount,invoice,ref\n"
                    f"2026-11-01,{cid},100,СЧ-7,p1\n"
                    "02.11.2026,ООО Ромашка,\"12 000,50\",,p2\n", encoding="utf-8")
    report = await import_payments_csv(db_session, good, today=TODAY)
    assert (report.booked, report.skipped, report.total) == (2, 0, Decimal("12100.50"))
    invoice = await db_session.scalar(select(Invoice).where(Invoice.number == "СЧ-7"))
    assert invoice.status == "partly_paid" and invoice.paid_amount == Decimal("100.00")
    client = await db_session.get(Client, cid)
    assert client.status == "new"
    again = await import_payments_csv(db_session, good, today=TODAY)
    assert (again.booked, again.skipped) == (0, 2)


async def test_reassign_and_archive_rights_and_history(db_session: AsyncSession) -> None:
    world = await _floor(db_session)
    boss, ivan, olga, other, otherboss = (world[k] for k in
                                          ("boss", "ivan", "olga", "other", "otherboss"))
    client: Client = world["client"]  # type: ignore[assignment]
    second = await create_client(db_session, "ИП Сидоров", owner_id=ivan.id, actor="test")  # type: ignore[attr-defined]
    with pytest.raises(SalesClientError, match="Only a supervisor"):
        await reassign_clients(db_session, [client.id], olga.id, by=ivan)  # type: ignore[arg-type,attr-defined]
    with pytest.raises(SalesClientError, match="not in your team"):
        await reassign_clients(db_session, [client.id], other.id, by=boss)  # type: ignore[arg-type,attr-defined]
    with pytest.raises(SalesClientError, match="not in your team"):
        await reassign_clients(db_session, [client.id], other.id, by=otherboss)  # type: ignore[arg-type,attr-defined]
    with pytest.raises(SalesClientError, match="no client with id 424242"):
        await reassign_clients(db_session, [client.id, 424242], olga.id, by=boss)  # type: ignore[arg-type,attr-defined]
    assert client.owner_id == ivan.id  # type: ignore[attr-defined]
    moved = await reassign_clients(db_session, [client.id, second.id], olga.id, by=boss,  # type: ignore[arg-type,attr-defined]
                                   reason="залежались")
    assert len(moved) == 2 and {client.owner_id, second.owner_id} == {olga.id}  # type: ignore[attr-defined]
    history = await owner_history(db_session, client.id)
    assert history[-1]["from"] == ivan.id and history[-1]["to"] == olga.id  # type: ignore[attr-defined]
    assert history[-1]["by"] == boss.id and history[-1]["reason"] == "залежались"  # type: ignore[attr-defined]
    assert await db_session.scalar(select(func.count()).select_from(ClientOwnerChange)) == 2
    # the admin (None here: the operator) may give a client to another team
    await reassign_clients(db_session, [second.id], other.id, by=None)  # type: ignore[attr-defined]
    with pytest.raises(SalesClientError, match="not in your team"):
        await archive_client(db_session, second.id, by=boss)  # type: ignore[arg-type]
    await archive_client(db_session, client.id, by=boss, reason="закрылись")  # type: ignore[arg-type]
    assert client.archived_at is not None
    with pytest.raises(SalesClientError, match="archived"):
        await reassign_clients(db_session, [client.id], ivan.id, by=boss)  # type: ignore[arg-type,attr-defined]
    await archive_client(db_session, client.id, by=boss, restore=True)  # type: ignore[arg-type]
    assert client.archived_at is None


async def test_potential_sets_abc_and_qualification(db_session: AsyncSession) -> None:
    world = await _floor(db_session)
    client: Client = world["client"]  # type: ignore[assignment]
    with pytest.raises(SalesClientError, match="Only a supervisor"):
        await set_potential(db_session, client.id, 500000, by=world["ivan"])  # type: ignore[arg-type]
    await set_potential(db_session, client.id, "500 000", items=12, by=world["boss"])  # type: ignore[arg-type]
    assert (client.abc_group, client.annual_potential_items) == ("B", 12)
    first = client.qualified_at
    assert first is not None
    await set_potential(db_session, client.id, 1_500_000, by=world["boss"])  # type: ignore[arg-type]
    assert client.abc_group == "A" and client.qualified_at == first


async def test_the_sales_migration_goes_down_and_up_again(empty_db_url: str) -> None:
    from alembic import command

    from crm_core.db import alembic_config, create_engine, upgrade

    await upgrade(empty_db_url)
    config = alembic_config(empty_db_url)
    engine = create_engine(empty_db_url)

    def run(connection: object, step: object, revision: str) -> None:
        config.attributes["connection"] = connection
        step(config, revision)  # type: ignore[operator]

    try:
        for step, revision in ((command.downgrade, "0010"), (command.upgrade, "head")):
            async with engine.connect() as connection:
                await connection.run_sync(run, step, revision)
                await connection.commit()
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
    finally:
        await engine.dispose()
    assert {"payments", "deals", "client_status_changes", "sales_plans"} <= set(tables)


async def test_the_nightly_job_judges_every_client(db_url: str) -> None:
    from crm_core.db import create_engine, session_factory
    from telecrm.sales.nightly import run_once

    engine = create_engine(db_url)
    try:
        writer = session_factory(engine, writer=True)
        async with writer() as session, session.begin():
            client = await create_client(session, "Давний", actor="test")
            session.add(Payment(client_id=client.id, amount=Decimal(1),
                                paid_on=datetime.now(UTC).date() - timedelta(days=400)))
        assert (await run_once(writer, "Europe/Moscow"))["changed"] == 1
        assert (await run_once(writer, "Europe/Moscow"))["changed"] == 0  # idempotent
        async with writer() as session:
            judged = await session.get(Client, client.id)
            history = await status_history(session, client.id)
        assert judged.status == "lost" and history[-1]["actor"] == "nightly"
    finally:
        await engine.dispose()
