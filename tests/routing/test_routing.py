"""Sticky routing's decision and switches on SQLite and PostgreSQL, with a pinned clock:
who rings first, when the call goes to the queue at once, who may switch what, and the
PBX token kept as a hash."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.audit import AuditLog
from crm_core.clients.services import create_client
from crm_core.db import alembic_config, create_engine, session_factory, upgrade
from crm_core.errors import DomainError, NotAllowedError
from crm_core.people.models import User, UserPhone
from crm_core.people.users import add_user
from crm_core.presence.services import list_reasons, set_presence
from crm_core.routing.models import PbxToken
from crm_core.routing.services import (
    DidMode,
    Person,
    Snapshot,
    did_number,
    issue_token,
    list_rules,
    load_snapshot,
    owner_of_number,
    set_did_rule,
    set_team_rule,
)
from crm_core.talktime.rules import add_absence, add_holiday
from tests.support.db_fixtures import (  # noqa: F401
    Engines,
    db_url_fixture,
    empty_db_url_fixture,
    engines_fixture,
)

pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")
TODAY = date(2026, 11, 20)
HIRED = datetime(2026, 1, 1, tzinfo=UTC)
ROMASHKA = "+79161234567"


async def _floor(
        engines: Engines, db_url: str) -> tuple[async_sessionmaker[AsyncSession], dict[str, User]]:
    await upgrade(db_url)
    sessions = session_factory(engines(db_url), writer=True)
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


async def test_the_owner_rings_first_unless_he_cannot_answer(db_url: str, engines: Engines) -> None:
    sessions, people = await _floor(engines, db_url)
    assert await _decide(sessions) == ("20:PJSIP/101&PJSIP/m101-soft", "owner")
    assert await _decide(sessions, busy=("101",)) == (None, "in_call")
    async with sessions() as session, session.begin():  # he goes to lunch
        lunch = next(r.id for r in await list_reasons(session) if r.name == "Обед")
        await set_presence(session, people["m101"], people["m101"], lunch)
    assert await _decide(sessions) == (None, "paused")
    async with sessions() as session, session.begin():  # ...and is off today anyway
        await add_absence(session, people["boss"], people["m101"].id, TODAY, TODAY, "day_off")
    assert await _decide(sessions) == (None, "absent")


async def test_a_holiday_or_weekend_sends_the_caller_to_the_queue(
        db_url: str, engines: Engines) -> None:
    sessions, _ = await _floor(engines, db_url)
    async with sessions() as session, session.begin():  # the company's day off
        await add_holiday(session, None, TODAY, "День народного единства (перенос)")
    assert await _decide(sessions) == (None, "holiday")
    saturday = date(2026, 11, 21)
    async with sessions() as session:
        snapshot = await load_snapshot(session, saturday)
        owner = await owner_of_number(session, ROMASHKA)
    assert snapshot.decide(owner, None) == (None, "weekend")


OWNER = ("20:PJSIP/101&PJSIP/m101-soft", "owner")
# The owner's team's switch, the DID's setting (None: never set) -> the answer.
COMBINATIONS = [
    (True, None, OWNER), (True, DidMode.TEAM, OWNER), (True, DidMode.ON, OWNER),
    (True, DidMode.OFF, (None, "did_off")),
    (False, None, (None, "team_off")), (False, DidMode.TEAM, (None, "team_off")),
    (False, DidMode.ON, OWNER), (False, DidMode.OFF, (None, "did_off")),
]


async def test_switched_per_team_and_per_did(db_url: str, engines: Engines) -> None:
    """Every combination of the team's switch and a DID's, read back from the database;
    a call to another DID (or with none) always follows the team."""
    sessions, people = await _floor(engines, db_url)
    boss, team = people["boss"], people["m101"].team_id or 0
    for number, (team_on, mode, expected) in enumerate(COMBINATIONS):
        did = f"+7495111000{number}"
        async with sessions() as session, session.begin():
            await set_team_rule(session, boss, team, enabled=team_on)
            if mode is not None:
                await set_did_rule(session, boss, did, mode=mode)
        assert await _decide(sessions, did=did) == expected, (team_on, mode)
        other = OWNER if team_on else (None, "team_off")
        assert await _decide(sessions, did="+74959999999") == other
        assert await _decide(sessions) == other
    # switched back and forth, the last word counts; each change is audited once
    async with sessions() as session, session.begin():
        await set_did_rule(session, boss, "74951110006", mode=DidMode.ON)  # no change
        await set_did_rule(session, boss, "74951110006", mode=DidMode.TEAM)
        _, dids = await list_rules(session)
    assert await _decide(sessions, did="+74951110006") == (None, "team_off")
    assert {d["did"]: d["mode"] for d in dids} == {
        "+74951110001": "team", "+74951110002": "on", "+74951110003": "off",
        "+74951110005": "team", "+74951110006": "team", "+74951110007": "off"}
    async with sessions() as session:
        audit = [(a.actor, a.changes["mode"]) for a in await session.scalars(
            select(AuditLog).where(AuditLog.entity == "routing_did").order_by(AuditLog.id))]
    assert audit == [("boss", [None, "team"]), ("boss", [None, "on"]), ("boss", [None, "off"]),
                     ("boss", [None, "team"]), ("boss", [None, "on"]), ("boss", [None, "off"]),
                     ("boss", ["on", "team"])]


async def test_a_did_switched_on_still_spares_an_owner_who_cannot_answer(
        db_url: str, engines: Engines) -> None:
    sessions, people = await _floor(engines, db_url)
    async with sessions() as session, session.begin():
        await set_team_rule(session, people["boss"], people["m101"].team_id or 0,
                            enabled=False)
        await set_did_rule(session, people["boss"], "74951110001", mode=DidMode.ON)
    assert await _decide(sessions, did="+74951110001") == OWNER
    assert await _decide(sessions, did="+74951110001", busy=("101",)) == (None, "in_call")
    async with sessions() as session, session.begin():
        lunch = next(r.id for r in await list_reasons(session) if r.name == "Обед")
        await set_presence(session, people["m101"], people["m101"], lunch)
    assert await _decide(sessions, did="+74951110001") == (None, "paused")


async def test_unknown_or_shared_numbers_go_to_the_queue(db_url: str, engines: Engines) -> None:
    sessions, people = await _floor(engines, db_url)
    async with sessions() as session, session.begin():
        assert await owner_of_number(session, "+79990000000") is None
        # the same switchboard number at a client of another manager: nobody's
        await create_client(session, "ООО Ромашка-Опт", phones=[ROMASHKA],
                            owner_id=people["m103"].id, actor="test")
    assert await _decide(sessions) == (None, "no_owner")


async def test_who_may_switch(db_url: str, engines: Engines) -> None:
    sessions, people = await _floor(engines, db_url)
    other_team = people["m103"].team_id or 0
    for actor, team in ((people["m101"], people["m101"].team_id or 0),
                        (people["boss"], other_team)):
        with pytest.raises(NotAllowedError):
            async with sessions() as session, session.begin():
                await set_team_rule(session, actor, team, enabled=True)
    with pytest.raises(NotAllowedError):
        async with sessions() as session, session.begin():
            await set_did_rule(session, people["m101"], "74951110003", mode=DidMode.OFF)
    async with sessions() as session, session.begin():
        await set_team_rule(session, people["root"], other_team, enabled=True)
    for ring in (4, 121):
        with pytest.raises(DomainError):
            async with sessions() as session, session.begin():
                await set_team_rule(session, people["root"], other_team, ring_seconds=ring)


async def test_the_token_is_stored_hashed_and_a_new_one_replaces_it(
        db_url: str, engines: Engines) -> None:
    sessions, _ = await _floor(engines, db_url)
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
    # a DID switched on rings an owner of no team too, for the default ring time
    on = Snapshot(teams={1: (False, 12)}, dids={"+74951110001": True}, people=snapshot.people)
    assert on.decide(8, "+74951110001") == ("15:PJSIP/102", "owner")
    assert on.decide(7, "+74951110001") == ("12:PJSIP/101", "owner")  # the team's ring time
    assert on.decide(7, "+74951110002") == (None, "team_off")
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


async def test_the_migration_keeps_what_each_did_meant(empty_db_url: str) -> None:
    """Before 0023 a DID's True meant "as the team" and False "off": so they stay."""
    config = alembic_config(empty_db_url)
    engine = create_engine(empty_db_url)
    read = text("SELECT did, enabled FROM routing_rules WHERE did IS NOT NULL ORDER BY did")
    try:
        async with engine.connect() as conn:

            def old_rows_then_upgrade(sync_conn: Any) -> list[list[tuple[Any, ...]]]:
                config.attributes["connection"] = sync_conn
                command.upgrade(config, "0022_presence_routing")
                for did, enabled in (("+74951110001", True), ("+74951110002", False)):
                    sync_conn.execute(text(
                        "INSERT INTO routing_rules (did, enabled, ring_seconds, updated_by, "
                        "updated_at) VALUES (:d, :e, 15, 'old', :t)"),
                        {"d": did, "e": enabled, "t": HIRED})
                command.upgrade(config, "head")
                upgraded = [tuple(r) for r in sync_conn.execute(read)]
                sync_conn.execute(text(
                    "UPDATE routing_rules SET enabled = NULL WHERE did = '+74951110002'"))
                command.downgrade(config, "0022_presence_routing")
                downgraded = [tuple(r) for r in sync_conn.execute(read)]
                command.upgrade(config, "head")
                return [upgraded, downgraded]

            upgraded, downgraded = await conn.run_sync(old_rows_then_upgrade)
            await conn.commit()
    finally:
        await engine.dispose()
    assert upgraded == [("+74951110001", None), ("+74951110002", False)]
    assert downgraded == [("+74951110001", True), ("+74951110002", True)]
