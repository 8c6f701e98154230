"""Money in the call-tracking report, and the pool size advice, against hand-computed figures.

Calls go through the same writer the AMI pipeline uses (so attribution is real);
deals and payments are the sales feature's rows; costs are entered the way the
page enters them. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import AuditLog
from crm_core.calls.services import record_call
from crm_core.calls.snapshot import CallData, LegData
from crm_core.calltracking.models import CtLease, CtVisit
from crm_core.calltracking.report import Period, call_log, channel_report, pool_health
from crm_core.calltracking.services import (
    CallTrackingError,
    SiteOptions,
    add_pool_numbers,
    add_static,
    archive_number,
    list_static,
    save_site,
    set_cost,
)
from crm_core.sales.models import Deal, Payment, Pipeline, PipelineStage
from telecrm.wiring import call_hooks
from tests.support.db_fixtures import db_session_fixture  # noqa: F401

pytestmark = pytest.mark.calendar  # dates relative to today: make test-calendar

HOOKS = call_hooks()  # what the product does with each written call

NOVEMBER = Period(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
DIRECT, RADIO = "+74951110021", "+74951110022"


async def _call(session: AsyncSession, linkedid: str, did: str, caller: str, at: datetime,
                talk: float = 90.0) -> int:
    """An answered inbound call; returns the client the call created or found."""
    data = CallData(
        linkedid=linkedid, direction="inbound", status="answered", client_number=caller,
        did=did, started_at=at, answered_at=at, ended_at=at + timedelta(seconds=talk),
        ring_seconds=3.0, talk_seconds=talk, transferred=False, managers=(), recordings=(),
        legs=(LegData(f"{linkedid}-c", "PJSIP/carrier-1", "client", None, at, at,
                      at + timedelta(seconds=talk), talk),))
    call = await record_call(session, data, hooks=HOOKS)
    assert call.client_id is not None
    return call.client_id


async def test_revenue_paid_and_roi_from_real_deals_and_payments(
        db_session: AsyncSession) -> None:
    session = db_session
    await add_static(session, DIRECT, "Директ")
    await add_static(session, RADIO, "Радио", cost_per_month=10000)
    # A marketer enters the month's cost, then corrects a typo: the first amount is audited.
    await set_cost(session, "2026-11", "Директ", "50 000", actor="marketer")
    row = await set_cost(session, "2026-11", "Директ", "60000,00", actor="marketer")
    x = await _call(session, "m-1", DIRECT, "+79161110001", datetime(2026, 11, 5, 10, tzinfo=UTC))
    y = await _call(session, "m-2", RADIO, "+79161110002", datetime(2026, 11, 6, 10, tzinfo=UTC))
    # X calls again on the radio number: his money stays with his first channel (Директ).
    await _call(session, "m-3", RADIO, "+79161110001", datetime(2026, 11, 7, 10, tzinfo=UTC))
    pipeline = Pipeline(name="Продажи", stages=[
        PipelineStage(position=1, name="Выиграна", code="won", outcome="won")])
    session.add(pipeline)
    await session.flush()
    stage = pipeline.stages[0].id

    def deal(client: int, status: str, closed: datetime | None, *, amount: int | None,
             won: int | None = None, archived: bool = False) -> Deal:
        return Deal(title="Заказ", client_id=client, pipeline_id=pipeline.id, stage_id=stage,
                    status=status, amount=amount, won_amount=won, closed_at=closed,
                    archived_at=closed if archived else None)

    session.add_all([
        deal(x, "won", datetime(2026, 11, 20, tzinfo=UTC), amount=90000, won=100000),  # counts
        deal(x, "won", datetime(2026, 12, 2, tzinfo=UTC), amount=20000),  # after the period
        deal(x, "lost", datetime(2026, 11, 21, tzinfo=UTC), amount=70000),  # lost
        deal(x, "open", None, amount=15000),  # not closed
        deal(y, "won", datetime(2026, 11, 10, tzinfo=UTC), amount=30000),  # no won amount
        deal(y, "won", datetime(2026, 11, 11, tzinfo=UTC), amount=999, archived=True),
        Payment(client_id=x, amount=Decimal(40000), paid_on=date(2026, 11, 25)),  # counts
        Payment(client_id=x, amount=Decimal(5000), paid_on=date(2026, 10, 31)),  # before
        Payment(client_id=y, amount=Decimal(7000), paid_on=date(2026, 11, 30)),  # counts
    ])
    await session.commit()

    report = await channel_report(session, NOVEMBER)
    rows = {r["key"]: r for r in report["rows"]}
    direct, radio = rows["Директ"], rows["Радио"]
    # By hand: Директ has X's won deal (100 000, the won amount) and X's 40 000 paid in
    # November; cost 60 000 (the corrected figure): ROI = (100 000 − 60 000) / 60 000.
    assert (direct["deals_won"], direct["revenue"], direct["paid"]) == (1, 100000.0, 40000.0)
    assert direct["cost"] == 60000.0 and direct["roi"] == pytest.approx(0.6667, abs=1e-4)
    # Радио: Y's deal (30 000, its expected amount), 7 000 paid, cost 10 000 a month:
    # ROI = (30 000 − 10 000) / 10 000 = 2; two calls, cost per call 5 000.
    assert (radio["deals_won"], radio["revenue"], radio["paid"]) == (1, 30000.0, 7000.0)
    assert radio["cost"] == 10000.0 and radio["roi"] == 2.0
    assert radio["calls"] == 2 and radio["cost_per_call"] == 5000.0
    totals = report["totals"]
    assert (totals["revenue"], totals["paid"], totals["cost"]) == (130000.0, 47000.0, 70000.0)
    assert totals["roi"] == pytest.approx((130000 - 70000) / 70000, abs=1e-4)

    # The target threshold is the marketer's: 90-second calls are target at 60 s, not at 120.
    assert [c["target"] for c in await call_log(session, NOVEMBER)] == [True] * 3
    assert [c["target"] for c in await call_log(session, NOVEMBER, target_seconds=120)
            ] == [False] * 3
    strict = await channel_report(session, NOVEMBER, target_seconds=120)
    assert strict["totals"]["target_calls"] == 0 and strict["target_seconds"] == 120

    audit = list(await session.scalars(select(AuditLog).where(
        AuditLog.entity == "ct_ad_cost", AuditLog.entity_id == row.id).order_by(AuditLog.id)))
    assert [a.action for a in audit] == ["create", "update"]
    assert audit[1].changes["amount"] == ["50000.00", "60000.00"]


@pytest.mark.clock("2026-11-20T12:00:00+03:00")  # archived in November 2026
async def test_cost_entry_and_archive_refuse_bad_input(db_session: AsyncSession) -> None:
    for month, channel, amount in (("2026-13", "Директ", "1"), ("2026-11", "", "1"),
                                   ("2026-11", "Директ", "-5"), ("2026-11", "Директ", "много")):
        with pytest.raises(CallTrackingError):
            await set_cost(db_session, month, channel, amount)
    await add_static(db_session, DIRECT, "Директ", cost_per_month=3000)
    assert await archive_number(db_session, "8 495 111-00-21") == "static"
    assert await list_static(db_session) == []
    with pytest.raises(CallTrackingError, match="not a tracked number"):
        await archive_number(db_session, DIRECT)  # already archived: said so, not a traceback
    await db_session.commit()
    # An archived static number costs nothing in later months.
    january = Period(datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC))
    assert (await channel_report(db_session, january))["totals"]["cost"] == 0.0


async def test_a_months_cost_is_spread_over_its_days_and_each_share_is_shown(
        db_session: AsyncSession) -> None:
    """Ten days of November carry 10/30 of November's cost; the shares add up to the row."""
    await set_cost(db_session, "2026-11", "Директ", "90000")
    await set_cost(db_session, "2026-12", "Директ", "31000")
    await add_static(db_session, RADIO, "Радио", cost_per_month="10 000")
    await db_session.commit()
    msk = ZoneInfo("Europe/Moscow")
    # 21 November to 3 December, Moscow days: 10 of November's 30, 3 of December's 31.
    period = Period(datetime(2026, 11, 21, tzinfo=msk), datetime(2026, 12, 4, tzinfo=msk))
    report = await channel_report(db_session, period)
    spread = [(s["key"], s["number"], s["month"], s["month_amount"], s["days"],
               s["month_days"], s["amount"]) for s in report["cost_spread"]]
    assert spread == [
        ("Директ", None, "2026-11", 90000.0, 10, 30, 30000.0),
        ("Директ", None, "2026-12", 31000.0, 3, 31, 3000.0),
        ("Радио", RADIO, "2026-11", 10000.0, 10, 30, 3333.33),
        ("Радио", RADIO, "2026-12", 10000.0, 3, 31, 967.74),
    ]
    rows = {r["key"]: r for r in report["rows"]}
    assert rows["Директ"]["cost"] == 33000.0
    assert rows["Радио"]["cost"] == 4301.07  # the shown shares, to the kopeck
    assert report["totals"]["cost"] == 37301.07


