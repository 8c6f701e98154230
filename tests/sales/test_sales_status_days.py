"""The summary's kept verdicts (``sales_client_status``) never change a figure.

On the random floor of ``test_sales_recount``, with the verdicts of the periods' last days
kept: after every kind of late write that can change a client's status on a kept day (a
payment added, moved, archived; a contact call added, unanswered, made internal, removed;
a meeting logged and archived; a client's creation time moved; a team's rules changed; a
client given to a manager of the other team), the summary equals the slow recount, and
every kept verdict equals a fresh judgment. SQLite and PostgreSQL (each has its own
triggers).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.activities.models import ClientActivity
from crm_core.calls.models import Call
from crm_core.clients.models import Client
from crm_core.people.models import User
from crm_core.sales.attention import day_end
from crm_core.sales.models import Payment, SalesClientStatus
from crm_core.sales.recount import RECOUNTS
from crm_core.sales.reports import REPORTS, previous_period_start
from crm_core.sales.settings import save_rules
from crm_core.sales.status_days import (
    days_to_keep,
    forget_other_days,
    refresh_statuses,
    whole_days,
)
from tests.sales.test_sales_recount import PERIODS, _random_floor
from tests.sales.test_sales_reports import MSK
from tests.support.db_fixtures import db_session_fixture, db_url_fixture  # noqa: F401

NOW = datetime(2026, 12, 5, 9, tzinfo=UTC)  # every period below is over


def _last_days() -> list[date]:
    """The last day of each period the summaries below compare."""
    days = []
    for start, end in PERIODS:
        for moment in (end, start):  # the period's end and its previous period's end
            days.append((moment - timedelta(microseconds=1)).astimezone(MSK).date())
        days.append((previous_period_start(start, end) - timedelta(microseconds=1))
                    .astimezone(MSK).date())
    return sorted(set(days))


async def _same(session: AsyncSession, viewers: list[User | None]) -> None:
    for start, end in PERIODS:
        for viewer in viewers:
            fast = await REPORTS["summary"](session, start, end, viewer)
            slow = await RECOUNTS["summary"](session, start, end, viewer)
            assert fast == slow, (start, end, viewer and viewer.username)


async def _kept(session: AsyncSession) -> dict[tuple[date, int], tuple[Any, ...]]:
    """(day, client) -> (rules, verdict, and the copies of his owner, potential, archiving)."""
    kept = SalesClientStatus
    return {(row[0], row[1]): tuple(row[2:]) for row in await session.execute(select(
        kept.day, kept.client_id, kept.lost_after_days, kept.new_period_days, kept.status,
        kept.owner_id, kept.potential, kept.archived))}


async def _kept_equals_a_fresh_judgment(session: AsyncSession) -> int:
    """Every kept verdict judged by the client's rules of now equals a fresh one (the
    others a report does not use); returns how many were compared."""
    kept = await _kept(session)
    await refresh_statuses(session, _last_days(), MSK, now=NOW)
    fresh = await _kept(session)
    assert kept.keys() <= fresh.keys()
    same_rules = {k: v for k, v in kept.items() if v[:2] == fresh[k][:2]}
    for key, v in kept.items():  # the copies of the client follow him whatever his rules
        assert v[3:] == fresh[key][3:], key
    assert len(same_rules) < len(kept)  # the team whose rules changed
    for key, verdict in same_rules.items():
        assert fresh[key] == verdict, key
    return len(same_rules)


async def _contact(session: AsyncSession, client_id: int, at: datetime) -> None:
    """What the call and activity rules do on a contact: the client's last contact kept."""
    client = await session.get(Client, client_id)
    assert client is not None
    if client.last_contact_at is None or client.last_contact_at < at:
        client.last_contact_at = at


async def _dropped_from(session: AsyncSession, client_id: int, day: date) -> None:
    """The client's kept verdicts from ``day`` on are gone, the earlier ones are not."""
    rows = set(await session.scalars(select(SalesClientStatus.day).where(
        SalesClientStatus.client_id == client_id)))
    assert not {d for d in rows if d >= day}, (client_id, day)
    created = await session.scalar(select(Client.created_at).where(Client.id == client_id))
    assert created is not None
    judged = {d for d in _last_days() if day_end(d, MSK) > created}
    assert {d for d in judged if d < day} <= rows, (client_id, day)


