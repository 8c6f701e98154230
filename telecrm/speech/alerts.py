"""Delivering speech alerts: a live event the browser shows as a system notification, and
an e-mail through the administrator's SMTP server.

The alerts themselves are recorded with the transcript (:mod:`crm_core.speech.alerts`).
The in-process transcription worker calls :func:`deliverer`'s hook as soon as the
transcript is committed, so the supervisor hears of it within a second; a sweeper
(:func:`speech_alerts_ctx`, beside the missed-call notices) delivers every few seconds
what a worker in another process, or one that crashed in between, left undelivered.
Each alert is taken once (marked delivered in the same transaction), so nobody is told
twice; telling may fail (the bus or the mail server down) without touching the alert.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.clock import utcnow
from crm_core.missed.mail import mail_settings
from crm_core.speech.alerts import AlertNotice, take_undelivered
from telecrm.bus import Bus
from telecrm.live_events import CALLS_TOPIC, SPEECH_ALERT
from telecrm.missed.mailer import MailServer, send
from telecrm.rounds import rounds_ctx
from telecrm.web.keys import BUS, SETTINGS, WRITER_SESSIONS

log = logging.getLogger(__name__)

SWEEP_SECONDS = 5.0
STALE = timedelta(hours=1)  # an alert undelivered for longer is old news: the list shows it
SAID = {"client": "Клиент сказал", "manager": "Менеджер сказал"}


def second(start: float) -> str:
    """«1:05»: where in the call the phrase was said."""
    whole = int(start)
    return f"{whole // 60}:{whole % 60:02d}"


def texts(notice: AlertNotice, tz: ZoneInfo) -> tuple[str, str]:
    """(title, body) in Russian: the notification's and the e-mail's subject and text."""
    who = ", ".join(n for n in (notice.client_name, notice.manager_name) if n)
    verb = SAID.get(notice.speaker, "В разговоре прозвучало")
    title = f"{verb} «{notice.said}»" + (f": {who}" if who else "")
    when = notice.started_at.astimezone(tz).strftime("%d.%m.%Y в %H:%M")
    body = (f"Словарь «{notice.dictionary}». Звонок {when}, на {second(notice.start)}: "
            f"«{notice.text}».")
    return title, body


def url(notice: AlertNotice) -> str:
    """The call, playing from the phrase's second."""
    return f"/calls/{notice.call_id}#t={notice.start:g}"


def live_message(notice: AlertNotice, tz: ZoneInfo) -> dict[str, Any]:
    title, body = texts(notice, tz)
    return {"kind": SPEECH_ALERT, "alert_id": notice.alert_id, "call_id": notice.call_id,
            "title": title, "body": body, "url": url(notice),
            "user_ids": [u.id for u in notice.recipients]}


async def tell(notices: list[AlertNotice], bus: Bus, server: MailServer | None,
               tz: ZoneInfo) -> int:
    """Publish each alert (supervisors and admins listen to the calls topic) and e-mail
    its recipients; returns the e-mails sent."""
    sent = 0
    for notice in notices:
        if not notice.recipients:
            continue
        message = live_message(notice, tz)
        try:
            await bus.publish(CALLS_TOPIC, message)
        except Exception as exc:
            log.warning("speech alert %s not published: %s", notice.alert_id, exc)
        if server is None:
            continue
        text = (f"{message['body']}\n\nЗвонок №{notice.call_id} — в разделе «Оповещения» "
                f"Telecrm, запись играет с этой фразы.")
        for user in notice.recipients:
            address = notice.emails.get(user.id)
            if address and await send(server, address, message["title"], text):
                sent += 1
    return sent


async def deliver(sessions: async_sessionmaker[AsyncSession], bus: Bus, tz: ZoneInfo, *,
                  call_id: int | None = None) -> int:
    """Take the undelivered alerts (of one call, or all recent ones), then tell them;
    returns how many alerts were told."""
    async with sessions() as session, session.begin():
        if call_id is not None:
            notices = await take_undelivered(session, call_id=call_id)
        else:
            notices = await take_undelivered(session, since=utcnow() - STALE)
        row = await mail_settings(session) if notices else None
        server = MailServer.of(row) if row is not None else None
    await tell(notices, bus, server, tz)
    return len(notices)


def deliverer(app: web.Application) -> Callable[[int], Awaitable[None]]:
    """The transcription worker's hook: deliver the call's alerts at once."""
    async def after_transcript(call_id: int) -> None:
        await deliver(app[WRITER_SESSIONS], app[BUS], ZoneInfo(app[SETTINGS].timezone),
                      call_id=call_id)
    return after_transcript


async def _round(app: web.Application) -> None:
    await deliver(app[WRITER_SESSIONS], app[BUS], ZoneInfo(app[SETTINGS].timezone))


# ``cleanup_ctx``: deliver what transcription workers in other processes recorded.
speech_alerts_ctx = rounds_ctx("speech-alerts", _round, SWEEP_SECONDS, "speech alerts")
