"""The reports' SQL equals the slow recount (``crm_core.sales.recount``) figure for figure.

Two floors: the hand-made one of ``test_sales_reports`` and a random one (fixed seed:
clients with and without ABC groups and frequencies of their own, archived ones, calls
answered and missed, internal calls, logged e-mails and meetings, back-dated payments,
invoices, tasks, deals and their moves) over two teams with rules of their own. Every
report for several periods (whole months, a week, a period reaching today) and viewers
must come out the same both ways, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.activities.models import ClientActivity
from crm_core.calls.models import Call, CallLeg
from crm_core.clients.models import Client
from crm_core.people.models import User
from crm_core.people.users import add_user
from crm_core.sales.models import (
    Deal,
    DealStageChange,
    Invoice,
    LoseReason,
    Payment,
    Pipeline,
    PipelineStage,
)
from crm_core.sales.recount import RECOUNTS
from crm_core.sales.reports import REPORTS
from crm_core.sales.settings import save_rules
from crm_core.tasks.models import Task
from tests.sales.test_sales_reports import MSK, _seed
from tests.support.db_fixtures import db_session_fixture, db_url_fixture  # noqa: F401

PERIODS = [
    (datetime(2026, 11, 1, tzinfo=MSK), datetime(2026, 12, 1, tzinfo=MSK)),
    (datetime(2026, 10, 1, tzinfo=MSK), datetime(2026, 11, 1, tzinfo=MSK)),
    (datetime(2026, 9, 1, tzinfo=MSK), datetime(2026, 10, 1, tzinfo=MSK)),
    (datetime(2026, 11, 10, tzinfo=MSK), datetime(2026, 11, 17, tzinfo=MSK)),
]


async def _same(session: AsyncSession, viewers: list[User | None],
                periods: list[tuple[datetime, datetime]]) -> None:
    for start, end in periods:
        for viewer in viewers:
            for name, report in REPORTS.items():
                fast = await report(session, start, end, viewer)
                slow = await RECOUNTS[name](session, start, end, viewer)
                assert fast == slow, (name, start, end, viewer and viewer.username)


async def test_the_hand_made_floor_recounts_the_same(db_session: AsyncSession) -> None:
    u = await _seed(db_session)
    await _same(db_session, [None, u["boss"], u["olga"]], PERIODS)


LAST = datetime(2026, 12, 1, tzinfo=UTC)  # nothing happens after: a period reaching today
# judges by the kept last contact, which a call in the future would be


def _at(rng: random.Random, first: datetime, days: int) -> datetime:
    span = min(days * 86400, int((LAST - first).total_seconds()))
    return first + timedelta(seconds=rng.randrange(max(1, span)))


async def _random_floor(s: AsyncSession, seed: int = 21) -> list[User]:
    rng = random.Random(seed)
    managers = [await add_user(s, f"m{i}", name=f"Менеджер {i}", role="manager",
                               extension=str(300 + i), team="Север" if i % 2 else "Юг")
                for i in range(6)]
    boss = await add_user(s, "boss2", name="Начальник", role="supervisor", extension="399",
                          team="Север")
    company = {"lost_after_days": 60, "new_period_days": 45, "contact_days_a": 5,
               "contact_days_b": 12, "contact_days_c": 25, "contact_days_none": 20,
               "max_potential_days": 40, "max_new_days": 70}
    await save_rules(s, None, company, by=None)
    team_id = managers[1].team_id
    assert team_id is not None
    await save_rules(s, team_id, {**company, "lost_after_days": 30, "contact_days_a": 3,
                                  "max_new_days": 20}, by=None)
    year = datetime(2026, 1, 1, tzinfo=UTC)
    clients = []
    for cid in range(1, 301):
        created = _at(rng, year, 330)
        potential = rng.choice([None, 50_000, 400_000, 2_000_000])
        group = None if potential is None else ("A" if potential >= 1_000_000 else
                                                "B" if potential >= 300_000 else "C")
        client = Client(
            id=cid, name=f"К{cid}", owner_id=rng.choice(managers).id,
            status=rng.choice(["potential", "new", "regular", "lost"]),
            created_at=created, owner_since=rng.choice([None, created + timedelta(days=3)]),
            status_since=rng.choice([None, created + timedelta(days=rng.randrange(60))]),
            annual_potential=Decimal(potential) if potential else None, abc_group=group,
            qualified_at=created + timedelta(hours=rng.randrange(1, 200)) if group else None,
            contact_every_days=rng.choice([None] * 8 + [3, 10]),
            archived_at=created + timedelta(days=5) if rng.random() < 0.05 else None)
        clients.append(client)
    s.add_all(clients)
    await s.flush()
    last: dict[int, datetime] = {}
    for n in range(1500):
        c = rng.choice(clients)
        start = _at(rng, max(c.created_at, year), 335)
        answered = rng.random() < 0.8
        direction = rng.choice(["inbound", "outbound", "outbound", "internal"])
        talk = float(rng.randrange(1, 600)) if answered else 0.0
        owner = next(m for m in managers if m.id == c.owner_id)
        call = Call(linkedid=f"x-{n}", direction=direction,
                    status="answered" if answered else "missed", client_id=c.id,
                    started_at=start, answered_at=start if answered else None,
                    ended_at=start + timedelta(seconds=talk + 5), talk_seconds=talk,
                    managers=[owner.extension])
        s.add(call)
        await s.flush()
        s.add(CallLeg(call_id=call.id, uniqueid=f"x-{n}-m", channel="PJSIP/x", role="manager",
                      extension=owner.extension, user_id=owner.id, started_at=start,
                      talk_seconds=talk))
        if answered and direction != "internal":
            last[c.id] = max(last.get(c.id, start), start)
    for _ in range(200):
        c = rng.choice(clients)
        at = _at(rng, max(c.created_at, year), 335)
        kind = rng.choice(["email_out", "email_in", "meeting", "note"])
        archived = at if rng.random() < 0.1 else None
        s.add(ClientActivity(client_id=c.id, kind=kind, happened_at=at, text="t",
                             user_id=c.owner_id, archived_at=archived))
        if kind != "note" and archived is None:
            last[c.id] = max(last.get(c.id, at), at)
    for c in clients:
        c.last_contact_at = last.get(c.id)  # as the call and activity rules keep it
    for _ in range(400):
        c = rng.choice(clients)
        s.add(Payment(client_id=c.id, amount=Decimal(rng.randrange(1, 100) * 1000),
                      paid_on=(c.created_at + timedelta(days=rng.randrange(330))).date(),
                      archived_at=year if rng.random() < 0.05 else None))
    for n in range(150):
        amount = Decimal(rng.randrange(10, 200) * 1000)
        status = rng.choice(["paid", "partly_paid", "unpaid"])
        s.add(Invoice(number=f"R-{n}", client_id=rng.choice(clients).id, amount=amount,
                      paid_amount=amount if status == "paid" else Decimal(0), status=status,
                      issued_on=date(2026, 1, 1) + timedelta(days=rng.randrange(330))))
    for _ in range(300):
        due = _at(rng, year, 335)
        done = rng.random() < 0.7
        s.add(Task(kind=rng.choice(["call", "email", "meeting", "other"]), title="t",
                   status="done" if done else "open", client_id=rng.choice(clients).id,
                   assignee_id=rng.choice(managers).id, due_at=due,
                   done_at=due + timedelta(hours=3) if done else None))
    pipeline = Pipeline(name="R")
    s.add(pipeline)
    await s.flush()
    stages = [PipelineStage(pipeline_id=pipeline.id, position=i, name=code, code=code,
                            outcome=outcome)
              for i, (code, outcome) in enumerate([("a", "open"), ("won", "won"),
                                                   ("lost", "lost")], start=1)]
    reasons = [LoseReason(name="Дорого", active=True), LoseReason(name="Конкурент", active=True)]
    s.add_all([*stages, *reasons])
    await s.flush()
    for n in range(120):
        status = rng.choice(["open", "won", "lost"])
        closed = _at(rng, year, 335) if status != "open" else None
        deal = Deal(title=f"d{n}", client_id=rng.choice(clients).id, pipeline_id=pipeline.id,
                    stage_id=stages[["open", "won", "lost"].index(status)].id,
                    owner_id=rng.choice(managers).id, status=status,
                    amount=Decimal(rng.randrange(1, 50) * 10_000),
                    won_amount=Decimal(rng.randrange(1, 50) * 9_000) if status == "won" else None,
                    lose_reason_id=rng.choice(reasons).id if status == "lost" else None,
                    closed_at=closed)
        s.add(deal)
        await s.flush()
        s.add(DealStageChange(deal_id=deal.id, from_stage_id=stages[0].id,
                              to_stage_id=deal.stage_id, at=closed or _at(rng, year, 335),
                              by_id=deal.owner_id))
    await s.flush()
    return [boss, managers[0]]


async def test_a_random_floor_recounts_the_same(db_session: AsyncSession) -> None:
    boss, manager = await _random_floor(db_session)
    periods = [*PERIODS, (datetime(2026, 1, 1, tzinfo=MSK), datetime(2026, 7, 1, tzinfo=MSK)),
               (datetime(2026, 12, 1, tzinfo=MSK), datetime(2027, 1, 1, tzinfo=MSK))]
    await _same(db_session, [None, boss, manager], periods)
