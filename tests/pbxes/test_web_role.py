"""``serve --web`` beside ``serve --listener`` (Redis configured): the web process never
logs in to Asterisk, yet a manager's click-to-call rings his phone through the active
listener's AMI login («Телефония недоступна» when no listener is active), and a
supervisor sees the calls in progress and listens in on one.

The PBX is a stand-in AMI server that notes every action it receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from redis.asyncio import Redis

from crm_core.calls.snapshot import CallData, LegData, RecordingRef
from pbx_bridge.ami import AmiError
from pbx_bridge.pipeline import Listener
from telecrm.ami_relay import (
    RelayServer,
    RemoteAmiSession,
    RemoteListener,
    alive_key,
    decode_call,
    encode_call,
    moved_on,
)
from telecrm.settings import Settings
from telecrm.web.keys import ELECTIONS, LISTENERS
from tests.pbxes.test_pbx_listeners import LINKEDID, FakeAmiServer, inbound
from tests.support.browser import PASSWORD, free_port, serve_app
from tests.support.hostile import call, login
from tests.support.live import TELECRM, telecrm


class RecordingAmiServer(FakeAmiServer):
    """The stand-in PBX, keeping the actions it was sent (login included)."""

    def __init__(self, payload: bytes = b"", *, originate_after: float = 0.0) -> None:
        super().__init__(payload)
        self.actions: list[dict[str, str]] = []
        self.originate_after = originate_after  # as long as a phone takes to be picked up

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.clients += 1
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        with contextlib.suppress(Exception):
            while True:
                frame = (await reader.readuntil(b"\r\n\r\n")).decode()
                headers = dict(line.split(": ", 1) for line in frame.split("\r\n") if ": " in line)
                self.actions.append(headers)
                if headers.get("Action", "").lower() == "originate":
                    await asyncio.sleep(self.originate_after)
                writer.write(f"Response: Success\r\nActionID: {headers.get('ActionID', '')}"
                             "\r\n\r\n".encode())
                if headers.get("Action", "").lower() == "login":
                    writer.write(self.payload)
                await writer.drain()

    def originates(self) -> list[dict[str, str]]:
        return [a for a in self.actions if a.get("Action", "").lower() == "originate"]


async def web_sees_the_pbx(app: web.Application) -> None:
    """Until the web process knows the active listener's AMI login is up (1 s refresh)."""
    for _ in range(50):
        if app[LISTENERS]["main"].session.connected.is_set():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the web process never saw the PBX connected")


async def the_listener_says_it_is_up(redis_url: str) -> None:
    """Until the active listener has written that its AMI login is up."""
    redis = Redis.from_url(redis_url)
    try:
        for _ in range(50):
            if await redis.exists(alive_key("main")):
                return
            await asyncio.sleep(0.1)
    finally:
        await redis.aclose()
    raise AssertionError("the active listener never said its AMI login is up")


async def test_click_to_call_from_a_web_process_goes_through_the_active_listener(
        tmp_path: Path, redis_url: str) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.db'}"
    telecrm("users", "add", "ivanov", "--extension", "101", "--password", PASSWORD, "--db", db)
    async with RecordingAmiServer() as pbx:
        settings = Settings(data_dir=tmp_path, database_url=db, redis_url=redis_url,
                            ami_port=pbx.port, ami_secret="x")
        async with serve_app(settings, with_listener=False) as (web_app, base):
            assert all(isinstance(each, RemoteListener)  # the listeners' stand-ins
                       for each in web_app[LISTENERS].values())
            http = await login(base, "ivanov")
            try:
                # No listener is running: the manager is told so, nothing rings.
                status, body = await call(http, "POST", f"{base}/api/calls/originate",
                                          {"number": "8 916 123-45-67"})
                assert status == 503, body
                assert body["error"].startswith("Телефония недоступна")
                async with serve_app(settings, with_listener=True, with_web=False) as (
                        listener_app, _):
                    await asyncio.wait_for(
                        listener_app[LISTENERS]["main"].session.connected.wait(), 10)
                    await web_sees_the_pbx(web_app)
                    status, body = await call(http, "POST", f"{base}/api/calls/originate",
                                              {"number": "8 916 123-45-67"})
                    assert status == 202, body
                    assert body["status"] == "calling"
                    for _ in range(50):
                        if pbx.originates():
                            break
                        await asyncio.sleep(0.1)
                    [originate] = pbx.originates()
                    assert originate["Channel"] == "PJSIP/101"
                    assert "79161234567" in str(originate)
                    assert originate["ActionID"] == body["action_id"]
                    assert pbx.clients == 1, "only the listener process logged in to AMI"
            finally:
                await http.close()


