"""Migration 0015_people on a database with people in it (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from crm_core.db import create_engine, upgrade
from tests.support.db_fixtures import empty_db_url_fixture  # noqa: F401

CREATED = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)


def _naive(moment: datetime, dialect: str) -> datetime:
    return moment.replace(tzinfo=None) if dialect == "sqlite" else moment


async def test_existing_people_get_sensible_values(empty_db_url: str) -> None:
    await upgrade(empty_db_url, "0013")
    engine = create_engine(empty_db_url)
    try:
        async with engine.begin() as conn:
            dialect = conn.dialect.name
            at = _naive(CREATED, dialect)

            async def add(sql: str, **params: Any) -> None:
                await conn.execute(text(sql), params)

            await add("INSERT INTO teams (id, name, created_at) VALUES (1, 'Продажи', :at), "
                      "(2, 'Опт', :at)", at=at)
            users = [(1, "boss", "supervisor", 1, True), (2, "ivan", "manager", 1, True),
                     (3, "gone", "manager", 1, False), (4, "opt1", "supervisor", 2, True),
                     (5, "opt2", "supervisor", 2, True)]
            for uid, name, role, team, active in users:
                await add("INSERT INTO users (id, username, name, role, team_id, active, "
                          "created_at) VALUES (:id, :u, :u, :role, :team, :active, :at)",
                          id=uid, u=name, role=role, team=team, active=active, at=at)
            # Ivan's calls were backfilled from AMI captures of October, before his account
            await add("INSERT INTO calls (id, linkedid, direction, status, started_at, "
                      "ring_seconds, talk_seconds, transferred, managers, created_at, "
                      "updated_at) VALUES "
                      "(1, 'x.1', 'outbound', 'answered', :s, 0, 60, :no, '[]', :at, :at), "
                      "(2, 'x.2', 'outbound', 'answered', :last, 0, 60, :no, '[]', :at, :at)",
                      s=_naive(datetime(2026, 10, 5, 7, 0, tzinfo=UTC), dialect),
                      last=_naive(datetime(2026, 11, 12, 8, 0, tzinfo=UTC), dialect),
                      no=False, at=at)
            for leg, (call, user) in enumerate([(1, 2), (2, 3)], start=1):
                await add("INSERT INTO call_legs (call_id, uniqueid, channel, role, user_id, "
                          "started_at, talk_seconds, seq) VALUES (:c, :u, 'PJSIP/x', "
                          "'manager', :user, (SELECT started_at FROM calls WHERE id = :c), "
                          "60, :seq)", c=call, u=f"leg{leg}", user=user, seq=leg)
        await upgrade(empty_db_url)
        async with engine.connect() as conn:
            rows = {name: (created, head, must) for name, created, head, must in (
                await conn.execute(text(
                    "SELECT username, created_at, heads_team, must_change_password "
                    "FROM users")))}
            periods = (await conn.execute(text(
                "SELECT user_id, deactivated_at, reactivated_at, deactivated_by "
                "FROM user_deactivations"))).all()
    finally:
        await engine.dispose()

    def aware(value: Any) -> datetime:
        value = datetime.fromisoformat(value) if isinstance(value, str) else value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value

    assert aware(rows["ivan"][0]) == datetime(2026, 10, 5, 7, 0, tzinfo=UTC), \
        "moved back to his first backfilled call"
    assert aware(rows["boss"][0]) == CREATED, "no trace before his creation: unchanged"
    assert {name for name, (_, head, _) in rows.items() if head} == {"boss"}, \
        "the only supervisor of Продажи heads it; Опт has two, nobody is picked"
    assert not any(must for _, _, must in rows.values())
    ((user_id, since, until, by),) = periods
    assert (user_id, until, by) == (3, None, "migration")
    assert aware(since) == datetime(2026, 11, 12, 8, 0, tzinfo=UTC), \
        "switched off after his last call"


async def test_extensions_widen_without_touching_what_refers_to_users(
        empty_db_url: str) -> None:
    """0018_parties: 2 to 8 digits fit; the users table is not rebuilt (no ON DELETE fired)."""
    await upgrade(empty_db_url, "0015_people")
    engine = create_engine(empty_db_url)
    try:
        async with engine.begin() as conn:
            at = _naive(CREATED, conn.dialect.name)
            await conn.execute(text(
                "INSERT INTO users (id, username, name, role, extension, active, created_at) "
                "VALUES (1, 'ivan', 'Иван', 'manager', '101', :yes, :at)"), {"yes": True, "at": at})
            await conn.execute(text(
                "INSERT INTO user_deactivations (user_id, deactivated_at, deactivated_by) "
                "VALUES (1, :at, 'admin')"), {"at": at})
        await upgrade(empty_db_url)
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE users SET extension = '20104567' WHERE id = 1"))
            assert (await conn.execute(text(
                "SELECT count(*) FROM user_deactivations"))).scalar() == 1
        for wrong in ("1", "123456789"):
            with pytest.raises(DBAPIError):  # the CHECK (SQLite), the column (PostgreSQL)
                async with engine.begin() as conn:
                    await conn.execute(text("UPDATE users SET extension = :e WHERE id = 1"),
                                       {"e": wrong})
    finally:
        await engine.dispose()
