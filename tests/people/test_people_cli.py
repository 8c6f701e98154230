"""``telecrm users list|edit|deactivate|password`` as an administrator meets them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from crm_core.audit import AuditLog
from crm_core.db import create_engine, session_factory
from crm_core.people.models import User
from telecrm.web.auth import authenticate
from tests.support.live import telecrm


@pytest.fixture(scope="module")
def staff(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with three users, added by the CLI once; each test gets a copy."""
    path = tmp_path_factory.mktemp("people-cli") / "template.db"
    url = f"sqlite:///{path}"
    telecrm("users", "add", "petrov", "--name", "Иван Петров", "--extension", "101",
            "--team", "Отдел продаж", "--password", "petrov-password", "--db", url)
    telecrm("users", "add", "sokolova", "--name", "Мария Соколова", "--role", "supervisor",
            "--team", "Отдел продаж", "--password", "boss-password", "--db", url)
    telecrm("users", "add", "root", "--role", "admin", "--since", "2026-01-15", "--db", url)
    return path


@pytest.fixture
def db(staff: Path, tmp_path: Path) -> str:
    copy = tmp_path / "crm.db"
    shutil.copyfile(staff, copy)
    return f"sqlite:///{copy}"


def listed(db: str) -> dict[str, dict]:
    result = telecrm("users", "list", "--format", "json", "--db", db)
    return {row["username"]: row for row in json.loads(result.stdout)}


def refused(*args: str) -> str:
    """The one Russian sentence of a refusal (exit 2, no traceback)."""
    result = telecrm(*args, check=False)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


async def audit_of(db: str, username: str) -> list[tuple[str, str]]:
    engine = create_engine(db)
    try:
        async with session_factory(engine)() as session:
            user_id = await session.scalar(select(User.id).where(User.username == username))
            rows = await session.execute(select(AuditLog.actor, AuditLog.action).where(
                AuditLog.entity == "user", AuditLog.entity_id == user_id).order_by(AuditLog.id))
            return [(actor, action) for actor, action in rows]
    finally:
        await engine.dispose()


def test_users_list_as_json_and_as_a_table(db: str) -> None:
    rows = listed(db)
    assert rows["petrov"] == {
        "username": "petrov", "name": "Иван Петров", "role": "manager", "team": "Отдел продаж",
        "extension": "101", "devices": [], "mobiles": [], "active": True, "heads_team": False,
        "must_change_password": False,
        "created_at": rows["petrov"]["created_at"]}
    assert rows["root"]["created_at"] == "2026-01-14T21:00:00+00:00", \
        "--since is the start of that day where the floor works (Moscow)"
    table = telecrm("users", "list", "--db", db).stdout.splitlines()
    assert table[0].split() == ["Логин", "Имя", "Роль", "Отдел", "Внутр.", "Телефоны",
                                 "Состояние"]
    petrov = next(line for line in table if line.startswith("petrov"))
    assert "Иван Петров" in petrov and "менеджер" in petrov and "активен" in petrov


def test_users_edit(db: str) -> None:
    result = telecrm("users", "edit", "petrov", "--role", "supervisor", "--team", "Опт",
                     "--extension", "105", "--name", "Иван  Петров", "--db", db)
    assert result.stdout.splitlines() == [
        "petrov: роль: менеджер → руководитель",
        "petrov: внутренний номер: 101 → 105",
        "petrov: отдел: Отдел продаж → Опт",
        "petrov: руководит отделом: нет → да",
    ], "the same name written with two spaces is no change"
    row = listed(db)["petrov"]
    assert (row["role"], row["team"], row["extension"], row["heads_team"]) == (
        "supervisor", "Опт", "105", True)
    telecrm("users", "edit", "petrov", "--team", "", "--extension", "", "--db", db)
    assert (listed(db)["petrov"]["team"], listed(db)["petrov"]["extension"]) == (None, None)
    assert refused("users", "edit", "petrov", "--extension", "12a", "--db", db) == \
        "telecrm: Внутренний номер — от 2 до 8 цифр, а не «12a»."
    assert refused("users", "edit", "nobody", "--name", "X", "--db", db) == \
        "telecrm: Пользователя «nobody» нет."
    assert refused("users", "edit", "root", "--role", "manager", "--db", db).startswith(
        "telecrm: root — последний действующий администратор")
    assert "Нечего менять" in refused("users", "edit", "petrov", "--db", db)


async def test_users_deactivate(db: str) -> None:
    result = telecrm("users", "deactivate", "petrov", "--db", db)
    assert result.stdout.strip() == (
        "Пользователь petrov (Иван Петров) отключён: войти больше не может, завершено "
        "сеансов: 0. Звонки, клиенты и задачи сохранены.")
    assert listed(db)["petrov"]["active"] is False
    assert refused("users", "deactivate", "petrov", "--db", db) == \
        "telecrm: Пользователь Иван Петров уже отключён."
    engine = create_engine(db)
    try:
        assert await authenticate(session_factory(engine), "petrov", "petrov-password") is None
    finally:
        await engine.dispose()
    assert await audit_of(db, "petrov") == [("cli", "deactivate")]
    telecrm("users", "reactivate", "petrov", "--db", db)
    assert listed(db)["petrov"]["active"] is True


async def test_users_password_prints_a_temporary_password(db: str) -> None:
    result = telecrm("users", "password", "sokolova", "--db", db)
    (temporary,) = result.stdout.split()
    assert len(temporary) == 14
    assert "при следующем входе его нужно будет сменить" in result.stderr
    assert listed(db)["sokolova"]["must_change_password"] is True
    engine = create_engine(db)
    try:
        sessions = session_factory(engine)
        assert await authenticate(sessions, "sokolova", "boss-password") is None
        user = await authenticate(sessions, "sokolova", temporary)
        assert user is not None and user.must_change_password
    finally:
        await engine.dispose()
    assert await audit_of(db, "sokolova") == [("cli", "password")]
    assert refused("users", "password", "nobody", "--db", db) == \
        "telecrm: Пользователя «nobody» нет."
