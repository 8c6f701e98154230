"""Offline conversions for the ad systems: what each tracked call and won deal is worth to
Yandex Metrica and Google Ads, the files they take, and which conversions were sent.

A **call** counts for Metrica when its visit carries the Metrica ClientId (``_ym_uid``)
or a Yandex Direct click id (``yclid``): it goes out in Metrica's calls upload format.
It counts for Google Ads when its visit carries a ``gclid`` and it was answered and
lasted at least the account's minimum: a click conversion named by the account.
A **won deal** counts where the client's last tracked call before the deal was won
carries those ids: a Metrica offline conversion (``Target`` = the deals goal, ``Price`` =
the revenue) and a Google Ads click conversion with its value.

The files follow the documented columns:

- Metrica calls (``offline_conversions/upload_calls``): ``ClientId, Yclid, DateTime,
  StaticCall, Price, Currency, PhoneNumber, TalkDuration, HoldDuration, CallMissed, Tag,
  FirstTimeCaller, URL, CallTrackerURL``; ``DateTime`` is Unix time (UTC);
- Metrica offline conversions (``offline_conversions/upload``): ``ClientId, Yclid,
  Target, DateTime, Price, Currency``;
- Google Ads click conversions: a ``Parameters:TimeZone=...`` line, then ``Google Click
  ID, Conversion Name, Conversion Time, Conversion Value, Conversion Currency`` with the
  time as ``yyyy-MM-dd HH:mm:ss`` in that zone.

Each conversion is sent once: ``ad_conversions`` holds one row per system, goal and
call or deal, claimed (``sending``) in its own transaction before the upload, so a
second round, or a second process, never sends it again (:func:`claim`). A claim is a
lease (:data:`CLAIM_LEASE`): when the process that claimed a batch died before it wrote
the answer down, the batch is due again once the lease is over, so nothing is lost.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.calls.models import Call, CallStatus, Direction
from crm_core.calltracking.ad_models import (
    AdConversion,
    ConversionAccount,
    ConversionGoal,
    ConversionStatus,
    ConversionSystem,
    ConversionUpload,
)
from crm_core.calltracking.models import AttributionKind, CtAttribution, CtVisit
from crm_core.errors import DomainError

log = logging.getLogger(__name__)

ACTOR = "calltracking"
SYSTEM_NAMES = {ConversionSystem.METRICA: "Яндекс Метрика",
                ConversionSystem.GOOGLE_ADS: "Google Ads"}
# How far back each system still links a conversion to its click or visit.
WINDOWS = {ConversionSystem.METRICA: timedelta(days=21),
           ConversionSystem.GOOGLE_ADS: timedelta(days=90)}
METRICA_CALL_COLUMNS = ["ClientId", "Yclid", "DateTime", "StaticCall", "Price", "Currency",
                        "PhoneNumber", "TalkDuration", "HoldDuration", "CallMissed", "Tag",
                        "FirstTimeCaller", "URL", "CallTrackerURL"]
METRICA_DEAL_COLUMNS = ["ClientId", "Yclid", "Target", "DateTime", "Price", "Currency"]
GOOGLE_COLUMNS = ["Google Click ID", "Conversion Name", "Conversion Time", "Conversion Value",
                  "Conversion Currency"]
MAX_BATCH = 1000  # conversions in one upload
RETRY_FIRST = timedelta(minutes=5)
RETRY_MAX = timedelta(hours=6)
# How long a claimed (``sending``) conversion belongs to the round that claimed it. A round
# ends within minutes (four attempts of at most 60 s, pauses of at most 60 s): a claim
# older than this is a round whose process died between the claim and the answer, and
# the conversion is due again. Sending it again is how the ad systems expect a lost
# upload to be repaired: Google Ads keeps one conversion per gclid, conversion action and
# conversion time and answers a repeat with ``CLICK_CONVERSION_ALREADY_EXISTS``
# (ConversionUploadError, developers.google.com/google-ads/api/reference/rpc/latest/
# ConversionUploadErrorEnum.ConversionUploadError), which the upload counts as sent. For
# Metrica the repeat carries the same ClientId/Yclid, Target and DateTime (the columns of
# yandex.ru/dev/metrika/ru/management/offline-conv and .../management/calls); Metrica is
# relied on to treat it as the same conversion, but the pages of its documentation we
# could read do not say so in words, so a dead process costs at most one repeat of its
# batch there, never a loss.
CLAIM_LEASE = timedelta(minutes=30)


class ConversionError(DomainError):
    """Bad settings or a request the conversions cannot serve (``conversions.*``)."""


@dataclass(frozen=True)
class Conversion:
    """One call or deal as the ad systems see it."""

    system: ConversionSystem
    goal: ConversionGoal
    object_id: int  # the call's or the deal's id
    call_id: int
    occurred_at: datetime
    value: Decimal | None
    ym_uid: str | None = None
    yclid: str | None = None
    gclid: str | None = None
    static: bool = False
    phone: str | None = None
    talk_seconds: float = 0.0
    ring_seconds: float = 0.0
    missed: bool = False
    first_time: bool = True
    url: str | None = None
    tag: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.system.value, self.goal.value, self.object_id)


# -- the marketer's accounts ---------------------------------------------------------------------


def system_of(raw: str) -> ConversionSystem:
    try:
        return ConversionSystem((raw or "").strip().lower().replace("-", "_"))
    except ValueError:
        raise ConversionError("conversions.system", f"{raw!r} is not metrica or google_ads",
                              value=raw) from None


@dataclass(frozen=True)
class AccountForm:
    """What the marketer enters; a token left empty keeps the stored one."""

    enabled: bool
    account_id: str
    call_goal: str = ""
    deal_goal: str = ""
    call_name: str = ""
    deal_name: str = ""
    currency: str = "RUB"
    min_talk_seconds: int | str = 0
    token: str = ""
    developer_token: str = ""


def _short(value: str, limit: int = 200) -> str | None:
    text = (value or "").strip()
    if len(text) > limit:
        raise ConversionError("conversions.name", f"{text[:20]!r}... is longer than {limit}")
    return text or None


def _check(system: ConversionSystem, form: AccountForm) -> dict[str, Any]:
    account = re.sub(r"[\s-]", "", form.account_id or "")
    if system == ConversionSystem.METRICA and not re.fullmatch(r"\d{1,20}", account):
        raise ConversionError("conversions.counter", "the Metrica counter is digits")
    if system == ConversionSystem.GOOGLE_ADS and not re.fullmatch(r"\d{10}", account):
        raise ConversionError("conversions.customer", "the Google Ads customer id is 10 digits")
    values = {"account_id": account, "call_goal": _short(form.call_goal),
              "deal_goal": _short(form.deal_goal), "call_name": _short(form.call_name),
              "deal_name": _short(form.deal_name)}
    if system == ConversionSystem.GOOGLE_ADS:
        for key in ("call_goal", "deal_goal"):
            action = values[key]
            if action and not re.fullmatch(r"\d{1,20}", action):
                raise ConversionError("conversions.action", "a conversion action id is digits")
    if not (values["call_goal"] or values["deal_goal"] or values["call_name"]
            or values["deal_name"]):
        raise ConversionError("conversions.goal", "name a goal for calls or deals")
    currency = (form.currency or "RUB").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ConversionError("conversions.currency", "the currency is three letters")
    try:
        seconds = int(str(form.min_talk_seconds or 0).strip())
    except ValueError:
        seconds = -1
    if not 0 <= seconds <= 3600:
        raise ConversionError("conversions.seconds", "minimum talk is 0 to 3600 s")
    for token in (form.token, form.developer_token):
        if len(token or "") > 1000 or re.search(r"\s", (token or "").strip()):
            raise ConversionError("conversions.token", "a token is one line up to 1000")
    return {**values, "currency": currency, "min_talk_seconds": seconds,
            "enabled": bool(form.enabled)}


async def get_account(session: AsyncSession, system: ConversionSystem
                      ) -> ConversionAccount | None:
    return await session.scalar(select(ConversionAccount).where(
        ConversionAccount.system == system.value))


async def save_account(session: AsyncSession, system: ConversionSystem | str, form: AccountForm,
                       *, actor: str = ACTOR, user_id: int | None = None) -> ConversionAccount:
    """Create or change the account; tokens are kept, never audited (only "set")."""
    system = system_of(system) if isinstance(system, str) else system
    values = _check(system, form)
    row = await get_account(session, system)
    created = row is None
    if row is None:
        row = ConversionAccount(system=system.value)
        session.add(row)
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if created or getattr(row, key) != value:
            changes[key] = value if created else [getattr(row, key), value]
            setattr(row, key, value)
    for key in ("token", "developer_token"):
        secret = (getattr(form, key) or "").strip()
        if secret:
            changes[key] = "set"  # never the secret itself
            setattr(row, key, secret)
    row.updated_by = user_id
    await session.flush()
    if changes:
        write_audit(session, actor=actor, entity="ad_conversion_account", entity_id=row.id,
                    action=ACTION_CREATE if created else ACTION_UPDATE, user_id=user_id,
                    changes=changes)
    return row


def account_to_dict(row: ConversionAccount) -> dict[str, Any]:
    """The account as the page shows it: whether a token is set, never the token."""
    return {"system": row.system, "enabled": row.enabled, "account_id": row.account_id,
            "call_goal": row.call_goal, "deal_goal": row.deal_goal, "call_name": row.call_name,
            "deal_name": row.deal_name, "currency": row.currency,
            "min_talk_seconds": row.min_talk_seconds, "token_set": bool(row.token),
            "developer_token_set": bool(row.developer_token)}


# -- what counts ---------------------------------------------------------------------------------


def _ids(visit: CtVisit | None) -> tuple[str | None, str | None, str | None]:
    if visit is None:
        return None, None, None
    ym_uid = (visit.client_ids or {}).get("ym_uid")
    return (str(ym_uid) if ym_uid else None), visit.yclid or None, visit.gclid or None


async def _tracked_calls(session: AsyncSession, since: datetime, until: datetime
                         ) -> list[tuple[Call, CtAttribution, CtVisit | None, bool]]:
    earlier = aliased(Call)
    first_call = ~select(earlier.id).where(
        earlier.client_number == Call.client_number, earlier.started_at < Call.started_at
    ).exists()
    rows = await session.execute(
        select(Call, CtAttribution, CtVisit, first_call)
        .join(CtAttribution, CtAttribution.call_id == Call.id)
        .outerjoin(CtVisit, CtVisit.id == CtAttribution.visit_id)
        .where(Call.started_at >= since, Call.started_at < until,
               Call.direction == Direction.INBOUND.value,
               Call.status != CallStatus.IN_PROGRESS.value)
        .order_by(Call.started_at, Call.id))
    return [(call, attribution, visit, bool(first)) for call, attribution, visit, first in rows]


async def call_conversions(session: AsyncSession, system: ConversionSystem,
                           account: ConversionAccount | None, since: datetime, until: datetime
                           ) -> list[Conversion]:
    """The tracked calls of ``[since, until)`` that ``system`` can link to a visit."""
    out = []
    min_talk = account.min_talk_seconds if account is not None else 0
    for call, attribution, visit, first in await _tracked_calls(session, since, until):
        ym_uid, yclid, gclid = _ids(visit)
        answered = call.status == CallStatus.ANSWERED.value
        if system == ConversionSystem.METRICA and not (ym_uid or yclid):
            continue
        if system == ConversionSystem.GOOGLE_ADS and not (
                gclid and answered and call.talk_seconds >= min_talk):
            continue
        out.append(Conversion(
            system=system, goal=ConversionGoal.CALL, object_id=call.id, call_id=call.id,
            occurred_at=call.started_at, value=None, ym_uid=ym_uid, yclid=yclid, gclid=gclid,
            static=attribution.kind != AttributionKind.DYNAMIC.value,
            phone=call.client_number, talk_seconds=call.talk_seconds if answered else 0.0,
            ring_seconds=call.ring_seconds or 0.0, missed=not answered, first_time=first,
            url=attribution.landing or (visit.landing if visit is not None else None),
            tag=attribution.campaign or attribution.channel))
    return out


async def deal_conversions(session: AsyncSession, system: ConversionSystem,
                           since: datetime, until: datetime) -> list[Conversion]:
    """Deals won in ``[since, until)`` whose client's last tracked call before the win
    carries the system's ids; the value is what the deal was won for."""
    try:
        from crm_core.sales.models import Deal
    except ImportError:  # the deals feature is not installed
        return []
    deals = list(await session.scalars(
        select(Deal).where(Deal.status == "won", Deal.closed_at >= since,
                           Deal.closed_at < until, Deal.archived_at.is_(None))
        .order_by(Deal.closed_at, Deal.id)))
    out = []
    for deal in deals:
        assert deal.closed_at is not None
        rows = await session.execute(
            select(Call, CtVisit)
            .join(CtAttribution, CtAttribution.call_id == Call.id)
            .join(CtVisit, CtVisit.id == CtAttribution.visit_id)
            .where(Call.client_id == deal.client_id, Call.started_at <= deal.closed_at)
            .order_by(Call.started_at.desc(), Call.id.desc()))
        for call, visit in rows:
            ym_uid, yclid, gclid = _ids(visit)
            if (system == ConversionSystem.METRICA and (ym_uid or yclid)) or (
                    system == ConversionSystem.GOOGLE_ADS and gclid):
                value = deal.won_amount if deal.won_amount is not None else deal.amount
                out.append(Conversion(
                    system=system, goal=ConversionGoal.DEAL, object_id=deal.id,
                    call_id=call.id, occurred_at=deal.closed_at, value=value, ym_uid=ym_uid,
                    yclid=yclid, gclid=gclid, phone=call.client_number, url=visit.landing,
                    tag=deal.title))
                break
    return out


