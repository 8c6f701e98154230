"""The client card's routes, role by role (and anonymous), on SQLite and PostgreSQL.

Notes, logged contacts, the timeline, call outcomes and the calls still without one,
the card page and its live fragment, planning the next contact. Whoever may not open
the client gets 404, as if it did not exist; a role that may never do it, 403. The
seeded floor is tests/support/browser.py: petrov (101) and smirnova (102) with their
supervisor sokolova in «Отдел продаж», kuznetsov (103) in «Второй отдел», a marketer
and an admin; one client per manager, and four calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from crm_core.activities.models import CallResult, ClientActivity
from crm_core.audit import AuditLog
from crm_core.clients.models import Client
from crm_core.tasks.models import Task
from tests.support.db_fixtures import db_url_fixture  # noqa: F401
from tests.support.floor import Floor, served_floor

pytestmark = pytest.mark.calendar  # the seeded calls are an hour ago: make test-calendar

ROLES = ["petrov", "smirnova", "kuznetsov", "sokolova", "marketer", "admin"]
# who may open petrov's client (101): 201/200; 404: not his to see; 403: never (marketer)
ON_PETROVS = {"petrov": 201, "smirnova": 404, "kuznetsov": 404, "sokolova": 201,
              "marketer": 403, "admin": 201}


@pytest.fixture
async def floor(db_url: str, tmp_path: Path) -> AsyncIterator[Floor]:
    async with served_floor(Floor, db_url, tmp_path) as crm:
        yield crm


def _local(delta: timedelta) -> str:
    """A ``datetime-local`` value in the workday timezone (Moscow, UTC+3)."""
    return (datetime.now(UTC) + timedelta(hours=3) + delta).strftime("%Y-%m-%dT%H:%M")


async def test_notes_and_logged_contacts_by_role(floor: Floor) -> None:
    petrovs = floor.world.clients["101"]
    for who, status in ON_PETROVS.items():
        got, body = await floor.call(who, "POST", f"/api/clients/{petrovs}/notes",
                                     {"text": f"Заметка от {who}"})
        assert got == status, (who, body)
    assert (await floor.call(None, "POST", f"/api/clients/{petrovs}/notes", {"text": "x"}))[0] \
        == 401
    status, _ = await floor.call("petrov", "POST", f"/api/clients/{petrovs}/notes",
                                 {"text": "без токена"}, csrf=False)
    assert status == 403, "a change without the CSRF token is refused"
    status, body = await floor.call("petrov", "POST", f"/api/clients/{petrovs}/notes",
                                    {"text": "   "})
    assert status == 400 and body["error"] == "Напишите текст заметки."
    assert (await floor.call("petrov", "POST", f"/api/clients/{petrovs}/notes",
                             {"text": 5}))[0] == 400
    assert (await floor.call("petrov", "POST", "/api/clients/999999/notes",
                             {"text": "x"}))[0] == 404
    notes = await floor.rows(select(ClientActivity.text, ClientActivity.user_id)
                             .where(ClientActivity.kind == "note"))
    assert sorted(t for t, _ in notes) == ["Заметка от admin", "Заметка от petrov",
                                           "Заметка от sokolova"]
    audits = await floor.rows(select(AuditLog.actor).where(AuditLog.entity == "client_activity"))
    assert sorted(a for (a,) in audits) == ["admin", "petrov", "sokolova"]

    # a meeting and an e-mail: contacts; the client's last contact follows
    for who, status in ON_PETROVS.items():
        got, body = await floor.call(who, "POST", f"/api/clients/{petrovs}/activities", {
            "kind": "meeting", "at": _local(-timedelta(minutes=30)), "people": "Директор",
            "text": "Обсудили поставку"})
        assert got == status, (who, body)
    status, body = await floor.call("petrov", "POST", f"/api/clients/{petrovs}/activities", {
        "kind": "email_in", "at": _local(timedelta(days=1)), "text": "Письмо из будущего"})
    assert status == 400 and "в будущем" in body["error"]
    status, body = await floor.call("petrov", "POST", f"/api/clients/{petrovs}/activities", {
        "kind": "fax", "text": "Факс"})
    assert status == 400 and body["code"] == "activities.unknown_kind"
    status, body = await floor.call("petrov", "POST", f"/api/clients/{petrovs}/activities", {
        "kind": "email_out", "at": "вчера", "text": "КП"})
    assert status == 400
    status, mail = await floor.call("petrov", "POST", f"/api/clients/{petrovs}/activities", {
        "kind": "email_out", "people": "ivanov@romashka.ru", "text": "Отправил КП"})
    assert status == 201 and mail["kind"] == "email_out"
    [(last,)] = await floor.rows(select(Client.last_contact_at).where(Client.id == petrovs))
    assert last is not None and abs(last - datetime.fromisoformat(mail["happened_at"])) \
        < timedelta(seconds=1), "the e-mail is the client's last contact"

    # taking an entry back: its author or a supervisor; a manager who may not see it: 404
    status, boss_note = await floor.call("sokolova", "POST", f"/api/clients/{petrovs}/notes",
                                         {"text": "Заметка руководителя"})
    status, body = await floor.call("petrov", "POST",
                                    f"/api/activities/{boss_note['id']}/archive", {})
    assert status == 403 and body["error"] == "Убрать запись может её автор или руководитель."
    assert (await floor.call("smirnova", "POST", f"/api/activities/{boss_note['id']}/archive",
                             {}))[0] == 404
    assert (await floor.call("marketer", "POST", f"/api/activities/{boss_note['id']}/archive",
                             {}))[0] == 403
    status, body = await floor.call("petrov", "POST", f"/api/activities/{mail['id']}/archive",
                                    {"reason": "не тому клиенту"})
    assert status == 200 and body["archived_at"]
    assert (await floor.call("sokolova", "POST",
                             f"/api/activities/{boss_note['id']}/archive", {}))[0] == 200
    kept = await floor.rows(select(ClientActivity.id).where(
        ClientActivity.id.in_([mail["id"], boss_note["id"]]),
        ClientActivity.archived_at.is_not(None)))
    assert len(kept) == 2, "archived, never deleted"


async def test_timeline_by_role(floor: Floor) -> None:
    petrovs = floor.world.clients["101"]
    await floor.call("petrov", "POST", f"/api/clients/{petrovs}/notes", {"text": "Любит чай"})
    expected = {"petrov": 200, "smirnova": 404, "kuznetsov": 404, "sokolova": 200,
                "marketer": 403, "admin": 200}
    for who, status in expected.items():
        got, _ = await floor.call(who, "GET", f"/api/clients/{petrovs}/timeline")
        assert got == status, who
        page, _ = await floor.call(who, "GET", f"/clients/{petrovs}/history")
        assert page == status, (who, "the live fragment agrees with the API")
    status, body = await floor.call("petrov", "GET", f"/api/clients/{petrovs}/timeline")
    kinds = [e["kind"] for e in body["entries"]]
    assert kinds[0] == "note" and kinds.count("call") == 2
    assert body["entries"][0]["text"] == "Любит чай"
    assert body["entries"][0]["by_name"] == "Иван Петров"
    status, body = await floor.call("petrov", "GET",
                                    f"/api/clients/{petrovs}/timeline?group=calls")
    assert {e["kind"] for e in body["entries"]} == {"call"}
    assert (await floor.call("petrov", "GET",
                             f"/api/clients/{petrovs}/timeline?group=x"))[0] == 400
    # the card's fragment: one filter's newest entries, a page at a time
    status, page = await floor.call("petrov", "GET",
                                    f"/clients/{petrovs}/history?group=calls&shown=1")
    assert status == 200 and page.count('class="tl-item') == 1
    assert page.count('data-kind="call"') == 1 and 'data-shown="51">Показать ещё' in page
    status, page = await floor.call("petrov", "GET",
                                    f"/clients/{petrovs}/history?group=calls&shown=2")
    assert page.count('data-kind="call"') == 2 and "Показать ещё" not in page
    for query, said in (("group=x", "Формат: all, calls"), ("shown=0", "от 1 до 2000"),
                        ("shown=abc", "целым числом"), ("shown=1e9", "целым числом")):
        status, page = await floor.call("petrov", "GET", f"/clients/{petrovs}/history?{query}")
        assert status == 400 and said in page, (query, status, page[:300])


async def test_call_outcomes_by_role(floor: Floor) -> None:
    w = floor.world
    status, body = await floor.call("petrov", "GET", "/api/call-outcomes")
    assert status == 200
    names = [o["name"] for o in body["outcomes"]]
    assert names[:2] == ["Договорились о встрече", "Отправить КП"] and "Не дозвонился" in names
    assert (await floor.call("marketer", "GET", "/api/call-outcomes"))[0] == 403
    # only a supervisor or an admin edits the list
    for who in ("petrov", "marketer"):
        assert (await floor.call(who, "POST", "/api/call-outcomes", {"name": "Спам"}))[0] == 403
    status, spam = await floor.call("sokolova", "POST", "/api/call-outcomes", {"name": "Спам"})
    assert status == 201 and spam["active"] is True
    status, body = await floor.call("admin", "POST", "/api/call-outcomes", {"name": "спам"})
    assert status == 409 and body["error"] == "Итог «спам» уже есть в списке."
    status, body = await floor.call("sokolova", "PATCH", f"/api/call-outcomes/{spam['id']}",
                                    {"name": "Нецелевой звонок"})
    assert status == 200 and body["name"] == "Нецелевой звонок"
    assert (await floor.call("petrov", "PATCH", f"/api/call-outcomes/{spam['id']}",
                             {"archived": True}))[0] == 403
    assert (await floor.call("sokolova", "PATCH", "/api/call-outcomes/99999",
                             {"archived": True}))[0] == 404

    # a call's outcome: who may see the call
    call = w.calls["romashka_101"]
    expected = {"petrov": 200, "smirnova": 404, "kuznetsov": 404, "sokolova": 200,
                "marketer": 403, "admin": 200}
    meeting = (await floor.call("petrov", "GET", "/api/call-outcomes"))[1]["outcomes"][0]["id"]
    for who, status in expected.items():
        got, answer = await floor.call(who, "POST", f"/api/calls/{call}/outcome",
                                       {"outcome_id": meeting, "note": f"от {who}"})
        assert got == status, (who, answer)
    [(outcome_id, note)] = await floor.rows(select(CallResult.outcome_id, CallResult.note))
    assert outcome_id == meeting and note == "от admin", "a second answer replaces the first"
    # an archived outcome is no longer offered
    await floor.call("sokolova", "PATCH", f"/api/call-outcomes/{spam['id']}", {"archived": True})
    status, body = await floor.call("petrov", "POST", f"/api/calls/{call}/outcome",
                                    {"outcome_id": spam["id"]})
    assert status == 400 and "в архив" in body["error"]
    assert (await floor.call("petrov", "POST", f"/api/calls/{call}/outcome",
                             {"outcome_id": "1"}))[0] == 400
    status, listed = await floor.call("petrov", "GET", "/api/call-outcomes?archived=1")
    assert "Нецелевой звонок" not in [o["name"] for o in listed["outcomes"]]
    status, listed = await floor.call("sokolova", "GET", "/api/call-outcomes?archived=1")
    assert "Нецелевой звонок" in [o["name"] for o in listed["outcomes"]]


async def test_calls_without_an_outcome_for_the_supervisor(floor: Floor) -> None:
    w = floor.world
    for who in ("petrov", "marketer"):
        assert (await floor.call(who, "GET", "/api/call-outcomes/missing"))[0] == 403
        page, _ = await floor.call(who, "GET", "/outcomes")
        assert page == 403
    # sokolova's team: petrov's answered inbound call needs one (the missed one does not),
    # smirnova's answered outbound one too; kuznetsov is not hers
    status, body = await floor.call("sokolova", "GET", "/api/call-outcomes/missing")
    assert status == 200
    counts = {m["name"]: (m["calls"], m["without_outcome"]) for m in body["managers"]}
    assert counts == {"Иван Петров": (1, 1), "Ольга Смирнова": (1, 1)}
    assert {c["id"] for c in body["calls"]} == {w.calls["romashka_101"], w.calls["sidorov_102"]}
    outcomes = (await floor.call("petrov", "GET", "/api/call-outcomes"))[1]["outcomes"]
    await floor.call("petrov", "POST", f"/api/calls/{w.calls['romashka_101']}/outcome",
                     {"outcome_id": outcomes[0]["id"]})
    status, body = await floor.call("sokolova", "GET", "/api/call-outcomes/missing")
    counts = {m["name"]: (m["calls"], m["without_outcome"]) for m in body["managers"]}
    assert counts == {"Иван Петров": (1, 0), "Ольга Смирнова": (1, 1)}
    status, body = await floor.call(
        "sokolova", "GET", f"/api/call-outcomes/missing?manager_id={w.users['smirnova']}")
    assert [c["client_name"] for c in body["calls"]] == ["ИП Сидоров"]
    # the admin sees everyone: kuznetsov's busy outbound call was worked too
    status, body = await floor.call("admin", "GET", "/api/call-outcomes/missing")
    assert {m["name"]: m["without_outcome"] for m in body["managers"]}["Алексей Кузнецов"] == 1
    assert (await floor.call("admin", "GET", "/api/call-outcomes/missing?from=2026-13-01"))[0] \
        == 400
    # the page says the same
    status, page = await floor.call("sokolova", "GET", "/outcomes")
    assert status == 200 and "Ольга Смирнова" in page and "ИП Сидоров" in page
    assert "Алексей Кузнецов" not in page and 'id="total-missing">1<' in page


async def test_the_outcome_list_on_the_rules_page(floor: Floor) -> None:
    status, page = await floor.form("petrov", "/sales/settings/outcomes", {"name": "Спам"})
    assert status == 403
    status, page = await floor.form("sokolova", "/sales/settings/outcomes", {"name": "Спам"})
    assert status == 200 and "Список итогов звонков сохранён" in page and 'value="Спам"' in page
    status, page = await floor.form("sokolova", "/sales/settings/outcomes", {"name": "Спам"})
    assert status == 409 and "уже есть в списке" in page
    status, page = await floor.form("sokolova", "/sales/settings/outcomes", {"name": " "})
    assert status == 400 and "Укажите название итога" in page
    spam = (await floor.call("sokolova", "GET", "/api/call-outcomes"))[1]["outcomes"][-1]["id"]
    status, page = await floor.form("sokolova", f"/sales/settings/outcome/{spam}",
                                    {"name": "Нецелевой"})
    assert status == 200 and 'value="Нецелевой"' in page
    status, page = await floor.form("sokolova", f"/sales/settings/outcome/{spam}",
                                    {"name": "Нецелевой", "action": "archive"})
    assert status == 200 and "в архиве" in page
    names = [o["name"] for o in (await floor.call("petrov", "GET", "/api/call-outcomes"))[1][
        "outcomes"]]
    assert "Нецелевой" not in names
    status, page = await floor.form("sokolova", f"/sales/settings/outcome/{spam}",
                                    {"name": "Нецелевой", "action": "restore"})
    names = [o["name"] for o in (await floor.call("petrov", "GET", "/api/call-outcomes"))[1][
        "outcomes"]]
    assert names[-1] == "Нецелевой"
    audits = await floor.rows(select(AuditLog.changes).where(AuditLog.entity == "call_outcome")
                              .order_by(AuditLog.id))
    assert [a for (a,) in audits] == [{"name": "Спам"}, {"name": ["Спам", "Нецелевой"]},
                                      {"active": [True, False]}, {"active": [False, True]}]


async def test_the_card_and_planning_the_next_contact(floor: Floor) -> None:
    w = floor.world
    petrovs, smirnovas = w.clients["101"], w.clients["102"]
    for who in ROLES:
        for owner, client in w.clients.items():
            status, _ = await floor.call(who, "GET", f"/clients/{client}")
            api, _ = await floor.call(who, "GET", f"/api/clients/{client}")
            assert status == api, (who, owner, "the card agrees with the API")
    status, page = await floor.call("petrov", "GET", f"/clients/{petrovs}")
    assert 'id="plan-form"' in page and 'name="assignee_id" value="' in page
    assert 'id="note-form"' in page and 'id="call-outcome"' in page
    assert "Договорились о встрече" in page, "the outcome form offers the list"

    # a manager plans for himself, never in the past, never for a colleague
    status, body = await floor.call("petrov", "POST", f"/api/clients/{petrovs}/tasks", {
        "kind": "meeting", "due_at": _local(-timedelta(hours=1))})
    assert status == 400 and body["error"] == "Это время уже прошло: выберите срок в будущем."
    status, body = await floor.call("petrov", "POST", f"/api/clients/{petrovs}/tasks", {
        "kind": "meeting", "due_at": _local(timedelta(days=1)),
        "assignee_id": w.users["smirnova"]})
    assert status == 403
    status, task = await floor.call("petrov", "POST", f"/api/clients/{petrovs}/tasks", {
        "kind": "meeting", "due_at": _local(timedelta(days=1)), "title": "Встреча в офисе",
        "assignee_id": w.users["petrov"]})
    assert status == 201 and task["assignee_id"] == w.users["petrov"]
    # a supervisor picks a manager of his team, not of another team
    status, page = await floor.call("sokolova", "GET", f"/clients/{smirnovas}")
    assert 'name="assignee_id"' in page and "Алексей Кузнецов" not in page
    status, body = await floor.call("sokolova", "POST", f"/api/clients/{smirnovas}/tasks", {
        "kind": "call", "due_at": _local(timedelta(days=2)), "assignee_id": w.users["kuznetsov"]})
    assert status == 403 and "не из вашего отдела" in body["error"]
    status, task = await floor.call("sokolova", "POST", f"/api/clients/{smirnovas}/tasks", {
        "kind": "call", "due_at": _local(timedelta(days=2)), "assignee_id": w.users["smirnova"]})
    assert status == 201
    [(assignee,)] = await floor.rows(select(Task.assignee_id).where(Task.id == task["id"]))
    assert assignee == w.users["smirnova"]
