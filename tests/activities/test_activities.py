"""Notes, logged contacts, call outcomes and the timeline, as services, on SQLite and
PostgreSQL.

A logged e-mail or meeting is a contact exactly as an answered call is: it keeps the
client's last contact, saves a lost client, keeps him off the abandoned list of the
contact-frequency report (ЧЧК, the current period and a past one), counts in the
summary's funnel and in the activity report. The figures are the hand-computed November
2026 of tests/sales/test_sales_reports.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.activities.models import ClientActivity
from crm_core.activities.notes import add_note, archive_activity, log_contact
from crm_core.activities.outcomes import (
    add_outcome,
    archive_outcome,
    missing_outcomes,
    outcome_list,
    rename_outcome,
    set_call_outcome,
)
from crm_core.activities.timeline import client_timeline, timeline_page
from crm_core.audit import AuditLog
from crm_core.calls.models import Call
from crm_core.calls.services import record_call
from crm_core.calls.snapshot import CallData, LegData
from crm_core.clients.models import Client
from crm_core.clients.services import create_client
from crm_core.errors import ConflictError, DomainError, NotAllowedError
from crm_core.people.models import User
from crm_core.people.users import add_user
from crm_core.sales.client_status import recompute_all, recompute_client
from crm_core.sales.clients import reassign_clients
from crm_core.sales.deals import StageSpec, add_lose_reason, create_deal, create_pipeline, move_deal
from crm_core.sales.models import Payment
from crm_core.sales.payments import record_invoice, record_payment
from crm_core.sales.reports import REPORTS
from crm_core.sales.tasks import NextTask, finish_task, plan_task
from telecrm.wiring import call_hooks
from tests.sales.test_sales_reports import END, MSK, START, _seed, by_name, utc
from tests.support.db_fixtures import db_session_fixture, db_url_fixture  # noqa: F401

HOOKS = call_hooks()
NOW = "2026-11-20T12:00:00+03:00"  # a Friday noon


async def _floor(s: AsyncSession) -> dict[str, User]:
    return {
        "boss": await add_user(s, "boss", name="Мария", role="supervisor", extension="201",
                               team="Продажи"),
        "ivan": await add_user(s, "ivan", name="Иван", role="manager", extension="101",
                               team="Продажи"),
        "olga": await add_user(s, "olga", name="Ольга", role="manager", extension="102",
                               team="Продажи"),
        "kuz": await add_user(s, "kuz", name="Кузьма", role="manager", extension="103",
                              team="Второй"),
    }


def _call(linkedid: str, direction: str, status: str, start: datetime,
          talkers: dict[str, float], number: str = "+79161234567") -> CallData:
    """A call with the client; ``talkers``: each manager's extension and talk seconds."""
    answered = status == "answered"
    end = start + timedelta(seconds=max(talkers.values(), default=0) + 5)
    legs = [LegData(f"{linkedid}-c", "PJSIP/trunk-1", "client", None, start,
                    start if answered else None, end, max(talkers.values(), default=0))]
    legs += [LegData(f"{linkedid}-{ext}", f"PJSIP/{ext}-1", "manager", ext, start,
                     start if talk or direction == "outbound" else None, end, talk)
             for ext, talk in talkers.items()]
    return CallData(linkedid=linkedid, direction=direction, status=status,
                    client_number=None if direction == "internal" else number, did=None,
                    started_at=start, answered_at=start if answered else None, ended_at=end,
                    ring_seconds=2, talk_seconds=max(talkers.values(), default=0),
                    transferred=len(talkers) > 1,
                    managers=tuple(e for e, t in talkers.items() if t), recordings=(),
                    legs=tuple(legs), rang=tuple(talkers))


# -- notes -------------------------------------------------------------------------------------