async def test_a_web_process_sees_the_calls_in_progress_and_listens_in_through_the_listener(
        tmp_path: Path, redis_url: str) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.db'}"
    telecrm("users", "add", "boss", "--role", "admin", "--extension", "201",
            "--password", PASSWORD, "--db", db)
    telecrm("users", "add", "ivanov", "--extension", "101", "--db", db)
    async with RecordingAmiServer(inbound("101", "1733380000.13", hang_up=False)) as pbx:
        settings = Settings(data_dir=tmp_path, database_url=db, redis_url=redis_url,
                            ami_port=pbx.port, ami_secret="x")
        async with serve_app(settings, with_listener=True, with_web=False), \
                serve_app(settings, with_listener=False) as (_, base):
            http = await login(base, "boss")
            try:
                for _ in range(50):
                    status, body = await call(http, "GET", f"{base}/api/calls/live")
                    if body["calls"]:
                        break
                    await asyncio.sleep(0.1)
                assert status == 200 and body["telephony"] is True
                [live] = body["calls"]
                assert (live["linkedid"], live["extension"], live["client_number"]) == (
                    LINKEDID, "101", "79161234567")
                status, board = await call(http, "GET", f"{base}/api/wallboard")
                assert status == 200 and board["telephony"] is True
                status, body = await call(http, "POST", f"{base}/api/calls/{LINKEDID}/listen",
                                          {"mode": "listen"})
                assert status == 202, body
                [spy] = pbx.originates()
                assert spy["Channel"] == "PJSIP/201"
                assert (spy["Context"], spy["Exten"]) == ("crm-listen", "101"), "on ivanov"
                assert pbx.clients == 1, "only the listener process logged in to AMI"
                async with http.get(f"{base}/healthz") as response:  # the web process is up
                    assert response.status == 200
            finally:
                await http.close()


def test_calls_in_progress_cross_redis_unchanged_and_talk_on_until_asked() -> None:
    t = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    leg = LegData("1.2", "PJSIP/101-00000002", "manager", "101", t, t, None, 30.0,
                  bridged_at=t)
    call = CallData("1.1", "inbound", "in_progress", "79161234567", "74951110002", t, t, None,
                    2.0, 30.0, False, ("101",), ("2026/11/23/1.1-mix.wav",), (leg,),
                    rang=("101",), queue="sales",
                    recording_details=(RecordingRef("2026/11/23/1.1-mix.wav", "mix", "1.1"),),
                    pbx="main")
    assert decode_call(encode_call(call)) == call
    later = moved_on(call, 5.0)
    assert (later.talk_seconds, later.legs[0].talk_seconds, later.ring_seconds) == (
        35.0, 35.0, 2.0)


