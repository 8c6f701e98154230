"""Storage on both backends: migrations, the idempotent call writer, leads, export, time zones."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import AuditLog
from crm_core.calls.models import Call, CallLeg
from crm_core.calls.services import export_calls, get_call, record_call
from crm_core.calls.snapshot import CallData, LegData
from crm_core.clients.models import Client, Phone
from crm_core.clients.services import find_client_by_phone
from crm_core.db import (
    alembic_config,
    create_engine,
    head_revision,
    normalize_url,
    session_factory,
    upgrade,
)
from crm_core.db.base import Base
from crm_core.people.models import User
from crm_core.people.users import add_user, find_user_by_extension
from crm_core.schema import include_object
from telecrm.wiring import call_hooks
from tests.support.db_fixtures import (  # noqa: F401
    db_session_fixture,
    db_url_fixture,
    empty_db_url_fixture,
)

HOOKS = call_hooks()  # what the product does with each written call

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CALL_KEYS = {
    "id", "linkedid", "direction", "status", "client_number", "did", "client_id",
    "client_name", "managers", "started_at", "answered_at", "ended_at", "ring_seconds",
    "talk_seconds", "transferred", "recordings", "tracking",
}  # fmt: skip


def leg(uid: str, role: str, ext: str | None, start: float, answer: float | None,
        end: float | None, talk: float = 0.0) -> LegData:  # fmt: skip
    def at(seconds: float | None) -> datetime | None:
        return None if seconds is None else T0 + timedelta(seconds=seconds)

    return LegData(
        uniqueid=uid,
        channel=f"PJSIP/{ext or 'trunk'}-{uid}",
        role=role,
        extension=ext,
        started_at=T0 + timedelta(seconds=start),
        answered_at=at(answer),
        ended_at=at(end),
        talk_seconds=talk,
        hangup_cause=16 if end is not None else None,
    )


def answered_call(linkedid: str = "1795406555.0", number: str = "8 (916) 123-45-67",
                  offset: float = 0.0, **changes: Any) -> CallData:  # fmt: skip
    start = T0 + timedelta(seconds=offset)
    data = CallData(
        linkedid=linkedid,
        direction="inbound",
        status="answered",
        client_number=number,
        did="8 495 111-00-01",
        started_at=start,
        answered_at=start + timedelta(seconds=4.2),
        ended_at=start + timedelta(seconds=65.2),
        ring_seconds=4.2,
        talk_seconds=61.0,
        transferred=False,
        managers=("101",),
        recordings=(f"2026/11/23/{linkedid}-manager.wav", f"2026/11/23/{linkedid}-client.wav"),
        legs=(
            leg(f"{linkedid}-c", "client", None, offset, offset + 4.2, offset + 65.2, 61.0),
            leg(f"{linkedid}-m", "manager", "101", offset, offset + 4.2, offset + 65.2, 61.0),
        ),
        rang=("101",),
    )
    return dataclasses.replace(data, **changes)


@pytest.fixture
async def managers(db_session: AsyncSession) -> dict[str, User]:
    users = {
        "101": await add_user(db_session, "ivanov", "Ivan Ivanov", extension="101", team="B2B"),
        "102": await add_user(db_session, "petrov", "Petr Petrov", extension="102", team="B2B"),
    }
    await db_session.commit()
    return users


async def count(session: AsyncSession, model: type[Base], *where: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


# -- migrations ----------------------------------------------------------------------------


async def test_migrations_apply_from_empty_and_match_models(empty_db_url: str) -> None:
    await upgrade(empty_db_url)
    await upgrade(empty_db_url)  # a second run is a no-op
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    engine = create_engine(empty_db_url)
    try:
        async with engine.connect() as conn:

            def check(sync_conn: Any) -> tuple[set[str], str | None, list[Any]]:
                context = MigrationContext.configure(
                    sync_conn, opts={"compare_type": True, "include_object": include_object})
                tables = set(inspect(sync_conn).get_table_names())
                return (
                    tables,
                    context.get_current_revision(),
                    compare_metadata(context, Base.metadata),
                )

            tables, revision, diff = await conn.run_sync(check)
    finally:
        await engine.dispose()
    assert set(Base.metadata.tables) <= tables
    assert revision == head
    assert diff == [], f"models and migrations disagree: {diff}"


async def test_the_quick_up_to_date_check_never_skips_a_migration(empty_db_url: str) -> None:
    """Commands check the schema by reading the migration files, not by loading Alembic:
    that must name Alembic's own head, and a database one step behind is still upgraded."""
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    assert head_revision() == head
    previous = script.get_revision(head).down_revision
    assert isinstance(previous, str)
    await upgrade(empty_db_url, previous)
    await upgrade(empty_db_url)
    engine = create_engine(empty_db_url)
    try:
        async with engine.connect() as conn:
            revision = await conn.run_sync(
                lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision())
    finally:
        await engine.dispose()
    assert revision == head


