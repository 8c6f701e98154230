"""Devices, mobiles and withheld numbers through ``telecrm ami-replay`` into SQLite and PostgreSQL.

The captures are the edited real ones of ``tests/captures/parties/`` (see its
README.md). The users are entered with ``telecrm users add --device/--mobile``, as an
administrator would, so these tests also check that the replay builds its rules from
the users table.
"""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
from sqlalchemy import func, select

from crm_core.clients.models import Client
from crm_core.db import create_engine, session_factory
from crm_core.tasks.models import Task, TaskKind
from telecrm.settings import Settings
from tests.support.browser import serve_app
from tests.support.db_fixtures import db_url_fixture  # noqa: F401
from tests.support.live import exported_calls, telecrm
from tests.support.scenarios import CAPTURES

EDITED = CAPTURES / "parties"


async def counts(db_url: str) -> tuple[int, int]:
    """(clients, callback tasks) in the database (a lead's «Заполните карточку» is not one)."""
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            clients = await session.scalar(select(func.count()).select_from(Client))
            tasks = await session.scalar(select(func.count()).select_from(Task)
                                         .where(Task.kind == TaskKind.CALLBACK.value))
            return int(clients or 0), int(tasks or 0)
    finally:
        await engine.dispose()


async def test_calls_on_his_devices_and_mobile_are_his(db_url: str, tmp_path: Path) -> None:
    telecrm("users", "add", "ivanov", "--name", "Иван Иванов", "--extension", "201",
            "--device", "SIP/150010001", "--device", "PJSIP/ivanov",
            "--mobile", "+7 916 000-00-01", "--db", db_url)
    # device_sip_peer and mobile_answer come from one capture: give the second other ids.
    mobile = tmp_path / "mobile.ami"
    mobile.write_bytes((EDITED / "mobile_answer.ami").read_bytes().replace(b"1795", b"1796"))
    telecrm("ami-replay", str(EDITED / "device_sip_peer.ami"), str(mobile),
            str(EDITED / "device_named.ami"), "--db", db_url)
    calls = exported_calls(db_url)
    assert len(calls) == 3
    for call in calls:
        assert (call["status"], call["managers"]) == ("answered", ["201"]), call
        assert call["talk_seconds"] > 1
    assert sorted(c["client_number"] for c in calls) == [
        "+79031234567", "+79161234567", "+79161234567"]
    _, tasks = await counts(db_url)
    assert tasks == 0, "answered on his mobile: nobody is asked to call back"


async def test_a_forward_to_an_unknown_mobile_stays_a_missed_call(db_url: str) -> None:
    """The same capture with no user holding +7 916 000-00-01: a miss and a callback."""
    telecrm("users", "add", "ivanov", "--extension", "201", "--db", db_url)
    telecrm("ami-replay", str(EDITED / "mobile_answer.ami"), "--db", db_url)
    (call,) = exported_calls(db_url)
    assert (call["status"], call["managers"]) == ("missed", [])
    assert (await counts(db_url))[1] == 1


async def test_a_withheld_or_masked_number_is_no_client(db_url: str, tmp_path: Path) -> None:
    masked = tmp_path / "masked.ami"
    masked.write_bytes((EDITED / "withheld_missed.ami").read_bytes()
                       .replace(b"anonymous", b"+7495xxxxxxx")
                       .replace(b"1795", b"1796"))  # other linkedids: another call
    telecrm("ami-replay", str(EDITED / "withheld_missed.ami"), str(masked), "--db", db_url)
    calls = exported_calls(db_url)
    assert [(c["direction"], c["status"], c["client_number"], c["client_id"])
            for c in calls] == [("inbound", "missed", None, None)] * 2
    assert await counts(db_url) == (0, 0), "no lead, no callback task"
    # The real capture it was made from: the caller becomes a lead with a callback.
    telecrm("ami-replay", str(CAPTURES / "inbound_missed_timeout.ami"), "--db", db_url)
    assert await counts(db_url) == (1, 1)


async def test_call_pages_say_the_number_was_withheld(tmp_path: Path) -> None:
    """The call log and the call's page as an admin reads them (the real app, SQLite)."""
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    telecrm("users", "add", "root", "--role", "admin", "--password", "root-password",
            "--db", db)
    telecrm("users", "add", "petrov", "--extension", "101", "--db", db)
    telecrm("ami-replay", str(EDITED / "withheld_missed.ami"), "--db", db)
    (call,) = exported_calls(db)
    settings = Settings(data_dir=tmp_path, database_url=db)
    async with serve_app(settings) as (_, base), aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(f"{base}/api/login", json={
                "username": "root", "password": "root-password"}) as response:
            assert response.status == 200
        async with http.get(f"{base}/calls?date=2026-11-23") as response:
            log = await response.text()
        async with http.get(f"{base}/calls/{call['id']}") as response:
            page = await response.text()
    row = re.search(r'<tr class="st-missed">.*?</tr>', log, re.S)
    assert row is not None and "номер скрыт" in row.group(0)
    assert "anonymous" not in log and "tel:" not in row.group(0)
    facts = re.search(r"<dt>Номер клиента</dt><dd>(.*?)</dd>", page, re.S)
    assert facts is not None and "номер скрыт" in facts.group(1)
