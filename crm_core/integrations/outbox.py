"""The outbox: events queued where they happen, the schedule of retries, the log.

:func:`queue_event` is how any feature tells the outside world that something happened:
it writes one delivery per active endpoint that hears the event, in the caller's
transaction (nothing is sent for a change rolled back, nothing lost for one committed).
The sender of ``telecrm serve`` works through the due deliveries
(``telecrm.integrations.sender``); this module decides what an attempt's outcome means.

Events and their ``data`` (the ``payload`` given here):

- ``call.ended``: the call JSON of ``calls export`` (a call hook, ``hooks``)
- ``deal.won``: the deal (``crm_core.sales.deals.deal_to_dict``), on entering a won stage
- ``kkp.result``: ``call_id``, ``script``, ``score``, ``needs_review`` and the result
- ``lead.created``: whatever the lead feature hands in; it calls
  ``await queue_event(session, "lead.created", payload, key=str(lead.id))``
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from crm_core.audit import write_audit
from crm_core.errors import DomainError, NotFoundError
from crm_core.integrations.admin import admin_only
from crm_core.integrations.models import DeliveryState, WebhookDelivery, WebhookEndpoint
from crm_core.integrations.webhooks import EVENTS, listening
from crm_core.people.models import User
from crm_core.timestamps import isoformat, utcnow

# Waits after the 1st, 2nd... failed attempt; after the last, the delivery has failed.
RETRY_SCHEDULE: tuple[timedelta, ...] = (timedelta(minutes=1), timedelta(minutes=5),
                                         timedelta(minutes=30), timedelta(hours=2),
                                         timedelta(hours=12))
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
# A claimed delivery is not claimed again for this long (a sender that died mid-attempt)
CLAIM_FOR = timedelta(minutes=2)
ACTION_RESEND = "resend"
# Delivered and failed deliveries stay in the log this long
KEEP_LOG = timedelta(days=30)


def _insert(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(WebhookDelivery)


async def queue_event(session: AsyncSession, event: str, payload: dict[str, Any], *,
                      key: str | None = None) -> int:
    """Queue ``event`` with ``payload`` (JSON-serializable) for every active endpoint that
    hears it; returns how many deliveries were queued. With ``key`` (what the event is
    about: a call's or a lead's id) the same event is queued once per endpoint however
    often it is reported. Runs in the caller's transaction; the caller commits."""
    return await queue_events(session, event, [(payload, key)])


async def queue_events(session: AsyncSession, event: str,
                       items: Sequence[tuple[dict[str, Any], str | None]], *,
                       endpoints: Sequence[WebhookEndpoint] | None = None) -> int:
    """:func:`queue_event` for several (payload, key) pairs at once: the endpoints are read
    once (or given, by a caller that has just read them) and every delivery goes in one
    INSERT (a written batch of calls)."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    if endpoints is None:
        endpoints = await listening(session, event) if items else []
    if not endpoints:
        return 0
    now = utcnow()
    queued = 0
    for keyed in (True, False):  # ON CONFLICT only where there is a key to conflict on
        rows = [{"delivery_id": str(uuid.uuid4()), "endpoint_id": endpoint.id, "event": event,
                 "key": key, "payload": payload, "state": DeliveryState.PENDING.value,
                 "attempts": 0, "created_at": now, "next_attempt_at": now}
                for payload, key in items if (key is not None) == keyed
                for endpoint in endpoints]
        if not rows:
            continue
        stmt = _insert(session).values(rows)
        if keyed:
            stmt = stmt.on_conflict_do_nothing(index_elements=["endpoint_id", "event", "key"])
        result = await session.execute(stmt)
        queued += int(getattr(result, "rowcount", 0) or 0)
    return queued


def envelope(delivery: WebhookDelivery) -> dict[str, Any]:
    """The JSON body sent: the same on every attempt of a delivery."""
    return {"id": delivery.delivery_id, "event": delivery.event,
            "created_at": isoformat(delivery.created_at), "data": delivery.payload}


async def claim_due(session: AsyncSession, now: datetime, limit: int = 20
                    ) -> list[WebhookDelivery]:
    """Pending deliveries due by ``now`` (oldest first), each pushed ``CLAIM_FOR`` ahead so
    another round (or process) leaves it alone while this one sends it. The caller
    commits before sending."""
    rows = list(await session.scalars(
        select(WebhookDelivery).options(joinedload(WebhookDelivery.endpoint))
        .where(WebhookDelivery.state == DeliveryState.PENDING.value,
               WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(limit)))
    claimed = []
    for row in rows:
        result = await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == row.id,
                   WebhookDelivery.state == DeliveryState.PENDING.value,
                   WebhookDelivery.next_attempt_at == row.next_attempt_at)
            .values(next_attempt_at=now + CLAIM_FOR)
            .execution_options(synchronize_session=False))
        if getattr(result, "rowcount", 0) == 1:
            claimed.append(row)
    return claimed


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: an HTTP status (None: no answer) and, if not 2xx, why."""

    status: int | None
    error: str | None = None
    retry: bool = True  # False: refused for good (a 4xx, a forbidden address)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def retryable_status(status: int) -> bool:
    """5xx, 408 (timeout) and 429 (slow down) are tried again; another 4xx is the
    receiver refusing this delivery, which an identical retry would not change."""
    return status >= 500 or status in (408, 429)


