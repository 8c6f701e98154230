"""The dialer's order of the day's call tasks and its retry rule, with a pinned clock.

The pure rules first (:mod:`crm_core.dialer.queue`), then the same on a real database
(SQLite and PostgreSQL): the list a manager's session walks, and what a busy, unanswered
or answered call placed from the session makes of his task.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import Call
from crm_core.calls.services import record_call
from crm_core.calls.snapshot import CallData, LegData
from crm_core.clients.models import Client
from crm_core.clients.services import create_client
from crm_core.clock import utcnow
from crm_core.dialer import services
from crm_core.dialer.models import DialerSession, SessionPhase
from crm_core.dialer.queue import QueueItem, Rules, callable_now, ordered, retry_for
from crm_core.errors import DomainError, NotAllowedError
from crm_core.people.models import User
from crm_core.people.users import add_user
from crm_core.tasks.models import Task, TaskStatus
from crm_core.tasks.services import create_task
from telecrm.wiring import call_hooks
from tests.support.db_fixtures import (  # noqa: F401
    db_session_fixture,
    db_url_fixture,
)

pytestmark = pytest.mark.calendar

MSK = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # 12:00 in Moscow


def item(task_id: int, due_minutes: int, group: str | None, retry: bool = False) -> QueueItem:
    return QueueItem(task_id, NOW + timedelta(minutes=due_minutes), group, retry)


# -- the pure rules ---------------------------------------------------------------------------


def test_overdue_first_then_abc_then_due_time() -> None:
    items = [item(1, 60, "A"), item(2, -30, "C"), item(3, 30, "B"), item(4, -90, None),
             item(5, 10, "A"), item(6, 120, None), item(7, -30, "A")]
    assert [i.task_id for i in ordered(items, NOW)] == [
        7, 2, 4,  # overdue: A before C before no group, whatever the due time
        5, 1,  # today, group A: the earlier first
        3, 6]


def test_equal_tasks_keep_the_older_first() -> None:
    assert [i.task_id for i in ordered([item(9, 5, "B"), item(8, 5, "B")], NOW)] == [8, 9]


def test_a_retry_waits_for_its_time_and_skipped_tasks_are_left_out() -> None:
    items = [item(1, 20, "A", retry=True), item(2, 40, "C"), item(3, -5, "B", retry=True),
             item(4, 50, "B")]
    assert [i.task_id for i in callable_now(items, NOW)] == [3, 4, 2]
    assert [i.task_id for i in callable_now(items, NOW, skipped=[4])] == [3, 2]
    later = NOW + timedelta(minutes=25)
    # Both retries are overdue by then: group A before group B.
    assert [i.task_id for i in callable_now(items, later)] == [1, 3, 4, 2]


@pytest.mark.parametrize("status", ["busy", "no_answer", "failed"])
def test_failed_calls_earn_retries_until_the_last_try(status: str) -> None:
    rules = Rules(max_attempts=3, retry_minutes=45)
    first = retry_for(rules, status, 1, NOW)
    assert first is not None and first.attempt == 2 and not first.last
    assert first.due_at == NOW + timedelta(minutes=45)
    assert first.title("ООО Ромашка", 3) == "Повторный звонок (попытка 2 из 3): ООО Ромашка"
    second = retry_for(rules, status, 2, NOW)
    assert second is not None and second.last
    assert second.title("ООО Ромашка", 3) == \
        "Повторный звонок (последняя попытка 3 из 3): ООО Ромашка"
    assert retry_for(rules, status, 3, NOW) is None


def test_an_answered_call_or_a_single_try_gets_no_retry() -> None:
    assert retry_for(Rules(), "answered", 1, NOW) is None
    assert retry_for(Rules(max_attempts=1, retry_minutes=5), "busy", 1, NOW) is None


# -- on the database ----------------------------------------------------------------------------

HOOKS = call_hooks()


async def _floor(session: AsyncSession) -> tuple[User, User, dict[str, Client]]:
    manager = await add_user(session, "petrov", name="Иван Петров", role="manager",
                             extension="101", team="Отдел продаж")
    boss = await add_user(session, "sokolova", name="Мария Соколова", role="supervisor",
                          extension="201", team="Отдел продаж")
    clients = {}
    for name, phone, group in [("ООО Ромашка", "+79161234567", "C"),
                               ("АО Вектор", "+79265550011", "A"),
                               ("ИП Сидоров", "+79031234567", None)]:
        client = await create_client(session, name, phones=[phone], owner_id=manager.id,
                                     actor="test")
        client.abc_group = group
        clients[name] = client
    await session.flush()
    return manager, boss, clients


async def _task(session: AsyncSession, user: User, client: Client, due: datetime) -> Task:
    return await create_task(session, kind="call", title=f"Позвонить: {client.name}",
                             client_id=client.id, assignee_id=user.id, team_id=user.team_id,
                             due_at=due)


async def _outbound(session: AsyncSession, linkedid: str, number: str, status: str,
                    at: datetime) -> int:
    answered = status == "answered"
    talk = 42.0 if answered else 0.0
    legs = (LegData(uniqueid=f"{linkedid}-m", channel="PJSIP/101-01", role="manager",
                    extension="101", started_at=at, answered_at=at, ended_at=at
                    + timedelta(seconds=50), talk_seconds=talk),
            LegData(uniqueid=f"{linkedid}-c", channel="PJSIP/carrier-01", role="client",
                    extension=None, started_at=at, answered_at=at if answered else None,
                    ended_at=at + timedelta(seconds=50), talk_seconds=talk))
    data = CallData(linkedid=linkedid, direction="outbound", status=status,
                    client_number=number, did=None, started_at=at,
                    answered_at=at + timedelta(seconds=8) if answered else None,
                    ended_at=at + timedelta(seconds=50), ring_seconds=8.0, talk_seconds=talk,
                    transferred=False, managers=("101",) if answered else (), recordings=(),
                    legs=legs, rang=())
    call = await record_call(session, data, hooks=HOOKS)
    return call.id


@pytest.mark.clock("2026-11-20T12:00:00+03:00")
async def test_the_session_walks_the_list_and_retries_a_busy_client(
        db_session: AsyncSession) -> None:
    session = db_session
    manager, boss, clients = await _floor(session)
    now = utcnow()
    romashka = await _task(session, manager, clients["ООО Ромашка"], now - timedelta(hours=2))
    vector = await _task(session, manager, clients["АО Вектор"], now + timedelta(hours=3))
    sidorov = await _task(session, manager, clients["ИП Сидоров"], now + timedelta(hours=1))
    await _task(session, manager, clients["ИП Сидоров"], now + timedelta(days=1))  # tomorrow
    await services.save_rules(session, manager.team_id, max_attempts=2, retry_minutes=20,
                              by=boss)
    await session.commit()

    listed = await services.call_list(session, manager, now, MSK)
    assert [i.task_id for i in listed] == [romashka.id, vector.id, sidorov.id]

    dsession = await services.start_session(session, manager, now, MSK)
    assert dsession.task_id == romashka.id
    await services.mark_calling(session, dsession, "+79161234567")
    call_id = await _outbound(session, "d-1", "+79161234567", "busy", now)
    call = await session.get(Call, call_id)
    result = await services.record_hangup(session, dsession, manager, call)
    assert result.status == "busy" and not result.form and result.retry is not None
    retry = result.retry
    assert retry.title == "Повторный звонок (последняя попытка 2 из 2): ООО Ромашка"
    assert retry.due_at == now + timedelta(seconds=50, minutes=20)
    assert retry.assignee_id == manager.id and retry.status == TaskStatus.OPEN.value
    assert romashka.status == TaskStatus.DONE.value
    assert romashka.note == ("Не дозвонились (занято), попытка 1 из 2; повторный звонок "
                             "через 20 мин.")
    assert dsession.phase == SessionPhase.COUNTDOWN.value
    again = await services.record_hangup(session, dsession, manager, call)  # reported twice
    assert again.retry is not None and again.retry.id == retry.id
    assert len(list(await session.scalars(select(Task).where(
        Task.client_id == clients["ООО Ромашка"].id, Task.status == "open")))) == 1

    # The retry waits for its time; the next client is the A group's.
    nxt = await services.advance(session, dsession, manager, now, MSK)
    assert nxt is not None and nxt.id == vector.id
    # Skipping it brings the next one; the list then is done until the retry is due.
    nxt = await services.advance(session, dsession, manager, now, MSK, skip=True)
    assert nxt is not None and nxt.id == sidorov.id
    nxt = await services.advance(session, dsession, manager, now, MSK, skip=True)
    assert nxt is None
    later = now + timedelta(minutes=25)
    nxt = await services.advance(session, dsession, manager, later, MSK)
    assert nxt is not None and nxt.id == retry.id
    assert await services.attempt_number(session, retry.id) == 2

    # The last try fails too: no more retries; the form says so.
    await services.mark_calling(session, dsession, "+79161234567")
    call_id = await _outbound(session, "d-2", "+79161234567", "no_answer", later)
    call = await session.get(Call, call_id)
    last = await services.record_hangup(session, dsession, manager, call)
    assert last.retry is None and last.form and last.exhausted
    assert last.note == ("Не дозвонились (не ответил): попытка 2 из 2 была последней, "
                         "повторов больше не будет.")
    assert retry.status == TaskStatus.OPEN.value  # the manager plans the next contact himself
    assert dsession.phase == SessionPhase.WRAP_UP.value
    figures = await services.session_figures(session, dsession, later)
    assert figures["calls"] == 2 and figures["calls_per_hour"] == 2.0  # the first hour
    figures = await services.session_figures(session, dsession, now + timedelta(hours=2))
    assert figures["calls_per_hour"] == 1.0


@pytest.mark.clock("2026-11-20T12:00:00+03:00")
async def test_an_answered_call_opens_the_form_and_a_stranger_call_is_refused(
        db_session: AsyncSession) -> None:
    session = db_session
    manager, _, clients = await _floor(session)
    now = utcnow()
    await _task(session, manager, clients["АО Вектор"], now - timedelta(minutes=5))
    dsession = await services.start_session(session, manager, now, MSK)
    await services.mark_calling(session, dsession, "+79265550011")
    other = await session.get(Call, await _outbound(session, "d-9", "+79031234567", "busy", now))
    with pytest.raises(DomainError) as refused:
        await services.record_hangup(session, dsession, manager, other)
    assert refused.value.code == "dialer.not_a_dialer_call"
    assert await services.ended_call(session, dsession) is None, "another client's call"
    answered = await session.get(Call, await _outbound(session, "d-3", "+79265550011",
                                                       "answered", now))
    # No live event needed: the server finds the ended call placed for this client.
    assert await services.ended_call(session, dsession) == answered.id
    result = await services.record_hangup(session, dsession, manager, answered)
    assert result.form and not result.exhausted and result.retry is None
    assert result.attempt.talk_seconds == 42.0
    assert await services.ended_call(session, dsession) is None, "judged, and no longer calling"


async def test_rules_are_the_teams_else_the_companys_and_only_bosses_set_them(
        db_session: AsyncSession) -> None:
    session = db_session
    manager, boss, _ = await _floor(session)
    admin = await add_user(session, "admin", name="Админ", role="admin")
    other = await add_user(session, "kuz", name="Кузнецов", role="manager", extension="103",
                           team="Второй отдел")
    assert await services.rules_for_team(session, manager.team_id) == Rules(3, 30)
    await services.save_rules(session, None, max_attempts=4, retry_minutes=60, by=admin)
    await services.save_rules(session, boss.team_id, max_attempts="2", retry_minutes="15",
                              by=boss)
    assert await services.rules_for_team(session, manager.team_id) == Rules(2, 15)
    assert await services.rules_for_team(session, other.team_id) == Rules(4, 60)
    with pytest.raises(NotAllowedError):
        await services.save_rules(session, other.team_id, max_attempts=2, retry_minutes=5,
                                  by=boss)
    with pytest.raises(NotAllowedError):
        await services.save_rules(session, manager.team_id, max_attempts=2, retry_minutes=5,
                                  by=manager)
    with pytest.raises(DomainError) as bad:
        await services.save_rules(session, boss.team_id, max_attempts=0, retry_minutes=5,
                                  by=boss)
    assert bad.value.code == "dialer.rules_out_of_range"
    assert len(list(await session.scalars(select(DialerSession)))) == 0
