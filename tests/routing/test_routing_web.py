"""Sticky routing's routes on the seeded floor (tests/support/browser.py): the dialplan's
``POST /pbx/owner`` with the PBX token only, the switches by role (API and form), and
``telecrm routing`` from the shell. ООО Ромашка (+7 916 123-45-67) is petrov's (101,
«Отдел продаж», headed by sokolova); kuznetsov is in «Второй отдел»."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from telecrm.routing.lookup import REFRESH_SECONDS
from tests.support.db_fixtures import db_url_fixture  # noqa: F401
from tests.support.floor import Floor as BaseFloor
from tests.support.floor import served_floor
from tests.support.live import telecrm

pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")
ROMASHKA = "79161234567"  # as the carrier sends it


class Floor(BaseFloor):
    async def call(self, who: str, method: str, path: str, body: Any = None
                   ) -> tuple[int, Any]:
        http = await self.login(who)
        async with http.request(method, self.base + path, json=body,
                                headers={"X-CSRF-Token": self.csrf[who]}) as response:
            kind = response.content_type
            return response.status, (await response.json() if kind == "application/json"
                                     else await response.text())

    async def ask(self, token: str, caller: str = ROMASHKA, did: str = "74951110001",
                  http: aiohttp.ClientSession | None = None) -> tuple[int, str, str]:
        """What the dialplan's CURL() does: a form POST, no cookie."""
        own = http is None
        http = http or aiohttp.ClientSession()
        try:
            async with http.post(self.base + "/pbx/owner", data={
                    "token": token, "caller": caller, "did": did}) as response:
                return (response.status, await response.text(),
                        response.headers.get("X-Telecrm-Route", ""))
        finally:
            if own:
                await http.close()


@pytest.fixture
async def floor(db_url: str, tmp_path: Path) -> AsyncIterator[Floor]:
    async with served_floor(Floor, db_url, tmp_path) as crm:
        yield crm


async def settled(floor: Floor, token: str, expected: tuple[int, str, str], **kw: str
                  ) -> None:
    """Changes made from the shell reach the running app's lookup within seconds."""
    deadline = asyncio.get_running_loop().time() + 2 * REFRESH_SECONDS + 2
    while (got := await floor.ask(token, **kw)) != expected:
        assert asyncio.get_running_loop().time() < deadline, got
        await asyncio.sleep(0.2)


def cli(floor: Floor, *args: str) -> str:
    return telecrm(*args, "--db", floor.db_url).stdout.strip()


async def test_the_dialplan_asks_with_the_pbx_token_only(floor: Floor) -> None:
    token = cli(floor, "routing", "token")
    assert len(token) >= 30
    # a wrong or missing token, or a signed-in user's session alone: refused, empty
    assert (await floor.ask("wrong-token-wrong-token"))[:2] == (403, "")
    assert (await floor.ask(""))[:2] == (403, "")
    admin = await floor.login("admin")
    assert (await floor.ask("", http=admin))[:2] == (403, "")
    # the right token, routing still off for the team: the queue
    await settled(floor, token, (200, "", "team_off"))
    assert "включено" not in cli(floor, "routing", "show")
    out = cli(floor, "routing", "team", "Отдел продаж", "--on", "--ring", "12")
    assert out == ("Отдел «Отдел продаж»: звонки известных клиентов сначала идут их "
                   "менеджеру (12 с), потом в очередь.")
    await settled(floor, token, (200, "12:PJSIP/101", "owner"))
    assert await floor.ask(token, caller="+79990001122") == (200, "", "no_owner")
    assert await floor.ask(token, caller="anonymous") == (200, "", "no_number")
    out = cli(floor, "routing", "did", "+7 495 111-00-01", "--off")
    assert out == "Номер +74951110001: звонки всегда идут как настроено в АТС."
    await settled(floor, token, (200, "", "did_off"))
    assert (await floor.ask(token, did="74951110002"))[1] == "12:PJSIP/101"
    # a DID switched on rings the owner though his team has it off; «as the team» does not
    cli(floor, "routing", "team", "Отдел продаж", "--off")
    out = cli(floor, "routing", "did", "+7 495 111-00-03", "--on")
    assert out == ("Номер +74951110003: звонки известных клиентов сначала идут их "
                   "менеджеру, что бы ни было у отдела.")
    await settled(floor, token, (200, "12:PJSIP/101", "owner"), did="74951110003")
    out = cli(floor, "routing", "did", "+7 495 111-00-03", "--team")
    assert out == "Номер +74951110003: как у отдела ответственного менеджера."
    await settled(floor, token, (200, "", "team_off"), did="74951110003")
    assert cli(floor, "routing", "show").splitlines()[-2:] == [
        "+74951110001: всегда в очередь", "+74951110003: как у отдела"]
    cli(floor, "routing", "team", "Отдел продаж", "--on")
    # a new token replaces the old one
    fresh = cli(floor, "routing", "token", "--set", "the-admins-own-token-42")
    assert fresh == "the-admins-own-token-42"
    await settled(floor, fresh, (200, "12:PJSIP/101", "owner"), did="74951110002")
    assert (await floor.ask(token, did="74951110002"))[0] == 403
    # a paused owner: the queue at once
    _, listed = await floor.call("petrov", "GET", "/api/presence")
    lunch = next(r["state"] for r in listed["reasons"] if r["name"] == "Обед")
    assert (await floor.call("petrov", "POST", "/api/presence", {"state": lunch}))[0] == 200
    assert await floor.ask(fresh, did="74951110002") == (200, "", "paused")