async def test_kept_verdicts_stay_exact_after_late_writes(db_session: AsyncSession) -> None:
    s = db_session
    boss, manager = await _random_floor(s)
    viewers: list[User | None] = [None, boss, manager]
    days = _last_days()

    async def kept_again() -> None:
        await s.flush()
        await _same(s, viewers)
        await refresh_statuses(s, days, MSK, now=NOW)

    assert await refresh_statuses(s, days, MSK, now=NOW) > len(days) * 200
    await _same(s, viewers)
    clients = list(await s.scalars(select(Client).where(
        Client.archived_at.is_(None), Client.created_at < datetime(2026, 3, 1, tzinfo=UTC))
        .order_by(Client.id).limit(10)))
    october = date(2026, 10, 10)
    # a payment dated in October, written now: his verdicts from that day on are dropped
    s.add(Payment(client_id=clients[0].id, amount=Decimal(5000), paid_on=october))
    await s.flush()
    await _dropped_from(s, clients[0].id, october)
    await kept_again()

    # a payment moved to an earlier day, archived, given to another client
    payments = list(await s.scalars(select(Payment).where(
        Payment.archived_at.is_(None), Payment.paid_on > date(2026, 8, 1))
        .order_by(Payment.id).limit(3)))
    moved_to = payments[0].paid_on - timedelta(days=100)
    payments[0].paid_on = moved_to
    await s.flush()
    await _dropped_from(s, payments[0].client_id, moved_to)
    await kept_again()
    payments[1].archived_at = NOW
    await s.flush()
    await _dropped_from(s, payments[1].client_id, payments[1].paid_on)
    await kept_again()
    was = payments[2].client_id
    payments[2].client_id = clients[1].id
    await s.flush()
    await _dropped_from(s, was, payments[2].paid_on)
    await _dropped_from(s, clients[1].id, payments[2].paid_on)
    await kept_again()

    # contacts: a call added; calls unanswered, made internal, removed; a meeting logged
    # and archived (a contact moves the day before its UTC day: any time zone's day)
    at = datetime(2026, 9, 20, 8, tzinfo=UTC)
    s.add(Call(linkedid="late-contact", direction="inbound", status="answered",
               client_id=clients[2].id, started_at=at, answered_at=at, talk_seconds=60.0,
               managers=[]))
    await _contact(s, clients[2].id, at)
    await s.flush()
    await _dropped_from(s, clients[2].id, date(2026, 9, 19))
    await kept_again()
    calls = list(await s.scalars(select(Call).where(
        Call.answered_at.is_not(None), Call.direction != "internal",
        Call.client_id.is_not(None), Call.started_at > datetime(2026, 8, 1, tzinfo=UTC))
        .order_by(Call.id).limit(3)))
    calls[0].answered_at = None
    await s.flush()
    await _dropped_from(s, calls[0].client_id, calls[0].started_at.date() - timedelta(days=1))
    await kept_again()
    calls[1].direction = "internal"
    await s.flush()
    await _dropped_from(s, calls[1].client_id, calls[1].started_at.date() - timedelta(days=1))
    await kept_again()
    await s.execute(delete(Call).where(Call.id == calls[2].id))
    await _dropped_from(s, calls[2].client_id, calls[2].started_at.date() - timedelta(days=1))
    await kept_again()
    meeting_at = datetime(2026, 8, 30, 12, tzinfo=UTC)
    meeting = ClientActivity(client_id=clients[3].id, kind="meeting", happened_at=meeting_at,
                             text="встреча", user_id=clients[3].owner_id)
    s.add(meeting)
    await _contact(s, clients[3].id, meeting_at)
    await s.flush()
    await _dropped_from(s, clients[3].id, date(2026, 8, 29))
    await kept_again()
    meeting.archived_at = NOW
    await s.flush()
    await _dropped_from(s, clients[3].id, date(2026, 8, 29))
    await kept_again()

    # a client created later than he was: every verdict of his is dropped
    await s.execute(update(Client).where(Client.id == clients[4].id)
                    .values(created_at=datetime(2026, 10, 20, tzinfo=UTC)))
    assert not list(await s.scalars(select(SalesClientStatus.day).where(
        SalesClientStatus.client_id == clients[4].id)))
    await kept_again()

    # a client archived, another restored, a potential changed: the rows follow
    await s.execute(update(Client).where(Client.id == clients[7].id).values(archived_at=NOW))
    archived = await s.scalar(select(Client.id).where(Client.archived_at.is_not(None),
                                                      Client.id != clients[7].id))
    await s.execute(update(Client).where(Client.id == archived).values(archived_at=None))
    await s.execute(update(Client).where(Client.id == clients[8].id)
                    .values(annual_potential=Decimal(1_234_567)))
    rows = await _kept(s)
    assert {v[3:] for k, v in rows.items() if k[1] == clients[8].id} \
        == {(clients[8].owner_id, Decimal(1_234_567), False)}
    assert {v[5] for k, v in rows.items() if k[1] in (clients[7].id, archived)} == {True, False}
    await kept_again()

    # the rules of a team change; a client goes to a manager of the other team: the kept
    # verdicts stay, judged by rules he no longer has, and are not used
    team_of = {u.id: u.team_id for u in await s.scalars(select(User))}
    north = team_of[clients[5].owner_id]
    assert north is not None
    await save_rules(s, north, {"lost_after_days": 15, "new_period_days": 20}, by=None)
    other = next(uid for uid, team in team_of.items()
                 if team is not None and team != north and uid != boss.id)
    await s.execute(update(Client).where(Client.id == clients[6].id).values(owner_id=other))
    await s.flush()
    await _same(s, viewers)
    assert await _kept_equals_a_fresh_judgment(s) > 0
    await _same(s, viewers)


