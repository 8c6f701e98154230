"""Call tracking services: numbers, sites, visits and their leases, and ad costs.

Attribution of calls lives in :mod:`crm_core.calltracking.attribution`, the
reports in :mod:`crm_core.calltracking.report`; the lease rules are the sans-IO
engine of :mod:`crm_core.calltracking.leases`.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.calltracking.attribution import attribute_late_leases
from crm_core.calltracking.leases import Decision, Outcome, PoolRules
from crm_core.calltracking.models import (
    CtAdCost,
    CtLease,
    CtPoolEvent,
    CtPoolNumber,
    CtSite,
    CtStaticNumber,
    CtVisit,
)
from crm_core.clients.phones import normalize_phone
from crm_core.errors import DomainError
from crm_core.timestamps import utcnow

ACTOR = "calltracking"
MAX_PAGES = 50  # pages remembered per visit
MAX_POOL_ADD = 200  # numbers added to a pool by one request
_HOST = re.compile(r"(?=.{1,253}\Z)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
                   r"(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:[0-9]{1,5})?")
SEARCH_ENGINES = {"yandex": "yandex", "google": "google", "bing": "bing", "mail.ru": "mail.ru",
                  "duckduckgo": "duckduckgo", "yahoo": "yahoo"}


class CallTrackingError(DomainError):
    """Bad input for call tracking (``calltracking.*``)."""


def _number(raw: str, what: str = "number") -> str:
    """``what`` names the field in the refusal (a key of ``telecrm.messages.FIELDS``)."""
    e164 = normalize_phone(raw) if isinstance(raw, str) else None
    if e164 is None:
        raise CallTrackingError("calltracking.number_invalid",
                                f"{raw!r} is not a valid phone number ({what})",
                                field=what, value=raw)
    return e164


def normalize_host(raw: str) -> str:
    """A site's host name in lower case (``shop.example``, ``localhost:8081``)."""
    host = (raw or "").strip().lower().rstrip(".")
    if not _HOST.fullmatch(host):
        raise CallTrackingError("calltracking.host_invalid",
                                f"{raw!r} is not a host name (like shop.example)", value=raw)
    return host


def _money(raw: Any, what: str) -> Decimal:
    try:
        value = Decimal(str(raw).strip().replace(" ", "").replace(",", "."))
    except InvalidOperation:
        raise CallTrackingError("calltracking.money_invalid",
                                f"{what} {raw!r} is not an amount of money",
                                field=what, value=raw) from None
    if not value.is_finite() or value < 0 or value >= Decimal("1e12"):
        raise CallTrackingError("calltracking.money_out_of_range",
                                f"{what} {raw!r} must be a non-negative amount",
                                field=what, value=raw)
    return value.quantize(Decimal("0.01"))


# -- static numbers ---------------------------------------------------------------------------


async def _number_in_use(session: AsyncSession, e164: str) -> str | None:
    """What tracks the number now (``static``, ``pool``); an archived number is free to be
    tracked again."""
    if await session.scalar(select(CtStaticNumber.id).where(
            CtStaticNumber.did == e164, CtStaticNumber.archived_at.is_(None))):
        return "static"
    if await session.scalar(select(CtPoolNumber.id).where(
            CtPoolNumber.number == e164, CtPoolNumber.archived_at.is_(None))):
        return "pool"
    return None


def _taken(e164: str, used: str) -> CallTrackingError:
    return CallTrackingError("calltracking.number_static" if used == "static"
                             else "calltracking.number_pooled",
                             f"{e164} is already a {used} number", number=e164)


