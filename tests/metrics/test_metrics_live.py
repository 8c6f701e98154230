"""Issue 18.4 on the sandbox Asterisk: a real call moves the metrics as it should.

The app runs as ``telecrm serve`` wires it (listener included); the scraper reads
``/metrics`` with its token while a client calls petrov (101), who answers and talks:
AMI events are counted and their lag measured (the shipped manager.conf stamps events),
one call is in progress while they talk and none after, the hang-up reaches its row
(one more observation of that histogram), and the manager's page of the client is
timed under ``/clients/{id}``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from asterisk_conf.sandbox import Sandbox
from crm_core.calls.snapshot import DEFAULT_PBX
from crm_core.clients.services import create_client
from crm_core.db import create_engine, session_factory
from crm_core.people.models import User
from telecrm.settings import Settings
from telecrm.web.keys import LISTENER
from tests.metrics.test_metrics import Samples, parse, value
from tests.recordings.test_recordings_e2e import login, seed_users
from tests.support.browser import serve_app
from tests.support.live import wait_for_ended_calls
from tests.support.scenarios import CLIENT, DID_101

pytestmark = [pytest.mark.asterisk]

TOKEN = "scraper-token-for-the-sandbox"
TALK = 4.0


@pytest.fixture
async def clean_phones(sandbox: Sandbox) -> AsyncIterator[None]:
    yield
    async with sandbox.phones() as phones:
        await phones.set_behaviour("101")
        await phones.reset_behaviours()


async def seed(db_url: str) -> int:
    """The team, and petrov's client who will call."""
    await seed_users(db_url)
    engine = create_engine(db_url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            petrov = await session.scalar(select(User).where(User.username == "petrov"))
            assert petrov is not None
            client = await create_client(session, "ООО Ромашка", phones=["+" + CLIENT],
                                         owner_id=petrov.id, actor="test")
            return client.id
    finally:
        await engine.dispose()


async def scrape(http: aiohttp.ClientSession, base: str) -> Samples:
    async with http.get(f"{base}/metrics",
                        headers={"Authorization": f"Bearer {TOKEN}"}) as response:
        assert response.status == 200, await response.text()
        return parse(await response.text())


def figure(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 for a labelled series not yet observed."""
    try:
        return value(samples, name, **labels)
    except KeyError:
        return 0.0


async def until(http: aiohttp.ClientSession, base: str, what: str,
                test: Callable[[Samples], bool], timeout: float = 20) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        samples = await scrape(http, base)
        if test(samples):
            return samples
        assert time.monotonic() < deadline, f"{what}: never seen"
        await asyncio.sleep(0.2)


async def test_a_real_call_moves_the_metrics(sandbox: Sandbox, tmp_path: Path,
                                             clean_phones: None) -> None:
    pbx = sandbox.pbx
    assert pbx is not None
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    client_id = await seed(db_url)
    settings = Settings(data_dir=tmp_path, database_url=db_url, metrics_token=TOKEN,
                        recordings_source=sandbox.monitor_dir, ami_host=pbx.ami_host,
                        ami_port=pbx.ami_port, ami_user=pbx.ami_user, ami_secret=pbx.ami_secret)
    pbx_label = {"pbx": DEFAULT_PBX}
    async with serve_app(settings, with_listener=True) as (app, base), \
            sandbox.phones() as phones, aiohttp.ClientSession() as scraper:
        await asyncio.wait_for(app[LISTENER].session.connected.wait(), 15)
        await phones.wait_idle(timeout=15)
        before = await until(
            scraper, base, "the AMI connection and no call",
            lambda s: figure(s, "telecrm_ami_connected", **pbx_label) == 1
            and figure(s, "telecrm_calls_in_progress", **pbx_label) == 0)
        events = figure(before, "telecrm_ami_events_received_total", **pbx_label)
        lags = figure(before, "telecrm_ami_event_lag_seconds_count", **pbx_label)
        hangups = figure(before, "telecrm_call_hangup_to_row_seconds_count", **pbx_label)

        await phones.set_behaviour("101", answer_after=1)
        await phones.client_calls(CLIENT, DID_101, talk=TALK)
        during = await until(scraper, base, "the call in progress",
                             lambda s: figure(s, "telecrm_calls_in_progress", **pbx_label) == 1)
        assert figure(during, "telecrm_ami_events_received_total", **pbx_label) > events

        after = await until(
            scraper, base, "the call ended and written",
            lambda s: figure(s, "telecrm_calls_in_progress", **pbx_label) == 0
            and figure(s, "telecrm_call_hangup_to_row_seconds_count", **pbx_label)
            == hangups + 1, timeout=TALK + 20)
        calls = await wait_for_ended_calls(db_url, 1)
        assert [call["managers"] for call in calls] == [["101"]]
        written = figure(after, "telecrm_call_hangup_to_row_seconds_sum", **pbx_label)
        assert 0 < written < 5, written  # one hang-up, its row within seconds
        assert figure(after, "telecrm_ami_events_received_total", **pbx_label) \
            > figure(during, "telecrm_ami_events_received_total", **pbx_label)
        # the sandbox stamps its events (timestampevents=yes): each one's lag is measured
        new_lags = figure(after, "telecrm_ami_event_lag_seconds_count", **pbx_label) - lags
        assert new_lags > 10
        lag_sum = figure(after, "telecrm_ami_event_lag_seconds_sum", **pbx_label) - figure(
            before, "telecrm_ami_event_lag_seconds_sum", **pbx_label)
        assert 0 <= lag_sum / new_lags < 1.0

        petrov = await login(base, "petrov")
        try:
            async with petrov.get(f"{base}/clients/{client_id}") as response:
                assert response.status == 200
                assert "ООО Ромашка" in await response.text()
        finally:
            await petrov.close()
        timed = await scrape(scraper, base)
        assert figure(timed, "telecrm_http_request_duration_seconds_count",
                      route="/clients/{id}", method="GET", status="2xx") == 1
        assert f"/clients/{client_id}\"" not in str(timed)
