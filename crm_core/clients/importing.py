"""Loading clients from a CSV file (``name,phones,manager``), as people really export them.

Excel in Russian locales writes cp1251 and ``;``; others write UTF-8 (with a BOM or
not) and ``,``. A bad row never stops the import: it is reported with its line
number and one sentence, and every good row is saved. Re-importing the same file
creates no duplicates: a row matches a client by any phone, else by exact name, and
then sets its owner, adds missing phones, and names a lead a call created after its
number.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.clients.models import Client
from crm_core.clients.phones import DEFAULT_REGION, is_extension, normalize_phone
from crm_core.clients.services import (
    create_client,
    find_clients_by_name,
    find_clients_by_phones,
    has_placeholder_name,
    update_client,
)
from crm_core.errors import DomainError
from crm_core.people.models import User
from crm_core.people.users import users_by_extension

REQUIRED_COLUMNS = ("name", "phones", "manager")
DELIMITERS = (",", ";")
PHONE_SEPARATOR = ";"
IMPORT_SOURCE = "import"


class ImportFileError(DomainError):
    """The file as a whole cannot be imported (unreadable, empty, bad header)."""


@dataclass(frozen=True)
class RowError:
    """A rejected row: its 1-based line in the file and why (``error`` has the code for
    the user's sentence, ``message`` is its English for logs)."""

    line: int
    message: str
    error: DomainError


@dataclass
class ImportReport:
    """What an import did: rows that created, updated, or left clients unchanged, and errors."""

    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)


@dataclass(frozen=True)
class ClientRow:
    """A row that passed the checks that need no database."""

    line: int
    name: str
    phones: tuple[str, ...]  # as typed, one per normalized number
    e164s: tuple[str, ...]
    manager: str | None


class _RowRejected(DomainError):
    """A row that cannot be imported (``clients.import.*``)."""


def _row_error(line: int, exc: DomainError) -> RowError:
    return RowError(line, str(exc), exc)


