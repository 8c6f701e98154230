"""The API document, click-to-call semantics and a hostile-input pass with schemathesis."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pbx_bridge.actions import caller_id_name, click_to_call_action
from pbx_bridge.ami import AmiError
from telecrm.app import create_app
from telecrm.settings import Settings
from telecrm.web.keys import CLICK_TO_CALL
from telecrm.web.openapi import openapi_document
from tests.support.browser import PASSWORD, World, seed_world, serve_app
from tests.support.processes import run_bounded

# Dates relative to today: make test-calendar. Not the fuzzing, whose seven seconds a role
# are bounded by time, not by cases: at a pinned moment it would only repeat itself.
calendar = pytest.mark.calendar

ST = str(Path(sys.executable).parent / "st")


class FakeAmi:
    """Stands in for the AMI session: records originates, answers like Asterisk."""

    def __init__(self, delay: float = 0.3, answer: str = "Success") -> None:
        self.connected = asyncio.Event()
        self.connected.set()
        self.actions: list[dict[str, Any]] = []
        self.delay = delay
        self.answer = answer

    async def action(self, action: dict[str, Any], timeout: float | None = None) -> Any:
        self.actions.append(action)
        await asyncio.sleep(self.delay)
        if self.answer == "down":
            raise AmiError("the AMI connection was lost")
        return [{"Response": "Success", "Message": "Originate successfully queued"},
                {"Event": "OriginateResponse", "Response": self.answer, "Reason": "3"}]


# -- the document ---------------------------------------------------------------------------


@calendar
def test_openapi_document_is_valid_and_covers_every_api_route() -> None:
    from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

    document = openapi_document()
    OPENAPI_31_VALIDATOR.validate(document)  # raises on any violation
    app = create_app(Settings(), with_listener=False)
    routes = {(r.method, r.resource.canonical) for r in app.router.routes()
              if r.resource is not None and r.resource.canonical.startswith("/api/")
              and r.method != "HEAD"}
    documented = {(method.upper(), path) for path, item in document["paths"].items()
                  for method in item}
    assert routes == documented


@calendar
def test_caller_id_is_ascii_and_cannot_inject_ami_headers() -> None:
    assert caller_id_name("ООО Ромашка") == "OOO Romashka"
    assert caller_id_name('Evil"\r\nAction: Originate') == "Evil Action: Originate"
    action = click_to_call_action("101", "+79161234567", caller_name="ИП Сидоров\r\nX: y")
    assert action["Channel"] == "PJSIP/101" and action["Context"] == "from-managers"
    assert action["Exten"] == "+79161234567"
    assert action["CallerID"] == '"IP Sidorov X: y" <+79161234567>'
    assert all("\r" not in str(v) and "\n" not in str(v) for v in action.values())
    for extension, number in [("1", "+79161234567"), ("101", "123&PJSIP/102"),
                              ("101\r\n", "+79161234567"), ("101", "+7916\r\n")]:
        with pytest.raises(ValueError):
            click_to_call_action(extension, number)


# -- click-to-call through the API ------------------------------------------------------------


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Any, str, World]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    world = await seed_world(url, tmp_path / "recordings")
    settings = Settings(data_dir=tmp_path, database_url=url,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (app, base):
        yield app, base, world


async def signed_in(base: str, username: str) -> tuple[aiohttp.ClientSession, str]:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.post(f"{base}/api/login",
                         json={"username": username, "password": PASSWORD}) as response:
        return http, (await response.json())["csrf_token"]


@calendar
async def test_click_to_call_never_rings_twice(served: tuple[Any, str, World]) -> None:
    app, base, _ = served
    fake = FakeAmi(delay=2.0)
    app[CLICK_TO_CALL].ami = lambda: fake
    http, csrf = await signed_in(base, "petrov")
    url = f"{base}/api/calls/originate"
    headers = {"X-CSRF-Token": csrf}
    try:
        async def call(number: str) -> tuple[int, dict]:
            async with http.post(url, json={"number": number}, headers=headers) as response:
                return response.status, await response.json()

        first, again = await asyncio.gather(call("8 (916) 123-45-67"), call("+79161234567"))
        assert first[0] == again[0] == 202
        assert first[1]["action_id"] == again[1]["action_id"]
        assert {first[1]["repeat"], again[1]["repeat"]} == {False, True}
        assert first[1]["number"] == "+79161234567"
        status, body = await call("+79031234567")
        assert status == 409 and body["action_id"] == first[1]["action_id"]
        assert len(fake.actions) == 1, "one originate, whatever the clicks"
        action = fake.actions[0]
        assert action["Channel"] == "PJSIP/101" and action["Exten"] == "+79161234567"
        assert action["CallerID"] == '"OOO Romashka" <+79161234567>', "the phone shows the client"
        await asyncio.sleep(2.2)
        assert (await call("+79161234567"))[1]["repeat"] is True, "a retry soon after: no call"
        fake.delay, fake.answer = 0.1, "Failure"
        status, body = await call("+79031234567")
        assert status == 502 and body["code"] == "calls.originate_failed"
        assert body["error"] == "Звонок не состоялся: ваш телефон не ответил."
        fake.answer = "down"
        status, body = await call("+79265550011")
        assert status == 503 and body["code"] == "telephony.unavailable"
        assert body["error"] == "Телефония недоступна: нет связи с АТС. Попробуйте через минуту."
    finally:
        await http.close()


# -- hostile input ------------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["petrov", "sokolova", "marketer", "admin"],
                         ids=["manager", "supervisor", "marketer", "admin"])
async def test_schemathesis_finds_no_server_errors(served: tuple[Any, str, World],
                                                    tmp_path: Path, username: str) -> None:
    """Fuzz every documented operation as each role (~7 s a role, under a minute in all)."""
    app, base, _ = served
    app[CLICK_TO_CALL].ami = lambda: FakeAmi(delay=0.01)
    http, csrf = await signed_in(base, username)
    cookie = next(c.value for c in http.cookie_jar if c.key == "telecrm_session")
    await http.close()
    returncode, output = await run_bounded(  # on a timeout, no `st` process lives on
        ST, "run", f"{base}/api/openapi.json",
        "-H", f"Cookie: telecrm_session={cookie}", "-H", f"X-CSRF-Token: {csrf}",
        # Signing out would end the fuzzing session; the event stream never ends by itself.
        "--exclude-path", "/api/logout", "--exclude-path", "/api/events",
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                    "response_schema_conformance",
        "--max-examples", "25", "--max-time", "7", "--seed", "20261123",
        "--request-timeout", "10", "--no-shrink", "--workers", "1",
        timeout=90,
        cwd=tmp_path,  # schemathesis keeps its state in ./.schemathesis
        env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"})
    text = output.decode(errors="replace")
    assert returncode == 0, text[-6000:]