async def add_static(session: AsyncSession, did: str, channel: str, *, campaign: str | None = None,
                     source: str | None = None, medium: str | None = None,
                     cost_per_month: Any = 0, actor: str = ACTOR) -> CtStaticNumber:
    """A static number for a channel (audited); a number is tracked once only."""
    e164 = _number(did, "did")
    channel = (channel or "").strip()
    if not channel or len(channel) > 200:
        raise CallTrackingError("calltracking.channel_name",
                                "the channel needs a name of 1 to 200 characters")
    used = await _number_in_use(session, e164)
    if used:
        raise _taken(e164, used)
    row = CtStaticNumber(did=e164, channel=channel, campaign=(campaign or None),
                         source=source or None, medium=medium or None,
                         cost_per_month=_money(cost_per_month, "cost_per_month"))
    session.add(row)
    await session.flush()
    write_audit(session, actor=actor, entity="ct_static_number", entity_id=row.id,
                action=ACTION_CREATE, changes={"did": e164, "channel": channel})
    return row


async def list_static(session: AsyncSession) -> list[CtStaticNumber]:
    stmt = select(CtStaticNumber).where(CtStaticNumber.archived_at.is_(None)).order_by(
        CtStaticNumber.id)
    return list(await session.scalars(stmt))


def static_to_dict(row: CtStaticNumber) -> dict[str, Any]:
    return {"did": row.did, "channel": row.channel, "source": row.source, "medium": row.medium,
            "campaign": row.campaign, "cost_per_month": float(row.cost_per_month)}


# -- sites and pools --------------------------------------------------------------------------


@dataclass(frozen=True)
class SiteOptions:
    default_numbers: Sequence[str] = ()
    selector: str | None = None
    origins: Sequence[str] = ()
    hold_seconds: int | None = None
    cooldown_seconds: int | None = None
    heartbeat_seconds: int | None = None
    grace_seconds: int | None = None
    reuse_live_leases: bool | None = None
    channel: str | None = None


