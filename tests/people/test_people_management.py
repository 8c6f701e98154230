"""People management rules, on SQLite and PostgreSQL: what an admin may change, what is
kept, what is audited, and how switching a user off or resetting his password ends his
sessions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.audit import AuditLog
from crm_core.calls.models import CallLeg
from crm_core.clients.models import Client
from crm_core.clients.services import create_client
from crm_core.db import create_engine, session_factory
from crm_core.errors import ConflictError, DomainError, NotAllowedError, NotFoundError
from crm_core.people.management import (
    KEEP,
    UserChange,
    change_own_password,
    create_team,
    create_user,
    deactivate_user,
    deactivation_periods,
    edit_user,
    find_user,
    get_team,
    reactivate_user,
    rename_team,
    reset_password,
    set_team_head,
    team_heads,
)
from crm_core.people.models import Team, User, WebSession
from crm_core.people.sessions import create_session, resolve_session
from crm_core.people.users import add_user
from crm_core.tasks.models import Task
from crm_core.tasks.services import create_task
from telecrm.messages import russian
from telecrm.passwords import temporary_password, verify_password
from telecrm.web.auth import authenticate
from tests.support.browser import seeded_password_hash
from tests.support.db_fixtures import db_url_fixture  # noqa: F401

HOUR = timedelta(hours=1)


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(db_url)
    factory = session_factory(engine, writer=True)
    async with factory() as session, session.begin():
        await add_user(session, "root", name="Администратор", role="admin")
        await add_user(session, "sokolova", name="Мария Соколова", role="supervisor",
                       extension="201", team="Отдел продаж")
        await add_user(session, "petrov", name="Иван Петров", extension="101",
                       team="Отдел продаж", password_hash=seeded_password_hash("old-password"))
        await add_user(session, "smirnova", name="Ольга Смирнова", extension="102",
                       team="Отдел продаж")
    try:
        yield factory
    finally:
        await engine.dispose()


async def audit_rows(session: AsyncSession, entity: str, entity_id: int) -> list[AuditLog]:
    return list(await session.scalars(select(AuditLog).where(
        AuditLog.entity == entity, AuditLog.entity_id == entity_id).order_by(AuditLog.id)))


async def test_only_admins_manage_people(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        boss = await find_user(session, "sokolova")
        petrov = await find_user(session, "petrov")
        team = petrov.team
        assert team is not None
        for attempt in (
            create_user(session, boss, username="x", name="X", role="manager", team_id=None,
                        extension=None, password_hash=None),
            edit_user(session, boss, petrov, UserChange(name="Другой")),
            deactivate_user(session, petrov, petrov),
            reset_password(session, boss, petrov, seeded_password_hash("new-password")),
            create_team(session, boss, "Опт"),
            rename_team(session, petrov, team, "Опт"),
            set_team_head(session, boss, team, boss),
        ):
            with pytest.raises(NotAllowedError) as refused:
                await attempt
            assert refused.value.code == "people.admin_only"
    assert russian(refused.value) == "Пользователями и отделами управляет администратор."


async def test_create_and_edit_are_audited(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        root = await find_user(session, "root")
        wholesale = await create_team(session, root, "Опт")
        user = await create_user(session, root, username="kozlov", name="  Пётр   Козлов ",
                                 role="manager", team_id=wholesale.id, extension="104",
                                 password_hash=seeded_password_hash("first-password"),
                                 must_change_password=True)
        changes = await edit_user(session, root, user, UserChange(
            name="Пётр Козлов", role="supervisor", team_id=None, extension=None))
    assert user.name == "Пётр Козлов" and user.must_change_password
    assert changes == {"role": ["manager", "supervisor"], "team": ["Опт", None],
                       "extension": ["104", None]}, "the unchanged name is not a change"
    async with sessions() as session:
        rows = await audit_rows(session, "user", user.id)
        team_rows = await audit_rows(session, "team", wholesale.id)
    assert [(r.action, r.actor, r.user_id) for r in rows] == [("create", "root", rows[0].user_id),
                                                              ("update", "root", rows[0].user_id)]
    assert rows[0].changes["team"] == "Опт" and "argon2" not in str(rows[0].changes)
    assert rows[1].changes == changes
    assert [(r.action, r.changes) for r in team_rows] == [("create", {"name": "Опт"})]


async def test_bad_input_is_refused_with_a_russian_sentence(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    cases = [
        (dict(username="petrov"), "people.username_taken", "Логин «petrov» уже занят."),
        (dict(username="два слова"), "people.username_invalid",
         "Логин — от 1 до 100 символов без пробелов."),
        (dict(extension="12a"), "people.extension_invalid",
         "Внутренний номер — от 2 до 8 цифр, а не «12a»."),
        (dict(extension="101"), "people.extension_taken",
         "Внутренний номер 101 уже занят: он у пользователя Иван Петров."),
        (dict(role="boss"), "people.role_unknown", "Неизвестная роль «boss»: выберите "
         "менеджера, руководителя, маркетолога или администратора."),
        (dict(name="   "), "people.name_empty", "Укажите имя."),
        (dict(team_id=999_999), "people.team_not_found", "Такого отдела нет."),
    ]
    for override, code, sentence in cases:
        fields = dict(username="new", name="Новый", role="manager", team_id=None,
                      extension=None, password_hash=None) | override
        async with sessions() as session, session.begin():
            root = await find_user(session, "root")
            with pytest.raises(DomainError) as refused:
                await create_user(session, root, **fields)  # type: ignore[arg-type]
        assert refused.value.code == code
        assert russian(refused.value) == sentence
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 4


async def test_team_heads_follow_role_team_and_state(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        root, boss = await find_user(session, "root"), await find_user(session, "sokolova")
        petrov = await find_user(session, "petrov")
        sales = await get_team(session, petrov.team_id)  # type: ignore[arg-type]
        wholesale = await create_team(session, root, "Опт")
        assert not boss.heads_team, "users added before heads existed head nothing"
        assert await set_team_head(session, root, sales, boss)
        assert not await set_team_head(session, root, sales, boss), "no change, no audit"
        with pytest.raises(DomainError) as refused:
            await set_team_head(session, root, wholesale, petrov)
        assert refused.value.code == "people.head_not_supervisor"
        # a second supervisor created in a team without a head becomes its head
        second = await create_user(session, root, username="ivanova", name="Анна Иванова",
                                   role="supervisor", team_id=wholesale.id, extension=None,
                                   password_hash=None)
        assert second.heads_team
        # heading another team moves him there; his old team is left without a head
        assert await set_team_head(session, root, wholesale, boss)
        assert boss.team_id == wholesale.id and boss.heads_team and not second.heads_team
        assert await team_heads(session) == {wholesale.id: boss}
        # a head who becomes a manager heads nothing
        await edit_user(session, root, boss, UserChange(role="manager"))
        assert not boss.heads_team
        assert await team_heads(session) == {}
        await rename_team(session, root, wholesale, "Оптовый отдел")
        with pytest.raises(ConflictError):
            await rename_team(session, root, wholesale, "Отдел продаж")
    async with sessions() as session:
        rows = await audit_rows(session, "team", wholesale.id)
    heads = [r.changes["head"] for r in rows if "head" in r.changes]
    assert heads == [["Анна Иванова", "Мария Соколова"]]
    assert rows[-1].changes == {"name": ["Опт", "Оптовый отдел"]}


async def test_deactivation_refuses_sign_in_ends_sessions_and_keeps_history(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        petrov = await find_user(session, "petrov")
        client = await create_client(session, "ООО Ромашка", phones=["+79161234567"],
                                     owner_id=petrov.id, actor="test")
        task = await create_task(session, kind="call", title="Позвонить", client_id=client.id,
                                 assignee_id=petrov.id, actor="test")
        phone = await create_session(session, petrov, timedelta(hours=12))
        laptop = await create_session(session, petrov, timedelta(hours=12))
    assert await authenticate(sessions, "petrov", "old-password") is not None
    async with sessions() as session, session.begin():
        root = await find_user(session, "root")
        petrov = await find_user(session, "petrov")
        ended = await deactivate_user(session, root, petrov)
        with pytest.raises(ConflictError) as again:
            await deactivate_user(session, root, petrov)
    assert ended == 2 and again.value.code == "people.already_inactive"
    assert await authenticate(sessions, "petrov", "old-password") is None
    async with sessions() as session:
        assert await resolve_session(session, phone.token) is None
        assert await resolve_session(session, laptop.token) is None
        assert await session.scalar(select(func.count()).select_from(WebSession)) == 0
        kept_client = await session.get(Client, client.id)
        kept_task = await session.get(Task, task.id)
        periods = await deactivation_periods(session, [petrov.id])
        (row,) = [r for r in await audit_rows(session, "user", petrov.id)
                  if r.action == "deactivate"]
    assert kept_client is not None and kept_client.owner_id == petrov.id, \
        "his clients stay his until reassigned"
    assert kept_task is not None and kept_task.assignee_id == petrov.id
    assert row.changes == {"active": [True, False], "sessions_ended": 2}
    ((since, until),) = periods[petrov.id]
    assert until is None
    # switched on again: he signs in, and the time he was off stays on record
    async with sessions() as session, session.begin():
        await reactivate_user(session, await find_user(session, "root"),
                              await find_user(session, "petrov"))
    assert await authenticate(sessions, "petrov", "old-password") is not None
    async with sessions() as session:
        ((since_after, until_after),) = (await deactivation_periods(session, [petrov.id]))[
            petrov.id]
    assert since_after == since and until_after is not None and until_after >= since


async def test_an_admin_cannot_lock_everyone_out(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        root = await find_user(session, "root")
        with pytest.raises(NotAllowedError) as self_off:
            await deactivate_user(session, root, root)
        with pytest.raises(ConflictError) as demoted:
            await edit_user(session, None, root, UserChange(role="manager"))
        with pytest.raises(ConflictError) as from_cli:
            await deactivate_user(session, None, root)
        second = await add_user(session, "root2", role="admin")
        await deactivate_user(session, second, root)  # another admin remains
    assert (self_off.value.code, demoted.value.code, from_cli.value.code) == (
        "people.deactivate_self", "people.last_admin", "people.last_admin")


async def test_password_reset_forces_a_change_and_ends_sessions(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    temporary = temporary_password()
    assert len(temporary) == 14 and temporary.count("-") == 2
    assert temporary != temporary_password()
    async with sessions() as session, session.begin():
        petrov = await find_user(session, "petrov")
        old = await create_session(session, petrov, timedelta(hours=12))
        ended = await reset_password(session, await find_user(session, "root"), petrov,
                                     seeded_password_hash(temporary))
    assert ended == 1
    assert await authenticate(sessions, "petrov", "old-password") is None
    user = await authenticate(sessions, "petrov", temporary)
    assert user is not None and user.must_change_password
    async with sessions() as session, session.begin():
        assert await resolve_session(session, old.token) is None
        petrov = await find_user(session, "petrov")
        mine = await create_session(session, petrov, timedelta(hours=12))
        other = await create_session(session, petrov, timedelta(hours=12))
        mine_row = await resolve_session(session, mine.token)
        assert mine_row is not None
        assert await change_own_password(session, petrov,
                                         seeded_password_hash("my-own-password"),
                                         mine_row.id) == 1
    async with sessions() as session:
        petrov = await find_user(session, "petrov")
        assert not petrov.must_change_password
        assert verify_password(petrov.password_hash, "my-own-password")
        assert await resolve_session(session, mine.token) is not None, "his own stays"
        assert await resolve_session(session, other.token) is None
        actions = [(r.actor, r.action) for r in await audit_rows(session, "user", petrov.id)]
    assert actions == [("root", "password"), ("petrov", "password")]


async def test_unknown_people_and_extensions_of_the_switched_off(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        with pytest.raises(NotFoundError) as missing:
            await find_user(session, "nobody")
        root = await find_user(session, "root")
        petrov = await find_user(session, "petrov")
        await deactivate_user(session, root, petrov)
        # his phone is still his: a newcomer gets it once it is taken from him
        with pytest.raises(ConflictError):
            await create_user(session, root, username="new", name="Новый", role="manager",
                              team_id=None, extension="101", password_hash=None)
        await edit_user(session, root, petrov, UserChange(extension=None, team_id=KEEP))
        newcomer = await create_user(session, root, username="new", name="Новый",
                                     role="manager", team_id=None, extension="101",
                                     password_hash=None)
        with pytest.raises(ConflictError) as taken:
            await edit_user(session, root, petrov, UserChange(extension="101"))
    assert missing.value.code == "people.user_not_found"
    assert russian(missing.value) == "Пользователя «nobody» нет."
    assert newcomer.extension == "101" and taken.value.code == "people.extension_taken"
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(CallLeg)) == 0
        assert await session.scalar(select(func.count()).select_from(Team)) == 1