def test_normalize_url() -> None:
    assert normalize_url("postgresql://u:p@h:5432/db") == "postgresql+asyncpg://u:p@h:5432/db"
    assert normalize_url("postgres://h/db") == "postgresql+asyncpg://h/db"
    assert normalize_url("sqlite:////tmp/x.db") == "sqlite+aiosqlite:////tmp/x.db"
    assert normalize_url("sqlite+aiosqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    with pytest.raises(ValueError, match="Unsupported database"):
        normalize_url("mysql://h/db")


# -- users ---------------------------------------------------------------------------------


async def test_add_user_validation(db_session: AsyncSession, managers: dict[str, User]) -> None:
    with pytest.raises(ValueError, match="Unknown role 'boss'"):
        await add_user(db_session, "x", role="boss")
    with pytest.raises(ValueError, match="Username 'ivanov' is already taken"):
        await add_user(db_session, "ivanov")
    with pytest.raises(ValueError, match="Extension 101 is already taken by user 'ivanov'"):
        await add_user(db_session, "sidorov", extension="101")
    with pytest.raises(ValueError, match="2 to 8 digits"):
        await add_user(db_session, "sidorov", extension="1")
    with pytest.raises(ValueError, match="2 to 8 digits"):
        await add_user(db_session, "sidorov", extension="123456789")
    user = await find_user_by_extension(db_session, "102")
    assert user is not None and user.username == "petrov" and user.team_id is not None
    assert await find_user_by_extension(db_session, "555") is None


# -- record_call ---------------------------------------------------------------------------


async def test_record_call_is_idempotent(
    db_session: AsyncSession, managers: dict[str, User]
) -> None:
    data = answered_call()
    first = await record_call(db_session, data, hooks=HOOKS)
    await db_session.commit()
    updated_at, call_id = first.updated_at, first.id

    again = await record_call(db_session, data, hooks=HOOKS)
    await db_session.commit()
    assert again.id == call_id
    assert again.updated_at == updated_at

    assert await count(db_session, Call) == 1
    assert await count(db_session, CallLeg) == 2
    assert await count(db_session, Client) == 1
    assert await count(db_session, Phone) == 1
    assert await count(db_session, AuditLog, AuditLog.entity == "client") == 1
    exported = await get_call(db_session, call_id)
    assert exported is not None
    assert exported["managers"] == ["101"]
    assert exported["recordings"] == list(data.recordings)


async def test_in_progress_then_ended_updates_the_same_call(
    db_session: AsyncSession, managers: dict[str, User]
) -> None:
    ringing = answered_call(
        status="in_progress",
        answered_at=None,
        ended_at=None,
        ring_seconds=0.0,
        talk_seconds=0.0,
        managers=(),
        recordings=(),
        legs=(
            leg("c", "client", None, 0, None, None),
            leg("m1", "manager", "101", 0.1, None, None),
        ),
        rang=("101", "102"),
    )
    call = await record_call(db_session, ringing, hooks=HOOKS)
    await db_session.commit()
    lead = await db_session.get(Client, call.client_id)
    assert lead is not None and lead.owner_id == managers["101"].id  # the first who rang

    ended = answered_call(
        managers=("102",),
        legs=(
            leg("c", "client", None, 0, 5.0, 70.0, 65.0),
            leg("m1", "manager", "101", 0.1, None, 5.0),
            leg("m2", "manager", "102", 0.1, 5.0, 70.0, 65.0),
        ),
        rang=("101", "102"),
    )
    updated = await record_call(db_session, ended, hooks=HOOKS)
    await db_session.commit()
    assert updated.id == call.id
    assert updated.status == "answered" and updated.talk_seconds == 61.0
    legs = {lg.uniqueid: lg for lg in updated.legs}
    assert set(legs) == {"c", "m1", "m2"}
    assert legs["c"].talk_seconds == 65.0 and legs["c"].ended_at is not None
    assert legs["m2"].user_id == managers["102"].id
    assert await count(db_session, CallLeg) == 3
    await db_session.refresh(lead)
    assert lead.owner_id == managers["102"].id  # the lead follows who talked
    assert await count(db_session, AuditLog, AuditLog.entity == "client",
                       AuditLog.entity_id == lead.id) == 2

    # A replay of the start never rewinds an ended call.
    stale = await record_call(db_session, ringing, hooks=HOOKS)
    await db_session.commit()
    assert stale.status == "answered"
    assert await count(db_session, CallLeg) == 3


async def test_unknown_number_becomes_one_lead(
    db_session: AsyncSession, managers: dict[str, User]
) -> None:
    first = await record_call(db_session, answered_call(managers=("102",), rang=("101", "102")),
                              hooks=HOOKS)
    second = await record_call(
        db_session, answered_call("1795406999.7", number="+7 916 1234567", offset=3600), hooks=HOOKS
    )
    await db_session.commit()
    assert first.client_id is not None and first.client_id == second.client_id
    client = await db_session.get(Client, first.client_id)
    assert client is not None
    assert (client.name, client.status, client.source) == ("+7 916 123-45-67", "potential", "call")
    assert client.owner_id == managers["102"].id
    assert await count(db_session, Client) == 1
    assert first.client_number == second.client_number == "+79161234567"
    assert first.did == "+74951110001"
    found = await find_client_by_phone(db_session, "8-916-123-45-67")
    assert found is not None and found.id == client.id


async def test_missed_call_lead_goes_to_first_who_rang(
    db_session: AsyncSession, managers: dict[str, User]
) -> None:
    missed = answered_call(
        status="missed",
        answered_at=None,
        talk_seconds=0.0,
        managers=(),
        recordings=(),
        legs=(leg("c", "client", None, 0, None, 20.0), leg("m", "manager", "102", 0, None, 20.0)),
        rang=("555", "102", "101"),  # 555 is nobody's phone
    )
    call = await record_call(db_session, missed, hooks=HOOKS)
    await db_session.commit()
    client = await db_session.get(Client, call.client_id)
    assert client is not None and client.owner_id == managers["102"].id


async def test_internal_call_has_no_client(
    db_session: AsyncSession, managers: dict[str, User]
) -> None:
    internal = answered_call(
        direction="internal",
        client_number="102",
        did=None,
        legs=(leg("a", "manager", "101", 0, 2, 30, 28), leg("b", "manager", "102", 0, 2, 30, 28)),
        managers=("101", "102"),
    )
    call = await record_call(db_session, internal, hooks=HOOKS)
    await db_session.commit()
    assert call.client_id is None and call.client_number is None
    assert await count(db_session, Client) == 0
    # Even an external-looking number on an internal call never makes a lead.
    await record_call(db_session, dataclasses.replace(internal, client_number="+79161234567"),
                      hooks=HOOKS)
    await db_session.commit()
    assert await count(db_session, Client) == 0


async def test_unknown_extension_is_still_recorded(
    db_session: AsyncSession, managers: dict[str, User]
) -> None:
    data = answered_call(
        managers=("777",),
        legs=(leg("c", "client", None, 0, 1, 10, 9), leg("m", "manager", "777", 0, 1, 10, 9)),
        rang=("777",),
    )
    call = await record_call(db_session, data, hooks=HOOKS)
    await db_session.commit()
    manager_leg = next(lg for lg in call.legs if lg.role == "manager")
    assert manager_leg.extension == "777" and manager_leg.user_id is None
    client = await db_session.get(Client, call.client_id)
    assert client is not None and client.owner_id is None


async def test_bad_call_data_is_rejected(db_session: AsyncSession) -> None:
    with pytest.raises(ValueError, match="Unknown direction"):
        await record_call(db_session, answered_call(direction="sideways"), hooks=HOOKS)
    with pytest.raises(ValueError, match="naive datetime"):
        await record_call(db_session, answered_call(started_at=datetime(2026, 1, 1)), hooks=HOOKS)
    assert await count(db_session, Call) == 0


async def test_unsafe_recording_paths_are_dropped_not_the_call(
    db_session: AsyncSession, caplog: pytest.LogCaptureFixture
) -> None:
    paths = ("../../etc/passwd", "/var/spool/asterisk/monitor/x.wav", "2026/11/23/ok.wav")
    call = await record_call(db_session, answered_call(recordings=paths), hooks=HOOKS)
    await db_session.commit()
    assert [r.path for r in call.recordings] == ["2026/11/23/ok.wav"]
    assert "ignoring recording path '../../etc/passwd'" in caplog.text


# -- export --------------------------------------------------------------------------------


async def test_export_shape_and_filters(
    db_session: AsyncSession, managers: dict[str, User]
) -> None:
    await record_call(db_session, answered_call("c.3", offset=7200), hooks=HOOKS)
    await record_call(db_session, answered_call("c.1", offset=0), hooks=HOOKS)
    await record_call(db_session, answered_call("c.2", number="+7 495 111-00-02", offset=3600),
                      hooks=HOOKS)
    live = answered_call("c.live", offset=9000, status="in_progress", ended_at=None)
    await record_call(db_session, live, hooks=HOOKS)
    await db_session.commit()

    rows = [row async for row in export_calls(db_session)]
    assert [r["linkedid"] for r in rows] == ["c.1", "c.2", "c.3"]
    first = rows[0]
    assert set(first) == CALL_KEYS | {"queue", "recording_legs", "attempts", "pbx"}  # + extensions
    assert first["pbx"] == "main"  # the default PBX: TELECRM_AMI_*
    assert first["direction"] == "inbound" and first["status"] == "answered"
    assert first["client_number"] == "+79161234567" and first["did"] == "+74951110001"
    assert first["client_name"] == "+7 916 123-45-67"
    assert first["managers"] == ["101"]
    assert first["started_at"] == "2026-11-23T10:00:00+00:00"
    assert first["answered_at"] == "2026-11-23T10:00:04.200000+00:00"
    assert first["ring_seconds"] == 4.2 and first["talk_seconds"] == 61.0
    assert first["transferred"] is False and first["tracking"] is None
    assert first["recordings"] == ["2026/11/23/c.1-manager.wav", "2026/11/23/c.1-client.wav"]

    window = [
        r["linkedid"]
        async for r in export_calls(
            db_session, since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=2)
        )
    ]
    assert window == ["c.2"]  # since inclusive, until exclusive
    with_live = [r["linkedid"] async for r in export_calls(db_session, include_in_progress=True)]
    assert with_live[-1] == "c.live"
    assert await get_call(db_session, 10_000) is None


