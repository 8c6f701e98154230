"""Ad costs from the ad systems' own export files, by campaign and day.

Three shapes are read, each as its system documents or exports it:

- **Yandex Direct**: a Reports API report (TSV; a first line with the report's name and
  dates unless ``skipReportHeader``, the column names, the rows, and ``Total rows: N``
  unless ``skipReportSummary``) with ``Date``, ``CampaignId``, ``CampaignName``,
  ``Impressions``, ``Clicks``, ``Cost``. Money is in micros (the amount × 1 000 000)
  unless the report was asked with ``returnMoneyInMicros: false``; the web interface's
  report wizard exports the same columns with Russian names (``Дата``, ``Кампания``,
  ``№ Кампании``, ``Расход (руб.)``...);
- **VK Ads**: the statistics export of the cabinet (CSV, ``;`` or ``,``): ``Дата``,
  ``Кампания``/``Название кампании``, ``ID кампании``, ``Показы``, ``Клики``,
  ``Потрачено``/``Списания`` (or the API's ``date``, ``shows``, ``clicks``, ``spent``);
- **Google Ads**: the report downloaded as CSV (a title line and a date-range line
  above the column names, ``Total: ...`` lines at the end) with ``Day``, ``Campaign``,
  ``Campaign ID``, ``Currency code``, ``Cost``, ``Clicks``, ``Impr.``; a Google Ads API
  report gives ``segments.date``, ``campaign.name``, ``metrics.cost_micros``.

Parsing is pure and synchronous (the web runs it on a thread, before any transaction):
a broken file raises one :class:`CostFileError` naming the line, and nothing is booked.
Storing is idempotent: one figure per system, campaign and day; importing the same file
again changes nothing, and a re-import of a day replaces that day's figure (audited).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.calltracking.ad_models import AdSystem, CampaignCost
from crm_core.errors import DomainError

ACTOR = "calltracking"
MAX_LINES = 50_000  # a year of a few hundred campaigns by day
MICROS = Decimal(1_000_000)
SYSTEM_NAMES = {AdSystem.YANDEX_DIRECT: "Яндекс Директ", AdSystem.VK_ADS: "VK Реклама",
                AdSystem.GOOGLE_ADS: "Google Ads"}
# What the report's "source" grouping calls each system's traffic (utm_source as usual).
SYSTEM_SOURCES = {AdSystem.YANDEX_DIRECT: "yandex", AdSystem.VK_ADS: "vk",
                  AdSystem.GOOGLE_ADS: "google"}


class CostFileError(DomainError):
    """An export file that cannot be read (``calltracking.cost_file_*``); nothing is booked."""


# Column names by meaning, lower case, as each system writes them (API and web exports).
_DATE = ("date", "дата", "day", "день", "segments.date")
_CAMPAIGN = ("campaignname", "campaign", "кампания", "название кампании", "campaign name",
             "campaign.name", "название", "name")
_CAMPAIGN_ID = ("campaignid", "campaign id", "№ кампании", "id кампании", "campaign.id",
                "campaign_id", "id")
_COST_MICROS = ("metrics.cost_micros", "cost (micros)", "cost_micros")
_COST = ("cost", "расход", "расход (руб.)", "расход, руб.", "расход (руб)", "стоимость",
         "потрачено", "потрачено, ₽", "потрачено, руб.", "списания", "списано", "spent",
         "base.spent", "amount", "затраты")
_CLICKS = ("clicks", "клики", "metrics.clicks", "base.clicks")
_IMPRESSIONS = ("impressions", "impr.", "показы", "shows", "metrics.impressions",
                "base.shows")
_CURRENCY = ("currency code", "currency", "валюта", "customer.currency_code")
_TOTALS = ("total", "итого", "всего")


@dataclass(frozen=True)
class CostRow:
    """One campaign's money on one day, as read from a file."""

    day: date
    campaign: str
    campaign_id: str | None
    amount: Decimal
    clicks: int
    impressions: int
    currency: str

    @property
    def key(self) -> str:
        return self.campaign_id or self.campaign