async def test_serve_web_serves_pages_and_never_connects_to_asterisk(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.db'}"
    telecrm("db", "upgrade", "--db", db)
    port = free_port()
    async with RecordingAmiServer() as pbx:
        env = {**os.environ, "TELECRM_DATABASE_URL": db, "TELECRM_DATA_DIR": str(tmp_path),
               "TELECRM_AMI_PORT": str(pbx.port), "TELECRM_AMI_SECRET": "x"}
        process = await asyncio.create_subprocess_exec(
            TELECRM, "serve", "--web", "--port", str(port), env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        try:
            async with aiohttp.ClientSession() as http:
                page = ""
                for _ in range(100):
                    with contextlib.suppress(aiohttp.ClientError):
                        async with http.get(f"http://127.0.0.1:{port}/login") as response:
                            if response.status == 200:
                                page = await response.text()
                                break
                    await asyncio.sleep(0.2)
                assert "Вход" in page, "serve --web serves the sign-in page"
                await asyncio.sleep(2)
            assert pbx.clients == 0, "a web process never logs in to AMI"
            assert not (tmp_path / "ami").exists(), "nor captures anything"
        finally:
            process.terminate()
            await asyncio.wait_for(process.wait(), 20)


async def test_after_a_takeover_the_web_process_calls_through_the_new_active_listener(
        tmp_path: Path, redis_url: str) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.db'}"
    telecrm("users", "add", "ivanov", "--extension", "101", "--password", PASSWORD, "--db", db)
    async with RecordingAmiServer() as first_pbx, RecordingAmiServer() as second_pbx:
        # One PBX, reached by each listener process through its own port (to tell them apart).
        first = Settings(data_dir=tmp_path, database_url=db, redis_url=redis_url,
                         ami_port=first_pbx.port, ami_secret="x")
        second = first.with_overrides(ami_port=second_pbx.port)
        active = serve_app(first, with_listener=True, with_web=False)
        await active.__aenter__()
        try:
            async with serve_app(first, with_listener=False) as (web_app, base), \
                    serve_app(second, with_listener=True, with_web=False) as (standby, _):
                http = await login(base, "ivanov")
                try:
                    await web_sees_the_pbx(web_app)
                    status, _ = await call(http, "POST", f"{base}/api/calls/originate",
                                           {"number": "+79161234567"})
                    assert status == 202
                    assert (len(first_pbx.originates()), second_pbx.clients) == (1, 0)
                    # The active listener is gone: the standby takes over, and the next
                    # click goes through it.
                    await active.__aexit__(None, None, None)
                    active = None
                    election = standby[ELECTIONS]["listener:main"]
                    await asyncio.wait_for(election.active.wait(), 10)
                    await asyncio.wait_for(
                        standby[LISTENERS]["main"].session.connected.wait(), 10)
                    await the_listener_says_it_is_up(redis_url)
                    # The web process may still hold "down" from the moment between the
                    # two listeners: a click asks again rather than refuse.
                    web_app[LISTENERS]["main"].session.connected.up = False
                    status, body = await call(http, "POST", f"{base}/api/calls/originate",
                                              {"number": "+79031234567"})
                    assert status == 202, body
                    for _ in range(50):
                        if second_pbx.originates():
                            break
                        await asyncio.sleep(0.1)
                    assert len(second_pbx.originates()) == 1
                    assert len(first_pbx.originates()) == 1
                finally:
                    await http.close()
        finally:
            if active is not None:
                await active.__aexit__(None, None, None)


async def test_the_relay_runs_only_what_web_processes_send_and_waits_for_the_phone(
        tmp_path: Path, redis_url: str) -> None:
    """Anything else written to the requests list (a Redis user, a bug) is refused."""
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.db'}"
    async with RecordingAmiServer(originate_after=6) as pbx:
        settings = Settings(data_dir=tmp_path, database_url=db, redis_url=redis_url,
                            ami_port=pbx.port, ami_secret="x")
        async with serve_app(settings, with_listener=True, with_web=False) as (app, _):
            await asyncio.wait_for(app[LISTENERS]["main"].session.connected.wait(), 10)
            remote = RemoteAmiSession(Redis.from_url(redis_url, decode_responses=True,
                                                     socket_timeout=None), "main")
            try:
                with pytest.raises(AmiError, match="not relayed"):
                    await remote.action({"Action": "Command", "Command": "core stop now"})
                answer = await remote.action({"Action": "QueuePause", "Interface": "PJSIP/101",
                                              "Paused": "true"}, timeout=2)
                assert answer["Response"] == "Success"
                # An originate answers when the phone is picked up: the wait may be long.
                answer = await remote.action({"Action": "Originate", "Channel": "PJSIP/101",
                                              "Application": "Wait", "Data": "1"}, timeout=15)
                assert answer["Response"] == "Success"
            finally:
                await remote.redis.aclose()
    assert [a["Action"] for a in pbx.actions if a["Action"] not in ("Login", "Ping")] == [
        "Setvar", "CoreShowChannels", "QueuePause", "Originate", "Logoff"]


async def test_a_standby_serving_pages_shows_the_active_listeners_calls(
        tmp_path: Path, redis_url: str) -> None:
    """Two hosts running plain ``serve``: the standby's pages show the other's calls."""
    db = f"sqlite+aiosqlite:///{tmp_path / 'crm.db'}"
    telecrm("users", "add", "boss", "--role", "admin", "--extension", "201",
            "--password", PASSWORD, "--db", db)
    async with RecordingAmiServer(inbound("101", "1733380000.13", hang_up=False)) as pbx:
        settings = Settings(data_dir=tmp_path, database_url=db, redis_url=redis_url,
                            ami_port=pbx.port, ami_secret="x")
        async with serve_app(settings, with_listener=True) as (active, _), \
                serve_app(settings, with_listener=True) as (standby, base):
            assert isinstance(active[LISTENERS]["main"], Listener)
            assert isinstance(standby[LISTENERS]["main"], RemoteListener)
            http = await login(base, "boss")
            try:
                for _ in range(50):
                    _, body = await call(http, "GET", f"{base}/api/calls/live")
                    if body["calls"]:
                        break
                    await asyncio.sleep(0.1)
                assert [c["linkedid"] for c in body["calls"]] == [LINKEDID]
                async with http.get(f"{base}/healthz") as response:
                    assert (await response.json())["roles"] == {
                        "listener:main": "standby", "jobs": "standby"}
            finally:
                await http.close()
            assert pbx.clients == 1


class UpSession:
    """A listener's AMI session whose login is up (what the relay reads of it)."""

    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self.connected.set()


async def test_a_listener_stopping_after_its_successor_leaves_the_pbx_up(redis_url: str) -> None:
    """The old listener's last words must not be "the PBX is gone" once the new one said
    it is up: web processes would refuse clicks until the next refresh."""
    redis = Redis.from_url(redis_url, decode_responses=True)
    old = RelayServer(redis, "main", UpSession())  # type: ignore[arg-type]
    new = RelayServer(redis, "main", UpSession())  # type: ignore[arg-type]
    old_task = asyncio.create_task(old.run())
    try:
        await the_listener_says_it_is_up(redis_url)
        new_task = asyncio.create_task(new.run())
        for _ in range(50):
            if await redis.get(alive_key("main")) == new.token:
                break
            await asyncio.sleep(0.05)
        old_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await old_task
        assert await redis.get(alive_key("main")) == new.token, "the successor's word stands"
        new_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await new_task
        assert not await redis.exists(alive_key("main")), "the last one out says it is gone"
    finally:
        old_task.cancel()
        await redis.aclose()
