"""Telling people of missed calls: a background task of ``telecrm serve``.

Every few seconds, with "now" from :mod:`crm_core.clock`, it records new missed calls
and calls not returned in time (:mod:`crm_core.missed.services`, committed first, so a
restart repeats nothing), then tells the people: a ``missed_call`` live event on the
bus (the browser shows a system notification, even in a background tab) and an
e-mail through the admin's SMTP server. Telling may fail (the bus or the mail server
down): the call log and the callback task do not depend on it.
"""

from __future__ import annotations

import logging
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.clock import utcnow
from crm_core.missed.mail import mail_settings
from crm_core.missed.services import Notice, take_due_escalations, take_new_missed
from crm_core.people.models import Role
from telecrm.bus import Bus
from telecrm.live_events import CALLS_TOPIC, MISSED_CALL, extension_topic
from telecrm.missed.mailer import MailServer, send
from telecrm.rounds import rounds_ctx
from telecrm.web.keys import BUS, SETTINGS, WRITER_SESSIONS
from telecrm.web.present import phone

log = logging.getLogger(__name__)

TICK_SECONDS = 5.0


def _who(notice: Notice) -> str:
    return notice.client_name or phone(notice.number) or notice.number


def texts(notice: Notice, tz: ZoneInfo) -> tuple[str, str]:
    """(title, body) in Russian: the browser notification's and the e-mail's subject/text."""
    when = notice.missed_at.astimezone(tz).strftime("%d.%m.%Y в %H:%M")
    number = phone(notice.number) or notice.number
    if notice.kind == "escalation":
        title = f"Не перезвонили: {_who(notice)}"
        body = (f"Пропущенный звонок: {_who(notice)}, {number}, {when}. "
                f"За {notice.minutes} мин никто не перезвонил клиенту. "
                f"Ответственный: {notice.owner_name or 'не назначен'}.")
        return title, body
    title = f"Пропущенный звонок: {_who(notice)}"
    body = f"Пропущенный звонок: {_who(notice)}, {number}, {when}. Перезвоните клиенту."
    return title, body


def live_message(notice: Notice, tz: ZoneInfo) -> dict[str, Any]:
    title, body = texts(notice, tz)
    url = f"/clients/{notice.client_id}" if notice.client_id else f"/calls/{notice.call_id}"
    return {"kind": MISSED_CALL, "notice": notice.kind, "title": title, "body": body,
            "call_id": notice.call_id, "client_id": notice.client_id, "url": url,
            "user_ids": [u.id for u in notice.recipients]}


def topics(notice: Notice) -> list[str]:
    """The calls topic (supervisors, admins, managers without a phone) and each recipient
    manager's phone topic (a manager's stream listens there)."""
    found = [CALLS_TOPIC]
    for user in notice.recipients:
        if user.role == Role.MANAGER and user.extension:
            found.append(extension_topic(user.extension))
    return list(dict.fromkeys(found))


async def tell(notices: list[Notice], bus: Bus, server: MailServer | None, tz: ZoneInfo) -> int:
    """Publish each notice and e-mail its recipients; returns the e-mails sent."""
    sent = 0
    for notice in notices:
        message = live_message(notice, tz)
        try:
            for topic in topics(notice):
                await bus.publish(topic, message)
        except Exception as exc:
            log.warning("missed-call notice for call %s not published: %s", notice.call_id, exc)
        if server is None:
            continue
        for user in notice.recipients:
            address = notice.emails.get(user.id)
            if address and await send(server, address, message["title"], message["body"]):
                sent += 1
    return sent


async def tick(sessions: async_sessionmaker[AsyncSession], bus: Bus, tz: ZoneInfo) -> int:
    """One round: record and tell new misses and due escalations; returns notices told."""
    now = utcnow()
    async with sessions() as session, session.begin():
        notices = await take_new_missed(session, now)
        notices += await take_due_escalations(session, now)
        row = await mail_settings(session)
        server = MailServer.of(row) if row is not None else None
    await tell(notices, bus, server, tz)
    return len(notices)


async def _round(app: web.Application) -> None:
    await tick(app[WRITER_SESSIONS], app[BUS], ZoneInfo(app[SETTINGS].timezone))


# ``cleanup_ctx``: tell people of missed calls while ``serve`` runs.
missed_alerts_ctx = rounds_ctx("missed-call-alerts", _round, TICK_SECONDS,
                               "missed-call notices")