@pytest.mark.clock(NOW)
async def test_notes_are_audited_and_archived_never_deleted(db_session: AsyncSession) -> None:
    u = await _floor(db_session)
    client = await create_client(db_session, "ООО Ромашка", owner_id=u["ivan"].id, actor="t")
    with pytest.raises(DomainError) as empty:
        await add_note(db_session, client.id, "  ", by=u["ivan"])
    assert empty.value.code == "activities.empty_note"
    with pytest.raises(DomainError) as long:
        await add_note(db_session, client.id, "я" * 4001, by=u["ivan"])
    assert long.value.code == "activities.too_long" and long.value.params == {"limit": 4000}
    note = await add_note(db_session, client.id, "  Секретарь — Анна, любит звонки до 11  ",
                          by=u["ivan"])
    assert note.text == "Секретарь — Анна, любит звонки до 11" and note.user_id == u["ivan"].id
    with pytest.raises(NotAllowedError):
        await archive_activity(db_session, note, by=u["olga"])
    await archive_activity(db_session, note, by=u["boss"], reason="дубль")
    assert note.archived_at is not None and note.archived_by_id == u["boss"].id
    assert await db_session.get(ClientActivity, note.id) is not None, "never deleted"
    assert [e["kind"] for e in await client_timeline(db_session, client.id)] == []
    audit = (await db_session.scalars(select(AuditLog.changes).where(
        AuditLog.entity == "client_activity", AuditLog.entity_id == note.id)
        .order_by(AuditLog.id))).all()
    assert audit[0]["text"] == note.text and audit[1]["reason"] == "дубль"
    # the client's status is untouched by a note: it is not a contact
    assert client.last_contact_at is None


# -- logged contacts count as contacts ------------------------------------------------------------


@pytest.mark.clock(NOW)
async def test_a_logged_meeting_saves_a_lost_client_until_it_is_taken_back(
        db_session: AsyncSession) -> None:
    u = await _floor(db_session)
    ivan = u["ivan"]
    client = await create_client(db_session, "ООО Ромашка", owner_id=ivan.id, actor="t")
    today = date(2026, 11, 20)
    await record_payment(db_session, client=client.id, amount=1000,
                         paid_on=today - timedelta(days=300), today=today)
    await recompute_client(db_session, client, actor="nightly")
    assert client.status == "lost"
    with pytest.raises(DomainError) as future:
        await log_contact(db_session, client.id, "meeting", "Встреча", by=ivan,
                          at=datetime.now(UTC) + timedelta(hours=1))
    assert future.value.code == "activities.in_future"
    with pytest.raises(DomainError) as kind:
        await log_contact(db_session, client.id, "note", "Заметка", by=ivan)
    assert kind.value.code == "activities.unknown_kind"
    held = datetime(2026, 11, 19, 15, 0, tzinfo=MSK)
    meeting = await log_contact(db_session, client.id, "meeting", "Договорились о пилоте",
                                by=ivan, at=held, people="Директор, главбух")
    assert client.status == "regular" and client.last_contact_at == held
    # the nightly run judges the same from the logged contact
    assert (await recompute_all(db_session))["changed"] == 0
    # an e-mail logged later but sent earlier does not move the last contact back
    await log_contact(db_session, client.id, "email_out", "КП", by=ivan,
                      at=held - timedelta(days=3))
    assert client.last_contact_at == held
    await archive_activity(db_session, meeting, by=ivan)
    assert client.last_contact_at == held - timedelta(days=3), "the e-mail remains"
    assert client.status == "regular"
    mail = (await db_session.scalars(select(ClientActivity).where(
        ClientActivity.kind == "email_out"))).one()
    await archive_activity(db_session, mail, by=u["boss"])
    assert client.last_contact_at is None and client.status == "lost"


