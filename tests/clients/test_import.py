"""Client CSV import: real-world files, row-level errors, idempotent re-import."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from crm_core.audit import AuditLog
from crm_core.calls.services import record_call
from crm_core.calls.snapshot import CallData
from crm_core.clients.importing import ImportFileError, RowError, import_clients_csv
from crm_core.clients.models import Client, Phone
from crm_core.db.base import Base
from crm_core.people.models import User
from crm_core.people.users import add_user
from tests.support.db_fixtures import (  # noqa: F401
    db_session_fixture,
    db_url_fixture,
)

GOOD = """name,phones,manager
ООО Ромашка,8 (916) 123-45-67;+7 495 111-00-01,101
"ИП Петров, торговля",79161112233,102
Acme Ltd,+44 20 7946 0958,
"""


@pytest.fixture
async def managers(db_session: AsyncSession) -> dict[str, User]:
    users = {
        "101": await add_user(db_session, "ivanov", extension="101"),
        "102": await add_user(db_session, "petrov", extension="102"),
    }
    await db_session.commit()
    return users


def write(tmp_path: Path, text: str, encoding: str = "utf-8", name: str = "c.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


async def count(session: AsyncSession, model: type[Base], *where: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def clients(session: AsyncSession) -> dict[str, Client]:
    rows = await session.scalars(select(Client).options(selectinload(Client.phones)))
    return {c.name: c for c in rows}


async def test_good_file_imports(
    db_session: AsyncSession, managers: dict[str, User], tmp_path: Path
) -> None:
    report = await import_clients_csv(db_session, write(tmp_path, GOOD))
    await db_session.commit()
    assert (report.imported, report.updated, report.errors) == (3, 0, [])
    by_name = await clients(db_session)
    romashka = by_name["ООО Ромашка"]
    assert {p.e164 for p in romashka.phones} == {"+79161234567", "+74951110001"}
    assert {p.raw for p in romashka.phones} == {"8 (916) 123-45-67", "+7 495 111-00-01"}
    assert romashka.owner_id == managers["101"].id
    assert romashka.source == "import" and romashka.status == "potential"
    assert by_name["ИП Петров, торговля"].owner_id == managers["102"].id
    assert by_name["Acme Ltd"].owner_id is None
    assert await count(db_session, AuditLog, AuditLog.action == "create") == 3


async def test_broken_rows_are_reported_and_the_rest_imported(
    db_session: AsyncSession, managers: dict[str, User], tmp_path: Path
) -> None:
    text = (
        "name,phones,manager\n"  # 1
        "Good One,8 916 000-00-01,101\n"  # 2
        ",8 916 000-00-02,101\n"  # 3 no name
        "\n"  # 4 blank lines are skipped but counted
        "No Phone,,101\n"  # 5
        "Bad Phone,hello,101\n"  # 6
        "Ghost Manager,8 916 000-00-03,555\n"  # 7
        "Too,Many,Columns,Here\n"  # 8
        "Extension,102,101\n"  # 9
        '"Multi\nLine",8 916 000-00-04,101\n'  # 10-11: a quoted newline is one record
        "Good Two,8 916 000-00-05,102\n"  # 12
    )
    report = await import_clients_csv(db_session, write(tmp_path, text))
    await db_session.commit()
    assert report.imported == 3
    lines = {e.line: e.message for e in report.errors}
    assert sorted(lines) == [3, 5, 6, 7, 8, 9]
    assert lines[3] == "The client name is empty."
    assert lines[5] == "The row has no phone number."
    assert "'hello' is not a valid phone number" in lines[6]
    assert lines[7] == "No active user has extension 555."
    assert "4 columns but the header has 3" in lines[8]
    assert "internal extension" in lines[9]
    assert all(isinstance(e, RowError) for e in report.errors)
    assert [e.error.code for e in report.errors] == [
        "clients.import.no_name", "clients.import.no_phone", "clients.phone_invalid",
        "clients.import.no_manager", "clients.import.columns", "clients.phone_extension"]
    assert set(await clients(db_session)) == {"Good One", "Multi Line", "Good Two"}


async def test_cp1251_semicolon_file(
    db_session: AsyncSession, managers: dict[str, User], tmp_path: Path
) -> None:
    text = (
        " Name ; PHONES ;Manager\r\n"
        'ООО Василёк;"8 916 123-45-67; 8 (495) 111-00-01";101\r\n'
        "ЗАО Лютик;+7 916 765-43-21;102\r\n"
    )
    report = await import_clients_csv(db_session, write(tmp_path, text, "cp1251"))
    await db_session.commit()
    assert (report.imported, report.errors) == (2, [])
    by_name = await clients(db_session)
    assert {p.e164 for p in by_name["ООО Василёк"].phones} == {"+79161234567", "+74951110001"}
    assert by_name["ЗАО Лютик"].owner_id == managers["102"].id


async def test_utf8_bom_file(
    db_session: AsyncSession, managers: dict[str, User], tmp_path: Path
) -> None:
    report = await import_clients_csv(db_session, write(tmp_path, GOOD, "utf-8-sig"))
    assert (report.imported, report.errors) == (3, [])


async def test_reimport_makes_no_duplicates(
    db_session: AsyncSession, managers: dict[str, User], tmp_path: Path
) -> None:
    path = write(tmp_path, GOOD)
    await import_clients_csv(db_session, path)
    await db_session.commit()
    again = await import_clients_csv(db_session, path)
    await db_session.commit()
    assert (again.imported, again.updated, again.unchanged, again.errors) == (0, 0, 3, [])
    assert await count(db_session, Client) == 3
    assert await count(db_session, Phone) == 4

    changed = (
        "name,phones,manager\n"
        "Renamed Romashka,+79161234567;8 800 555-35-35,102\n"  # matched by phone
        "Acme Ltd,+44 20 7946 0959,101\n"  # matched by exact name
    )
    report = await import_clients_csv(db_session, write(tmp_path, changed, name="d.csv"))
    await db_session.commit()
    assert (report.imported, report.updated, report.errors) == (0, 2, [])
    assert await count(db_session, Client) == 3
    by_name = await clients(db_session)
    romashka = by_name["ООО Ромашка"]  # the name is not overwritten
    assert romashka.owner_id == managers["102"].id
    assert "+78005553535" in {p.e164 for p in romashka.phones}
    assert len(by_name["Acme Ltd"].phones) == 2
    updates = list(await db_session.scalars(select(AuditLog).where(AuditLog.action == "update")))
    assert len(updates) == 2
    by_client = {u.entity_id: u.changes for u in updates}
    assert by_client[romashka.id]["owner_id"] == [managers["101"].id, managers["102"].id]
    assert by_client[romashka.id]["phones_added"] == ["+78005553535"]


async def test_phones_of_two_clients_in_one_row_is_an_error(
    db_session: AsyncSession, managers: dict[str, User], tmp_path: Path
) -> None:
    await import_clients_csv(db_session, write(tmp_path, GOOD))
    report = await import_clients_csv(
        db_session,
        write(tmp_path, "name,phones,manager\nMix,89161234567;79161112233,101\n", name="m.csv"),
    )
    assert report.imported == report.updated == 0
    assert [e.line for e in report.errors] == [2]
    assert "belong to different clients" in report.errors[0].message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("company,phone,owner\nA,8 916 123-45-67,101\n", "header naming the columns"),
        ("name,phones\nA,8 916 123-45-67\n", "header naming the columns"),
        ("", "The file is empty"),
        ("name,phones,manager,name\n", "repeats a column"),
    ],
)
async def test_bad_file_is_a_clear_error(
    db_session: AsyncSession, tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ImportFileError, match=message):
        await import_clients_csv(db_session, write(tmp_path, text))


async def test_missing_file_is_a_clear_error(db_session: AsyncSession, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="Cannot read"):
        await import_clients_csv(db_session, tmp_path / "nope.csv")


async def test_import_names_a_lead_created_by_a_call(
    db_session: AsyncSession, managers: dict[str, User], tmp_path: Path
) -> None:
    at = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    call = CallData(
        linkedid="1.1", direction="inbound", status="missed", client_number="79161234567",
        did=None, started_at=at, answered_at=None, ended_at=at, ring_seconds=5.0,
        talk_seconds=0.0, transferred=False, managers=(), recordings=(), legs=(), rang=(),
    )  # fmt: skip
    lead_id = (await record_call(db_session, call)).client_id
    report = await import_clients_csv(db_session, write(tmp_path, GOOD))
    await db_session.commit()
    assert (report.imported, report.updated) == (2, 1)
    by_name = await clients(db_session)
    assert by_name["ООО Ромашка"].id == lead_id
    assert by_name["ООО Ромашка"].owner_id == managers["101"].id
