"""The webhook sender: a round of ``telecrm serve`` that posts due deliveries.

Every few seconds it claims the due deliveries of the outbox
(:mod:`crm_core.integrations.outbox`, committed first, so two senders never post the
same attempt) and posts each as JSON, signed::

    X-Telecrm-Event: call.ended
    X-Telecrm-Delivery: <the delivery id, the same on every attempt>
    X-Telecrm-Timestamp: <unix seconds of this attempt>
    X-Telecrm-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the secret>

A 2xx answer delivers it. No answer within ``TIMEOUT`` seconds, a network error, a 5xx,
408 or 429 is tried again after 1 min, 5 min, 30 min, 2 h and 12 h, then the delivery
has failed; another answer (a 4xx, a redirect, which is never followed) fails it at
once. Deliveries are at least once: a receiver drops a repeated delivery id.

Addresses on the local network are refused (unless ``TELECRM_WEBHOOKS_ALLOW_PRIVATE``):
the name is resolved before each attempt and every address it gives must be public,
and the connection itself goes through :class:`PublicResolver`, so a name that
resolves differently a moment later (DNS rebinding) reaches no private address either.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.clock import utcnow
from crm_core.errors import DomainError
from crm_core.integrations.models import WebhookDelivery
from crm_core.integrations.outbox import (
    Outcome,
    claim_due,
    envelope,
    purge_log,
    record_attempt,
    retryable_status,
)
from crm_core.integrations.webhooks import check_url, is_public
from telecrm.messages import russian, sentence
from telecrm.rounds import rounds_ctx
from telecrm.web.keys import SETTINGS, WRITER_SESSIONS

log = logging.getLogger(__name__)

TICK_SECONDS = 2.0
TIMEOUT = 10.0  # seconds for a whole attempt: connect, send, the receiver's answer
USER_AGENT = "telecrm-webhooks/1"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``<timestamp>.<body>`` keyed with the secret."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class PublicResolver(AbstractResolver):
    """DNS that answers only public addresses: a name of the local network fails to
    connect (the sender's last line against SSRF, after its check of the name)."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = [r for r in await self._inner.resolve(host, port, family)
                 if is_public(r["host"])]
        if not found:
            raise OSError(f"{host} resolves to no public address")
        return found

    async def close(self) -> None:
        await self._inner.close()


async def _private_address(url: str) -> str | None:
    """The first non-public address the URL's host resolves to, else None."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    for info in infos:
        address = str(info[4][0])
        if not is_public(address):
            return address
    return None


async def attempt(http: aiohttp.ClientSession, delivery: WebhookDelivery,
                  allow_private: bool) -> Outcome:
    """Post one delivery once; what came of it."""
    endpoint = delivery.endpoint
    try:
        check_url(endpoint.url, allow_private=allow_private)
        if not allow_private:
            address = await _private_address(endpoint.url)
            if address is not None:
                raise DomainError("integrations.url_private", "private address", host=address)
    except DomainError as exc:
        return Outcome(None, russian(exc), retry=False)
    except OSError as exc:  # the name does not resolve (now): try again later
        return Outcome(None, sentence("integrations.attempt_network", {"reason": str(exc)}))
    body = json.dumps(envelope(delivery), ensure_ascii=False, separators=(",", ":")).encode()
    timestamp = str(int(utcnow().timestamp()))
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               "X-Telecrm-Event": delivery.event, "X-Telecrm-Delivery": delivery.delivery_id,
               "X-Telecrm-Timestamp": timestamp,
               "X-Telecrm-Signature": signature(endpoint.secret, timestamp, body)}
    try:
        async with http.post(endpoint.url, data=body, headers=headers, allow_redirects=False,
                             timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as response:
            await response.read()
            status = response.status
    except TimeoutError:
        return Outcome(None, sentence("integrations.attempt_timeout", {"seconds": int(TIMEOUT)}))
    except (aiohttp.ClientError, OSError) as exc:
        return Outcome(None, sentence("integrations.attempt_network",
                                      {"reason": str(exc) or type(exc).__name__}))
    if 200 <= status < 300:
        return Outcome(status)
    if 300 <= status < 400:
        return Outcome(status, sentence("integrations.attempt_redirect"), retry=False)
    return Outcome(status, sentence("integrations.attempt_status", {"status": status}),
                   retry=retryable_status(status))


def http_client(allow_private: bool) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(resolver=None if allow_private else PublicResolver(),
                                     limit=10)
    return aiohttp.ClientSession(connector=connector)


async def deliver_due(sessions: async_sessionmaker[AsyncSession], *,
                      allow_private: bool = False, limit: int = 20) -> int:
    """One round: post every due delivery (up to ``limit``); returns how many were tried."""
    async with sessions() as session, session.begin():
        claimed = await claim_due(session, utcnow(), limit)
    if not claimed:
        return 0
    async with http_client(allow_private) as http:
        outcomes = await asyncio.gather(*(attempt(http, d, allow_private) for d in claimed))
    async with sessions() as session, session.begin():
        for delivery, outcome in zip(claimed, outcomes, strict=True):
            row = await record_attempt(session, delivery.id, outcome, utcnow())
            if not outcome.ok:
                log.info("webhook %s to endpoint %s: attempt %s failed (%s)",
                         row.delivery_id, delivery.endpoint_id, row.attempts, outcome.error)
    return len(claimed)


async def _round(app: web.Application) -> Any:
    return await deliver_due(app[WRITER_SESSIONS],
                             allow_private=app[SETTINGS].webhooks_allow_private)


async def _purge(app: web.Application) -> Any:
    async with app[WRITER_SESSIONS]() as session, session.begin():
        return await purge_log(session, utcnow())


_sender_ctx = rounds_ctx("webhook-sender", _round, TICK_SECONDS, "webhook deliveries")
_purge_ctx = rounds_ctx("webhook-log-purge", _purge, 3600.0, "webhook log purge")


async def webhooks_ctx(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: post webhook deliveries while ``serve`` runs, and forget old ones
    from the log once an hour."""
    async with contextlib.asynccontextmanager(_sender_ctx)(app), \
            contextlib.asynccontextmanager(_purge_ctx)(app):
        yield