def _origin(raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise CallTrackingError("calltracking.origin_invalid",
                                f"{raw!r} is not an origin (like https://shop.example)", value=raw)
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _seconds(value: int, what: str, low: int, high: int) -> int:
    if not low <= value <= high:
        raise CallTrackingError("calltracking.seconds_out_of_range",
                                f"{what} must be between {low} and {high} seconds",
                                field=what, low=low, high=high)
    return value


async def get_site(session: AsyncSession, host: str) -> CtSite | None:
    stmt = (select(CtSite).where(CtSite.host == host, CtSite.archived_at.is_(None))
            .options(selectinload(CtSite.numbers)))
    return await session.scalar(stmt)


async def save_site(session: AsyncSession, host: str, options: SiteOptions, *,
                    actor: str = ACTOR) -> CtSite:
    """Create the site or change the given options (audited)."""
    host = normalize_host(host)
    site = await get_site(session, host)
    changes: dict[str, Any] = {}
    if site is None:
        site = CtSite(host=host, default_numbers=[], allowed_origins=[f"https://{host}",
                                                                       f"http://{host}"],
                      selector=".ct-phone", hold_seconds=180, cooldown_seconds=60,
                      heartbeat_seconds=60, grace_seconds=300, reuse_live_leases=False,
                      channel="Сайт", numbers=[])
        session.add(site)
        action = ACTION_CREATE
    else:
        action = ACTION_UPDATE
    values: dict[str, Any] = {}
    if options.default_numbers:
        values["default_numbers"] = [_number(n, "default_number") for n in options.default_numbers]
    if options.selector is not None:
        if not 0 < len(options.selector) <= 300 or "<" in options.selector:
            raise CallTrackingError("calltracking.selector_invalid",
                                    "the selector must be a CSS selector of up to 300 characters")
        values["selector"] = options.selector
    if options.origins:
        values["allowed_origins"] = [_origin(o) for o in options.origins]
    for name, low, high in (("hold_seconds", 30, 86400), ("cooldown_seconds", 0, 86400),
                            ("heartbeat_seconds", 10, 3600), ("grace_seconds", 0, 86400)):
        value = getattr(options, name)
        if value is not None:
            values[name] = _seconds(value, name, low, high)
    if options.reuse_live_leases is not None:
        values["reuse_live_leases"] = options.reuse_live_leases
    if options.channel:
        values["channel"] = options.channel.strip()[:200]
    for key, value in values.items():
        if getattr(site, key) != value:
            changes[key] = value
            setattr(site, key, value)
    await session.flush()
    if action == ACTION_CREATE or changes:
        write_audit(session, actor=actor, entity="ct_site", entity_id=site.id, action=action,
                    changes={"host": host, **changes})
    return site


async def add_pool_numbers(session: AsyncSession, host: str, numbers: Sequence[str], *,
                           actor: str = ACTOR) -> CtSite:
    """Numbers for a site's pool (the site is created with defaults when new)."""
    if not numbers:
        raise CallTrackingError("calltracking.pool_empty", "give at least one number for the pool")
    if len(numbers) > MAX_POOL_ADD:  # before any query: the caller chose the list
        raise CallTrackingError("calltracking.pool_too_many",
                                f"add at most {MAX_POOL_ADD} numbers at a time", max=MAX_POOL_ADD)
    e164s = [_number(n) for n in numbers]
    if len(set(e164s)) != len(e164s):
        raise CallTrackingError("calltracking.number_twice", "a number is given twice")
    static = set(await session.scalars(select(CtStaticNumber.did).where(
        CtStaticNumber.did.in_(e164s), CtStaticNumber.archived_at.is_(None))))
    pooled = set(await session.scalars(select(CtPoolNumber.number).where(
        CtPoolNumber.number.in_(e164s), CtPoolNumber.archived_at.is_(None))))
    for e164 in e164s:  # two queries for the whole list
        if e164 in static or e164 in pooled:
            raise _taken(e164, "static" if e164 in static else "pool")
    site = await get_site(session, normalize_host(host))
    if site is None:
        site = await save_site(session, host, SiteOptions(), actor=actor)
    for e164 in e164s:
        site.numbers.append(CtPoolNumber(number=e164))
    await session.flush()
    write_audit(session, actor=actor, entity="ct_site", entity_id=site.id, action=ACTION_UPDATE,
                changes={"pool_added": e164s})
    return site


async def list_sites(session: AsyncSession) -> list[CtSite]:
    stmt = (select(CtSite).where(CtSite.archived_at.is_(None)).order_by(CtSite.host)
            .options(selectinload(CtSite.numbers)))
    return list(await session.scalars(stmt))


def pool_of(site: CtSite) -> list[str]:
    return [n.number for n in site.numbers if n.archived_at is None]


def rules_of(site: CtSite) -> PoolRules:
    return PoolRules(hold=float(site.hold_seconds), cooldown=float(site.cooldown_seconds),
                     reuse_live=site.reuse_live_leases)


def site_to_dict(site: CtSite) -> dict[str, Any]:
    return {"host": site.host, "numbers": pool_of(site), "default_numbers": site.default_numbers,
            "selector": site.selector, "allowed_origins": site.allowed_origins,
            "hold_seconds": site.hold_seconds, "cooldown_seconds": site.cooldown_seconds,
            "heartbeat_seconds": site.heartbeat_seconds, "grace_seconds": site.grace_seconds,
            "reuse_live_leases": site.reuse_live_leases, "channel": site.channel}


# -- ad costs -----------------------------------------------------------------------------------


def _month(raw: str) -> date:
    text = (raw or "").strip()
    try:
        if len(text) == 7:
            return date.fromisoformat(text + "-01")
        return date.fromisoformat(text).replace(day=1)
    except ValueError:
        raise CallTrackingError("calltracking.month_invalid", f"{raw!r} is not a month (YYYY-MM)",
                                value=raw) from None


async def import_costs(session: AsyncSession, path: Path, *, actor: str = ACTOR) -> int:
    """Monthly costs from CSV ``month,channel,amount``: all rows or none.

    A broken row raises :class:`CallTrackingError` naming its line; nothing is written.
    A (month, channel) already known is replaced (audited).
    """
    try:
        text = path.read_text("utf-8-sig")
    except UnicodeDecodeError:
        raise CallTrackingError("calltracking.costs_not_utf8", f"{path} is not UTF-8 text",
                                path=str(path)) from None
    return await import_costs_text(session, text, str(path), actor=actor)


MAX_COST_ROWS = 5000  # a costs file holds months x channels: a few hundred lines


async def import_costs_text(session: AsyncSession, text: str, path: str, *,
                            actor: str = ACTOR, user_id: int | None = None) -> int:
    """:func:`import_costs` of a file's text (the page's upload); ``path`` names it in errors.

    Fields are split by commas, or by semicolons as a Russian Excel saves CSV.
    """
    return await store_costs(session, parse_costs_text(text, path), actor=actor,
                             user_id=user_id, source="file")


def parse_costs_text(text: str, path: str) -> dict[tuple[date, str], Decimal]:
    """The (month, channel) -> amount of a costs CSV, checked line by line, at most
    :data:`MAX_COST_ROWS` lines. Pure and synchronous: the web runs it on a thread, before
    any transaction, since the text is a user's upload."""
    text = text.removeprefix("\ufeff")
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if ";" in first_line and "," not in first_line else ","  # Excel's own
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip().lower() for h in reader.fieldnames or []]
    if header[:3] != ["month", "channel", "amount"]:
        raise CallTrackingError("calltracking.costs_header",
                                f"{path}: the header must be month,channel,amount",
                                path=str(path))
    rows: dict[tuple[date, str], Decimal] = {}
    for record in reader:
        line = reader.line_num
        if line > MAX_COST_ROWS + 1:
            raise CallTrackingError("calltracking.costs_too_many",
                                    f"{path}: more than {MAX_COST_ROWS} lines",
                                    path=str(path), max=MAX_COST_ROWS)
        values = list(record.values())
        if None in record or any(v is None for v in values[:3]) or len(values) < 3:
            raise CallTrackingError("calltracking.costs_fields",
                                    f"{path}, line {line}: expected 3 fields",
                                    path=str(path), line=line)
        month_raw, channel, amount_raw = (str(v) for v in values[:3])
        try:
            month = _month(month_raw)
            channel = channel.strip()
            if not channel or len(channel) > 200:
                raise CallTrackingError("calltracking.channel_name",
                                        "the channel needs a name of 1 to 200 characters")
            amount = _money(amount_raw, "amount")
        except CallTrackingError as exc:
            raise CallTrackingError("calltracking.costs_line", f"{path}, line {line}: {exc}",
                                    path=str(path), line=line, error=exc) from None
        rows[(month, channel)] = amount
    return rows