async def record_attempt(session: AsyncSession, delivery_id: int, outcome: Outcome,
                         now: datetime) -> WebhookDelivery:
    """Write an attempt's outcome: delivered, the next attempt by the schedule, or failed."""
    row = await session.get(WebhookDelivery, delivery_id, populate_existing=True)
    if row is None:
        raise NotFoundError("integrations.delivery_not_found", "no such delivery")
    row.attempts += 1
    row.last_attempt_at = now
    row.last_status = outcome.status
    row.last_error = None if outcome.ok else (outcome.error or "")[:1000]
    if outcome.ok:
        row.state = DeliveryState.DELIVERED.value
        row.delivered_at = now
        row.next_attempt_at = None
    elif outcome.retry and row.attempts < MAX_ATTEMPTS:
        row.next_attempt_at = now + RETRY_SCHEDULE[row.attempts - 1]
    else:
        row.state = DeliveryState.FAILED.value
        row.next_attempt_at = None
    return row


async def resend(session: AsyncSession, row_id: int, *, actor: User | None) -> WebhookDelivery:
    """«Отправить снова»: the same delivery (same id, same body) due at once, its retries
    counted afresh. Audited."""
    admin_only(actor)
    row = await session.get(WebhookDelivery, row_id)
    if row is None:
        raise NotFoundError("integrations.delivery_not_found", "no such delivery")
    if row.state == DeliveryState.PENDING.value and row.attempts == 0:
        raise DomainError("integrations.delivery_waiting", "the delivery is about to be sent")
    before = row.state
    row.state = DeliveryState.PENDING.value
    row.attempts = 0
    row.next_attempt_at = utcnow()
    row.delivered_at = None
    write_audit(session, actor=actor.username if actor else "cli",
                user_id=actor.id if actor else None, entity="webhook_delivery",
                entity_id=row.id, action=ACTION_RESEND,
                changes={"delivery_id": row.delivery_id, "state": [before, row.state]})
    return row


async def delivery_log(session: AsyncSession, *, endpoint_id: int | None = None,
                       state: str | None = None, limit: int = 200) -> list[WebhookDelivery]:
    """The newest deliveries first (with their endpoint), optionally of one endpoint or
    state."""
    stmt = (select(WebhookDelivery).options(joinedload(WebhookDelivery.endpoint))
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
            .limit(limit))
    if endpoint_id is not None:
        stmt = stmt.where(WebhookDelivery.endpoint_id == endpoint_id)
    if state is not None:
        stmt = stmt.where(WebhookDelivery.state == state)
    return list(await session.scalars(stmt))


async def counts(session: AsyncSession) -> dict[str, int]:
    """Deliveries by state (the log page's summary)."""
    rows = await session.execute(select(WebhookDelivery.state, func.count())
                                 .group_by(WebhookDelivery.state))
    return {state: int(n) for state, n in rows}


async def purge_log(session: AsyncSession, now: datetime) -> int:
    """Forget delivered and failed deliveries older than :data:`KEEP_LOG` (pending ones
    stay whatever their age); returns how many."""
    result = await session.execute(
        delete(WebhookDelivery)
        .where(WebhookDelivery.state != DeliveryState.PENDING.value,
               WebhookDelivery.created_at < now - KEEP_LOG)
        .execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)
