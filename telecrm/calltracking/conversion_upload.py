"""Sending offline conversions to Yandex Metrica and Google Ads: the upload client and the
round that ``telecrm serve`` runs (:data:`conversions_ctx`) and ``telecrm conversions
send`` runs once.

The protocols, as documented:

- **Metrica** (management API): ``POST {api}/management/v1/counter/{counter}/
  offline_conversions/upload_calls?new_goal_name=...`` (calls) or ``.../upload``
  (offline conversions), header ``Authorization: OAuth <token>``, the CSV as the
  multipart field ``file``; the answer is ``{"uploading": {"id", "status", ...}}``;
- **Google Ads** (REST): ``POST {api}/{version}/customers/{id}:uploadClickConversions``
  with ``Authorization: Bearer <token>`` and ``developer-token``, the body
  ``{"conversions": [{"gclid", "conversionAction", "conversionDateTime",
  "conversionValue", "currencyCode"}], "partialFailure": true}``; a conversion the
  answer's ``results`` leaves empty was refused (its reason in ``partialFailureError``).

A 5xx, a 429 (after its ``Retry-After``) or a broken connection is retried with a
doubling pause; every attempt is logged (``ad_conversion_uploads`` and the log). What
is claimed is never sent twice (:func:`crm_core.calltracking.conversions.claim`): a
batch that still failed is due again later, a batch refused (4xx) is not. A batch whose
round died between the claim and the answer is due again after the claim's lease
(:data:`~crm_core.calltracking.conversions.CLAIM_LEASE`, 30 minutes).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.calltracking.ad_models import (
    ConversionAccount,
    ConversionGoal,
    ConversionStatus,
    ConversionSystem,
)
from crm_core.calltracking.conversions import (
    SYSTEM_NAMES,
    Conversion,
    claim,
    due,
    get_account,
    google_api_time,
    log_upload,
    mark,
    metrica_calls_csv,
    metrica_deals_csv,
)
from crm_core.clock import utcnow
from telecrm import csv_safety
from telecrm.rounds import rounds_ctx
from telecrm.settings import Settings
from telecrm.web.keys import SETTINGS, WRITER_SESSIONS

log = logging.getLogger(__name__)

GOOGLE_ADS_API_VERSION = "v19"
ATTEMPTS = 4  # one upload and three retries within a round
MAX_PAUSE = 60.0
TIMEOUT = aiohttp.ClientTimeout(total=60)


@dataclass(frozen=True)
class Answer:
    """What one HTTP attempt gave: a status (None: no answer at all) and the JSON."""

    status: int | None
    body: Any
    error: str | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status == 429 or self.status >= 500


@dataclass(frozen=True)
class Outcome:
    """How a batch ended after its retries."""

    sent: list[Conversion]
    rejected: list[Conversion]
    failed: list[Conversion]
    upload_id: str | None = None
    error: str | None = None


Attempt = Callable[[], Awaitable[Answer]]


async def _answer(response: aiohttp.ClientResponse) -> Answer:
    try:
        body = await response.json(content_type=None)
    except ValueError:
        body = None
    retry_after = response.headers.get("Retry-After")
    error = None
    if response.status >= 300:
        error = f"HTTP {response.status}: {str(body)[:300] if body else response.reason}"
    try:
        pause = float(retry_after) if retry_after else None
    except ValueError:
        pause = None
    return Answer(response.status, body, error, pause)


async def with_retries(attempt: Attempt, *, first_pause: float,
                       on_attempt: Callable[[int, Answer], None],
                       sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> Answer:
    """``attempt()`` until it succeeds, is refused for good, or :data:`ATTEMPTS` are spent;
    the pause doubles each time (a 429's ``Retry-After`` wins when longer)."""
    pause = first_pause
    answer = Answer(None, None, "not tried")
    for number in range(1, ATTEMPTS + 1):
        try:
            answer = await attempt()
        except (aiohttp.ClientError, TimeoutError) as exc:
            answer = Answer(None, None, f"{type(exc).__name__}: {exc}"[:300])
        on_attempt(number, answer)
        if answer.ok or not answer.retryable or number == ATTEMPTS:
            return answer
        await sleep(min(MAX_PAUSE, max(pause, answer.retry_after or 0.0)))
        pause *= 2
    return answer


class MetricaClient:
    """Uploads to the Metrica management API with the marketer's OAuth token."""

    def __init__(self, http: aiohttp.ClientSession, api: str, token: str) -> None:
        self.http, self.api, self.token = http, api.rstrip("/"), token

    async def upload(self, counter: str, goal: ConversionGoal, body: str,
                     goal_name: str | None = None) -> Answer:
        path = "upload_calls" if goal == ConversionGoal.CALL else "upload"
        params = {"comment": "Telecrm"}
        if goal == ConversionGoal.CALL and goal_name:
            params["new_goal_name"] = goal_name
        form = aiohttp.FormData()
        form.add_field("file", body.encode("utf-8"), filename=f"{path}.csv",
                       content_type="text/csv")
        async with self.http.post(
                f"{self.api}/management/v1/counter/{counter}/offline_conversions/{path}",
                params=params, data=form, headers={"Authorization": f"OAuth {self.token}"},
                timeout=TIMEOUT) as response:
            return await _answer(response)


class GoogleAdsClient:
    """Uploads click conversions to the Google Ads API with the marketer's OAuth token."""

    def __init__(self, http: aiohttp.ClientSession, api: str, token: str,
                 developer_token: str) -> None:
        self.http, self.api = http, api.rstrip("/")
        self.token, self.developer_token = token, developer_token

    async def upload(self, customer: str, conversions: list[dict[str, Any]]) -> Answer:
        async with self.http.post(
                f"{self.api}/{GOOGLE_ADS_API_VERSION}/customers/{customer}"
                ":uploadClickConversions",
                json={"conversions": conversions, "partialFailure": True},
                headers={"Authorization": f"Bearer {self.token}",
                         "developer-token": self.developer_token},
                timeout=TIMEOUT) as response:
            return await _answer(response)


def google_conversions(items: Sequence[Conversion], account: ConversionAccount,
                       tz: ZoneInfo) -> list[dict[str, Any]]:
    out = []
    for item in items:
        action = account.call_goal if item.goal == ConversionGoal.CALL else account.deal_goal
        body: dict[str, Any] = {
            "gclid": item.gclid,
            "conversionAction": f"customers/{account.account_id}/conversionActions/{action}",
            "conversionDateTime": google_api_time(item.occurred_at, tz),
            "currencyCode": account.currency}
        if item.value is not None:
            body["conversionValue"] = float(item.value)
        out.append(body)
    return out


def already_uploaded(body: Any) -> set[int]:
    """Indexes of the conversions Google's partial failure calls
    ``CLICK_CONVERSION_ALREADY_EXISTS``: Google Ads already holds them (same gclid,
    conversion action and time: a batch sent again after its round died), so they count
    as sent, not refused."""
    out: set[int] = set()
    failure = (body.get("partialFailureError") if isinstance(body, dict) else None) or {}
    for detail in failure.get("details") or []:
        for error in (detail or {}).get("errors") or []:
            code = ((error or {}).get("errorCode") or {}).get("conversionUploadError")
            if code != "CLICK_CONVERSION_ALREADY_EXISTS":
                continue
            for element in ((error.get("location") or {}).get("fieldPathElements") or []):
                if element.get("fieldName") == "conversions" and isinstance(
                        element.get("index"), int):
                    out.add(element["index"])
    return out


def _goals(account: ConversionAccount) -> list[ConversionGoal]:
    """The goals this account sends: the ones it names."""
    return [goal for goal, named in ((ConversionGoal.CALL, account.call_goal),
                                     (ConversionGoal.DEAL, account.deal_goal)) if named]


async def _upload(http: aiohttp.ClientSession, settings: Settings, account: ConversionAccount,
                  goal: ConversionGoal, items: list[Conversion],
                  on_attempt: Callable[[int, Answer], None]) -> Outcome:
    system = ConversionSystem(account.system)
    first_pause = settings.conversions_retry_ms / 1000
    tz = ZoneInfo(settings.timezone)
    if system == ConversionSystem.METRICA:
        client = MetricaClient(http, settings.metrica_api_url, account.token or "")
        body = (metrica_calls_csv(items, currency=account.currency, writer=csv_safety.writer)
                if goal == ConversionGoal.CALL
                else metrica_deals_csv(items, account.deal_goal or "", currency=account.currency,
                                       writer=csv_safety.writer))
        answer = await with_retries(
            lambda: client.upload(account.account_id, goal, body, account.call_goal),
            first_pause=first_pause, on_attempt=on_attempt)
        if answer.ok:
            uploading = (answer.body or {}).get("uploading") or {}
            return Outcome(items, [], [], upload_id=str(uploading.get("id") or "") or None)
    else:
        google = GoogleAdsClient(http, settings.google_ads_api_url, account.token or "",
                                 account.developer_token or "")
        payload = google_conversions(items, account, tz)
        answer = await with_retries(lambda: google.upload(account.account_id, payload),
                                    first_pause=first_pause, on_attempt=on_attempt)
        if answer.ok:
            results = (answer.body or {}).get("results") or []
            known = already_uploaded(answer.body)
            sent = [item for index, item in enumerate(items)
                    if (index < len(results) and results[index]) or index in known]
            refused = [item for item in items if item not in sent]
            error = ((answer.body or {}).get("partialFailureError") or {}).get("message")
            return Outcome(sent, refused, [], upload_id=str((answer.body or {}).get("jobId")
                                                            or "") or None, error=error)
    if answer.retryable:
        return Outcome([], [], items, error=answer.error)
    return Outcome([], items, [], error=answer.error)


async def send_account(sessions: async_sessionmaker[AsyncSession], settings: Settings,
                       system: ConversionSystem, http: aiohttp.ClientSession
                       ) -> dict[str, int]:
    """One round for one ad system: each goal's due conversions claimed, uploaded, marked."""
    totals = {"sent": 0, "failed": 0, "rejected": 0}
    async with sessions() as session:
        account = await get_account(session, system)
    if account is None or not account.enabled or not account.token:
        return totals
    if system == ConversionSystem.GOOGLE_ADS and not account.developer_token:
        return totals
    for goal in _goals(account):
        now = utcnow()
        async with sessions() as session, session.begin():
            items = await claim(session, await due(session, system, goal, now), now)
        if not items:
            continue
        attempts: list[tuple[int, Answer]] = []

        def on_attempt(number: int, answer: Answer, goal: ConversionGoal = goal,
                       count: int = len(items),
                       attempts: list[tuple[int, Answer]] = attempts) -> None:
            attempts.append((number, answer))
            level = logging.INFO if answer.ok else logging.WARNING
            log.log(level, "conversions: %s %s, %d, attempt %d: %s", system.value, goal.value,
                    count, number, "ok" if answer.ok else answer.error)

        outcome = await _upload(http, settings, account, goal, items, on_attempt)
        now = utcnow()
        async with sessions() as session, session.begin():
            for number, answer in attempts:
                log_upload(session, system, goal, count=len(items), attempt=number,
                           ok=answer.ok, now=now, http_status=answer.status,
                           upload_id=outcome.upload_id if answer.ok else None,
                           error=answer.error or (outcome.error if answer.ok else None))
            await mark(session, outcome.sent, ConversionStatus.SENT, now,
                       upload_id=outcome.upload_id)
            await mark(session, outcome.rejected, ConversionStatus.REJECTED, now,
                       upload_id=outcome.upload_id, error=outcome.error)
            await mark(session, outcome.failed, ConversionStatus.FAILED, now,
                       error=outcome.error)
        totals["sent"] += len(outcome.sent)
        totals["failed"] += len(outcome.failed)
        totals["rejected"] += len(outcome.rejected)
    return totals


async def send_all(sessions: async_sessionmaker[AsyncSession], settings: Settings
                   ) -> dict[str, dict[str, int]]:
    """One round for every ad system; returns what each sent, failed and had refused."""
    out = {}
    async with aiohttp.ClientSession() as http:
        for system in ConversionSystem:
            out[system.value] = await send_account(sessions, settings, system, http)
    return out


def system_label(system: str) -> str:
    return SYSTEM_NAMES[ConversionSystem(system)]


async def _round(app: web.Application) -> None:
    await send_all(app[WRITER_SESSIONS], app[SETTINGS])


def conversions_ctx_for(settings: Settings) -> Callable[..., Any]:
    """``cleanup_ctx``: send conversions every ``TELECRM_CONVERSIONS_EVERY`` seconds."""
    return rounds_ctx("ad-conversions", _round, float(settings.conversions_every),
                      "offline conversions")
