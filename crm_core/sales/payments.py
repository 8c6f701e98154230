"""Invoices and payments: recorded one by one (API, CLI) or imported from a bank/accounting CSV.

Statuses and reports depend on money, so a payment is booked only when everything
about it is valid, and a CSV is imported all or nothing: the first bad line stops
the import with its line number and nothing is written. A payment may name an
invoice; the invoice becomes *partly paid* or *paid* from the payments against it.
Every booking is audited and re-judges the client's status.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.clients.importing import decode
from crm_core.clients.models import Client
from crm_core.errors import DomainError
from crm_core.sales.client_status import recompute_client
from crm_core.sales.models import Invoice, InvoiceStatus, Payment

MAX_AMOUNT = Decimal(10) ** 14
REQUIRED_COLUMNS = ("date", "client", "amount")
OPTIONAL_COLUMNS = ("invoice", "ref", "note")


class PaymentError(DomainError):
    """A payment or invoice that cannot be booked (``sales.payment.*``, ``sales.invoice.*``)."""


def parse_amount(raw: Any, what: str = "amount") -> Decimal:
    """``12 300,50``, ``12300.5`` or a number; positive, two decimals.

    ``what`` names the field in the refusal (a key of ``telecrm.messages.FIELDS``).
    """
    text = str(raw).strip().replace("\u00a0", "").replace(" ", "").replace(",", ".")
    if raw is None or not text:
        raise PaymentError("sales.amount_missing",
                           f"{what} {str(raw).strip()!r} is not an amount of money.", field=what)
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise PaymentError("sales.amount_invalid",
                           f"{what} {str(raw).strip()!r} is not an amount of money.",
                           field=what, value=str(raw).strip()) from None
    if not value.is_finite() or value <= 0:
        raise PaymentError("sales.amount_not_positive", f"{what} must be greater than zero.",
                           field=what)
    if value >= MAX_AMOUNT:
        raise PaymentError("sales.amount_too_large", f"{what} is too large.", field=what)
    return value.quantize(Decimal("0.01"))


def parse_day(raw: Any, what: str = "date") -> date:
    """``YYYY-MM-DD`` or ``DD.MM.YYYY`` (what Russian spreadsheets write)."""
    if isinstance(raw, date):
        return raw
    text = str(raw).strip()
    for fmt in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise PaymentError("sales.date_invalid",
                       f"{what} {text!r} is not a date (YYYY-MM-DD or DD.MM.YYYY).",
                       field=what, value=text)


async def find_client(session: AsyncSession, ref: Any) -> Client:
    """A client by id, or by his exact name when that name is unique."""
    text = str(ref).strip()
    if not text:
        raise PaymentError("sales.payment.client_missing", "The client is missing.")
    if text.isdigit():
        client = await session.get(Client, int(text))
        if client is None:
            raise PaymentError("sales.client.not_found", f"There is no client with id {text}.",
                               client=text)
        return client
    found = list(await session.scalars(select(Client).where(Client.name == text).limit(2)))
    if not found:
        raise PaymentError("sales.payment.client_name_unknown",
                           f"There is no client named {text!r}.", name=text)
    if len(found) > 1:
        raise PaymentError("sales.payment.client_name_ambiguous",
                           f"Several clients are named {text!r}; give the client id instead.",
                           name=text)
    return found[0]


def invoice_to_dict(invoice: Invoice) -> dict[str, Any]:
    return {"id": invoice.id, "number": invoice.number, "client_id": invoice.client_id,
            "amount": str(invoice.amount), "paid_amount": str(invoice.paid_amount),
            "status": invoice.status, "issued_on": invoice.issued_on.isoformat(),
            "due_on": invoice.due_on.isoformat() if invoice.due_on else None}


def payment_to_dict(payment: Payment) -> dict[str, Any]:
    return {"id": payment.id, "client_id": payment.client_id, "invoice_id": payment.invoice_id,
            "amount": str(payment.amount), "paid_on": payment.paid_on.isoformat(),
            "ref": payment.ref, "source": payment.source, "note": payment.note}


async def record_invoice(session: AsyncSession, *, client: Any, number: str, amount: Any,
                         issued_on: Any, due_on: Any = None, user_id: int | None = None,
                         actor: str = "user") -> Invoice:
    """Issue an invoice (unique number) to a client; audited."""
    target = client if isinstance(client, Client) else await find_client(session, client)
    number = str(number or "").strip()
    if not number or len(number) > 60:
        raise PaymentError("sales.invoice.number_invalid",
                           "An invoice needs a number of at most 60 characters.")
    if await session.scalar(select(Invoice.id).where(Invoice.number == number)) is not None:
        raise PaymentError("sales.invoice.exists", f"Invoice {number} exists already.",
                           number=number)
    invoice = Invoice(number=number, client_id=target.id, amount=parse_amount(amount),
                      paid_amount=Decimal(0), status=InvoiceStatus.UNPAID.value,
                      issued_on=parse_day(issued_on, "issued_on"),
                      due_on=parse_day(due_on, "due_on") if due_on else None,
                      created_by_id=user_id)
    session.add(invoice)
    await session.flush()
    write_audit(session, actor=actor, user_id=user_id, entity="invoice", entity_id=invoice.id,
                action=ACTION_CREATE, changes=invoice_to_dict(invoice))
    return invoice


async def _settle(session: AsyncSession, invoice: Invoice, *, actor: str,
                  user_id: int | None) -> None:
    paid = await session.scalar(select(func.coalesce(func.sum(Payment.amount), 0)).where(
        Payment.invoice_id == invoice.id, Payment.archived_at.is_(None)))
    paid = Decimal(paid or 0).quantize(Decimal("0.01"))
    status = (InvoiceStatus.PAID if paid >= invoice.amount
              else InvoiceStatus.PARTLY_PAID if paid > 0 else InvoiceStatus.UNPAID).value
    if status != invoice.status or paid != invoice.paid_amount:
        write_audit(session, actor=actor, user_id=user_id, entity="invoice",
                    entity_id=invoice.id, action=ACTION_UPDATE,
                    changes={"status": [invoice.status, status],
                             "paid_amount": [str(invoice.paid_amount), str(paid)]})
        invoice.status = status
        invoice.paid_amount = paid


@dataclass(frozen=True)
class PaymentInput:
    """A payment that passed the checks needing no writes (client and invoice resolved)."""

    client: Client
    amount: Decimal
    paid_on: date
    invoice: Invoice | None
    ref: str | None
    note: str | None


async def check_payment(session: AsyncSession, *, client: Any, amount: Any, paid_on: Any,
                        invoice: str | None = None, ref: str | None = None,
                        note: str | None = None) -> PaymentInput:
    target = client if isinstance(client, Client) else await find_client(session, client)
    bill = None
    if invoice:
        bill = await session.scalar(select(Invoice).where(Invoice.number == str(invoice).strip()))
        if bill is None:
            raise PaymentError("sales.invoice.not_found",
                               f"There is no invoice {str(invoice).strip()}.",
                               number=str(invoice).strip())
        if bill.client_id != target.id:
            raise PaymentError("sales.invoice.other_client",
                               f"Invoice {bill.number} belongs to another client.",
                               number=bill.number)
    ref = (ref or "").strip() or None
    if ref is not None and len(ref) > 100:
        raise PaymentError("sales.payment.ref_too_long",
                           "The payment reference is longer than 100 characters.")
    return PaymentInput(target, parse_amount(amount), parse_day(paid_on, "date"), bill, ref,
                        (note or "").strip()[:500] or None)


async def book_payment(session: AsyncSession, item: PaymentInput, *, source: str = "manual",
                       user_id: int | None = None, actor: str = "user",
                       today: date | None = None) -> Payment:
    """Write a checked payment: audit, invoice status, the client's status."""
    payment = Payment(client_id=item.client.id,
                      invoice_id=item.invoice.id if item.invoice else None,
                      amount=item.amount, paid_on=item.paid_on, ref=item.ref, source=source,
                      note=item.note, created_by_id=user_id)
    session.add(payment)
    await session.flush()
    write_audit(session, actor=actor, user_id=user_id, entity="payment", entity_id=payment.id,
                action=ACTION_CREATE, changes=payment_to_dict(payment))
    if item.invoice is not None:
        await _settle(session, item.invoice, actor=actor, user_id=user_id)
    await recompute_client(session, item.client, today=today, actor="payment",
                           cause=f"payment {payment.id}", user_id=user_id)
    return payment


