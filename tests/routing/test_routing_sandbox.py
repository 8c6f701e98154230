"""On the sandbox Asterisk, for real: a known client's call rings his owner first.

The app runs as ``telecrm serve`` wires it; the PBX runs the shipped dialplan, with
sticky routing switched on the way an administrator would (the globals
``CRM_OWNER_URL`` and ``CRM_PBX_TOKEN``, set here over AMI because the app's port is
only known now). ООО Ромашка (the client number) belongs to petrov (101); the queue
``sales`` rings 101 and 102. Smirnova (102) answers at once whenever she is rung, so the
queue alone would always give the call to her:

- petrov answers: the call is his, and 102 was never rung;
- petrov does not answer: after his 5 seconds the queue rings, and smirnova takes it;
- petrov is paused («Обед»): the queue at once, without him;
- the CRM is down: the queue at once;
- the owner's first phone is not registered but another is: that one rings; none is, or
  one is on a call: the queue at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from asterisk_conf.phones import Phones
from asterisk_conf.sandbox import Sandbox
from crm_core.calls.snapshot import CallData
from crm_core.clients.services import create_client
from crm_core.clock import utcnow
from crm_core.db import create_engine, session_factory
from crm_core.people.management import set_user_phones
from crm_core.people.models import Team, User
from crm_core.people.users import add_user
from crm_core.routing.services import issue_token, set_team_rule
from crm_core.talktime.models import TalkTimeRule
from pbx_bridge.pipeline import Listener
from telecrm.routing.lookup import ROUTING
from telecrm.settings import Settings
from telecrm.web.keys import LISTENER
from tests.presence.test_presence_sandbox import presence
from tests.recordings.test_recordings_e2e import login, seed_users
from tests.support.browser import serve_app
from tests.support.scenarios import CLIENT, CLIENT_B, DID_QUEUE

pytestmark = [pytest.mark.asterisk]

OWNER_RING = 5


@pytest.fixture
async def clean_phones(sandbox: Sandbox) -> AsyncIterator[None]:
    """Behaviours and globals set by the test never leak into the next test."""
    yield
    async with sandbox.phones() as phones:
        for target in ("101", "102", CLIENT):
            await phones.set_behaviour(target)
        await phones.reset_behaviours()


def every_day_a_working_day(session: AsyncSession) -> None:
    """A floor that works every day: on the sandbox the day is the real one, and on a day
    off an owner's callers go to the queue (that rule is tested in test_routing.py)."""
    session.add(TalkTimeRule(team_id=None, working_weekdays="1234567",
                             effective_from=utcnow().date() - timedelta(days=7)))


