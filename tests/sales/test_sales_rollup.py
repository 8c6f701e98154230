"""The contact-frequency rollup (``sales_contact_daily``) never changes a figure.

On the random floor of ``test_sales_recount``: with the rollup filled, after every kind of
late write (a call added on a stored day, a call moved to another client or day, a call
removed, a client given to another manager, archived, restored, a client created later
than his calls), the report equals the slow recount, and the stored days equal a fresh
count. SQLite and PostgreSQL (each has its own triggers).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import Call
from crm_core.clients.models import Client
from crm_core.sales.models import SalesContactDaily
from crm_core.sales.recount import RECOUNTS
from crm_core.sales.reports import REPORTS
from crm_core.sales.rollup import read_days, refresh_days
from tests.sales.test_sales_recount import PERIODS, _random_floor
from tests.sales.test_sales_reports import MSK
from tests.support.db_fixtures import db_session_fixture, db_url_fixture  # noqa: F401

YEAR = (date(2026, 1, 1), date(2026, 12, 31))


async def _same(session: AsyncSession) -> None:
    for start, end in [*PERIODS, (datetime(2026, 1, 1, tzinfo=MSK),
                                  datetime(2026, 12, 1, tzinfo=MSK))]:
        fast = await REPORTS["contact-frequency"](session, start, end, None)
        slow = await RECOUNTS["contact-frequency"](session, start, end, None)
        assert fast == slow, (start, end)


async def _stored_equals_a_recount(session: AsyncSession) -> int:
    """Every stored day equals the same day counted afresh; returns how many are stored."""
    owners = list(await session.scalars(select(Client.owner_id).distinct()))
    owners = [o for o in owners if o is not None]
    stored = await read_days(session, owners, *YEAR, MSK)
    rows = {k: v for k, v in stored.items()}
    await session.execute(delete(SalesContactDaily))
    await refresh_days(session, *YEAR, MSK)
    fresh = await read_days(session, owners, *YEAR, MSK)
    for key, value in rows.items():
        assert fresh.get(key) == value, key
    return len(rows)


async def test_the_rollup_stays_exact_after_late_writes(db_session: AsyncSession) -> None:
    await _random_floor(db_session)
    s = db_session
    assert await refresh_days(s, *YEAR, MSK) > 0
    await _same(s)
    assert await _stored_equals_a_recount(s) > 0

    calls = list(await s.scalars(select(Call).where(Call.direction != "internal")
                                 .order_by(Call.id).limit(6)))
    client_ids = list(await s.scalars(select(Client.id).order_by(Client.id).limit(5)))
    # a call added on a stored day, to a client of someone
    s.add(Call(linkedid="late-1", direction="inbound", status="answered",
               client_id=client_ids[0], started_at=datetime(2026, 10, 15, 9, tzinfo=UTC),
               answered_at=datetime(2026, 10, 15, 9, tzinfo=UTC), talk_seconds=77.0,
               managers=[]))
    await s.flush()
    await _same(s)
    # a call moved to another client, another day; its length changed; one removed
    calls[0].client_id = client_ids[1]
    calls[1].started_at = calls[1].started_at - timedelta(days=20)
    calls[2].talk_seconds = calls[2].talk_seconds + 30
    calls[3].direction = "internal"
    await s.flush()
    await s.execute(delete(Call).where(Call.id == calls[4].id))
    await _same(s)
    # clients given to another manager, archived, restored, created later than a call
    other = await s.scalar(select(Client.owner_id).where(Client.id == client_ids[4]))
    await s.execute(update(Client).where(Client.id.in_(client_ids[:2]))
                    .values(owner_id=other))
    await s.execute(update(Client).where(Client.id == client_ids[2])
                    .values(archived_at=datetime(2026, 11, 1, tzinfo=UTC)))
    await s.flush()
    await _same(s)
    await s.execute(update(Client).where(Client.id == client_ids[2]).values(archived_at=None))
    await s.execute(update(Client).where(Client.id == calls[5].client_id)
                    .values(created_at=calls[5].started_at + timedelta(days=3)))
    await _same(s)
    # refilled, it is exact again, and the day with a call before its client came is
    # never stored
    assert await _stored_equals_a_recount(s) > 0
    await _same(s)
    late_owner = await s.scalar(select(Client.owner_id).where(Client.id == calls[5].client_id))
    day = calls[5].started_at.astimezone(MSK).date()
    assert await s.scalar(select(func.count()).select_from(SalesContactDaily).where(
        SalesContactDaily.owner_id == late_owner, SalesContactDaily.day == day)) == 0


async def test_an_empty_or_partial_rollup_gives_the_same_report(db_session: AsyncSession
                                                                 ) -> None:
    await _random_floor(db_session)
    await _same(db_session)  # empty: every day counted from the calls
    await refresh_days(db_session, date(2026, 10, 5), date(2026, 10, 20), MSK)
    await _same(db_session)  # partial