async def test_the_summary_reads_what_is_kept(db_session: AsyncSession) -> None:
    """Kept verdicts are what the summary shows (here, one forged by hand): the rollup is
    really read, not only written; empty or partial, the summary is the recount's."""
    s = db_session
    await _random_floor(s)
    await _same(s, [None])  # nothing kept: every client judged live
    start, end = PERIODS[1]  # October, beside September
    await refresh_statuses(s, [date(2026, 9, 30)], MSK, now=NOW)
    await _same(s, [None])  # only the previous period kept
    await refresh_statuses(s, [date(2026, 10, 31)], MSK, now=NOW)
    honest = await REPORTS["summary"](s, start, end, None)
    forged = await s.scalar(select(SalesClientStatus.client_id)
                            .join(Client, Client.id == SalesClientStatus.client_id).where(
        SalesClientStatus.day == date(2026, 10, 31), SalesClientStatus.status == "potential",
        Client.archived_at.is_(None)).order_by(SalesClientStatus.client_id).limit(1))
    await s.execute(update(SalesClientStatus).where(
        SalesClientStatus.day == date(2026, 10, 31), SalesClientStatus.client_id == forged)
        .values(status="regular"))
    shown = await REPORTS["summary"](s, start, end, None)
    by_status = {r["status"]: r["clients"] for r in shown["rows"]}
    was = {r["status"]: r["clients"] for r in honest["rows"]}
    assert by_status["regular"] == was["regular"] + 1
    assert by_status["potential"] == was["potential"] - 1
    # judged again, the forgery is gone
    await refresh_statuses(s, [date(2026, 10, 31)], MSK, now=NOW)
    assert await REPORTS["summary"](s, start, end, None) == honest


async def test_only_finished_days_are_kept_and_the_night_keeps_month_ends(
        db_session: AsyncSession) -> None:
    s = db_session
    await _random_floor(s)
    today = date(2026, 12, 5)
    assert await refresh_statuses(s, [today], MSK, now=NOW) == 0  # not over yet
    keep = days_to_keep(today)
    assert keep[-1] == date(2026, 12, 4) and date(2026, 11, 30) in keep
    assert date(2025, 11, 30) in keep and len(keep) == 14
    await refresh_statuses(s, [date(2026, 10, 15), *keep], MSK, now=NOW)
    assert await forget_other_days(s, keep, MSK) > 0
    days = set(await s.scalars(select(SalesClientStatus.day).distinct()))
    assert date(2026, 10, 15) not in days and date(2026, 10, 31) in days


async def test_the_night_judges_again_only_the_days_left_short(db_session: AsyncSession) -> None:
    s = db_session
    await _random_floor(s)
    october, september = date(2026, 10, 31), date(2026, 9, 30)
    assert await whole_days(s, [september, october], MSK) == set()  # nothing kept yet
    await refresh_statuses(s, [september, october], MSK, now=NOW)
    assert await whole_days(s, [september, october], MSK) == {september, october}
    # a payment of 20 October leaves October short, not September
    client = await s.scalar(select(Client.id).order_by(Client.id).limit(1))
    s.add(Payment(client_id=client, amount=Decimal(100), paid_on=date(2026, 10, 20)))
    await s.flush()
    assert await whole_days(s, [september, october], MSK) == {september}
    await refresh_statuses(s, [october], MSK, now=NOW)
    # the company's rules change: every row was judged by other rules
    await save_rules(s, None, {"lost_after_days": 33}, by=None)
    assert await whole_days(s, [september, october], MSK) == set()