async def conversions(session: AsyncSession, system: ConversionSystem, goal: ConversionGoal,
                      since: datetime, until: datetime) -> list[Conversion]:
    account = await get_account(session, system)
    if goal == ConversionGoal.CALL:
        return await call_conversions(session, system, account, since, until)
    return await deal_conversions(session, system, since, until)


# -- the files -----------------------------------------------------------------------------------


def _money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:.2f}"


class RowWriter(Protocol):
    def writerow(self, row: Iterable[Any]) -> Any: ...


WriterFactory = Callable[..., RowWriter]


def _write(header: list[str], rows: Iterable[list[Any]], writer: WriterFactory,
           prefix: str = "") -> str:
    """The file's text; ``writer`` is the application's CSV writer (no cell a formula)."""
    out = io.StringIO()
    out.write(prefix)
    lines = writer(out, lineterminator="\n")
    lines.writerow(header)
    for row in rows:
        lines.writerow(row)
    return out.getvalue()


def metrica_calls_csv(items: Sequence[Conversion], *, writer: WriterFactory,
                      currency: str = "RUB", tracker_url: str | None = None) -> str:
    """Metrica's calls upload: one line per call, DateTime in Unix time (UTC)."""
    return _write(METRICA_CALL_COLUMNS, (
        [c.ym_uid or "", c.yclid or "", int(c.occurred_at.timestamp()), int(c.static),
         _money(c.value), currency if c.value is not None else "", c.phone or "",
         round(c.talk_seconds), round(c.ring_seconds), int(c.missed), (c.tag or "")[:200],
         int(c.first_time), c.url or "",
         f"{tracker_url.rstrip('/')}/calls/{c.call_id}" if tracker_url else ""]
        for c in items), writer)


