"""Callbacks from the site through the real app, with Asterisk's AMI answers replayed.

- **The next free manager.** The first manager chosen for a callback does not answer: the
  next free one is rung, never the same twice, three at most; when none answers the
  request is a lead with a callback task for the first one chosen. The click-to-call
  layer runs for real; only the AMI session is a stand-in answering as Asterisk does
  (``OriginateResponse`` with ``Reason`` 5 at once for a busy phone, 3 after ringing for
  one nobody picked up, ``Success`` when the manager answered).
- **Working hours from the work calendar.** A company holiday is not a working day for
  callbacks (the request waits for the next working morning); the calendar's own
  weekdays and hours (a Saturday worked until 19:00) are the callbacks'; the settings
  override hours and weekdays only when set.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest

from crm_core.audit import AuditLog
from crm_core.calltracking.leads import callback_policy
from crm_core.calltracking.models import CtLead
from crm_core.db import create_engine, session_factory
from crm_core.people.models import User
from crm_core.people.users import add_user
from crm_core.talktime.rules import RuleChange, add_holiday, set_rule
from crm_core.tasks.models import Task
from telecrm.settings import Settings
from telecrm.web.keys import CLICK_TO_CALL
from tests.calltracking.test_leads import post, rows, seed_shop
from tests.support.browser import seed_world, serve_app
from tests.support.clock import pinned_clock

FRIDAY_NOON = "2026-11-20T12:00:00+03:00"
pytestmark = pytest.mark.clock(FRIDAY_NOON)

Served = tuple[Any, str, str]


class ReplayedAmi:
    """The AMI session as click-to-call sees it: each ``Originate`` is answered with the
    messages Asterisk sends, as ``script`` says for the n-th originate: (response,
    reason, seconds until the answer)."""

    def __init__(self, script: list[tuple[str, str, float]]) -> None:
        self.connected = asyncio.Event()
        self.connected.set()
        self.script = script
        self.channels: list[str] = []

    async def action(self, action: dict[str, Any], timeout: float | None = None) -> Any:
        self.channels.append(str(action["Channel"]))
        response, reason, after = self.script[min(len(self.channels), len(self.script)) - 1]
        await asyncio.sleep(after)
        return [{"Response": "Success", "Message": "Originate successfully queued"},
                {"Event": "OriginateResponse", "ActionID": action["ActionID"],
                 "Response": response, "Reason": reason,
                 "Channel": action["Channel"], "Context": action["Context"]}]


@pytest.fixture
async def served(db_url: str, tmp_path: Path) -> AsyncIterator[Served]:
    # a fourth manager: free, so only the limit of three keeps him from ringing
    await seed_shop(db_url, tmp_path, lambda session: add_user(
        session, "orlov", name="Павел Орлов", extension="104", team="Отдел продаж"))
    settings = Settings(data_dir=tmp_path, database_url=db_url,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (app, base):
        app[CLICK_TO_CALL].quick_wait = 0.2  # a phone ringing 0.5 s is watched, not awaited
        yield app, base, db_url


async def _settled(url: str, ami: ReplayedAmi, originates: int, status: str) -> CtLead:
    for _ in range(100):
        [lead] = await rows(url, CtLead)
        if len(ami.channels) >= originates and lead.status == status:
            await asyncio.sleep(0.3)  # nothing more is rung after that
            [lead] = await rows(url, CtLead)
            return lead
        await asyncio.sleep(0.1)
    raise AssertionError(f"{ami.channels}, {lead.status}")


async def _users(url: str) -> dict[str, int]:
    return {f"PJSIP/{u.extension}": u.id for u in await rows(url, User)
            if u.extension is not None}


async def test_a_manager_who_does_not_answer_passes_the_callback_on(served: Served) -> None:
    app, base, url = served
    ami = ReplayedAmi([("Failure", "5", 0.0),     # busy: refused at once
                       ("Failure", "3", 0.5),     # rang, nobody picked up
                       ("Success", "4", 0.1)])    # the third manager answers
    app[CLICK_TO_CALL].ami = lambda *_: ami
    status, body, _ = await post(base, "/api/ct/callback", {
        "site": "shop.example", "phone": "+79167770011", "name": "Пётр"})
    assert (status, body["status"]) == (201, "calling"), body
    lead = await _settled(url, ami, 3, "calling")
    users = await _users(url)
    assert len(ami.channels) == len(set(ami.channels)) == 3, ami.channels
    assert lead.assignee_id == users[ami.channels[2]] and lead.task_id is None
    passed = [a.changes for a in await rows(url, AuditLog, AuditLog.entity == "ct_lead",
                                            AuditLog.entity_id == lead.id)
              if "tried" in (a.changes or {})]
    assert [p["assignee_id"] for p in passed] == [
        [users[ami.channels[0]], users[ami.channels[1]]],
        [users[ami.channels[1]], users[ami.channels[2]]]]


async def test_three_managers_at_most_then_a_callback_task(served: Served) -> None:
    app, base, url = served
    ami = ReplayedAmi([("Failure", "3", 0.4)])  # every phone rings out
    app[CLICK_TO_CALL].ami = lambda *_: ami
    status, body, _ = await post(base, "/api/ct/callback", {
        "site": "shop.example", "phone": "+79167770022"})
    assert (status, body["status"]) == (201, "calling"), body
    lead = await _settled(url, ami, 3, "new")
    await asyncio.sleep(0.6)
    assert len(ami.channels) == len(set(ami.channels)) == 3, ami.channels  # four are free
    users = await _users(url)
    assert lead.assignee_id == users[ami.channels[0]]
    assert lead.note == "звонили 3 менеджерам, никто не ответил"
    [task] = await rows(url, Task, Task.id == lead.task_id)
    assert (task.kind, task.assignee_id) == ("callback", users[ami.channels[0]])


async def test_a_company_holiday_is_not_a_working_day(served: Served) -> None:
    _, base, url = served
    engine = create_engine(url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            await add_holiday(session, None, date(2026, 11, 20), "Корпоратив")
    finally:
        await engine.dispose()
    status, body, _ = await post(base, "/api/ct/callback", {
        "site": "shop.example", "phone": "+79167770033"})
    assert (status, body["status"]) == (201, "off_hours"), body
    [lead] = await rows(url, CtLead)
    [task] = await rows(url, Task, Task.id == lead.task_id)
    assert task.due_at is not None
    assert task.due_at.isoformat() == "2026-11-23T06:15:00+00:00"  # Monday 09:15 in Moscow


async def test_the_calendars_weekdays_and_hours_are_the_callbacks(served: Served) -> None:
    app, base, url = served
    engine = create_engine(url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            await set_rule(session, None, None, date(2026, 11, 20), RuleChange(
                working_weekdays="123456", day_start=time(10), day_end=time(19)),
                today=date(2026, 11, 20))
    finally:
        await engine.dispose()
    ami = ReplayedAmi([("Success", "4", 0.0)])
    app[CLICK_TO_CALL].ami = lambda *_: ami
    with pinned_clock(datetime.fromisoformat("2026-11-21T18:30:00+03:00")):  # a Saturday
        status, body, _ = await post(base, "/api/ct/callback", {
            "site": "shop.example", "phone": "+79167770044"})
    assert (status, body["status"]) == (201, "calling"), body
    with pinned_clock(datetime.fromisoformat("2026-11-22T09:30:00+03:00")):  # Sunday
        status, body, _ = await post(base, "/api/ct/callback", {
            "site": "shop.example", "phone": "+79167770055"})
    assert (status, body["status"]) == (201, "off_hours"), body
    waiting = [lead for lead in await rows(url, CtLead) if lead.phone == "+79167770055"]
    [task] = await rows(url, Task, Task.id == waiting[0].task_id)
    assert task.due_at is not None
    assert task.due_at.isoformat() == "2026-11-23T07:15:00+00:00"  # Monday 10:15 in Moscow


async def test_the_settings_override_hours_and_weekdays_not_holidays(db_url: str,
                                                                     tmp_path: Path) -> None:
    await seed_world(db_url, tmp_path / "recordings")
    engine = create_engine(db_url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            await add_holiday(session, None, date(2026, 11, 23), "Праздник")
            calendar = await callback_policy(session, "Europe/Moscow",
                                             datetime(2026, 11, 21, 9, tzinfo=UTC))
            overridden = await callback_policy(
                session, "Europe/Moscow", datetime(2026, 11, 21, 9, tzinfo=UTC),
                hours=(time(0), time.max), days=frozenset(range(7)))
    finally:
        await engine.dispose()
    saturday_noon = datetime(2026, 11, 21, 9, tzinfo=UTC)
    assert not calendar.working(saturday_noon) and overridden.working(saturday_noon)
    monday = datetime(2026, 11, 23, 9, tzinfo=UTC)
    assert not calendar.working(monday) and not overridden.working(monday)
    # Friday after hours: the task is due on Tuesday morning, the holiday skipped
    due = calendar.due(datetime(2026, 11, 20, 19, tzinfo=UTC))
    assert due.isoformat() == "2026-11-24T06:15:00+00:00"