def decode(raw: bytes, name: str) -> str:
    """The text of an uploaded export: UTF-8 (with or without BOM) or UTF-16 with a BOM
    (Google Ads' "Excel CSV"); anything else is refused."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CostFileError("calltracking.cost_file_encoding", "not UTF-8 text",
                            path=name) from None


def _norm(cell: str) -> str:
    return re.sub(r"\s+", " ", cell.strip().strip('"').strip().lower())


def _find(header: list[str], names: tuple[str, ...]) -> int | None:
    for wanted in names:
        if wanted in header:
            return header.index(wanted)
    return None


def _delimiter(line: str) -> str:
    return max(("\t", ";", ","), key=line.count)


def _header_at(lines: list[str]) -> tuple[int, str, list[str]] | None:
    """The line with the column names: the first of the first 5 with a date and a cost."""
    for index, line in enumerate(lines[:5]):
        delimiter = _delimiter(line)
        cells = [_norm(c) for c in next(csv.reader([line], delimiter=delimiter), [])]
        if _find(cells, _DATE) is not None and (
                _find(cells, _COST) is not None or _find(cells, _COST_MICROS) is not None):
            return index, delimiter, cells
    return None


_DAY_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d.%m.%y", "%Y%m%d", "%d/%m/%Y", "%b %d, %Y",
                "%a, %b %d, %Y", "%d %b %Y", "%B %d, %Y")


def _day(raw: str) -> date | None:
    text = raw.strip().strip('"')
    for fmt in _DAY_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def _number(raw: str) -> Decimal | None:
    """``1 234,50``, ``1,234.50``, ``1234.5``, ``--`` (none); None when not a number."""
    text = raw.strip().strip('"').replace("\u00a0", "").replace(" ", "")
    text = re.sub(r"[₽$€]|руб\.?|RUB", "", text, flags=re.IGNORECASE)
    if text in ("", "-", "--", "—"):
        return Decimal(0)
    if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", text):  # 1,234.56: English thousands
        text = text.replace(",", "")
    elif "," in text and "." in text:  # the last one is the decimal separator
        if text.rfind(",") > text.rfind("."):
            text = text.replace(".", "").replace(",", ".")
        else:
            text = text.replace(",", "")
    elif "," in text:
        text = text.replace(",", ".")
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _whole(raw: str) -> int | None:
    """A count (clicks, impressions): ``48 200``, ``3,410``, ``--``; None otherwise."""
    text = re.sub(r"[\s\u00a0,]", "", raw.strip().strip('"'))
    if text in ("", "-", "--", "—"):
        return 0
    return int(text) if text.isdigit() else None


def parse_cost_file(text: str, system: AdSystem | str, name: str, *,
                    micros: bool | None = None) -> list[CostRow]:
    """Every (campaign, day) of an export file of ``system``; all rows or an error.

    ``micros``: money in micros (True), in the currency (False), or None: as the file
    says (a ``cost_micros`` column; a Yandex Direct report with whole numbers only, which
    is what the Reports API sends unless asked otherwise).
    """
    system = AdSystem(system)
    lines = text.removeprefix("\ufeff").splitlines()
    if len(lines) > MAX_LINES:
        raise CostFileError("calltracking.cost_file_too_long", f"more than {MAX_LINES} lines",
                            path=name, max=MAX_LINES)
    found = _header_at(lines)
    if found is None:
        raise CostFileError("calltracking.cost_file_header", "no date and cost columns",
                            path=name, system=SYSTEM_NAMES[system])
    start, delimiter, header = found
    columns = {"day": _find(header, _DATE), "campaign": _find(header, _CAMPAIGN),
               "campaign_id": _find(header, _CAMPAIGN_ID), "clicks": _find(header, _CLICKS),
               "impressions": _find(header, _IMPRESSIONS), "currency": _find(header, _CURRENCY)}
    cost_micros = _find(header, _COST_MICROS)
    cost = cost_micros if cost_micros is not None else _find(header, _COST)
    if columns["campaign"] is None and columns["campaign_id"] is None:
        raise CostFileError("calltracking.cost_file_campaign", "no campaign column",
                            path=name)
    raw_rows: list[tuple[int, list[str]]] = []
    reader = csv.reader(io.StringIO("\n".join(lines[start + 1:])), delimiter=delimiter)
    for offset, cells in enumerate(reader):
        line = start + 2 + offset
        if not cells or not any(c.strip() for c in cells):
            continue
        first = _norm(cells[0])
        if first.startswith(_TOTALS) or first.startswith("total rows"):
            continue  # the summary lines the systems add at the end
        raw_rows.append((line, cells))
    if not raw_rows:
        raise CostFileError("calltracking.cost_file_empty", "no rows of costs",
                            path=name)
    assert cost is not None  # _header_at found one
    if micros is None:
        micros = cost_micros is not None or (
            system == AdSystem.YANDEX_DIRECT
            and all(re.fullmatch(r"\s*\d+\s*", cells[cost] if cost < len(cells) else "")
                    for _, cells in raw_rows))
    out: dict[tuple[str, date], CostRow] = {}
    for line, cells in raw_rows:
        row = _row(cells, columns, cost, micros, line, name)
        if (row.key, row.day) in out:
            previous = out[(row.key, row.day)]  # one day split across lines: added up
            row = CostRow(row.day, row.campaign, row.campaign_id,
                          previous.amount + row.amount, previous.clicks + row.clicks,
                          previous.impressions + row.impressions, row.currency)
        out[(row.key, row.day)] = row
    return list(out.values())


def _cell(cells: list[str], index: int | None) -> str:
    return cells[index].strip() if index is not None and index < len(cells) else ""


def _row(cells: list[str], columns: dict[str, int | None], cost: int, micros: bool,
         line: int, name: str) -> CostRow:
    day = _day(_cell(cells, columns["day"]))
    if day is None:
        raise CostFileError("calltracking.cost_file_date", f"line {line}: not a date",
                            path=name, line=line, value=_cell(cells, columns["day"]))
    campaign = _cell(cells, columns["campaign"])
    campaign_id = _cell(cells, columns["campaign_id"]) or None
    if not campaign and not campaign_id:
        raise CostFileError("calltracking.cost_file_no_campaign", f"line {line}: no campaign",
                            path=name, line=line)
    amount = _number(_cell(cells, cost))
    if amount is None or amount < 0:
        raise CostFileError("calltracking.cost_file_amount", f"line {line}: not an amount",
                            path=name, line=line, value=_cell(cells, cost))
    if micros:
        amount = amount / MICROS
    amount = amount.quantize(Decimal("0.01"))
    if amount >= Decimal("1e12"):
        raise CostFileError("calltracking.cost_file_amount", f"line {line}: not an amount",
                            path=name, line=line, value=_cell(cells, cost))
    counts = []
    for key in ("clicks", "impressions"):
        text = _cell(cells, columns[key])
        value = _whole(text) if text else 0
        if value is None or value < 0:
            raise CostFileError("calltracking.cost_file_count", f"line {line}: not a count",
                            path=name, line=line, value=text)
        counts.append(value)
    currency = (_cell(cells, columns["currency"]) or "RUB").upper()[:3]
    return CostRow(day, (campaign or campaign_id or "")[:300], campaign_id and campaign_id[:50],
                   amount, counts[0], counts[1], currency)


@dataclass(frozen=True)
class ImportResult:
    """What an import did: rows read, figures created, replaced and left as they were."""

    rows: int
    created: int
    replaced: int
    unchanged: int
    first_day: date | None
    last_day: date | None


async def store_campaign_costs(session: AsyncSession, system: AdSystem | str,
                               rows: list[CostRow], *, file_name: str,
                               channel: str | None = None, actor: str = ACTOR,
                               user_id: int | None = None) -> ImportResult:
    """Book parsed rows: one figure per system, campaign and day, replaced, never added.

    ``channel`` names the report row the money goes to (default: the system's name).
    A figure equal to the stored one is left alone, so a second import changes nothing.
    """
    system = AdSystem(system)
    channel = (channel or "").strip() or SYSTEM_NAMES[system]
    if len(channel) > 200:
        raise CostFileError("calltracking.channel_name", "the channel needs 1 to 200 characters")
    keys = [(r.key, r.day) for r in rows]
    known: dict[tuple[str, date], CampaignCost] = {}
    for chunk in range(0, len(keys), 500):
        part = keys[chunk:chunk + 500]
        for each in await session.scalars(select(CampaignCost).where(
                CampaignCost.system == system.value,
                tuple_(CampaignCost.campaign_key, CampaignCost.day).in_(part))):
            known[(each.campaign_key, each.day)] = each
    created = replaced = unchanged = 0
    for row in rows:
        stored = known.get((row.key, row.day))
        if stored is None:
            stored = CampaignCost(
                system=system.value, campaign_key=row.key, campaign_id=row.campaign_id,
                campaign=row.campaign, day=row.day, amount=row.amount, currency=row.currency,
                clicks=row.clicks, impressions=row.impressions, channel=channel,
                source=SYSTEM_SOURCES[system], file_name=file_name[:300], imported_by=user_id)
            session.add(stored)
            await session.flush()
            write_audit(session, actor=actor, entity="ct_campaign_cost", entity_id=stored.id,
                        action=ACTION_CREATE, user_id=user_id,
                        changes={"system": system.value, "campaign": row.campaign,
                                 "day": row.day.isoformat(), "amount": str(row.amount),
                                 "file": file_name[:300]})
            created += 1
            continue
        new = {"amount": row.amount, "clicks": row.clicks, "impressions": row.impressions,
               "campaign": row.campaign, "currency": row.currency, "channel": channel}
        changes = {k: [str(getattr(stored, k)), str(v)] for k, v in new.items()
                   if getattr(stored, k) != v}
        if not changes:
            unchanged += 1
            continue
        for key, value in new.items():
            setattr(stored, key, value)
        stored.file_name = file_name[:300]
        stored.imported_by = user_id
        write_audit(session, actor=actor, entity="ct_campaign_cost", entity_id=stored.id,
                    action=ACTION_UPDATE, user_id=user_id,
                    changes={**changes, "file": file_name[:300]})
        replaced += 1
    await session.flush()
    days = [r.day for r in rows]
    return ImportResult(len(rows), created, replaced, unchanged,
                        min(days) if days else None, max(days) if days else None)


async def list_campaign_costs(session: AsyncSession, *, limit: int = 200
                              ) -> list[CampaignCost]:
    """The latest imported figures, newest day first."""
    return list(await session.scalars(
        select(CampaignCost).order_by(CampaignCost.day.desc(), CampaignCost.system,
                                      CampaignCost.campaign).limit(limit)))