@pytest.mark.clock("2026-11-28T12:00:00+03:00")  # November not over: the kept last contact
async def test_contact_frequency_counts_logged_contacts_now(db_session: AsyncSession) -> None:
    u = await _seed(db_session)
    before = by_name(await REPORTS["contact-frequency"](db_session, START, END, None))
    assert before["Ольга"]["abandoned"] == 1 and before["Кузьма"]["abandoned"] == 1
    # Дельта (olga, B: every 14 days) last talked on 11-10; an e-mail on 11-20 is a contact
    await log_contact(db_session, 4, "email_in", "Запрос счёта", by=u["olga"],
                      at=utc(2026, 11, 20, 9))
    # Эпсилон (kuz) never talked: a meeting on 11-25 is his first contact
    await log_contact(db_session, 5, "meeting", "Знакомство", by=u["kuz"],
                      at=utc(2026, 11, 25, 9))
    after = by_name(await REPORTS["contact-frequency"](db_session, START, END, None))
    assert after["Ольга"]["abandoned"] == 0 and after["Кузьма"]["abandoned"] == 0
    assert after["Иван"]["abandoned"] == before["Иван"]["abandoned"] == 1
    assert after["Ольга"]["calls"] == 1, "calls stay calls"


@pytest.mark.clock("2026-12-10T12:00:00+03:00")  # the periods are over: looked up in the past
async def test_contact_frequency_of_a_past_period_counts_logged_contacts(
        db_session: AsyncSession) -> None:
    u = await _seed(db_session)
    october = (datetime(2026, 10, 1, tzinfo=MSK), START)
    assert by_name(await REPORTS["contact-frequency"](db_session, *october, None))[
        "Иван"]["abandoned"] == 1  # Альфа (A, every 7 days): no contact before 10-31
    # a meeting after the period's end does not count for it
    await log_contact(db_session, 1, "meeting", "Встреча", by=u["ivan"],
                      at=utc(2026, 11, 2, 9))
    assert by_name(await REPORTS["contact-frequency"](db_session, *october, None))[
        "Иван"]["abandoned"] == 1
    await log_contact(db_session, 1, "meeting", "Презентация", by=u["ivan"],
                      at=utc(2026, 10, 28, 9))
    ivan = by_name(await REPORTS["contact-frequency"](db_session, *october, None))["Иван"]
    assert (ivan["clients"], ivan["abandoned"]) == (2, 0)
    # November: Бета (C, every 30 days) last talked on 10-20; an e-mail on 11-03 saves him
    assert by_name(await REPORTS["contact-frequency"](db_session, START, END, None))[
        "Иван"]["abandoned"] == 1
    await log_contact(db_session, 2, "email_out", "Письмо", by=u["ivan"],
                      at=utc(2026, 11, 3, 9))
    assert by_name(await REPORTS["contact-frequency"](db_session, START, END, None))[
        "Иван"]["abandoned"] == 0


@pytest.mark.clock("2026-12-10T12:00:00+03:00")
async def test_the_summary_and_the_activity_report_count_logged_contacts(
        db_session: AsyncSession) -> None:
    u = await _seed(db_session)
    ivan = u["ivan"]
    # Дзета paid 2026-05-01 only: lost at the end of November, unless contacted since 06-04
    zeta = Client(id=6, name="Дзета", owner_id=ivan.id, status="lost",
                  created_at=utc(2026, 4, 1), owner_since=utc(2026, 4, 1))
    db_session.add(zeta)
    await db_session.flush()
    db_session.add(Payment(client_id=6, amount=Decimal(1000), paid_on=date(2026, 5, 1)))
    await db_session.flush()

    def lost(body: dict) -> int:
        return next(r["clients"] for r in body["rows"] if r["status"] == "lost")

    assert lost(await REPORTS["summary"](db_session, START, END, None)) == 1
    await log_contact(db_session, 6, "meeting", "Вернули клиента", by=ivan,
                      at=utc(2026, 11, 15, 9))
    # a call after the period's end is his last contact now; November still has the meeting
    zeta.last_contact_at = utc(2026, 12, 3, 9)
    await db_session.flush()
    assert lost(await REPORTS["summary"](db_session, START, END, None)) == 0

    await log_contact(db_session, 1, "email_out", "КП", by=ivan, at=utc(2026, 11, 2, 9))
    await log_contact(db_session, 1, "email_in", "Ответ", by=ivan, at=utc(2026, 11, 3, 9))
    taken_back = await log_contact(db_session, 1, "meeting", "Ошибка", by=ivan,
                                   at=utc(2026, 11, 4, 9))
    await archive_activity(db_session, taken_back, by=ivan)
    await add_note(db_session, 1, "Заметка — не контакт", by=ivan)
    await log_contact(db_session, 1, "email_out", "Декабрь", by=ivan, at=utc(2026, 12, 2, 9))
    row = by_name(await REPORTS["activity"](db_session, START, END, None))["Иван"]
    # e-mails: the done e-mail task of the seed and two logged ones; meetings: Дзета's
    assert (row["emails"], row["meetings"], row["tasks_done"]) == (3, 1, 1)