def metrica_deals_csv(items: Sequence[Conversion], target: str, *, writer: WriterFactory,
                      currency: str = "RUB") -> str:
    """Metrica's offline conversions upload: the deals goal, the revenue as Price."""
    return _write(METRICA_DEAL_COLUMNS, (
        [c.ym_uid or "", c.yclid or "", target, int(c.occurred_at.timestamp()),
         _money(c.value), currency if c.value is not None else ""] for c in items), writer)


def google_time(moment: datetime, tz: ZoneInfo) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in the file's time zone (the Parameters line names it)."""
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def google_api_time(moment: datetime, tz: ZoneInfo) -> str:
    """The API's ``yyyy-mm-dd hh:mm:ss+|-hh:mm``."""
    local = moment.astimezone(tz)
    offset = local.strftime("%z")
    return f"{local.strftime('%Y-%m-%d %H:%M:%S')}{offset[:3]}:{offset[3:]}"


def google_csv(items: Sequence[Conversion], names: dict[ConversionGoal, str], tz: ZoneInfo, *,
               writer: WriterFactory, currency: str = "RUB") -> str:
    """Google Ads' click conversions file, times in the workday's zone."""
    return _write(GOOGLE_COLUMNS, (
        [c.gclid or "", names[c.goal], google_time(c.occurred_at, tz),
         _money(c.value) if c.value is not None else "0", currency] for c in items),
        writer, prefix=f"Parameters:TimeZone={tz.key}\n")


