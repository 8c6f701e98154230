"""The company card: requisites checked, one number one client, people archived, all audited;
and the «Заполните карточку» task of a lead an unknown caller created."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from crm_core.audit import AuditLog
from crm_core.calls.services import record_call
from crm_core.calls.snapshot import CallData, LegData
from crm_core.clients.cards import (
    add_contact,
    check_inn,
    check_kpp,
    create_company,
    edit_company,
    edit_contact,
)
from crm_core.clients.models import Client, Contact
from crm_core.errors import ConflictError, DomainError
from crm_core.people.users import add_user
from crm_core.tasks.leads import close_card_tasks
from crm_core.tasks.models import Task
from telecrm.wiring import call_hooks
from tests.support.db_fixtures import (  # noqa: F401
    db_session_fixture,
    db_url_fixture,
)

HOOKS = call_hooks()


@pytest.mark.parametrize("inn", ["7707083893", "7736207543", "500100732259", " 7707 083893 "])
def test_valid_inn(inn: str) -> None:
    assert check_inn(inn) == inn.replace(" ", "")


@pytest.mark.parametrize("inn", ["7707083894", "500100732258", "772771285046", "12345",
                                 "77070838931", "77070838a3", "７７０７０８３８９３"])
def test_inn_with_wrong_length_or_check_digits_is_refused(inn: str) -> None:
    with pytest.raises(DomainError) as refused:
        check_inn(inn)
    assert refused.value.code == "clients.inn_invalid"


def test_kpp() -> None:
    assert check_kpp("773601001") == "773601001"
    assert check_kpp("7736ab001") == "7736AB001"
    assert check_kpp("") is None
    for bad in ("77360100", "7736010011", "АБВГ01001"):
        with pytest.raises(DomainError):
            check_kpp(bad)


async def _load(session: AsyncSession, client_id: int) -> Client:
    return await session.scalar(
        select(Client).where(Client.id == client_id).execution_options(populate_existing=True)
        .options(selectinload(Client.phones), selectinload(Client.emails),
                 selectinload(Client.contacts).selectinload(Contact.phones),
                 selectinload(Client.contacts).selectinload(Contact.emails)))


async def _audit(session: AsyncSession, entity: str, entity_id: int) -> list[dict[str, Any]]:
    rows = await session.scalars(select(AuditLog).where(
        AuditLog.entity == entity, AuditLog.entity_id == entity_id).order_by(AuditLog.id))
    return [{"action": r.action, "actor": r.actor, "user_id": r.user_id, **r.changes}
            for r in rows]


async def test_create_and_edit_a_company_with_people_all_audited(
        db_session: AsyncSession) -> None:
    ivan = await add_user(db_session, "ivan", name="Иван", extension="101")
    client = await create_company(
        db_session, name="  ООО   «Ромашка» ", phones=["8 (926) 555-00-99"],
        emails=["Info@Romashka.RU"],
        details={"inn": "7707083893", "kpp": "773601001", "site": "romashka.ru",
                 "industry": "Производство", "region": "Москва", "found_via": "Выставка",
                 "legal_address": "Москва, ул. Ленина, 1", "comment": "Крупный завод"},
        owner_id=ivan.id, by=ivan, actor="ivan")
    await db_session.commit()
    client = await _load(db_session, client.id)
    assert client.name == "ООО «Ромашка»" and client.name_key == "ооо «ромашка»"
    assert (client.inn, client.kpp, client.site, client.found_via) == (
        "7707083893", "773601001", "romashka.ru", "Выставка")
    assert [p.e164 for p in client.phones] == ["+79265550099"]
    assert [m.address for m in client.emails] == ["info@romashka.ru"]
    [created] = await _audit(db_session, "client", client.id)
    assert created["action"] == "create" and created["user_id"] == ivan.id
    assert created["inn"] == "7707083893" and created["phones"] == ["+79265550099"]

    person = await add_contact(db_session, client, name="Пётр Сидоров", position="Директор",
                               phones=["+7 916 000-11-22"], emails=["petr@romashka.ru"],
                               by=ivan, actor="ivan")
    await db_session.commit()
    client = await _load(db_session, client.id)
    [contact] = client.contacts
    assert contact.id == person.id and contact.position == "Директор"
    assert [p.e164 for p in contact.phones] == ["+79160001122"]
    assert [m.address for m in contact.emails] == ["petr@romashka.ru"]
    # the company keeps its own number; the person's is his, not the company's
    assert sorted((p.e164, p.contact_id) for p in client.phones) == [
        ("+79160001122", contact.id), ("+79265550099", None)]

    changes = await edit_company(
        db_session, client, name="ООО «Ромашка-Плюс»", phones=["+7 495 111-00-01"],
        emails=[], details={"inn": "", "region": "Тверь"}, by=ivan, actor="ivan")
    await db_session.commit()
    assert changes["name"] == ["ООО «Ромашка»", "ООО «Ромашка-Плюс»"]
    assert changes["phones_added"] == ["+74951110001"]
    assert changes["phones_removed"] == ["+79265550099"]
    assert changes["emails_removed"] == ["info@romashka.ru"]
    assert changes["inn"] == ["7707083893", None] and changes["region"] == ["Москва", "Тверь"]
    client = await _load(db_session, client.id)
    assert sorted(p.e164 for p in client.phones) == ["+74951110001", "+79160001122"]
    assert [m.address for m in client.emails] == ["petr@romashka.ru"]  # the person's stays
    assert (await _audit(db_session, "client", client.id))[-1]["phones_removed"] == [
        "+79265550099"]

    # nothing changed: nothing written
    assert await edit_company(db_session, client, name="ООО «Ромашка-Плюс»", by=ivan,
                              actor="ivan") == {}
    changes = await edit_contact(db_session, client, contact, name="Пётр Сидоров",
                                 position="Генеральный директор",
                                 phones=["+7 916 000-11-22", "8 903 777 66 55"], emails=[],
                                 by=ivan, actor="ivan")
    await db_session.commit()
    assert changes == {"position": ["Директор", "Генеральный директор"],
                       "phones_added": ["+79037776655"], "emails_removed": ["petr@romashka.ru"]}
    history = await _audit(db_session, "contact", contact.id)
    assert [h["action"] for h in history] == ["create", "update"]
    assert history[1]["client_id"] == client.id


async def test_a_number_another_client_has_is_refused_with_his_name(
        db_session: AsyncSession) -> None:
    await create_company(db_session, name="АО Вектор", phones=["+79265550011"], owner_id=None,
                         by=None, actor="t")
    other_id = (await create_company(db_session, name="ИП Сидоров", phones=["+79031234567"],
                                     owner_id=None, by=None, actor="t")).id
    await db_session.commit()
    before = await db_session.scalar(select(func.count()).select_from(Client))
    with pytest.raises(ConflictError) as refused:
        await create_company(db_session, name="Дубль", phones=["8 926 555-00-11"],
                             owner_id=None, by=None, actor="t")
    assert refused.value.code == "clients.phone_taken"
    assert refused.value.params == {"client": "АО Вектор", "phone": "+7 926 555-00-11"}
    await db_session.rollback()
    assert await db_session.scalar(select(func.count()).select_from(Client)) == before

    other = await _load(db_session, other_id)
    for attempt in (
            edit_company(db_session, other, phones=["+7 926 555 00 11"], by=None, actor="t"),
            add_contact(db_session, other, name="Анна", phones=["89265550011"], by=None,
                        actor="t")):
        with pytest.raises(ConflictError) as refused:
            await attempt
        assert refused.value.params["client"] == "АО Вектор"
        await db_session.rollback()
        other = await _load(db_session, other_id)
    # an archived client's number is free again
    vector = await db_session.scalar(select(Client).where(Client.name == "АО Вектор"))
    vector.archived_at = datetime.now(UTC)
    await db_session.commit()
    await edit_company(db_session, other, phones=["+79031234567", "+79265550011"], by=None,
                       actor="t")
    await db_session.commit()
    # its own number twice is one number
    assert sorted(p.e164 for p in (await _load(db_session, other_id)).phones) == [
        "+79031234567", "+79265550011"]


@pytest.mark.parametrize(("field", "value", "code"), [
    ("name", "   ", "clients.name_required"),
    ("phones", ["101"], "clients.phone_extension"),
    ("phones", ["1"], "clients.phone_invalid"),
    ("emails", ["not-an-address"], "clients.email_invalid"),
    ("inn", "1234567890", "clients.inn_invalid"),
    ("site", "x" * 301, "clients.too_long"),
])
async def test_bad_input_is_refused_with_its_code(db_session: AsyncSession, field: str,
                                                  value: Any, code: str) -> None:
    kwargs: dict[str, Any] = {"name": "ООО Ромашка", "owner_id": None, "by": None,
                              "actor": "t"}
    if field in ("name", "phones", "emails"):
        kwargs[field] = value
    else:
        kwargs["details"] = {field: value}
    with pytest.raises(DomainError) as refused:
        await create_company(db_session, **kwargs)
    assert refused.value.code == code


# -- the lead's «Заполните карточку» task ------------------------------------------------------


def _inbound(linkedid: str, number: str, status: str, start: datetime) -> CallData:
    answered = status == "answered"
    ended = None if status == "in_progress" else start + timedelta(seconds=60)
    talk = 57.0 if answered else 0.0
    return CallData(
        linkedid=linkedid, direction="inbound", status=status, client_number=number,
        did="+74951110001", started_at=start,
        answered_at=start + timedelta(seconds=3) if answered else None,
        ended_at=ended, ring_seconds=3.0, talk_seconds=talk, transferred=False,
        managers=("101",) if answered else (), recordings=(),
        legs=tuple(LegData(uniqueid=f"{linkedid}-{role[0]}", channel=channel, role=role,
                           extension=ext, started_at=start,
                           answered_at=start + timedelta(seconds=3) if answered else None,
                           ended_at=ended, talk_seconds=talk)
                   for role, channel, ext in (("client", "PJSIP/carrier-1", None),
                                              ("manager", "PJSIP/101-1", "101"))),
        rang=("101",))


async def _tasks(session: AsyncSession) -> list[Task]:
    return list(await session.scalars(select(Task).order_by(Task.id)
                                      .execution_options(populate_existing=True)))


@pytest.mark.clock("2026-11-20T12:00:00+03:00")
async def test_an_unknown_caller_leaves_a_lead_and_a_task_to_fill_its_card(
        db_session: AsyncSession) -> None:
    ivan = await add_user(db_session, "ivan", name="Иван", extension="101", team="Продажи")
    await db_session.commit()
    start = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)  # 11:00 in Moscow
    ringing = _inbound("lead.1", "8 926 555-00-99", "in_progress", start)
    await record_call(db_session, ringing, hooks=HOOKS)
    await db_session.commit()
    assert await _tasks(db_session) == []  # the owner is settled when the call ends
    ended = _inbound("lead.1", "8 926 555-00-99", "answered", start)
    for _ in range(2):  # a replay makes no second task
        call = await record_call(db_session, ended, hooks=HOOKS)
        await db_session.commit()
    [task] = await _tasks(db_session)
    lead = await db_session.get(Client, call.client_id)
    assert lead is not None and lead.name == "+7 926 555-00-99"
    assert task.title == "Заполните карточку: +7 926 555-00-99"
    assert (task.kind, task.status, task.client_id, task.call_id) == ("other", "open", lead.id,
                                                                      call.id)
    assert (task.assignee_id, task.team_id) == (ivan.id, ivan.team_id)
    assert task.due_at == start + timedelta(seconds=60) + timedelta(hours=1)

    # a second call from the now known number and an outbound call to a new one: no task
    await record_call(db_session, _inbound("lead.2", "+79265550099", "missed",
                                           start + timedelta(hours=1)), hooks=HOOKS)
    outbound = _inbound("out.1", "+79031112233", "answered", start + timedelta(hours=2))
    await record_call(db_session, CallData(**{**outbound.__dict__, "direction": "outbound"}),
                      hooks=HOOKS)
    await db_session.commit()
    assert [t.kind for t in await _tasks(db_session)] == ["other", "callback"]

    # filling the card in closes it
    await close_card_tasks(db_session, lead.id, user_id=ivan.id, actor="ivan")
    await db_session.commit()
    tasks = await _tasks(db_session)
    assert [(t.kind, t.status) for t in tasks] == [("other", "done"), ("callback", "open")]
    assert tasks[0].note == "Карточка заполнена"


async def test_a_lead_named_during_the_call_gets_no_task(db_session: AsyncSession) -> None:
    await add_user(db_session, "ivan", name="Иван", extension="101")
    await db_session.commit()
    start = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    call = await record_call(db_session, _inbound("lead.3", "+79265550077", "in_progress",
                                                  start), hooks=HOOKS)
    lead = await _load(db_session, call.client_id)
    await edit_company(db_session, lead, name="ООО Новый", by=None, actor="t")
    await db_session.commit()
    await record_call(db_session, _inbound("lead.3", "+79265550077", "answered", start),
                      hooks=HOOKS)
    await db_session.commit()
    assert await _tasks(db_session) == []