# -- call outcomes -------------------------------------------------------------------------------


@pytest.mark.clock(NOW)
async def test_the_outcome_list_and_a_calls_outcome(db_session: AsyncSession) -> None:
    u = await _floor(db_session)
    boss, ivan = u["boss"], u["ivan"]
    first = [o.name for o in await outcome_list(db_session)]
    assert first == ["Договорились о встрече", "Отправить КП", "Перезвонить", "Отказ",
                     "Не дозвонился"], "the migration starts the list with the usual ones"
    with pytest.raises(NotAllowedError):
        await add_outcome(db_session, "Спам", by=ivan)
    spam = await add_outcome(db_session, "  Спам  ", by=boss)
    assert spam.name == "Спам" and [o.name for o in await outcome_list(db_session)][-1] == "Спам"
    with pytest.raises(ConflictError):
        await add_outcome(db_session, "СПАМ", by=boss)
    with pytest.raises(ConflictError):
        await rename_outcome(db_session, spam.id, "отказ", by=boss)
    await rename_outcome(db_session, spam.id, "Нецелевой", by=boss)

    await create_client(db_session, "ООО Ромашка", phones=["+79161234567"],
                        owner_id=ivan.id, actor="t")
    start = datetime(2026, 11, 20, 10, tzinfo=MSK)
    call = await record_call(db_session, _call("o-1", "inbound", "answered", start,
                                               {"101": 60.0}), hooks=HOOKS)
    result = await set_call_outcome(db_session, call, spam.id, "  спросили не нас ", by=ivan)
    assert (result.outcome_id, result.note) == (spam.id, "спросили не нас")
    await archive_outcome(db_session, spam.id, by=boss)
    assert "Нецелевой" not in [o.name for o in await outcome_list(db_session)]
    # the call keeps its archived outcome (a note may change); a new answer needs a listed one
    await set_call_outcome(db_session, call, spam.id, "уточнение", by=ivan)
    refuse = next(o for o in await outcome_list(db_session) if o.name == "Отказ")
    await set_call_outcome(db_session, call, refuse.id, None, by=ivan)
    with pytest.raises(DomainError) as archived:
        await set_call_outcome(db_session, call, spam.id, None, by=ivan)
    assert archived.value.params == {"name": "Нецелевой"}
    assert call.client_id is not None
    [entry] = [e for e in await client_timeline(db_session, call.client_id)
               if e["kind"] == "call"]
    assert (entry["outcome"], entry["outcome_note"], entry["outcome_by_name"]) == (
        "Отказ", None, "Иван")
    inside = await record_call(db_session, _call("o-2", "internal", "answered", start,
                                                 {"101": 10.0, "102": 10.0}), hooks=HOOKS)
    with pytest.raises(DomainError):
        await set_call_outcome(db_session, inside, refuse.id, None, by=ivan)