# -- sent once -----------------------------------------------------------------------------------


def _backoff(attempts: int) -> timedelta:
    return min(RETRY_MAX, RETRY_FIRST * 2 ** max(0, attempts - 1))


async def due(session: AsyncSession, system: ConversionSystem, goal: ConversionGoal,
              now: datetime) -> list[Conversion]:
    """Conversions of the system's window never claimed, failed and due again, or claimed
    by a round whose lease is over (its process died before it wrote the answer)."""
    found = await conversions(session, system, goal, now - WINDOWS[system], now)
    if not found:
        return []
    stored = {row.object_id: row for row in await session.scalars(
        select(AdConversion).where(AdConversion.system == system.value,
                                   AdConversion.goal == goal.value,
                                   AdConversion.object_id.in_([c.object_id for c in found])))}
    out = []
    for item in found:
        row = stored.get(item.object_id)
        if row is None or _reclaimable(row, now):
            out.append(item)
    return out[:MAX_BATCH]


def _lease_over(now: datetime) -> Any:
    """SQL: a ``sending`` claim whose lease ended (claims made before the lease was kept
    in ``next_attempt_at`` count from when the row was created)."""
    return and_(AdConversion.status == ConversionStatus.SENDING.value, or_(
        AdConversion.next_attempt_at <= now,
        and_(AdConversion.next_attempt_at.is_(None),
             AdConversion.created_at <= now - CLAIM_LEASE)))


