"""``serve`` with two PBXs: two listeners against two stand-in AMI servers, each PBX's
calls, captures, click-to-call and listen-in kept apart, and the «АТС» on the call page.

Two real Asterisks cannot run side by side in the sandbox, so each PBX here is
``FakeAmiServer``: it accepts the login, sends a fixed stream of events and answers
every action with a success.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path
from types import SimpleNamespace

import aiohttp
from sqlalchemy import select

from crm_core.calls.models import Call
from crm_core.db import create_engine, session_factory
from telecrm.recordings.routes import _live_manager_channel
from telecrm.settings import Settings
from telecrm.web.keys import CLICK_TO_CALL, LISTENER, LISTENERS
from tests.support.browser import serve_app
from tests.support.live import telecrm

LINKEDID = "1733380000.12"  # both PBXs number their first call of the day alike
T = 1795406555.0


class FakeAmiServer:
    """A stand-in for one Asterisk: login accepted, ``payload`` sent, actions answered."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.server: asyncio.Server | None = None
        self.port = 0
        self.clients = 0

    async def __aenter__(self) -> FakeAmiServer:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.clients += 1
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        with contextlib.suppress(Exception):
            while True:
                frame = await reader.readuntil(b"\r\n\r\n")
                action_id = next((line.split(b": ", 1)[1] for line in frame.split(b"\r\n")
                                  if line.lower().startswith(b"actionid")), b"")
                writer.write(b"Response: Success\r\nActionID: " + action_id + b"\r\n\r\n")
                if frame.lower().startswith(b"action: login"):
                    writer.write(self.payload)
                await writer.drain()


def event(**headers: str) -> bytes:
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items()) + b"\r\n"


def inbound(extension: str, uid: str, *, hang_up: bool) -> bytes:
    """An inbound call answered by ``extension``, with the linkedid both PBXs use."""
    frames = [
        event(Event="Newchannel", Timestamp=str(T), Channel="PJSIP/carrier-00000001",
              Uniqueid=LINKEDID, Linkedid=LINKEDID, CallerIDNum="79161234567",
              Exten="74951110002"),
        event(Event="Newchannel", Timestamp=str(T + 1), Channel=f"PJSIP/{extension}-00000002",
              Uniqueid=uid, Linkedid=LINKEDID),
        event(Event="Newstate", Timestamp=str(T + 2), Channel=f"PJSIP/{extension}-00000002",
              ChannelState="6", ChannelStateDesc="Up", Uniqueid=uid, Linkedid=LINKEDID),
        event(Event="BridgeEnter", Timestamp=str(T + 2), Uniqueid=LINKEDID, Linkedid=LINKEDID,
              BridgeUniqueid="b", Channel="PJSIP/carrier-00000001"),
        event(Event="BridgeEnter", Timestamp=str(T + 2), Uniqueid=uid, Linkedid=LINKEDID,
              BridgeUniqueid="b", Channel=f"PJSIP/{extension}-00000002"),
    ]
    if hang_up:
        frames += [event(Event="Hangup", Timestamp=str(T + 12), Uniqueid=uid, Cause="16"),
                   event(Event="Hangup", Timestamp=str(T + 12), Uniqueid=LINKEDID, Cause="16")]
    return b"".join(frames)


async def stored_calls(db_url: str) -> dict[str, Call]:
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            return {call.pbx: call for call in await session.scalars(select(Call))}
    finally:
        await engine.dispose()


async def test_two_pbxes_two_listeners_their_own_calls_captures_and_phones(
        tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.db'}"
    telecrm("users", "add", "boss", "--password", "Пароль-2026", "--role", "admin", "--db", db)
    telecrm("users", "add", "ivanov", "--extension", "101", "--db", db)  # Moscow, main
    telecrm("users", "add", "petrov", "--extension", "201", "--db", db)  # St Petersburg
    async with (FakeAmiServer(inbound("101", "1733380000.13", hang_up=True)) as main,
                FakeAmiServer(inbound("201", "1733380000.13", hang_up=False)) as spb):
        telecrm("pbx", "add", "spb", "--host", "127.0.0.1", "--port", str(spb.port),
                "--user", "crm", "--secret", "x", "--recordings-source",
                str(tmp_path / "spb-monitor"), "--db", db)
        settings = Settings(data_dir=tmp_path, database_url=db, ami_port=main.port,
                            ami_secret="x")
        async with serve_app(settings, with_listener=True) as (app, base):
            listeners = app[LISTENERS]
            assert set(listeners) == {"main", "spb"}
            assert app[LISTENER] is listeners["main"], "main stays the default listener"
            for _ in range(200):
                calls = await stored_calls(db)
                if len(calls) == 2 and calls["main"].status == "answered":
                    break
                await asyncio.sleep(0.05)
            assert {pbx: (c.status, c.managers) for pbx, c in calls.items()} == {
                "main": ("answered", ["101"]), "spb": ("in_progress", ["201"])}
            assert all(listener.session.connected.is_set() for listener in listeners.values())

            # Click-to-call rings through the PBX where the manager's phone was last seen.
            ctc = app[CLICK_TO_CALL]
            assert await ctc.session_for("201") is listeners["spb"].session
            assert await ctc.session_for("101") is listeners["main"].session
            assert await ctc.session_for("305") is listeners["main"].session, \
                "a phone never seen on a call: the default PBX"
            # Listen-in: the live call with this linkedid is at spb (main's has ended).
            request = SimpleNamespace(app=app)
            found = _live_manager_channel(request, LINKEDID)  # type: ignore[arg-type]
            assert found is not None and found[2] is listeners["spb"]
            assert found[0] == "PJSIP/201-00000002"

            # The call JSON and the call page say which PBX.
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                async with http.post(f"{base}/api/login", json={
                        "username": "boss", "password": "Пароль-2026"}) as response:
                    assert response.status == 200
                async with http.get(f"{base}/api/calls/{calls['spb'].id}") as response:
                    body = await response.json()
                assert (body.get("pbx"), body.get("linkedid")) == ("spb", LINKEDID), body
                async with http.get(f"{base}/calls/{calls['main'].id}") as response:
                    html = await response.text()
                assert re.search(r"<dt>АТС</dt><dd[^>]*>main</dd>", html)
        for listener in listeners.values():  # stopped cleanly with the app
            assert not listener.session.connected.is_set()

    main_captures = list((tmp_path / "ami").glob("*.ami"))
    spb_captures = list((tmp_path / "ami" / "spb").glob("*.ami"))
    assert len(main_captures) == 1 and len(spb_captures) == 1
    assert b"PJSIP/101-" in main_captures[0].read_bytes()
    assert b"PJSIP/101-" not in spb_captures[0].read_bytes()
    assert b"PJSIP/201-" in spb_captures[0].read_bytes()