def decode(data: bytes) -> str:
    """UTF-8 (BOM or not), else cp1251 (what Russian Excel writes)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1251", errors="replace")


def _header_columns(line: str, delimiter: str) -> list[str]:
    cells = next(csv.reader([line], delimiter=delimiter), [])
    return [cell.strip().lower() for cell in cells]


def _pick_delimiter(first_line: str) -> tuple[str, list[str]]:
    for delimiter in DELIMITERS:
        columns = _header_columns(first_line, delimiter)
        if set(REQUIRED_COLUMNS) <= set(columns):
            if len(set(columns)) != len(columns):
                raise ImportFileError("clients.import.header_repeats",
                                      f"The header repeats a column: {first_line.strip()!r}.",
                                      header=first_line.strip())
            return delimiter, columns
    raise ImportFileError(
        "clients.import.no_header",
        "The first line must be a header naming the columns name, phones, manager; "
        f"found {first_line.strip()!r}.",
        found=first_line.strip(),
    )


def _parse_row(line: int, cells: list[str], columns: list[str], region: str) -> ClientRow:
    if len(cells) > len(columns) and not any(c.strip() for c in cells[len(columns) :]):
        cells = cells[: len(columns)]  # trailing empty cells that spreadsheets add
    if len(cells) != len(columns):
        raise _RowRejected(
            "clients.import.columns",
            f"The row has {len(cells)} columns but the header has {len(columns)}.",
            found=len(cells), expected=len(columns),
        )
    values = {column: cell.strip() for column, cell in zip(columns, cells, strict=True)}
    name = " ".join(values["name"].split())
    if not name:
        raise _RowRejected("clients.import.no_name", "The client name is empty.")
    phones: dict[str, str] = {}
    for raw in (part.strip() for part in values["phones"].split(PHONE_SEPARATOR)):
        if not raw:
            continue
        if is_extension(raw):
            raise _RowRejected("clients.phone_extension",
                               f"Phone {raw!r} is an internal extension, not a client number.",
                               phone=raw)
        e164 = normalize_phone(raw, region)
        if e164 is None:
            raise _RowRejected("clients.phone_invalid",
                               f"Phone {raw!r} is not a valid phone number.", phone=raw)
        phones.setdefault(e164, raw)
    if not phones:
        raise _RowRejected("clients.import.no_phone", "The row has no phone number.")
    manager = values["manager"] or None
    if manager is not None and not is_extension(manager):
        raise _RowRejected("clients.import.manager_not_extension",
                           f"Manager {manager!r} is not an extension (2 to 8 digits).",
                           manager=manager)
    return ClientRow(
        line=line,
        name=name,
        phones=tuple(phones.values()),
        e164s=tuple(phones),
        manager=manager,
    )


def parse_clients_csv(
    data: bytes, region: str = DEFAULT_REGION
) -> tuple[list[ClientRow], list[RowError]]:
    """Rows that look right and rows that do not, without touching the database."""
    text = decode(data)
    first_line = next((line for line in text.splitlines() if line.strip()), None)
    if first_line is None:
        raise ImportFileError("clients.import.empty", "The file is empty.")
    delimiter, columns = _pick_delimiter(first_line)
    rows: list[ClientRow] = []
    errors: list[RowError] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header_seen = False
    previous_end = 0
    try:
        for cells in reader:
            line, previous_end = previous_end + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue  # blank lines
            if not header_seen:
                header_seen = True
                continue
            try:
                rows.append(_parse_row(line, cells, columns, region))
            except _RowRejected as exc:
                errors.append(_row_error(line, exc))
    except csv.Error as exc:
        errors.append(_row_error(previous_end + 1, DomainError(
            "clients.import.not_csv", f"The rest of the file is not valid CSV: {exc}.",
            reason=str(exc))))
    return rows, errors


async def _apply_row(session: AsyncSession, row: ClientRow, owner: User | None, actor: str) -> str:
    """Create or update the row's client; returns imported, updated or unchanged."""
    by_phone = await find_clients_by_phones(session, row.e164s)
    if len(by_phone) > 1:
        names = ", ".join(f"#{c.id} {c.name!r}" for c in by_phone[:3])
        raise _RowRejected("clients.import.phones_of_several",
                           f"Its phones belong to different clients ({names}).",
                           clients=[f"№{c.id} «{c.name}»" for c in by_phone[:3]])
    candidates: list[Client] = by_phone or await find_clients_by_name(session, row.name)
    if len(candidates) > 1:
        raise _RowRejected(
            "clients.import.name_ambiguous",
            f"{len(candidates)} clients are named {row.name!r}; add a phone that identifies one.",
            count=len(candidates), name=row.name,
        )
    owner_id = owner.id if owner else None
    audit_extra = {"line": row.line}
    if not candidates:
        await create_client(
            session,
            row.name,
            phones=row.phones,
            owner_id=owner_id,
            source=IMPORT_SOURCE,
            actor=actor,
            audit_extra=audit_extra,
        )
        return "imported"
    client = candidates[0]
    changes = await update_client(
        session,
        client,
        actor=actor,
        # A lead a call created is named after its number: the file knows the real name.
        name=row.name if has_placeholder_name(client) else None,
        owner_id=owner_id,
        add_phones=row.phones,
        audit_extra=audit_extra,
    )
    return "updated" if changes else "unchanged"


async def import_clients(
    session: AsyncSession, data: bytes, *, actor: str = IMPORT_SOURCE
) -> ImportReport:
    """Import CSV bytes; see ``import_clients_csv``."""
    rows, errors = parse_clients_csv(data)
    users = await users_by_extension(session, {row.manager for row in rows if row.manager})
    report = ImportReport(errors=errors)
    for row in rows:
        owner = users.get(row.manager) if row.manager else None
        if row.manager and owner is None:
            report.errors.append(_row_error(row.line, DomainError(
                "clients.import.no_manager", f"No active user has extension {row.manager}.",
                extension=row.manager)))
            continue
        try:
            async with session.begin_nested():
                outcome = await _apply_row(session, row, owner, actor)
        except _RowRejected as exc:
            report.errors.append(_row_error(row.line, exc))
            continue
        except (IntegrityError, ValueError) as exc:
            reason = str(getattr(exc, "orig", exc)).splitlines()[0]
            report.errors.append(_row_error(row.line, DomainError(
                "clients.import.not_saved", f"The row could not be saved: {reason}.",
                reason=exc if isinstance(exc, DomainError) else reason)))
            continue
        if outcome == "imported":
            report.imported += 1
        elif outcome == "updated":
            report.updated += 1
        else:
            report.unchanged += 1
    report.errors.sort(key=lambda error: error.line)
    return report


async def import_clients_csv(
    session: AsyncSession, path: Path, *, actor: str = IMPORT_SOURCE
) -> ImportReport:
    """Import clients from the CSV file at ``path`` (flushes; the caller commits).

    Raises ImportFileError (a DomainError) when the file cannot be read or its header is wrong;
    row problems are collected in the report instead.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImportFileError("clients.import.unreadable",
                              f"Cannot read {path}: {exc.strerror or exc}.",
                              path=str(path), reason=exc.strerror or str(exc)) from exc
    return await import_clients(session, data, actor=actor)