async def seed(db_url: str) -> str:
    """Petrov's client, routing on for his team (4 s), and the PBX token."""
    await seed_users(db_url)
    engine = create_engine(db_url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            petrov = await session.scalar(select(User).where(User.username == "petrov"))
            team = await session.scalar(select(Team).where(Team.name == "Отдел продаж"))
            assert petrov is not None and team is not None
            await create_client(session, "ООО Ромашка", phones=["+" + CLIENT],
                                owner_id=petrov.id, actor="test")
            await set_team_rule(session, None, team.id, enabled=True, ring_seconds=OWNER_RING)
            every_day_a_working_day(session)
            return await issue_token(session, "test")
    finally:
        await engine.dispose()


async def set_global(listener: Listener, name: str, value: str) -> None:
    response = await listener.session.action({"Action": "Setvar", "Variable": name,
                                              "Value": value})
    assert response.success, response


async def phone_free(listener: Listener, device: str) -> None:
    """Until the PBX holds ``device`` free (NOT_INUSE): its state after an earlier call
    is updated by the PBX on its own time, and the dialplan rings only free phones."""
    deadline = time.monotonic() + 10
    while True:
        response = await listener.session.action({
            "Action": "Getvar", "Variable": f"DEVICE_STATE({device})"})
        state = response.get("Value")
        if state == "NOT_INUSE":
            return
        assert time.monotonic() < deadline, f"{device} stayed {state}"
        await asyncio.sleep(0.2)


async def quiet(sandbox: Sandbox) -> None:
    """Until the PBX holds no channel: a phone still hanging up would show as busy."""
    pbx = sandbox.pbx
    assert pbx is not None
    deadline = time.monotonic() + 15
    while await asyncio.to_thread(pbx.active_channels):
        assert time.monotonic() < deadline, "the PBX kept a channel"
        await asyncio.sleep(0.1)


async def answered(listener: Listener, began: float) -> tuple[CallData, float]:
    """The call once someone answered it, and how long after it was placed."""
    deadline = time.monotonic() + 30
    while True:
        calls = [c for c in listener.tracker.live_calls(at=time.time()) if c.managers]
        if calls:
            return calls[0], time.monotonic() - began
        assert time.monotonic() < deadline, "nobody answered"
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def routed_floor(sandbox: Sandbox, db_url: str, tmp_path: Path, token: str
                       ) -> AsyncIterator[tuple[web.Application, str, Phones]]:
    """The app with its listener on the sandbox, sticky routing switched on in the PBX's
    globals (and off again at the end), smirnova (102) answering the queue at once."""
    pbx = sandbox.pbx
    assert pbx is not None
    settings = Settings(data_dir=tmp_path, database_url=db_url,
                        recordings_source=sandbox.monitor_dir, ami_host=pbx.ami_host,
                        ami_port=pbx.ami_port, ami_user=pbx.ami_user, ami_secret=pbx.ami_secret)
    async with serve_app(settings, with_listener=True) as (app, base), \
            sandbox.phones() as phones:
        listener = app[LISTENER]
        await asyncio.wait_for(listener.session.connected.wait(), 15)
        await phones.wait_idle(timeout=10)
        try:
            await set_global(listener, "CRM_OWNER_URL", f"{base}/pbx/owner")
            await set_global(listener, "CRM_PBX_TOKEN", token)
            # Who rings first is under test here, not the half-second limit: a machine
            # running other suites may answer slower than a PBX's CRM would.
            await set_global(listener, "CRM_OWNER_TIMEOUT", "3")
            await phones.set_behaviour("102", answer_after=0)
            yield app, base, phones
        finally:
            await set_global(listener, "CRM_OWNER_URL", "")
            await set_global(listener, "CRM_PBX_TOKEN", "")
            await set_global(listener, "CRM_OWNER_TIMEOUT", "0.5")


async def client_calls_the_queue(sandbox: Sandbox, app: web.Application, phones: Phones
                                 ) -> tuple[CallData, float]:
    """The known client calls the queue's DID: the call once answered, how long that took
    (the PBX is quiet again when this returns)."""
    began = time.monotonic()
    await phones.client_calls(CLIENT, DID_QUEUE, talk=2)
    call, after = await answered(app[LISTENER], began)
    await phones.wait_idle(timeout=15)
    await quiet(sandbox)
    return call, after


async def test_a_known_clients_call_rings_his_owner_first(
    sandbox: Sandbox, db_url: str, tmp_path: Path, clean_phones: None,
) -> None:
    token = await seed(db_url)
    async with routed_floor(sandbox, db_url, tmp_path, token) as (app, base, phones):
        listener = app[LISTENER]
        petrov = await login(base, "petrov")
        try:
            # -- the owner answers: his call, the queue never rang
            await phones.set_behaviour("101", answer_after=1)
            call, after = await client_calls_the_queue(sandbox, app, phones)
            assert call.managers == ("101",) and call.rang == ("101",), call
            assert after < OWNER_RING

            # -- the owner does not answer: the queue after his ring time, 102 takes it
            await phones.set_behaviour("101", mode="ring")
            call, after = await client_calls_the_queue(sandbox, app, phones)
            assert call.managers == ("102",) and call.rang[0] == "101", call
            assert after >= OWNER_RING

            # -- the owner is paused: the queue at once, and not him
            assert (await presence(petrov, base, "Обед"))["queue"] == "paused"
            call, after = await client_calls_the_queue(sandbox, app, phones)
            assert call.managers == ("102",) and "101" not in call.rang, call
            assert after < OWNER_RING
            await presence(petrov, base, "На месте")

            # -- the CRM is down (its port refuses: held here, bound and not listening,
            # so no other server of the machine can take it meanwhile): the queue at once
            with socket.socket() as down:
                down.bind(("127.0.0.1", 0))
                await set_global(listener, "CRM_OWNER_URL",
                                 f"http://127.0.0.1:{down.getsockname()[1]}/pbx/owner")
                call, after = await client_calls_the_queue(sandbox, app, phones)
            assert call.managers == ("102",), call
            assert after < OWNER_RING
        finally:
            await petrov.close()


async def set_owner(db_url: str, devices: list[str], *, new: bool = False) -> None:
    """Orlov (104, a desk phone the PBX has never seen registered) owns ООО Ромашка; his
    other phones are ``devices``."""
    if new:
        await seed_users(db_url)
    engine = create_engine(db_url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            if new:
                orlov = await add_user(session, "orlov", role="manager", extension="104",
                                       team="Отдел продаж")
                await create_client(session, "ООО Ромашка", phones=["+" + CLIENT],
                                    owner_id=orlov.id, actor="test")
                team = await session.scalar(select(Team).where(Team.name == "Отдел продаж"))
                assert team is not None
                await set_team_rule(session, None, team.id, enabled=True,
                                    ring_seconds=OWNER_RING)
                every_day_a_working_day(session)
            orlov = await session.scalar(select(User).where(User.username == "orlov"))
            assert orlov is not None
            await set_user_phones(session, orlov, devices)
    finally:
        await engine.dispose()


async def test_the_owner_is_reachable_on_any_registered_phone(
    sandbox: Sandbox, db_url: str, tmp_path: Path, clean_phones: None,
) -> None:
    """Orlov's first phone (his extension 104) is not registered; the PBX looks at every
    phone of his: a free registered one (103, in no queue) rings; none registered, or one
    of them on a call, sends the caller to the queue at once (smirnova, 102, answers).
    The tracker knows 103 as orlov's device, so his calls on it show as 104's."""
    await set_owner(db_url, ["PJSIP/103"], new=True)
    engine = create_engine(db_url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            token = await issue_token(session, "test")
    finally:
        await engine.dispose()
    async with routed_floor(sandbox, db_url, tmp_path, token) as (app, _, phones):
        listener = app[LISTENER]
        await phones.set_behaviour("103", answer_after=1)
        await phone_free(listener, "PJSIP/103")

        # -- 104 unregistered, 103 free: 103 rings and he takes the call there, the
        # queue never rang
        call, after = await client_calls_the_queue(sandbox, app, phones)
        assert call.managers == ("104",) and call.rang == ("104",), call
        assert after < OWNER_RING

        # -- none of his phones registered: the queue at once
        await set_owner(db_url, ["PJSIP/105"])
        await app[ROUTING].refresh()
        call, after = await client_calls_the_queue(sandbox, app, phones)
        assert call.managers == ("102",) and "104" not in call.rang, call
        assert after < OWNER_RING

        # -- 201 free but 103 on a call: he is on a call, the queue at once
        await set_owner(db_url, ["PJSIP/201", "PJSIP/103"])
        await app[ROUTING].refresh()
        await phones.manager_calls("103", CLIENT_B, talk=20)
        deadline = time.monotonic() + 15
        while "104" not in app[ROUTING].busy():
            assert time.monotonic() < deadline, "103's own call did not start"
            await asyncio.sleep(0.1)
        began = time.monotonic()
        await phones.client_calls(CLIENT, DID_QUEUE, talk=2)
        deadline = time.monotonic() + 30
        while not (calls := [c for c in listener.tracker.live_calls(at=time.time())
                             if c.client_number and c.client_number.endswith(CLIENT[1:])
                             and c.direction == "inbound" and c.managers]):
            assert time.monotonic() < deadline, "nobody answered"
            await asyncio.sleep(0.05)
        after = time.monotonic() - began
        assert calls[0].managers == ("102",) and not {"104", "201"} & set(calls[0].rang), \
            calls[0]
        assert after < OWNER_RING
        await phones.wait_idle(timeout=30)
        await quiet(sandbox)