async def test_advised_pool_size_by_littles_law(db_session: AsyncSession) -> None:
    """Ten visitors in the 10 o'clock hour, 7-minute sessions, 3-minute hold, 2 numbers."""
    site = await save_site(db_session, "law.example", SiteOptions(hold_seconds=180))
    await add_pool_numbers(db_session, "law.example", ["+74951110031", "+74951110032"])
    t0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

    def visitor(i: int, start: datetime) -> CtVisit:
        end = start + timedelta(minutes=7)
        visit = CtVisit(session=f"law-{i}", site_id=site.id, landing="https://law.example/",
                        pages=[], client_ids={}, first_seen=start, last_seen=end)
        number = "+74951110031" if i % 2 else "+74951110032"
        db_session.add(CtLease(number=number, site_id=site.id, visit=visit, started_at=start,
                               ends_at=end + timedelta(minutes=3)))
        return visit

    for i in range(10):  # one every 6 minutes; each holds a number for 7 + 3 = 10 minutes
        db_session.add(visitor(i, t0 + timedelta(minutes=6 * i)))
    db_session.add(visitor(10, t0 + timedelta(hours=2)))  # a quiet later hour
    await db_session.commit()
    health = await pool_health(db_session, NOVEMBER)
    law = next(h for h in health if h["site"] == "law.example")
    # By hand: peak hour 10 visitors × (7 + 3) minutes / 60 × 1.25 headroom = 2.08 -> 3.
    assert law["peak_visitors_per_hour"] == 10 and law["session_minutes"] == 7.0
    assert law["advised_size"] == 3
    # Leases of 10 minutes starting 6 minutes apart overlap by two: both numbers busy.
    assert (law["size"], law["peak_concurrent_visitors"], law["utilisation_percent"]) == (
        2, 2, 100.0)
    assert law["add_numbers"] is True and law["fallback_impressions"] == 0