def _reclaimable(row: AdConversion, now: datetime) -> bool:
    if row.status == ConversionStatus.FAILED.value:
        return row.next_attempt_at is None or row.next_attempt_at <= now
    if row.status == ConversionStatus.SENDING.value:
        until = row.next_attempt_at or row.created_at + CLAIM_LEASE
        return until <= now
    return False


async def claim(session: AsyncSession, items: Sequence[Conversion], now: datetime
                ) -> list[Conversion]:
    """Mark each conversion ``sending`` (commit before the upload) with a lease of
    :data:`CLAIM_LEASE` (kept in ``next_attempt_at``); returns the ones this caller won.
    A conversion another round claimed meanwhile is left to it: taking a failed or
    abandoned one is a compare-and-set on its state, so two rounds never both win it."""
    won = []
    for item in items:
        row = await session.scalar(select(AdConversion).where(
            AdConversion.system == item.system.value, AdConversion.goal == item.goal.value,
            AdConversion.object_id == item.object_id))
        if row is None:
            try:
                async with session.begin_nested():
                    session.add(AdConversion(
                        system=item.system.value, goal=item.goal.value,
                        object_id=item.object_id, call_id=item.call_id,
                        occurred_at=item.occurred_at, value=item.value,
                        status=ConversionStatus.SENDING.value, attempts=1, created_at=now,
                        next_attempt_at=now + CLAIM_LEASE))
            except IntegrityError:
                continue
            won.append(item)
        elif _reclaimable(row, now):
            abandoned = row.status == ConversionStatus.SENDING.value
            due_again = or_(and_(AdConversion.status == ConversionStatus.FAILED.value,
                                 or_(AdConversion.next_attempt_at.is_(None),
                                     AdConversion.next_attempt_at <= now)),
                            _lease_over(now))
            result = await session.execute(
                update(AdConversion).where(AdConversion.id == row.id, due_again)
                .values(status=ConversionStatus.SENDING.value,
                        attempts=AdConversion.attempts + 1,
                        next_attempt_at=now + CLAIM_LEASE,
                        last_error="the round that claimed it did not finish"
                        if abandoned else AdConversion.last_error)
                .execution_options(synchronize_session=False))
            await session.refresh(row)
            if getattr(result, "rowcount", 0) == 1:
                if abandoned:
                    log.warning("conversions: %s %s %s claimed again: its round did not "
                                "finish within %s", *item.key, CLAIM_LEASE)
                won.append(item)
    await session.flush()
    return won