async def store_costs(session: AsyncSession, rows: dict[tuple[date, str], Decimal], *,
                      actor: str = ACTOR, user_id: int | None = None,
                      source: str = "file") -> int:
    """Write parsed costs: one query finds the rows already known, then each is created or
    corrected (audited). ``rows`` is bounded by :func:`parse_costs_text`; ``source`` says
    where the figures came from (kept on each row)."""
    months = {month for month, _ in rows}
    known = {(r.month, r.channel): r for r in await session.scalars(
        select(CtAdCost).where(CtAdCost.month.in_(months)))} if months else {}
    for (month, channel), amount in rows.items():
        await _store_cost(session, month, channel, amount, actor=actor, user_id=user_id,
                          known=known, source=source)
    await session.flush()
    return len(rows)


async def _store_cost(session: AsyncSession, month: date, channel: str, amount: Decimal, *,
                      actor: str, user_id: int | None,
                      known: dict[tuple[date, str], CtAdCost] | None = None,
                      source: str = "manual") -> CtAdCost:
    """Create or correct one month's cost; the old amount stays in the audit log.
    ``known``: the rows already looked up (a bulk import), else one query finds it."""
    row = known.get((month, channel)) if known is not None else await session.scalar(
        select(CtAdCost).where(CtAdCost.month == month, CtAdCost.channel == channel))
    if row is None:
        row = CtAdCost(month=month, channel=channel, amount=amount, source=source)
        session.add(row)
        await session.flush()
        write_audit(session, actor=actor, entity="ct_ad_cost", entity_id=row.id,
                    action=ACTION_CREATE, user_id=user_id,
                    changes={"month": month.isoformat(), "channel": channel,
                             "amount": str(amount), "source": source})
    elif row.amount != amount:
        changes: dict[str, Any] = {"amount": [str(row.amount), str(amount)]}
        if row.source != source:
            changes["source"] = [row.source, source]
        write_audit(session, actor=actor, entity="ct_ad_cost", entity_id=row.id,
                    action=ACTION_UPDATE, user_id=user_id, changes=changes)
        row.amount = amount
        row.source = source
    return row


