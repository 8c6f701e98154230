"""How things read in the UI (Russian) and as JSON: labels, durations, money, client data."""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from crm_core.clients.models import Client, Contact
from crm_core.clients.phones import format_phone
from crm_core.clients.services import has_placeholder_name
from crm_core.tasks.models import Task
from crm_core.tasks.services import task_to_dict
from crm_core.timestamps import isoformat

DIRECTIONS = {"inbound": "Входящий", "outbound": "Исходящий", "internal": "Внутренний"}
STATUSES = {"answered": "Отвечен", "missed": "Пропущен", "busy": "Занято",
            "no_answer": "Нет ответа", "failed": "Ошибка", "in_progress": "Идёт"}
CLIENT_STATUSES = {"potential": "Потенциальный", "new": "Новый", "regular": "Постоянный",
                   "lost": "Потерянный"}
ROLES = {"manager": "Менеджер", "supervisor": "Руководитель", "marketer": "Маркетолог",
         "admin": "Администратор"}
TASK_KINDS = {"callback": "Перезвонить", "call": "Звонок", "meeting": "Встреча",
              "email": "Письмо", "other": "Задача"}
PHONE_KINDS = {"mobile": "мобильный", "landline": "городской", "tollfree": "бесплатный",
               "other": "телефон"}


def duration(seconds: float | None) -> str:
    """``1:05`` / ``1:02:03`` for talk and ring times."""
    total = round(seconds or 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


# Russian numbers as Intl.NumberFormat("ru-RU") writes them in the page scripts (common.js):
# groups of three split by a non-breaking space, a decimal comma, «₽» and «%» after a space.
NBSP = "\u00a0"


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


def number(value: Any, digits: int = 0) -> str:
    """``1 250 000``; ``number(72.46, 1)`` is ``72,5`` (halves away from zero); ``—`` for none."""
    amount = _decimal(value)
    if amount is None:
        return "—"
    rounded = amount.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    if not rounded:
        rounded = abs(rounded)  # no "-0"
    return f"{rounded:,.{digits}f}".replace(",", NBSP).replace(".", ",")


def money(value: Any, whole: bool = False, sign: bool = True) -> str:
    """Roubles: ``45 000,50 ₽``, kopecks left out when whole: ``1 250 000 ₽``.

    ``whole=True`` rounds to roubles (report totals, prices per call); ``sign=False`` leaves
    the ``₽`` out where the column heading says it.
    """
    amount = _decimal(value)
    if amount is None:
        return "—"
    kopecks = not whole and amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) % 1 != 0
    text = number(amount, 2 if kopecks else 0)
    return f"{text}{NBSP}₽" if sign else text


def percent(value: Any, digits: int = 1) -> str:
    """Percentage points: ``50,0 %`` (``percent(87, 0)`` is ``87 %``); ``—`` for none."""
    text = number(value, digits)
    return text if text == "—" else f"{text}{NBSP}%"


MONTHS = ("январь", "февраль", "март", "апрель", "май", "июнь", "июль", "август",
          "сентябрь", "октябрь", "ноябрь", "декабрь")


def month_label(month: date) -> str:
    """A month in words, as people name it: ``ноябрь 2026``."""
    return f"{MONTHS[month.month - 1]} {month.year}"


def local_time(value: str | datetime | None, tz: ZoneInfo, fmt: str = "%H:%M") -> str:
    if value is None:
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(tz).strftime(fmt)


def ru_date(value: str | date | None) -> str:
    """A calendar day as it reads in Russian: ``15.11.2026``; ``—`` for none."""
    if value is None or value == "":
        return "—"
    day = date.fromisoformat(value) if isinstance(value, str) else value
    return day.strftime("%d.%m.%Y")


def phone(value: str | None) -> str:
    return format_phone(value) if value else "—"


def client_summary(client: Client) -> dict[str, Any]:
    """The client for the screen pop and the API: who it is and whose."""
    owner = client.owner
    return {
        "id": client.id,
        "name": client.name,
        "status": client.status,
        "is_new_lead": has_placeholder_name(client),
        "owner": None if owner is None else {
            "id": owner.id, "name": owner.name, "extension": owner.extension},
        "phones": [{"e164": p.e164, "display": format_phone(p.e164), "kind": p.kind}
                   for p in client.phones],
    }


CARD_FIELDS = ("inn", "kpp", "legal_address", "actual_address", "site", "industry", "region",
               "found_via", "comment")


def contact_to_dict(contact: Contact) -> dict[str, Any]:
    """A contact person (``phones`` and ``emails`` loaded)."""
    emails = [m.address for m in contact.emails]
    return {"id": contact.id, "name": contact.name, "position": contact.position,
            "email": emails[0] if emails else None, "emails": emails,
            "phones": [p.e164 for p in contact.phones],
            "archived_at": isoformat(contact.archived_at)}


def client_list_item(client: Client, phones: list[str]) -> dict[str, Any]:
    """A client in ``GET /api/clients`` (as ``search_clients`` loads it) and his numbers."""
    owner = client.owner
    return {
        "id": client.id, "name": client.name, "status": client.status,
        "owner": None if owner is None else {
            "id": owner.id, "name": owner.name, "extension": owner.extension},
        "phones": phones,
        "inn": client.inn, "abc_group": client.abc_group,
        "last_contact_at": isoformat(client.last_contact_at),
        "archived": client.archived_at is not None,
    }


def client_to_dict(client: Client, calls: list[dict[str, Any]],
                   next_task: dict[str, Any] | None) -> dict[str, Any]:
    """``GET /api/clients/{id}``: the card, its visible calls and the next planned contact.

    Contacts, phones and e-mails must be loaded (``access.visible_client`` does).
    """
    return {
        **client_summary(client),
        "source": client.source,
        **{field: getattr(client, field) for field in CARD_FIELDS},
        "emails": [m.address for m in client.emails if m.contact_id is None],
        "annual_potential": (None if client.annual_potential is None
                             else str(client.annual_potential)),
        "abc_group": client.abc_group,
        "archived_at": isoformat(client.archived_at),
        "merged_into_id": client.merged_into_id,
        "created_at": isoformat(client.created_at),
        "contacts": [contact_to_dict(c) for c in client.contacts if c.archived_at is None],
        "next_contact": next_task,
        "calls": calls,
    }


def task_view(task: Task, now: datetime) -> dict[str, Any]:
    """A task for the API and the Today page, with its client's name and whether it is late."""
    return {
        **task_to_dict(task),
        "client_name": task.client.name if task.client is not None else None,
        "assignee": None if task.assignee is None else task.assignee.name,
        "overdue": task.due_at is not None and task.due_at < now,
    }