@pytest.mark.clock(NOW)
async def test_calls_without_an_outcome_per_manager(db_session: AsyncSession) -> None:
    u = await _floor(db_session)
    ivan, olga, kuz = u["ivan"], u["olga"], u["kuz"]
    await create_client(db_session, "ООО Ромашка", phones=["+79161234567"], owner_id=ivan.id,
                        actor="t")
    t = datetime(2026, 11, 20, 9, tzinfo=MSK)
    calls = {}
    for name, data in {
        "answered_in": _call("m-1", "inbound", "answered", t, {"101": 60.0}),
        "missed_in": _call("m-2", "inbound", "missed", t + timedelta(minutes=1), {"101": 0.0}),
        "no_answer_out": _call("m-3", "outbound", "no_answer", t + timedelta(minutes=2),
                               {"102": 0.0}),
        "transferred": _call("m-4", "inbound", "answered", t + timedelta(minutes=3),
                             {"101": 30.0, "102": 40.0}),
        "internal": _call("m-5", "internal", "answered", t + timedelta(minutes=4),
                          {"101": 5.0, "103": 5.0}),
        "yesterday": _call("m-6", "outbound", "answered", t - timedelta(days=1),
                           {"103": 20.0}),
    }.items():
        calls[name] = await record_call(db_session, data, hooks=HOOKS)
    day = (datetime(2026, 11, 20, tzinfo=MSK), datetime(2026, 11, 21, tzinfo=MSK))
    counts, listed = await missing_outcomes(db_session, [ivan, olga, kuz], *day)
    assert {c.user.username: (c.calls, c.missing) for c in counts} == {
        "ivan": (2, 2), "olga": (2, 2), "kuz": (0, 0)}
    assert [c["id"] for c in listed] == [calls["transferred"].id, calls["no_answer_out"].id,
                                         calls["answered_in"].id]
    assert listed[0]["managers"] == ["Иван", "Ольга"] and listed[0]["client_name"] == \
        "ООО Ромашка"
    meeting = (await outcome_list(db_session))[0]
    await set_call_outcome(db_session, calls["transferred"], meeting.id, None, by=olga)
    counts, listed = await missing_outcomes(db_session, [ivan, olga, kuz], *day,
                                            manager_id=olga.id)
    assert {c.user.username: c.missing for c in counts} == {"ivan": 1, "olga": 1, "kuz": 0}
    assert [c["id"] for c in listed] == [calls["no_answer_out"].id]
    # one's team only: the rows are the managers given
    counts, _ = await missing_outcomes(db_session, [kuz], day[0] - timedelta(days=1), day[1])
    assert [(c.user.username, c.calls, c.missing) for c in counts] == [("kuz", 1, 1)]


# -- the timeline --------------------------------------------------------------------------------


