"""Sticky routing's decision and switches on SQLite and PostgreSQL, with a pinned clock:
who rings first, when the call goes to the queue at once, who may switch what, and the
PBX token kept as a hash."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.audit import AuditLog
from crm_core.clients.services import create_client
from crm_core.db import create_engine, session_factory, upgrade
from crm_core.errors import DomainError, NotAllowedError
from crm_core.people.models import User, UserPhone
from crm_core.people.users import add_user
from crm_core.presence.services import list_reasons, set_presence
from crm_core.routing.models import PbxToken
from crm_core.routing.services import (
    Person,
    Snapshot,
    did_number,
    issue_token,
    load_snapshot,
    owner_of_number,
    set_did_rule,
    set_team_rule,
)
from crm_core.talktime.rules import add_absence
from tests.support.db_fixtures import db_url_fixture, postgres_server_fixture  # noqa: F401

pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")
TODAY = date(2026, 11, 20)
HIRED = datetime(2026, 1, 1, tzinfo=UTC)
ROMASHKA = "+79161234567"


async def _floor(db_url: str) -> tuple[async_sessionmaker[AsyncSession], dict[str, User]]:
    await upgrade(db_url)
    sessions = session_factory(create_engine(db_url), writer=True)
    people = {}
    async with sessions() as session, session.begin():
        for username, role, ext, team in (("m101", "manager", "101", "Продажи"),
                                          ("m102", "manager", "102", "Продажи"),
                                          ("m103", "manager", "103", "Опт"),
                                          ("boss", "supervisor", "201", "Продажи"),
                                          ("root", "admin", None, None)):
            people[username] = await add_user(session, username, role=role, extension=ext,
                                              team=team, created_at=HIRED)
        session.add(UserPhone(user_id=people["m101"].id, kind="device",
                              value="PJSIP/m101-soft"))
        await create_client(session, "ООО Ромашка", phones=[ROMASHKA],
                            owner_id=people["m101"].id, actor="test")
        await set_team_rule(session, None, people["m101"].team_id or 0, enabled=True,
                            ring_seconds=20)
    return sessions, people


async def _decide(sessions: async_sessionmaker[AsyncSession], did: str | None = None,
                  busy: tuple[str, ...] = ()) -> tuple[str | None, str]:
    async with sessions() as session:
        snapshot = await load_snapshot(session, TODAY)
        owner = await owner_of_number(session, ROMASHKA)
    return snapshot.decide(owner, did, busy)


async def test_the_owner_rings_first_unless_he_cannot_answer(db_url: str) -> None:
    sessions, people = await _floor(db_url)
    assert await _decide(sessions) == ("20:PJSIP/101&PJSIP/m101-soft", "owner")
    assert await _decide(sessions, busy=("101",)) == (None, "in_call")
    async with sessions() as session, session.begin():  # he goes to lunch
        lunch = next(r.id for r in await list_reasons(session) if r.name == "Обед")
        await set_presence(session, people["m101"], people["m101"], lunch)
    assert await _decide(sessions) == (None, "paused")
    async with sessions() as session, session.begin():  # ...and is off today anyway
        await add_absence(session, people["boss"], people["m101"].id, TODAY, TODAY, "day_off")
    assert await _decide(sessions) == (None, "absent")


async def test_switched_per_team_and_per_did(db_url: str) -> None:
    sessions, people = await _floor(db_url)
    async with sessions() as session, session.begin():
        await set_did_rule(session, people["boss"], "74951110003", enabled=False)
    assert await _decide(sessions, did="+74951110003") == (None, "did_off")
    assert (await _decide(sessions, did="+74951110001"))[1] == "owner"
    async with sessions() as session, session.begin():
        await set_team_rule(session, people["boss"], people["m101"].team_id or 0,
                            enabled=False)
    assert await _decide(sessions, did="+74951110001") == (None, "team_off")
    async with sessions() as session:
        audit = list(await session.scalars(select(AuditLog.entity).where(
            AuditLog.entity.in_(["routing_team", "routing_did"])).order_by(AuditLog.id)))
    assert audit == ["routing_team", "routing_did", "routing_team"]


async def test_unknown_or_shared_numbers_go_to_the_queue(db_url: str) -> None:
    sessions, people = await _floor(db_url)
    async with sessions() as session, session.begin():
        assert await owner_of_number(session, "+79990000000") is None
        # the same switchboard number at a client of another manager: nobody's
        await create_client(session, "ООО Ромашка-Опт", phones=[ROMASHKA],
                            owner_id=people["m103"].id, actor="test")
    assert await _decide(sessions) == (None, "no_owner")


async def test_who_may_switch(db_url: str) -> None:
    sessions, people = await _floor(db_url)
    other_team = people["m103"].team_id or 0
    for actor, team in ((people["m101"], people["m101"].team_id or 0),
                        (people["boss"], other_team)):
        with pytest.raises(NotAllowedError):
            async with sessions() as session, session.begin():
                await set_team_rule(session, actor, team, enabled=True)
    with pytest.raises(NotAllowedError):
        async with sessions() as session, session.begin():
            await set_did_rule(session, people["m101"], "74951110003", enabled=False)
    async with sessions() as session, session.begin():
        await set_team_rule(session, people["root"], other_team, enabled=True)
    for ring in (4, 121):
        with pytest.raises(DomainError):
            async with sessions() as session, session.begin():
                await set_team_rule(session, people["root"], other_team, ring_seconds=ring)


async def test_the_token_is_stored_hashed_and_a_new_one_replaces_it(db_url: str) -> None:
    sessions, _ = await _floor(db_url)
    async with sessions() as session, session.begin():
        first = await issue_token(session, "cli")
    async with sessions() as session, session.begin():
        second = await issue_token(session, "cli", "my-own-token-1234567")
    async with sessions() as session:
        stored = list(await session.scalars(select(PbxToken.token_hash)))
        snapshot = await load_snapshot(session, TODAY)
    assert first not in stored and second not in stored and len(stored) == 2
    assert snapshot.token_ok(second) and not snapshot.token_ok(first)
    assert not snapshot.token_ok("") and not snapshot.token_ok("my-own-token-123456")
    with pytest.raises(DomainError):
        async with sessions() as session, session.begin():
            await issue_token(session, "cli", "short")


def test_decision_without_a_database() -> None:
    snapshot = Snapshot(teams={1: (True, 12)}, people={
        7: Person("101", 1, ()), 8: Person("102", None, ())})
    assert snapshot.decide(7, None) == ("12:PJSIP/101", "owner")
    assert snapshot.decide(8, None) == (None, "team_off")  # no team, no rule
    assert snapshot.decide(9, None) == (None, "owner_unavailable")  # switched off, no phone
    assert did_number("74951110001") == did_number("+7 (495) 111-00-01") == "+74951110001"


def test_the_shipped_dialplan_asks_only_when_configured() -> None:
    from asterisk_conf.render import PbxConfig, render_pbx_config

    off = render_pbx_config(PbxConfig())["extensions.conf"]
    assert "CRM_OWNER_URL = \n" in off and "[crm-owner]" in off
    on = render_pbx_config(PbxConfig(crm_owner_url="http://10.0.0.7:8080/pbx/owner",
                                     crm_pbx_token="a" * 20))["extensions.conf"]
    assert "CRM_OWNER_URL = http://10.0.0.7:8080/pbx/owner\n" in on
    assert "CRM_PBX_TOKEN = " + "a" * 20 in on and "CRM_OWNER_TIMEOUT = 0.5" in on
    for bad in ({"crm_owner_url": "http://x/;drop"}, {"crm_pbx_token": "short"},
                {"crm_owner_url": "ftp://x"}, {"crm_owner_timeout": 10.0}):
        with pytest.raises(ValueError):
            render_pbx_config(PbxConfig(**bad))  # type: ignore[arg-type]


def test_the_callers_fast_path_agrees_with_the_full_parse() -> None:
    from crm_core.clients.phones import normalize_phone
    from telecrm.routing.lookup import _caller

    for raw in ("79161234567", "89161234567", "74951110001", "84951110001", "83432001122",
                "7916123456", "+79161234567", "8 916 123-45-67", "101", "anonymous",
                "70001234567", "79991234567", "78001234567", "88001234567", "74012345678"):
        assert _caller(raw, "RU") == normalize_phone(raw, "RU"), raw
