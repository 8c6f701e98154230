"""Finding clients: every written form of a number, names, INN, people, e-mails; the index kept
whoever writes; who sees whom; filters, sorting and the cursor; key ranges, not scans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from crm_core.clients.cards import add_contact, create_company, edit_company
from crm_core.clients.importing import import_clients_csv
from crm_core.clients.models import Client, ClientSearchTerm
from crm_core.clients.search import ClientQuery, reindex_clients, search_clients, text_clause
from crm_core.clients.terms import client_terms, query_terms
from crm_core.errors import DomainError
from crm_core.people import access
from crm_core.people.models import User
from crm_core.people.users import add_user
from tests.support.db_fixtures import (  # noqa: F401
    db_session_fixture,
    db_url_fixture,
)


def test_query_words() -> None:
    e164_digits = ("89265550099", "79265550099")
    assert query_terms("8 926 555-00-99") == [e164_digits]
    assert query_terms("+7(926)5550099") == [("79265550099",)]
    assert query_terms("9265550099") == [("9265550099", "79265550099")]
    assert query_terms("  ООО «Ромашка»  ") == [("ооо",), ("ромашка",)]
    assert query_terms("Ёлка") == [("елка",)]
    assert query_terms("Info@Romashka.RU") == [("info@romashka.ru",)]
    assert query_terms("а") == [] and query_terms("12") == [] and query_terms("") == []
    assert client_terms(name="ИП Пётр", inn="7707083893", contact_names=["Анна Ли"],
                        emails=["a@b.ru"], phones=["+79265550099"]) == {
        "ип", "петр", "7707083893", "анна", "ли", "a@b.ru", "a", "b", "ru", "79265550099",
        "9265550099"}


async def _floor(s: AsyncSession) -> dict[str, User]:
    users = {
        "boss": await add_user(s, "boss", name="Мария", role="supervisor", extension="201",
                               team="Продажи"),
        "ivan": await add_user(s, "ivan", name="Иван", extension="101", team="Продажи"),
        "olga": await add_user(s, "olga", name="Ольга", extension="102", team="Продажи"),
        "kuz": await add_user(s, "kuz", name="Кузьма", extension="103", team="Второй"),
        "admin": await add_user(s, "admin", name="Админ", role="admin"),
    }
    romashka = await create_company(
        s, name="ООО «Ромашка»", phones=["+7 926 555-00-99"], emails=["info@romashka.ru"],
        details={"inn": "7707083893"}, owner_id=users["ivan"].id, by=None, actor="t")
    await add_contact(s, romashka, name="Пётр Сидоров", phones=["+7 916 000-11-22"],
                      emails=["petr@romashka.ru"], by=None, actor="t")
    await create_company(s, name="АО Ромашковые поля", phones=["+7 495 111-00-01"],
                         owner_id=users["olga"].id, by=None, actor="t")
    await create_company(s, name="ЗАО Вектор", phones=["+7 903 123-45-67"],
                         details={"inn": "7736207543"}, emails=["hello@vector.ru"],
                         owner_id=users["kuz"].id, by=None, actor="t")
    await s.commit()
    return users


async def _names(session: AsyncSession, query: ClientQuery, user: User | None = None
                 ) -> list[str]:
    visible = await access.clients_filter(session, user) if user else true()
    page = await search_clients(session, query, visible=visible)
    return [c.name for c in page.clients]


@pytest.mark.parametrize("typed", ["8 926 555-00-99", "+7(926)5550099", "9265550099",
                                   "79265550099", "+7 926 555 00 99", "926 555"])
async def test_a_number_however_written_finds_its_client(db_session: AsyncSession,
                                                         typed: str) -> None:
    await _floor(db_session)
    assert await _names(db_session, ClientQuery(text=typed)) == ["ООО «Ромашка»"]


async def test_names_inn_people_and_emails(db_session: AsyncSession) -> None:
    await _floor(db_session)
    cases = {
        "ромаш": ["АО Ромашковые поля", "ООО «Ромашка»"],
        "РОМАШКА": ["ООО «Ромашка»"],
        "ооо ром": ["ООО «Ромашка»"],
        "поля ромашк": ["АО Ромашковые поля"],
        "7707083893": ["ООО «Ромашка»"],
        "77362": ["ЗАО Вектор"],
        "сидоров": ["ООО «Ромашка»"],
        "петр": ["ООО «Ромашка»"],  # «Пётр»
        "petr@": ["ООО «Ромашка»"],
        "vector.ru": ["ЗАО Вектор"],
        "916 000-11-22": ["ООО «Ромашка»"],  # the contact person's mobile
        "нет такого": [],
    }
    for typed, expected in cases.items():
        assert await _names(db_session, ClientQuery(text=typed)) == expected, typed


async def test_the_index_follows_every_write(db_session: AsyncSession, tmp_path: Path) -> None:
    users = await _floor(db_session)
    client = await db_session.scalar(
        select(Client).where(Client.name == "ООО «Ромашка»")
        .options(selectinload(Client.phones), selectinload(Client.emails),
                 selectinload(Client.contacts)))
    await edit_company(db_session, client, name="ООО «Лютик»", phones=["+7 926 555-00-98"],
                       by=None, actor="t")
    await db_session.commit()
    assert await _names(db_session, ClientQuery(text="ромашка")) == []
    assert await _names(db_session, ClientQuery(text="лютик")) == ["ООО «Лютик»"]
    assert await _names(db_session, ClientQuery(text="89265550099")) == []
    assert await _names(db_session, ClientQuery(text="89265550098")) == ["ООО «Лютик»"]
    # an archived person is no longer what the client is found by
    [person] = client.contacts
    person.archived_at = datetime.now(UTC)
    await db_session.commit()
    assert await _names(db_session, ClientQuery(text="сидоров")) == []
    # the CSV import writes through the same session: its clients are found at once
    csv = tmp_path / "c.csv"
    csv.write_text("name,phones,manager\nООО Импорт,8 (916) 777-66-55,101\n", "utf-8")
    await import_clients_csv(db_session, csv)
    await db_session.commit()
    assert await _names(db_session, ClientQuery(text="импорт")) == ["ООО Импорт"]
    assert await _names(db_session, ClientQuery(text="9167776655")) == ["ООО Импорт"]
    # rows written around the ORM: one call puts their words right
    await db_session.execute(text("DELETE FROM client_search_terms"))
    assert await _names(db_session, ClientQuery(text="импорт")) == []
    assert await reindex_clients(db_session) == 4
    assert await _names(db_session, ClientQuery(text="импорт")) == ["ООО Импорт"]
    assert await _names(db_session, ClientQuery(text="импорт"), users["ivan"]) == [
        "ООО Импорт"]  # the file gave it to 101


async def test_each_sees_whom_he_may_open(db_session: AsyncSession) -> None:
    users = await _floor(db_session)
    for typed in ("ромашка", "9265550099", "7707083893", "info@romashka.ru", "сидоров"):
        assert await _names(db_session, ClientQuery(text=typed), users["ivan"]) == [
            "ООО «Ромашка»"]
        assert await _names(db_session, ClientQuery(text=typed), users["olga"]) == [], typed
        assert await _names(db_session, ClientQuery(text=typed), users["kuz"]) == [], typed
        assert await _names(db_session, ClientQuery(text=typed), users["boss"]) == [
            "ООО «Ромашка»"]
    assert await _names(db_session, ClientQuery(), users["boss"]) == [
        "АО Ромашковые поля", "ООО «Ромашка»"]
    assert await _names(db_session, ClientQuery(), users["admin"]) == [
        "АО Ромашковые поля", "ЗАО Вектор", "ООО «Ромашка»"]


async def test_filters_sorting_and_the_cursor(db_session: AsyncSession) -> None:
    users = await _floor(db_session)
    names = [f"Клиент {i:02d}" for i in range(23)]
    for i, name in enumerate(reversed(names)):
        client = await create_company(db_session, name=name, owner_id=users["ivan"].id,
                                      by=None, actor="t")
        client.last_contact_at = (datetime(2026, 11, 1, tzinfo=UTC) + timedelta(days=i)
                                  if i % 3 else None)
        client.abc_group = "AB"[i % 2]
    await db_session.commit()
    for sort in ("name", "last_contact", "status"):
        seen: list[str] = []
        cursor = None
        while True:
            page = await search_clients(db_session, ClientQuery(text="клиент", sort=sort,
                                                                cursor=cursor, limit=5),
                                        visible=true())
            seen += [c.name for c in page.clients]
            cursor = page.next
            if cursor is None:
                break
        assert sorted(seen) == names and len(seen) == len(set(seen)), sort
        if sort == "name":
            assert seen == names
        if sort == "last_contact":
            contacted = {c.name: c.last_contact_at for c in await db_session.scalars(
                select(Client).where(Client.name.in_(names)))}
            never = [n for n in seen if contacted[n] is None]
            assert seen[:len(never)] == never  # never contacted first, then the longest ago
            times = [contacted[n] for n in seen[len(never):]]
            assert times == sorted(times)
    only_a = await _names(db_session, ClientQuery(text="клиент", abc=("A",), limit=100))
    assert len(only_a) == 12
    assert await _names(db_session, ClientQuery(owner_ids=(users["kuz"].id,))) == [
        "ЗАО Вектор"]
    team = users["kuz"].team_id
    assert await _names(db_session, ClientQuery(team_id=team)) == ["ЗАО Вектор"]
    assert await _names(db_session, ClientQuery(statuses=("lost",))) == []
    with pytest.raises(DomainError):
        await search_clients(db_session, ClientQuery(cursor="garbage!"), visible=true())


async def test_a_search_reads_key_ranges_of_the_index(db_session: AsyncSession) -> None:
    """No scan of the words or the clients: each word of the query is a range of the key."""
    await _floor(db_session)
    await db_session.execute(text("ANALYZE") if db_session.bind.dialect.name == "sqlite"
                             else text("ANALYZE client_search_terms"))
    stmt = select(Client.id).where(text_clause("ромашка 7707"))
    if db_session.bind.dialect.name == "sqlite":
        compiled = stmt.compile(db_session.bind, compile_kwargs={"literal_binds": True})
        plan = " | ".join(str(row[-1]) for row in await db_session.execute(
            text(f"EXPLAIN QUERY PLAN {compiled}")))
        assert "SEARCH client_search_terms USING" in plan and "term>" in plan, plan
        assert "SCAN client_search_terms" not in plan, plan
    else:
        await db_session.execute(text("SET enable_seqscan = off"))  # tiny table: ask for it
        compiled = stmt.compile(db_session.bind, compile_kwargs={"literal_binds": True})
        plan = " | ".join(row[0] for row in await db_session.execute(
            text(f"EXPLAIN {compiled}")))
        assert "Index" in plan and "pk_client_search_terms" in plan, plan
        assert "~~" not in plan  # a key range, not LIKE
    words = (await db_session.scalars(
        select(ClientSearchTerm.term).where(ClientSearchTerm.term >= "ромашк",
                                            ClientSearchTerm.term < "ромашл"))).all()
    assert sorted(words) == ["ромашка", "ромашковые"]  # the range is exactly the prefix


async def test_a_word_found_everywhere_is_joined_with_the_same_answer(
        db_session: AsyncSession, monkeypatch: pytest.MonkeyPatch) -> None:
    """More clients found than the search hands back as a list («ооо» alone): it joins."""
    from crm_core.clients import search

    await _floor(db_session)
    expected = await _names(db_session, ClientQuery(text="ромаш"))
    monkeypatch.setattr(search, "CANDIDATES", 1)
    assert await _names(db_session, ClientQuery(text="ромаш")) == expected == [
        "АО Ромашковые поля", "ООО «Ромашка»"]
    assert await _names(db_session, ClientQuery(text="ао ромаш")) == ["АО Ромашковые поля"]