async def set_cost(session: AsyncSession, month: str, channel: str, amount: Any, *,
                   actor: str = ACTOR, user_id: int | None = None) -> CtAdCost:
    """A cost entered by hand for a channel and month; entering it again corrects it.

    Never deleted: a mistaken cost is corrected to 0, and every change is audited.
    """
    channel = (channel or "").strip()
    if not channel or len(channel) > 200:
        raise CallTrackingError("calltracking.channel_name",
                                "the channel needs a name of 1 to 200 characters")
    row = await _store_cost(session, _month(month), channel, _money(amount, "amount"),
                            actor=actor, user_id=user_id)
    await session.flush()
    return row


async def list_costs(session: AsyncSession, months: Sequence[date] = (), *,
                     since: str | None = None, until: str | None = None) -> list[CtAdCost]:
    """Costs, newest month first; ``since``/``until`` are months (YYYY-MM), inclusive."""
    stmt = select(CtAdCost).order_by(CtAdCost.month.desc(), CtAdCost.channel)
    if months:
        stmt = stmt.where(CtAdCost.month.in_(list(months)))
    first = _month(since) if since else None
    last = _month(until) if until else None
    if first and last and last < first:
        raise CallTrackingError("calltracking.months_reversed",
                                "the first month must not be after the last")
    if first:
        stmt = stmt.where(CtAdCost.month >= first)
    if last:
        stmt = stmt.where(CtAdCost.month <= last)
    return list(await session.scalars(stmt))


def cost_to_dict(row: CtAdCost) -> dict[str, Any]:
    return {"month": row.month.strftime("%Y-%m"), "channel": row.channel,
            "amount": float(row.amount)}


async def archive_number(session: AsyncSession, number: str, *, actor: str = ACTOR,
                         user_id: int | None = None) -> str:
    """Stop tracking a static or pool number (archived, audited); says which it was."""
    e164 = _number(number)
    now = utcnow()
    static = await session.scalar(select(CtStaticNumber).where(
        CtStaticNumber.did == e164, CtStaticNumber.archived_at.is_(None)))
    if static is not None:
        static.archived_at = now
        write_audit(session, actor=actor, entity="ct_static_number", entity_id=static.id,
                    action=ACTION_UPDATE, user_id=user_id, changes={"archived": e164})
        await session.flush()
        return "static"
    pooled = await session.scalar(select(CtPoolNumber).where(
        CtPoolNumber.number == e164, CtPoolNumber.archived_at.is_(None)))
    if pooled is None:
        raise CallTrackingError("calltracking.not_tracked", f"{e164} is not a tracked number",
                                number=e164)
    pooled.archived_at = now
    write_audit(session, actor=actor, entity="ct_site", entity_id=pooled.site_id,
                action=ACTION_UPDATE, user_id=user_id, changes={"pool_archived": e164})
    await session.flush()
    return "pool"


# -- visits --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VisitReport:
    """What the page snippet reports (already validated by the web layer)."""

    url: str
    referrer: str | None = None
    client_ids: dict[str, str] | None = None
    user_agent: str | None = None