async def test_export_pages_through_equal_start_times(
    db_session: AsyncSession, managers: dict[str, User]
) -> None:
    for i in range(5):
        await record_call(db_session, answered_call(f"p.{i}", offset=60 * (i // 2)), hooks=HOOKS)
    await db_session.commit()
    rows = [r["linkedid"] async for r in export_calls(db_session, batch_size=2)]
    assert sorted(rows) == [f"p.{i}" for i in range(5)] and len(rows) == 5


async def test_timezone_aware_round_trip(db_url: str) -> None:
    moscow = timezone(timedelta(hours=3))
    started = datetime(2026, 11, 23, 13, 0, 0, 123456, tzinfo=moscow)
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            call = await record_call(
                session, answered_call(started_at=started, answered_at=None, ended_at=None),
                hooks=HOOKS
            )
            await session.commit()
            call_id = call.id
        async with session_factory(engine)() as session:
            stored = await session.get(Call, call_id)
            assert stored is not None
            assert stored.started_at.tzinfo is not None
            assert stored.started_at.utcoffset() == timedelta(0)
            assert stored.started_at == started
            assert stored.created_at.tzinfo is not None
            exported = await get_call(session, call_id)
            assert exported is not None
            assert exported["started_at"] == "2026-11-23T10:00:00.123456+00:00"
    finally:
        await engine.dispose()


# -- concurrency ---------------------------------------------------------------------------


async def test_concurrent_writers_make_one_lead_and_no_duplicate_calls(db_url: str) -> None:
    """The live listener and a replay may write the same calls at once."""
    engine = create_engine(db_url)
    sessions = session_factory(engine, writer=True)
    try:
        async with sessions() as session, session.begin():
            await add_user(session, "ivanov", extension="101")

        async def write(data: CallData) -> None:
            async with sessions() as session, session.begin():
                await record_call(session, data, hooks=HOOKS)

        snapshots = [answered_call(f"x.{i}", number="+7 916 555-00-11", offset=i) for i in range(3)]
        await asyncio.gather(*(write(data) for data in snapshots * 2))

        async with sessions() as session:
            assert await count(session, Call) == 3
            assert await count(session, Client) == 1
            assert await count(session, CallLeg) == 6
            assert await count(session, AuditLog, AuditLog.action == "create",
                               AuditLog.entity == "client") == 1
            # and one «Заполните карточку» task, from the call that created the lead
            assert await count(session, AuditLog, AuditLog.action == "create",
                               AuditLog.entity == "task") == 1
    finally:
        await engine.dispose()


# -- call details (queue, hold, first talk) -------------------------------------------------


async def test_queue_hold_and_bridged_at_are_stored_idempotently(
    db_session: AsyncSession, managers: dict[str, User]
) -> None:
    base = answered_call()
    manager_leg = dataclasses.replace(
        base.legs[1], hold_seconds=12.5, bridged_at=T0 + timedelta(seconds=4.2)
    )
    data = dataclasses.replace(base, queue="sales", legs=(base.legs[0], manager_leg))
    call = await record_call(db_session, data, hooks=HOOKS)
    await db_session.commit()
    stamp = call.updated_at
    await record_call(db_session, data, hooks=HOOKS)  # the same snapshot again changes nothing
    await db_session.commit()
    db_session.expunge_all()
    stored = await db_session.scalar(select(Call).where(Call.linkedid == data.linkedid))
    assert stored is not None and stored.queue == "sales" and stored.updated_at == stamp
    legs = {leg.uniqueid: leg for leg in await db_session.scalars(select(CallLeg))}
    assert legs[manager_leg.uniqueid].hold_seconds == 12.5
    assert legs[manager_leg.uniqueid].bridged_at == T0 + timedelta(seconds=4.2)
    assert legs[base.legs[0].uniqueid].hold_seconds == 0.0
    assert legs[base.legs[0].uniqueid].bridged_at is None
    exported = await get_call(db_session, stored.id)
    assert exported is not None and exported["queue"] == "sales"


async def test_naive_bridged_at_is_rejected(db_session: AsyncSession) -> None:
    base = answered_call()
    bad = dataclasses.replace(base.legs[1], bridged_at=datetime(2026, 11, 23, 10, 0, 4))
    with pytest.raises(ValueError, match="naive"):
        await record_call(db_session, dataclasses.replace(base, legs=(base.legs[0], bad)),
                          hooks=HOOKS)


async def test_migration_0002_downgrades_and_upgrades_again(empty_db_url: str) -> None:
    from alembic import command

    await upgrade(empty_db_url)
    config = alembic_config(empty_db_url)
    engine = create_engine(empty_db_url)
    try:
        async with engine.connect() as conn:

            def down_and_up(sync_conn: Any) -> tuple[set[str], set[str]]:
                config.attributes["connection"] = sync_conn
                command.downgrade(config, "0001")
                after_down = {c["name"] for c in inspect(sync_conn).get_columns("calls")}
                command.upgrade(config, "head")
                return after_down, set(inspect(sync_conn).get_table_names())

            columns, tables = await conn.run_sync(down_and_up)
            await conn.commit()
    finally:
        await engine.dispose()
    assert "queue" not in columns
    assert "tasks" in tables


async def test_an_overlong_queue_name_is_cut_not_fatal(db_session: AsyncSession) -> None:
    call = await record_call(db_session, answered_call(queue="q" * 200), hooks=HOOKS)
    assert call.queue == "q" * 80