async def record_payment(session: AsyncSession, *, client: Any, amount: Any, paid_on: Any,
                         invoice: str | None = None, ref: str | None = None,
                         note: str | None = None, source: str = "manual",
                         user_id: int | None = None, actor: str = "user",
                         today: date | None = None) -> Payment:
    """Book one payment; a reference booked before is a PaymentError (no double booking)."""
    item = await check_payment(session, client=client, amount=amount, paid_on=paid_on,
                               invoice=invoice, ref=ref, note=note)
    if item.ref and await session.scalar(select(Payment.id).where(Payment.ref == item.ref)):
        raise PaymentError("sales.payment.booked", f"Payment {item.ref} is booked already.",
                           ref=item.ref)
    return await book_payment(session, item, source=source, user_id=user_id, actor=actor,
                              today=today)


@dataclass
class PaymentImport:
    booked: int = 0
    skipped: int = 0  # rows whose ref was booked before (re-imported statement)
    total: Decimal = Decimal(0)


async def import_payments_csv(session: AsyncSession, path: Path, *, user_id: int | None = None,
                              today: date | None = None) -> PaymentImport:
    """Import ``date,client,amount[,invoice,ref,note]``; all rows or none.

    Every row is checked before the first is written; the first bad row raises a
    PaymentError naming its line. Rows whose ``ref`` was booked before are skipped,
    so a statement can be imported again after it grew.
    """
    try:
        text = decode(path.read_bytes())
    except OSError as exc:
        raise PaymentError("sales.import.unreadable",
                           f"Cannot read {path}: {exc.strerror or exc}.",
                           path=str(path), reason=exc.strerror or str(exc)) from exc
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise PaymentError("sales.import.empty", f"{path.name} is empty; expected a header line.",
                           file=path.name, header=",".join(REQUIRED_COLUMNS))
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except csv.Error as exc:
        raise PaymentError("sales.import.not_csv", f"line 1: {exc}.", line=1,
                           reason=str(exc)) from None
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise PaymentError("sales.import.header_lacks",
                           f"line 1: the header lacks {', '.join(missing)}.", missing=missing,
                           header=f"{','.join(REQUIRED_COLUMNS)}[,{','.join(OPTIONAL_COLUMNS)}]")
    unknown = [c for c in header if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise PaymentError("sales.import.unknown_column",
                           f"line 1: unknown column {unknown[0]!r}.",
                           column=unknown[0])
    items: list[PaymentInput] = []
    seen_refs: set[str] = set()
    report = PaymentImport()
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise PaymentError("sales.import.field_count",
                                   f"line {line}: expected {len(header)} fields, "
                                   f"found {len(row)}.", line=line, expected=len(header),
                                   found=len(row))
            values = dict(zip(header, row, strict=True))
            try:
                item = await check_payment(session, client=values["client"],
                                           amount=values["amount"], paid_on=values["date"],
                                           invoice=values.get("invoice"), ref=values.get("ref"),
                                           note=values.get("note"))
            except DomainError as exc:
                raise PaymentError("sales.import.line", f"line {line}: {exc}", line=line,
                                   error=exc) from None
            if item.ref is not None:
                if item.ref in seen_refs:
                    raise PaymentError("sales.import.ref_twice",
                                       f"line {line}: payment {item.ref} appears twice "
                                       "in the file.", line=line, ref=item.ref)
                seen_refs.add(item.ref)
                if await session.scalar(select(Payment.id).where(Payment.ref == item.ref)):
                    report.skipped += 1
                    continue
            items.append(item)
    except csv.Error as exc:
        raise PaymentError("sales.import.not_csv", f"line {reader.line_num}: {exc}.",
                           line=reader.line_num, reason=str(exc)) from None
    for item in items:
        await book_payment(session, item, source="import", user_id=user_id, actor="import",
                           today=today)
        report.booked += 1
        report.total += item.amount
    return report


async def client_money(session: AsyncSession, client_id: int) -> dict[str, Any]:
    """The client's invoices and payments, newest first."""
    invoices = await session.scalars(select(Invoice).where(
        Invoice.client_id == client_id, Invoice.archived_at.is_(None))
        .order_by(Invoice.issued_on.desc(), Invoice.id.desc()))
    payments = await session.scalars(select(Payment).where(
        Payment.client_id == client_id, Payment.archived_at.is_(None))
        .order_by(Payment.paid_on.desc(), Payment.id.desc()))
    return {"invoices": [invoice_to_dict(i) for i in invoices],
            "payments": [payment_to_dict(p) for p in payments]}