async def test_switches_by_role(floor: Floor) -> None:
    _, body = await floor.call("sokolova", "GET", "/api/routing")
    teams = {t["team"]: t for t in body["teams"]}
    own, other = teams["Отдел продаж"], teams["Второй отдел"]
    assert own["editable"] and not other["editable"] and not own["enabled"]
    for who, status in {"petrov": 403, "marketer": 403, "admin": 200}.items():
        assert (await floor.call(who, "GET", "/api/routing"))[0] == status, who
    path = f"/api/routing/teams/{own['team_id']}"
    for who, status in {"petrov": 403, "kuznetsov": 403, "sokolova": 200}.items():
        got, answer = await floor.call(who, "PUT", path, {"enabled": True, "ring_seconds": 10})
        assert got == status, (who, answer)
    got, answer = await floor.call("sokolova", "PUT", f"/api/routing/teams/{other['team_id']}",
                                   {"enabled": True})
    assert got == 403 and answer["error"] == ("Руководитель включает звонки своему менеджеру "
                                             "только для своего отдела.")
    got, answer = await floor.call("sokolova", "PUT", path, {"ring_seconds": 500})
    assert got == 400 and answer["error"] == "Сколько звонить менеджеру: от 5 до 120 секунд."
    got, answer = await floor.call("admin", "PUT", "/api/routing/dids",
                                   {"did": "+7 495 111-00-01", "mode": "on"})
    assert got == 200 and answer["dids"] == [{"did": "+74951110001", "mode": "on"}]
    got, answer = await floor.call("sokolova", "PUT", "/api/routing/dids",
                                   {"did": "+7 495 111-00-01", "mode": "team"})
    assert got == 200 and answer["dids"] == [{"did": "+74951110001", "mode": "team"}]
    # the first shape still works: false is off, true gives it back to the team
    for enabled, mode in ((False, "off"), (True, "team")):
        got, answer = await floor.call("admin", "PUT", "/api/routing/dids",
                                       {"did": "+7 495 111-00-01", "enabled": enabled})
        assert got == 200 and answer["dids"][0]["mode"] == mode
    got, answer = await floor.call("petrov", "PUT", "/api/routing/dids",
                                   {"did": "+7 495 111-00-01", "mode": "on"})
    assert got == 403
    got, answer = await floor.call("admin", "PUT", "/api/routing/dids",
                                   {"did": "не номер", "mode": "off"})
    assert got == 400 and answer["error"] == "«не номер» — не номер телефона."
    for bad in ({"did": "+7 495 111-00-01", "mode": "вкл"}, {"did": "+7 495 111-00-01"}):
        got, answer = await floor.call("admin", "PUT", "/api/routing/dids", bad)
        assert got == 400 and answer["error"].startswith("Выберите, что делать"), bad
    # the form
    for who, status in {"sokolova": 200, "admin": 200, "petrov": 403}.items():
        got, page = await floor.call(who, "GET", "/routing")
        assert got == status, who
    _, page = await floor.call("sokolova", "GET", "/routing")
    assert "Звонки своему менеджеру" in page and 'value="10"' in page