@pytest.mark.clock(NOW)
async def test_the_timeline_has_everything_newest_first(db_session: AsyncSession) -> None:
    u = await _floor(db_session)
    boss, ivan, olga = u["boss"], u["ivan"], u["olga"]
    client = await create_client(db_session, "ООО Ромашка", phones=["+79161234567"],
                                 owner_id=ivan.id, actor="t")
    call = await record_call(db_session, _call("t-1", "outbound", "answered",
                                               datetime(2026, 11, 20, 9, tzinfo=MSK),
                                               {"101": 95.0}), hooks=HOOKS)
    await set_call_outcome(db_session, call, (await outcome_list(db_session))[0].id,
                           "в среду в офисе", by=ivan)
    task = await plan_task(db_session, client_id=client.id, kind="call", by=ivan,
                           due_at=datetime(2026, 11, 20, 11, tzinfo=MSK))
    await finish_task(db_session, task, by=ivan, note="Договорились о демо",
                      next_task=NextTask("meeting", datetime(2026, 11, 25, 11, tzinfo=MSK)))
    pipeline = await create_pipeline(db_session, "B2B", [StageSpec.parse(s) for s in (
        "Квалификация:call:1", "КП:email:3", "Выиграна:won", "Проиграна:lost")], by=boss)
    await add_lose_reason(db_session, "Дорого", by=boss)
    deal = await create_deal(db_session, client_id=client.id, pipeline_id=pipeline.id,
                             title="Поставка 2027", amount="1 250 000", by=ivan)
    stages = {s.position: s for s in await pipeline.awaitable_attrs.stages}
    await move_deal(db_session, deal, stages[2].id, by=ivan)
    await record_invoice(db_session, client=client.id, number="С-17", amount="500000",
                         issued_on="2026-11-20", user_id=ivan.id)
    await record_payment(db_session, client=client.id, amount="200000", paid_on="2026-11-20",
                         invoice="С-17", user_id=boss.id)
    await add_note(db_session, client.id, "Секретарь — Анна", by=ivan)
    await log_contact(db_session, client.id, "email_out", "КП отправлено", by=ivan,
                      people="anna@romashka.ru")
    await log_contact(db_session, client.id, "meeting", "Показали демо", by=ivan,
                      people="Директор")
    await reassign_clients(db_session, [client.id], olga.id, by=boss, reason="отпуск")

    entries = await client_timeline(db_session, client.id)
    kinds = [e["kind"] for e in entries]
    moments = [datetime.fromisoformat(e["at"]) for e in entries]
    assert moments == sorted(moments, reverse=True), "newest first"
    assert kinds[0] == "owner" and kinds[-1] == "call"
    assert set(kinds) == {"call", "task", "deal", "invoice", "payment", "status", "note",
                          "email", "meeting", "owner"}
    by_kind = {k: [e for e in entries if e["kind"] == k] for k in set(kinds)}
    assert by_kind["call"][0]["outcome"] == "Договорились о встрече"
    assert by_kind["call"][0]["outcome_note"] == "в среду в офисе"
    [done] = by_kind["task"]
    assert (done["status"], done["result"], done["by_name"]) == ("done", "Договорились о демо",
                                                                 "Иван")
    assert [(d["event"], d["to_stage"], d["amount"]) for d in by_kind["deal"]] == [
        ("moved", "КП", "1250000.00"), ("created", "Квалификация", "1250000.00")]
    [invoice] = by_kind["invoice"]
    assert (invoice["number"], invoice["amount"], invoice["paid_amount"], invoice["status"],
            invoice["issued_on"], invoice["by_name"]) == (
        "С-17", "500000.00", "200000.00", "partly_paid", "2026-11-20", "Иван")
    [payment] = by_kind["payment"]
    assert (payment["invoice"], payment["amount"], payment["paid_on"], payment["by_name"]) == (
        "С-17", "200000.00", "2026-11-20", "Мария")
    assert by_kind["call"][0]["managers_names"] == ["Иван"], "who talked, by name"
    assert [(s["old"], s["new"]) for s in by_kind["status"]] == [("potential", "new")]
    assert (by_kind["owner"][0]["old_name"], by_kind["owner"][0]["new_name"],
            by_kind["owner"][0]["reason"]) == ("Иван", "Ольга", "отпуск")
    assert by_kind["email"][0]["activity"] == "email_out"
    assert {e["group"] for e in entries} == {"calls", "tasks", "deals", "money", "changes",
                                             "notes", "contacts"}
    # calls the viewer may not see stay out; everything else is the client's
    hidden = await client_timeline(db_session, client.id, calls_where=Call.id == -1)
    assert "call" not in {e["kind"] for e in hidden} and len(hidden) == len(entries) - 1
    assert client.last_contact_at is not None, "the e-mail and the meeting were contacts"

    # the card's pages: the newest `shown` entries of a filter, the same as the whole list's
    for group in (None, *sorted({e["group"] for e in entries})):
        whole = [e for e in entries if group is None or e["group"] == group]
        assert await client_timeline(db_session, client.id, group=group) == whole
        for shown in range(1, len(whole) + 2):
            page, more = await timeline_page(db_session, client.id, group=group, shown=shown)
            assert (page, more) == (whole[:shown], shown < len(whole)), (group, shown)
