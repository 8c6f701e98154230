"""On the sandbox Asterisk, for real: the app as ``telecrm serve`` runs it listens to AMI;
a client's call that the owner's phone does not answer sends him an e-mail through a real
SMTP server on loopback, and nobody calling back within 30 minutes (the clock moved on)
sends the supervisor another. A queue call that a colleague answered tells nobody.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from telecrm.missed import alerts
from telecrm.settings import Settings
from telecrm.web.keys import LISTENER
from tests.missed.smtp import Inbox, smtp_server
from tests.support.browser import seed_world, serve_app
from tests.support.clock import pinned_clock
from tests.support.live import telecrm, wait_for_ended_calls
from tests.support.scenarios import CLIENT, DID_101, DID_QUEUE

pytestmark = pytest.mark.asterisk


async def mail_to(inbox: Inbox, address: str, count: int,
                  timeout: float = 20) -> list[EmailMessage]:
    """The messages to ``address`` once there are ``count`` (the SMTP server is a thread)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got = inbox.to(address)
        if len(got) >= count or loop.time() > deadline:
            return got
        await asyncio.sleep(0.2)


async def test_missed_call_mails_the_owner_and_escalates(
        sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alerts, "TICK_SECONDS", 0.3)
    pbx = sandbox.pbx
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    # the floor's own calls are days old: stale news, nobody is told of them
    await seed_world(db, sandbox.monitor_dir, calls_at=datetime.now(UTC) - timedelta(days=3))
    seeded = len(await wait_for_ended_calls(db, 0))
    settings = Settings(data_dir=tmp_path, database_url=db, ami_host=pbx.ami_host,
                        ami_port=pbx.ami_port, ami_user=pbx.ami_user, ami_secret=pbx.ami_secret,
                        recordings_source=sandbox.monitor_dir)
    cli: Callable[..., Any] = lambda *args: telecrm(*args, "--db", db)  # noqa: E731
    with smtp_server() as inbox:
        cli("mail", "set", "--host", "127.0.0.1", "--port", str(inbox.port), "--security",
            "none", "--sender", "crm@example.ru")
        for who in ("petrov", "smirnova", "sokolova"):
            cli("mail", "address", who, f"{who}@example.ru")
        async with serve_app(settings, with_listener=True) as (app, _), \
                sandbox.phones() as phones:
            await asyncio.wait_for(app[LISTENER].session.connected.wait(), 15)
            # the sales queue rings 101 and 102; 102 answers: nobody missed anything
            await phones.set_behaviour("101", mode="ring")
            await phones.set_behaviour("102", answer_after=1)
            await phones.client_calls(CLIENT, DID_QUEUE, talk=2)
            await phones.wait_idle(timeout=30)
            # ООО Ромашка calls her manager's number; 101 rings, she gives up after 3 s
            await phones.set_behaviour("101", mode="ring")
            await phones.client_calls(CLIENT, DID_101, talk=5, ring_timeout=3)
            await phones.wait_idle(timeout=30)
            await phones.reset_behaviours()
            calls = await wait_for_ended_calls(db, seeded + 2)  # both new calls written
            fresh = [c for c in calls if c["linkedid"] and not c["linkedid"].startswith("t-")]
            assert sorted(c["status"] for c in fresh) == ["answered", "missed"]

            (mail,) = await mail_to(inbox, "petrov@example.ru", 1)
            assert mail["Subject"] == "Пропущенный звонок: ООО Ромашка"
            assert mail["From"] == "Telecrm <crm@example.ru>"
            assert "+7 916 123-45-67" in Inbox.text(mail)
            assert "Перезвоните клиенту" in Inbox.text(mail)
            await asyncio.sleep(1.0)
            assert len(inbox.to("petrov@example.ru")) == 1  # the answered call told nobody
            assert inbox.to("smirnova@example.ru") == [] == inbox.to("sokolova@example.ru")

            with pinned_clock(datetime.now(UTC)) as clock:
                clock.shift(timedelta(minutes=29))
                await asyncio.sleep(1.0)
                assert inbox.to("sokolova@example.ru") == []  # not yet
                clock.shift(timedelta(minutes=2))
                (boss,) = await mail_to(inbox, "sokolova@example.ru", 1)
                assert boss["Subject"] == "Не перезвонили: ООО Ромашка"
                text = Inbox.text(boss)
                assert "За 30 мин никто не перезвонил клиенту" in text
                assert "Ответственный: Иван Петров" in text
                await asyncio.sleep(1.0)
                assert len(inbox.to("sokolova@example.ru")) == 1  # once