def source_of(url: str, referrer: str | None) -> dict[str, str | None]:
    """UTM tags and click ids of the landing URL, else a source guessed from the referrer."""
    query = parse_qs(urlsplit(url).query)

    def one(key: str) -> str | None:
        values = query.get(key)
        return values[0][:200] if values and values[0] else None

    tags = {key: one(f"utm_{key}") for key in ("source", "medium", "campaign", "term",
                                                  "content")}
    tags["gclid"], tags["yclid"] = one("gclid"), one("yclid")
    if tags["source"] is None:
        if tags["yclid"]:
            tags["source"], tags["medium"] = "yandex", tags["medium"] or "cpc"
        elif tags["gclid"]:
            tags["source"], tags["medium"] = "google", tags["medium"] or "cpc"
        elif referrer:
            host = (urlsplit(referrer).hostname or "").lower()
            engine = next((name for key, name in SEARCH_ENGINES.items() if key in host), None)
            site_host = (urlsplit(url).hostname or "").lower()
            if host and host != site_host:
                tags["source"] = engine or host[:200]
                tags["medium"] = "organic" if engine else "referral"
        if tags["source"] is None:
            tags["source"], tags["medium"] = "(direct)", "(none)"
    return tags


async def record_visit(session: AsyncSession, site: CtSite, token: str, report: VisitReport,
                       now: datetime, *, bot: bool) -> CtVisit:
    """Create the visit or add the page it is on now."""
    visit = await session.scalar(select(CtVisit).where(CtVisit.session == token))
    if visit is None:
        tags = source_of(report.url, report.referrer)
        visit = CtVisit(session=token, site_id=site.id, utm_source=tags["source"],
                        utm_medium=tags["medium"], utm_campaign=tags["campaign"],
                        utm_term=tags["term"], utm_content=tags["content"],
                        gclid=tags["gclid"], yclid=tags["yclid"], referrer=report.referrer,
                        landing=report.url, pages=[report.url],
                        client_ids=dict(report.client_ids or {}),
                        user_agent=(report.user_agent or "")[:300] or None, is_bot=bot,
                        first_seen=now, last_seen=now)
        session.add(visit)
        await session.flush()
        return visit
    visit.last_seen = now
    if visit.pages[-1:] != [report.url] and len(visit.pages) < MAX_PAGES:
        visit.pages = [*visit.pages, report.url]
    if report.client_ids:
        merged = {**visit.client_ids, **report.client_ids}
        if merged != visit.client_ids:
            visit.client_ids = merged
    return visit


async def record_decision(session: AsyncSession, site: CtSite, visit: CtVisit,
                          decision: Decision, now: datetime) -> None:
    """Keep the lease history (what attribution reads) and count fallback impressions."""
    if decision.number is None:
        session.add(CtPoolEvent(site_id=site.id, at=now, kind="exhausted",
                                live_leases=decision.live))
        return
    shared = decision.outcome == Outcome.SHARED
    ends = (datetime.fromtimestamp(decision.expires_at, now.tzinfo) if decision.expires_at
            else now + timedelta(seconds=site.hold_seconds))
    lease = await session.scalar(
        select(CtLease).where(CtLease.visit_id == visit.id, CtLease.number == decision.number)
        .order_by(CtLease.started_at.desc()).limit(1))
    keep = decision.outcome == Outcome.RENEWED or (lease is not None and lease.ends_at >= now)
    if lease is not None and keep:
        lease.ends_at = max(lease.ends_at, ends)
        return
    session.add(CtLease(number=decision.number, site_id=site.id, visit_id=visit.id,
                        started_at=now, ends_at=ends, shared=shared))


# -- visit tokens and the batched history ---------------------------------------------------------


def new_token(site: CtSite) -> str:
    """A visit token signed with the site's key: ``random.signature`` (33 characters)."""
    nonce = secrets.token_urlsafe(12)
    return f"{nonce}.{_signature(site, nonce)}"


