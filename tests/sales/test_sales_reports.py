"""The head of sales' reports against figures worked out by hand (November 2026, Moscow).

The floor: team «Продажи» (supervisor boss; managers ivan, olga) and «Второй» (kuz).
Clients (created, potential, payments, last contact):
- c1 Альфа (ivan): A 2 000 000; paid 2026-06-10 100 000 and 2026-11-15 50 000 (half of
  invoice INV-1 80 000); talked 2026-11-25 (120 s); new 06-10, regular 09-08.
- c2 Бета (ivan): C 100 000; never paid; last talk 2026-10-20 (60 s, inbound, October).
- c3 Гамма (ivan): created 2026-11-10, qualified (C 50 000) 2026-11-12: two days.
- c4 Дельта (olga): B 500 000; created 10-01; paid 2026-11-05 30 000 (new from then);
  talked 2026-11-10 (300 s).
- c5 Эпсилон (kuz): created 10-01; paid 2026-10-15 10 000 and 2026-11-01 5 000 (the
  period's first day); never talked.
Deals: ivan open 400 000, ivan won 250 000 on 11-20; olga lost 90 000 at 23:59:59 on
11-30 (Дорого) and lost 70 000 at 00:00 on 12-01 (outside the period).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import Call, CallLeg
from crm_core.clients.models import Client
from crm_core.people.models import User
from crm_core.people.users import add_user
from crm_core.sales.models import (
    ClientStatusChange,
    Deal,
    DealStageChange,
    Invoice,
    LoseReason,
    Payment,
    Pipeline,
    PipelineStage,
)
from crm_core.sales.payments import import_payments_csv
from crm_core.sales.reports import REPORTS, ReportNotAllowedError, previous_period_start
from crm_core.tasks.models import Task
from tests.support.db_fixtures import db_session_fixture, db_url_fixture  # noqa: F401

MSK = ZoneInfo("Europe/Moscow")
START = datetime(2026, 11, 1, tzinfo=MSK)
END = datetime(2026, 12, 1, tzinfo=MSK)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


async def _seed(s: AsyncSession) -> dict[str, User]:
    u = {
        "boss": await add_user(s, "boss", name="Мария", role="supervisor", extension="201",
                               team="Продажи"),
        "ivan": await add_user(s, "ivan", name="Иван", role="manager", extension="101",
                               team="Продажи"),
        "olga": await add_user(s, "olga", name="Ольга", role="manager", extension="102",
                               team="Продажи"),
        "kuz": await add_user(s, "kuz", name="Кузьма", role="manager", extension="103",
                              team="Второй"),
        "mkt": await add_user(s, "mkt", name="Маркетолог", role="marketer"),
    }

    def client(cid: int, name: str, owner: str, created: datetime, status: str,
               potential: int | None = None, group: str | None = None,
               qualified: datetime | None = None, status_since: datetime | None = None
               ) -> Client:
        return Client(id=cid, name=name, owner_id=u[owner].id, status=status,
                      created_at=created, owner_since=created,
                      status_since=status_since or created,
                      annual_potential=Decimal(potential) if potential else None,
                      abc_group=group, qualified_at=qualified or (created if group else None))

    s.add_all([
        client(1, "Альфа", "ivan", utc(2026, 5, 1), "regular", 2_000_000, "A",
               status_since=utc(2026, 9, 8, 21, 10)),
        client(2, "Бета", "ivan", utc(2026, 5, 1), "potential", 100_000, "C"),
        client(3, "Гамма", "ivan", utc(2026, 11, 10, 10), "potential", 50_000, "C",
               qualified=utc(2026, 11, 12, 10)),
        client(4, "Дельта", "olga", utc(2026, 10, 1), "new", 500_000, "B",
               status_since=utc(2026, 11, 5, 10)),
        client(5, "Эпсилон", "kuz", utc(2026, 10, 1), "new", status_since=utc(2026, 10, 15, 10)),
    ])
    await s.flush()
    s.add_all([
        ClientStatusChange(client_id=1, old_status="potential", new_status="new",
                           at=utc(2026, 6, 10, 10), as_of=datetime(2026, 6, 10).date(),
                           actor="payment"),
        ClientStatusChange(client_id=1, old_status="new", new_status="regular",
                           at=utc(2026, 9, 8, 21, 10), as_of=datetime(2026, 9, 9).date(),
                           actor="nightly"),
        ClientStatusChange(client_id=4, old_status="potential", new_status="new",
                           at=utc(2026, 11, 5, 10), as_of=datetime(2026, 11, 5).date(),
                           actor="payment"),
        ClientStatusChange(client_id=5, old_status="potential", new_status="new",
                           at=utc(2026, 10, 15, 10), as_of=datetime(2026, 10, 15).date(),
                           actor="payment"),
        Invoice(id=1, number="INV-1", client_id=1, amount=Decimal(80_000),
                paid_amount=Decimal(50_000), status="partly_paid",
                issued_on=datetime(2026, 11, 1).date()),
    ])
    await s.flush()
    for cid, amount, day, invoice in ((1, 100_000, (2026, 6, 10), None),
                                      (1, 50_000, (2026, 11, 15), 1),
                                      (4, 30_000, (2026, 11, 5), None),
                                      (5, 10_000, (2026, 10, 15), None),
                                      (5, 5_000, (2026, 11, 1), None)):
        s.add(Payment(client_id=cid, amount=Decimal(amount), paid_on=datetime(*day).date(),
                      invoice_id=invoice))
    for n, (cid, who, direction, start, talk) in enumerate((
            (1, "ivan", "outbound", utc(2026, 11, 25, 9), 120.0),
            (2, "ivan", "inbound", utc(2026, 10, 20, 9), 60.0),
            (4, "olga", "outbound", utc(2026, 11, 10, 9), 300.0))):
        call = Call(linkedid=f"r-{n}", direction=direction, status="answered", client_id=cid,
                    started_at=start, answered_at=start, ended_at=start, talk_seconds=talk,
                    managers=[u[who].extension])
        s.add(call)
        await s.flush()
        s.add(CallLeg(call_id=call.id, uniqueid=f"r-{n}-m", channel="PJSIP/x", role="manager",
                      extension=u[who].extension, user_id=u[who].id, started_at=start,
                      talk_seconds=talk))
    for cid, at in ((1, utc(2026, 11, 25, 9)), (2, utc(2026, 10, 20, 9)),
                    (4, utc(2026, 11, 10, 9))):
        (await s.get(Client, cid)).last_contact_at = at  # as the call rules keep it
    s.add(Task(kind="email", title="КП", status="done", client_id=1, assignee_id=u["ivan"].id,
               due_at=utc(2026, 11, 20), done_at=utc(2026, 11, 20, 12)))
    pipeline = Pipeline(name="B2B")
    s.add(pipeline)
    await s.flush()
    stages = [PipelineStage(pipeline_id=pipeline.id, position=i, name=name, code=name,
                            outcome=outcome)
              for i, (name, outcome) in enumerate([("a", "open"), ("b", "open"), ("won", "won"),
                                                   ("lost", "lost")], start=1)]
    s.add_all(stages)
    price = LoseReason(name="Дорого", active=True)
    s.add(price)
    await s.flush()
    deals = [
        Deal(title="open", client_id=1, pipeline_id=pipeline.id, stage_id=stages[1].id,
             owner_id=u["ivan"].id, status="open", amount=Decimal(400_000)),
        Deal(title="won", client_id=1, pipeline_id=pipeline.id, stage_id=stages[2].id,
             owner_id=u["ivan"].id, status="won", amount=Decimal(300_000),
             won_amount=Decimal(250_000), closed_at=utc(2026, 11, 20, 10)),
        Deal(title="lost", client_id=4, pipeline_id=pipeline.id, stage_id=stages[3].id,
             owner_id=u["olga"].id, status="lost", amount=Decimal(90_000),
             lose_reason_id=price.id, closed_at=utc(2026, 11, 30, 20, 59, 59)),
        Deal(title="lost late", client_id=4, pipeline_id=pipeline.id, stage_id=stages[3].id,
             owner_id=u["olga"].id, status="lost", amount=Decimal(70_000),
             lose_reason_id=price.id, closed_at=utc(2026, 11, 30, 21)),
    ]
    s.add_all(deals)
    await s.flush()
    s.add(DealStageChange(deal_id=deals[0].id, from_stage_id=stages[0].id,
                          to_stage_id=stages[1].id, at=utc(2026, 11, 20), by_id=u["ivan"].id))
    await s.flush()
    return u


def by_name(body: dict) -> dict[str, dict]:
    return {row["name"]: row for row in body["rows"]}


async def test_contact_frequency(db_session: AsyncSession) -> None:
    u = await _seed(db_session)
    body = await REPORTS["contact-frequency"](db_session, START, END, None)
    rows = by_name(body)
    assert body["as_of"] == "2026-11-30"
    ivan = rows["Иван"]
    assert (ivan["clients"], ivan["abandoned"], ivan["abandoned_pct"]) == (3, 1, 33.3)
    assert (ivan["calls"], ivan["talk_minutes"], ivan["calls_per_client"],
            ivan["minutes_per_client"]) == (1, 2.0, 0.33, 0.7)
    assert (ivan["potential"], ivan["open_offers"], ivan["unpaid_invoices"],
            ivan["payments"]) == ("2150000.00", "400000.00", "30000.00", "50000.00")
    olga = rows["Ольга"]  # last talk 11-10, B: every 14 days -> abandoned on 11-30
    assert (olga["clients"], olga["abandoned"], olga["abandoned_pct"], olga["talk_minutes"],
            olga["payments"]) == (1, 1, 100.0, 5.0, "30000.00")
    kuz = rows["Кузьма"]  # never talked, with him since 10-01: 60 days > 30
    assert (kuz["abandoned"], kuz["calls"], kuz["payments"]) == (1, 0, "5000.00")
    assert body["totals"]["abandoned"] == 3 and body["totals"]["payments"] == "85000.00"
    # a manager sees his own row only; the supervisor his team; a marketer nothing
    mine = await REPORTS["contact-frequency"](db_session, START, END, u["ivan"])
    assert [r["name"] for r in mine["rows"]] == ["Иван"]
    team = await REPORTS["contact-frequency"](db_session, START, END, u["boss"])
    assert {r["name"] for r in team["rows"]} == {"Иван", "Ольга"}
    with pytest.raises(ReportNotAllowedError):
        await REPORTS["contact-frequency"](db_session, START, END, u["mkt"])



async def test_contact_frequency_of_a_past_period_uses_the_calls_before_its_end(
        db_session: AsyncSession) -> None:
    await _seed(db_session)
    october = await REPORTS["contact-frequency"](db_session, datetime(2026, 10, 1, tzinfo=MSK),
                                                 START, None)
    ivan = by_name(october)["Иван"]
    # as of 10-31: c1's last talk (11-25) had not happened: abandoned since 05-01; c2 talked
    # on 10-20 (11 days, C: 30) is not; c3 did not exist yet
    assert october["as_of"] == "2026-10-31"
    assert (ivan["clients"], ivan["abandoned"], ivan["calls"]) == (2, 1, 1)


async def test_summary_against_the_previous_period(db_session: AsyncSession) -> None:
    await _seed(db_session)
    body = await REPORTS["summary"](db_session, START, END, None)
    rows = {r["status"]: r for r in body["rows"]}
    # November is compared with the whole of October
    assert body["previous"] == {"from": "2026-10-01T00:00:00+03:00",
                                "to": "2026-11-01T00:00:00+03:00"}
    p, n, r, lost = rows["potential"], rows["new"], rows["regular"], rows["lost"]
    # end of November: c2, c3 potential; c4, c5 new; c1 regular
    assert (p["clients"], p["clients_prev"], p["clients_trend"]) == (2, 2, "same")
    assert (p["potential"], p["potential_prev"], p["potential_trend"]) == (
        "150000.00", "600000.00", "down")
    assert (n["clients"], n["clients_prev"], n["clients_trend"]) == (2, 1, "up")
    assert (n["potential"], n["potential_prev"]) == ("500000.00", "0.00")
    # November's payments of new clients: c4 30 000 + c5 5 000 (paid on the 1st); October's:
    # c5 10 000
    assert (n["paid"], n["paid_prev"], n["paid_trend"]) == ("35000.00", "10000.00", "up")
    assert (r["clients"], r["paid"], r["paid_prev"], r["paid_trend"]) == (
        1, "50000.00", "0.00", "up")
    assert (lost["clients"], lost["clients_trend"]) == (0, "same")
    assert body["totals"]["clients"] == 5 and body["totals"]["clients_prev"] == 4


def test_previous_period_is_the_previous_month_or_the_same_length() -> None:
    def at(y: int, m: int, d: int) -> datetime:
        return datetime(y, m, d, tzinfo=MSK)

    assert previous_period_start(at(2026, 11, 1), at(2026, 12, 1)) == at(2026, 10, 1)
    assert previous_period_start(at(2026, 3, 1), at(2026, 4, 1)) == at(2026, 2, 1)
    assert previous_period_start(at(2026, 1, 1), at(2026, 4, 1)) == at(2025, 10, 1)  # a quarter
    # not whole months: the same number of days just before
    assert previous_period_start(at(2026, 11, 10), at(2026, 11, 17)) == at(2026, 11, 3)
    assert previous_period_start(at(2026, 3, 1), at(2026, 3, 15)) == at(2026, 2, 15)


async def test_overdue_clients_by_month(db_session: AsyncSession) -> None:
    u = await _seed(db_session)
    body = await REPORTS["overdue-clients"](db_session, START, END, u["boss"])
    rows = {(r["name"], r["group"]): r for r in body["rows"]}
    ivan = rows[("Иван", "potential")]  # c2 213 days (6+ months, over 90); c3 20 days
    assert (ivan["clients"], ivan["m0"], ivan["m6"], ivan["over_max"], ivan["over_max_ids"]) == (
        2, 1, 1, 1, "2")
    olga = rows[("Ольга", "new")]  # new since 11-05: 25 days
    assert (olga["clients"], olga["m0"], olga["over_max"], olga["max_days"]) == (1, 1, 0, 180)
    assert ("Кузьма", "new") not in rows  # another team


async def test_qualification_activity_and_deals(db_session: AsyncSession) -> None:
    await _seed(db_session)
    q = by_name(await REPORTS["qualification"](db_session, START, END, None))
    assert (q["Иван"]["new_clients"], q["Иван"]["qualified"], q["Иван"]["qualified_pct"],
            q["Иван"]["c"], q["Иван"]["avg_days_to_qualify"]) == (1, 1, 100.0, 1, 2.0)
    assert q["Ольга"]["new_clients"] == 0 and q["Ольга"]["qualified_pct"] is None

    a = await REPORTS["activity"](db_session, START, END, None)
    assert [(r["name"], r["rank"]) for r in a["rows"]] == [("Ольга", 1), ("Иван", 2),
                                                           ("Кузьма", 3)]
    ivan = by_name(a)["Иван"]  # the October inbound call is outside the period
    assert (ivan["inbound_calls"], ivan["outbound_calls"], ivan["talk_minutes"],
            ivan["tasks_done"], ivan["emails"], ivan["deals_moved"]) == (0, 1, 2.0, 1, 1, 1)

    d = await REPORTS["deals"](db_session, START, END, None)
    rows = by_name(d)
    assert (rows["Иван"]["won"], rows["Иван"]["won_amount"], rows["Иван"]["in_progress"],
            rows["Иван"]["in_progress_amount"]) == (1, "250000.00", 1, "400000.00")
    # the deal lost at 23:59:59 on 11-30 counts; the one lost at 00:00 on 12-01 does not
    assert (rows["Ольга"]["lost"], rows["Ольга"]["lost_amount"],
            rows["Ольга"]["win_rate_pct"]) == (1, "90000.00", 0.0)
    assert d["lose_reasons"] == [{"reason": "Дорого", "deals": 1, "amount": "90000.00"}]
    december = await REPORTS["deals"](db_session, END, datetime(2027, 1, 1, tzinfo=MSK), None)
    assert by_name(december)["Ольга"]["lost"] == 1


async def test_a_back_dated_import_corrects_the_month_it_is_dated_in(
        db_session: AsyncSession, tmp_path: Path) -> None:
    """A payment imported today (23 Nov) with an October date makes October right: Бета
    (c2, never paid, potential 100 000) paid 20 000 on 10-10, so on 10-31 he was *new*
    (21 days since his first payment, fewer than 90), not *potential* as the history
    recorded in October said."""
    await _seed(db_session)
    october_start = datetime(2026, 10, 1, tzinfo=MSK)
    before = {r["status"]: r for r in (await REPORTS["summary"](
        db_session, october_start, START, None))["rows"]}
    assert (before["potential"]["clients"], before["new"]["clients"]) == (2, 1)
    statement = tmp_path / "bank.csv"
    statement.write_text("date,client,amount,ref\n2026-10-10,2,20000,BANK-77\n",
                         encoding="utf-8")
    result = await import_payments_csv(db_session, statement, today=date(2026, 11, 23))
    assert result.booked == 1
    assert (await db_session.get(Client, 2)).status == "new"  # judged today
    october = await REPORTS["summary"](db_session, october_start, START, None)
    rows = {r["status"]: r for r in october["rows"]}
    # potential on 10-31: only Дельта (500 000); new: Эпсилон (no potential) and Бета
    assert (rows["potential"]["clients"], rows["potential"]["potential"]) == (1, "500000.00")
    assert (rows["new"]["clients"], rows["new"]["potential"]) == (2, "100000.00")
    # October's payments of new clients: Эпсилон 10 000 + Бета 20 000
    assert rows["new"]["paid"] == "30000.00" and rows["potential"]["paid"] == "0.00"
    assert october["totals"]["clients"] == 4
    # November's report compares with the corrected October
    november = {r["status"]: r for r in (await REPORTS["summary"](
        db_session, START, END, None))["rows"]}
    assert (november["new"]["clients_prev"], november["new"]["paid_prev"]) == (2, "30000.00")
    assert (november["potential"]["clients"], november["new"]["clients"]) == (1, 3)
    # September knew nothing of it: Бета was potential then, and stays so
    september = {r["status"]: r for r in (await REPORTS["summary"](
        db_session, datetime(2026, 9, 1, tzinfo=MSK), october_start, None))["rows"]}
    # (Дельта and Эпсилон came on 10-01); Альфа regular since 09-08
    assert (september["potential"]["clients"], september["new"]["clients"],
            september["regular"]["clients"]) == (1, 0, 1)


async def test_qualification_period_boundaries_and_speed(db_session: AsyncSession) -> None:
    """Olga's new clients in November: one at 00:00 on 11-01 (counts), qualified B half a
    day later; one never qualified; one at 00:00 on 12-01 (December's). So 1 of 2 = 50 %,
    in 0.5 days; with Ivan's Гамма (2 days) the company has 2 of 3 = 66.7 %."""
    u = await _seed(db_session)
    first = START.astimezone(UTC)
    db_session.add_all([
        Client(id=6, name="Жёлудь", owner_id=u["olga"].id, status="potential", created_at=first,
               annual_potential=Decimal(400_000), abc_group="B",
               qualified_at=first + timedelta(hours=12)),
        Client(id=7, name="Зебра", owner_id=u["olga"].id, status="potential",
               created_at=utc(2026, 11, 29, 12)),
        Client(id=8, name="Ирис", owner_id=u["olga"].id, status="potential",
               created_at=END.astimezone(UTC), annual_potential=Decimal(10), abc_group="C",
               qualified_at=END.astimezone(UTC)),
    ])
    await db_session.flush()
    body = await REPORTS["qualification"](db_session, START, END, None)
    olga = by_name(body)["Ольга"]
    assert (olga["new_clients"], olga["qualified"], olga["qualified_pct"], olga["b"],
            olga["c"], olga["avg_days_to_qualify"]) == (2, 1, 50.0, 1, 0, 0.5)
    assert body["totals"] == {"name": "Итого", "new_clients": 3, "qualified": 2,
                              "qualified_pct": 66.7}
    # a supervisor sees his team; a manager only his own row
    mine = await REPORTS["qualification"](db_session, START, END, u["olga"])
    assert [r["name"] for r in mine["rows"]] == ["Ольга"]