async def _rows(session: AsyncSession, items: Sequence[Conversion]) -> list[AdConversion]:
    if not items:
        return []
    system, goal = items[0].system.value, items[0].goal.value
    return list(await session.scalars(select(AdConversion).where(
        AdConversion.system == system, AdConversion.goal == goal,
        AdConversion.object_id.in_([i.object_id for i in items]))))


async def mark(session: AsyncSession, items: Sequence[Conversion], status: ConversionStatus,
               now: datetime, *, upload_id: str | None = None, error: str | None = None
               ) -> None:
    """Record how a claimed batch ended: sent, failed (due again after a backoff that
    doubles with each attempt) or rejected by the ad system (not tried again)."""
    for row in await _rows(session, items):
        row.status = status.value
        row.upload_id = upload_id or row.upload_id
        row.last_error = (error or "")[:500] or None
        if status == ConversionStatus.FAILED:
            row.next_attempt_at = now + _backoff(row.attempts)
        else:  # sent or refused: never due again (nor is its claim's lease)
            row.next_attempt_at = None
            if status == ConversionStatus.SENT:
                row.sent_at = now
    await session.flush()


def log_upload(session: AsyncSession, system: ConversionSystem, goal: ConversionGoal, *,
               count: int, attempt: int, ok: bool, now: datetime,
               http_status: int | None = None, upload_id: str | None = None,
               error: str | None = None) -> ConversionUpload:
    row = ConversionUpload(at=now, system=system.value, goal=goal.value, conversions=count,
                           attempt=attempt, ok=ok, http_status=http_status,
                           upload_id=upload_id, error=(error or "")[:500] or None)
    session.add(row)
    return row


async def upload_log(session: AsyncSession, limit: int = 30) -> list[ConversionUpload]:
    return list(await session.scalars(select(ConversionUpload).order_by(
        ConversionUpload.at.desc(), ConversionUpload.id.desc()).limit(limit)))


async def sent_counts(session: AsyncSession) -> dict[tuple[str, str, str], int]:
    """How many conversions are in each state, per system and goal."""
    from sqlalchemy import func

    rows = await session.execute(
        select(AdConversion.system, AdConversion.goal, AdConversion.status, func.count())
        .group_by(AdConversion.system, AdConversion.goal, AdConversion.status))
    return {(system, goal, status): int(n) for system, goal, status, n in rows}
