"""Webhook endpoints: where events go, which ones, and whether an address may be called.

An admin registers a URL and the events it hears; the CRM generates the secret that
signs each delivery (``X-Telecrm-Signature``) and shows it once. The sender must never
become a way into the company's own network (SSRF): an address on loopback, a private
or link-local network (cloud metadata included) is refused unless the setting
``TELECRM_WEBHOOKS_ALLOW_PRIVATE`` allows it; the name is checked again against the
addresses it resolves to at each attempt (``telecrm.integrations.sender``).
"""

from __future__ import annotations

import ipaddress
import secrets
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.errors import DomainError, NotFoundError
from crm_core.integrations.admin import admin_only, clean_name
from crm_core.integrations.models import WebhookEndpoint
from crm_core.people.models import User

# event -> what the admin's page and the delivery log call it
EVENTS: dict[str, str] = {
    "call.ended": "Звонок завершён",
    "lead.created": "Новая заявка",
    "deal.won": "Сделка выиграна",
    "kkp.result": "Результат проверки по скрипту (ККП)",
}
SECRET_PREFIX = "whsec_"
_LOCAL_NAMES = ("localhost", "localhost.localdomain")
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")


def is_public(address: str) -> bool:
    """Whether ``address`` (an IP) is on the public internet: not loopback, private,
    link-local, multicast, reserved or unspecified (IPv4-mapped IPv6 judged as IPv4)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_loopback
                                 or ip.is_link_local or ip.is_private or ip.is_unspecified)


def check_url(url: str, *, allow_private: bool) -> str:
    """``url`` if it may be registered: http(s), a host, no credentials; an address or
    name of the local network only when ``allow_private``. Raises DomainError."""
    url = url.strip()
    if len(url) > 2000:
        raise DomainError("request.too_long", "url too long", name="url", max=2000)
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a bad port
    except ValueError:
        raise DomainError("integrations.url_invalid", f"not a URL: {url!r}") from None
    host = (parts.hostname or "").rstrip(".").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise DomainError("integrations.url_invalid", f"not an http(s) URL: {url!r}")
    if parts.username is not None or parts.password is not None:
        raise DomainError("integrations.url_credentials", "credentials in the URL")
    del port
    if allow_private:
        return url
    try:
        ipaddress.ip_address(host)
        literal = True
    except ValueError:
        literal = False
    if (literal and not is_public(host)) or host in _LOCAL_NAMES \
            or host.endswith(_LOCAL_SUFFIXES) or (not literal and "." not in host):
        raise DomainError("integrations.url_private",
                          f"{host} is on the local network", host=host)
    return url


def _events(events: list[str]) -> list[str]:
    chosen = [e for e in EVENTS if e in set(events)]
    unknown = set(events) - set(EVENTS)
    if unknown:
        raise DomainError("integrations.event_unknown", f"unknown events {sorted(unknown)}",
                          event=sorted(unknown))
    if not chosen:
        raise DomainError("integrations.events_missing", "choose at least one event")
    return chosen


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


async def create_endpoint(session: AsyncSession, *, name: str, url: str, events: list[str],
                          actor: User | None, allow_private: bool = False
                          ) -> WebhookEndpoint:
    """Register an endpoint with a new secret (``endpoint.secret``, to show once). Audited
    (without the secret). The caller commits."""
    admin_only(actor)
    name = clean_name(name)
    row = WebhookEndpoint(name=name, url=check_url(url, allow_private=allow_private),
                          events=_events(events), secret=new_secret(), active=True,
                          created_by=actor.id if actor else None)
    session.add(row)
    await session.flush()
    write_audit(session, actor=actor.username if actor else "cli",
                user_id=actor.id if actor else None, entity="webhook_endpoint",
                entity_id=row.id, action=ACTION_CREATE,
                changes={"name": row.name, "url": row.url, "events": row.events})
    return row


async def set_endpoint_active(session: AsyncSession, endpoint_id: int, active: bool, *,
                              actor: User | None) -> WebhookEndpoint:
    """Switch an endpoint on or off: off, it is queued no new events (queued ones wait)."""
    admin_only(actor)
    row = await session.get(WebhookEndpoint, endpoint_id)
    if row is None:
        raise NotFoundError("integrations.endpoint_not_found", "no such endpoint")
    if row.active != active:
        write_audit(session, actor=actor.username if actor else "cli",
                    user_id=actor.id if actor else None, entity="webhook_endpoint",
                    entity_id=row.id, action=ACTION_UPDATE,
                    changes={"active": [row.active, active]})
        row.active = active
    return row


async def list_endpoints(session: AsyncSession) -> list[WebhookEndpoint]:
    return list(await session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


async def listening(session: AsyncSession, event: str) -> list[WebhookEndpoint]:
    """The active endpoints that hear ``event``."""
    rows = await session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.active.is_(True))
                                 .order_by(WebhookEndpoint.id))
    return [row for row in rows if event in (row.events or [])]