def token_is_valid(site: CtSite, token: str) -> bool:
    """True for a token this site issued (no database lookup: any web process can check)."""
    if not token.isascii():
        return False
    nonce, _, signature = token.partition(".")
    return bool(nonce) and hmac.compare_digest(signature, _signature(site, nonce))


def _signature(site: CtSite, nonce: str) -> str:
    digest = hmac.new(site.token_key.encode(), f"{site.host}|{nonce}".encode(),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:20]


@dataclass(frozen=True)
class VisitEvent:
    """One request of a page: the visit's report and the lease decision (if any)."""

    site_id: int
    hold_seconds: int
    token: str
    report: VisitReport
    at: datetime
    bot: bool
    decision: Decision | None


async def record_visit_events(session: AsyncSession, events: Sequence[VisitEvent]) -> None:
    """Write a batch of page requests in order: visits, lease history, fallback events.

    A few queries per batch (not per request), so the public endpoint answers from
    the lease store alone and the history follows a moment later.
    """
    if not events:
        return
    tokens = sorted({e.token for e in events})
    visits = {v.session: v for v in await session.scalars(
        select(CtVisit).where(CtVisit.session.in_(tokens)))}
    for event in events:
        visit = visits.get(event.token)
        report = event.report
        if visit is None:
            tags = source_of(report.url, report.referrer)
            visit = CtVisit(session=event.token, site_id=event.site_id,
                            utm_source=tags["source"], utm_medium=tags["medium"],
                            utm_campaign=tags["campaign"], utm_term=tags["term"],
                            utm_content=tags["content"], gclid=tags["gclid"],
                            yclid=tags["yclid"], referrer=report.referrer, landing=report.url,
                            pages=[report.url], client_ids=dict(report.client_ids or {}),
                            user_agent=(report.user_agent or "")[:300] or None, is_bot=event.bot,
                            first_seen=event.at, last_seen=event.at)
            session.add(visit)
            visits[event.token] = visit
            continue
        visit.last_seen = max(visit.last_seen, event.at)
        if visit.pages[-1:] != [report.url] and len(visit.pages) < MAX_PAGES:
            visit.pages = [*visit.pages, report.url]
        if report.client_ids and {**visit.client_ids, **report.client_ids} != visit.client_ids:
            visit.client_ids = {**visit.client_ids, **report.client_ids}
    await session.flush()
    ids = [visits[t].id for t in tokens]
    latest: dict[tuple[int, str], CtLease] = {}
    written: list[CtLease] = []  # leases begun or moved on by this batch
    for kept in await session.scalars(select(CtLease).where(CtLease.visit_id.in_(ids))
                                      .order_by(CtLease.started_at, CtLease.id)):
        latest[(kept.visit_id, kept.number)] = kept
    for event in events:
        decision = event.decision
        if decision is None:
            continue
        visit = visits[event.token]
        if decision.number is None:
            session.add(CtPoolEvent(site_id=event.site_id, at=event.at, kind="exhausted",
                                    live_leases=decision.live))
            continue
        shared = decision.outcome == Outcome.SHARED
        ends = (datetime.fromtimestamp(decision.expires_at, event.at.tzinfo)
                if decision.expires_at else event.at + timedelta(seconds=event.hold_seconds))
        lease = latest.get((visit.id, decision.number))
        # the visit's lease on this number still running is the same lease, moved on (a
        # renewal, or another web process's writer having written it first)
        keep = decision.outcome == Outcome.RENEWED or (lease is not None
                                                        and lease.ends_at >= event.at)
        if lease is not None and keep:
            lease.ends_at = max(lease.ends_at, ends)
            written.append(lease)
            continue
        lease = CtLease(number=decision.number, site_id=event.site_id, visit_id=visit.id,
                        started_at=event.at, ends_at=ends, shared=shared)
        session.add(lease)
        latest[(visit.id, decision.number)] = lease
        written.append(lease)
    await session.flush()
    await attribute_late_leases(session, written)
