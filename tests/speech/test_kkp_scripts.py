"""Stored KKP script versions: the version in force at a call's start, stage -> team ->
company; uploads validated with the line at fault (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import Call
from crm_core.people.models import Team, User
from crm_core.speech import scripts as kkp_scripts
from speech.script import KkpError, parse_script_text
from tests.support.db_fixtures import (  # noqa: F401
    db_session_fixture,
    db_url_fixture,
)
from tests.support.live import telecrm

# Dates below are in November 2026: the tests run on a Friday of that month.
pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
TEXT = "name: {name}\nstages:\n  - id: greeting\n    phrases: [\"добрый день\"]\n"


async def add(session: AsyncSession, name: str, *, team: int | None = None,
              stage: str | None = None, at: datetime = T0) -> int:
    row = await kkp_scripts.add_version(session, name=name, text=TEXT.format(name=name),
                                        team_id=team, stage=stage, effective_from=at,
                                        fine_amount=0, actor="test")
    await session.commit()
    return row.id


async def test_version_in_force_by_stage_team_company_and_time(
        db_session: AsyncSession) -> None:
    sales, other = Team(name="Продажи"), Team(name="Другие")
    db_session.add_all([sales, other])
    await db_session.flush()
    company = await add(db_session, "company")
    team_v1 = await add(db_session, "sales-1", team=sales.id)
    team_v2 = await add(db_session, "sales-2", team=sales.id, at=T0 + timedelta(days=10))
    staged = await add(db_session, "stage", team=sales.id, stage="negotiation")

    async def in_force(at: datetime, team: int | None, stage: str | None = None) -> int | None:
        row = await kkp_scripts.version_in_force(db_session, at, team_id=team, stage=stage)
        return row.id if row else None

    assert await in_force(T0 - timedelta(seconds=1), sales.id) is None  # before any
    assert await in_force(T0 + timedelta(days=1), sales.id) == team_v1
    assert await in_force(T0 + timedelta(days=10), sales.id) == team_v2  # from its moment on
    assert await in_force(T0 + timedelta(days=1), sales.id, "negotiation") == staged
    assert await in_force(T0 + timedelta(days=1), sales.id, "first_call") == team_v1
    assert await in_force(T0 + timedelta(days=1), other.id) == company
    assert await in_force(T0 + timedelta(days=1), None) == company

    # a call: its first manager's team, at its start
    db_session.add(User(username="m", name="M", role="manager", extension="101",
                        team_id=sales.id))
    call = Call(linkedid="9.1", direction="inbound", status="answered",
                started_at=T0 + timedelta(days=2), managers=["101"])
    stranger = Call(linkedid="9.2", direction="inbound", status="answered",
                    started_at=T0 + timedelta(days=20), managers=["999"])
    db_session.add_all([call, stranger])
    await db_session.commit()
    assert (await kkp_scripts.script_for_call(db_session, call.id)).id == team_v1
    assert (await kkp_scripts.script_for_call(db_session, stranger.id)).id == company


@pytest.mark.parametrize(("text", "error"), [
    ("name: x\nstages:\n  - id: a\n    phrases: [a]\n    colour: red\n",
     "line 5: unknown key 'colour' in stage a"),
    ("name: x\nstage:\n  - id: a\n", "the script must be a mapping with a 'stages' list"),
    ("name: x\nstages:\n  - id: a\n    phrases: [a\n", "line 5: not valid YAML"),
    ("stages:\n  - id: a\n    phrases: []\n", "line 3: stage a: 'phrases' must be"),
    ("stages:\n  - id: a\n    phrases: [a]\n  - id: a\n    phrases: [b]\n",
     "line 4: stage id 'a' is used twice"),
    ("stages:\n  - id: a\n    phrases: [a]\n    within_seconds: soon\n",
     "line 4: stage a: within_seconds must be a non-negative number"),
    ("stages:\n  - id: a\n    phrases: [a]\nforbidden:\n  - id: f\n    words: [x]\n",
     "line 6: unknown key 'words' in forbidden f"),
])
def test_validation_names_the_line(text: str, error: str) -> None:
    with pytest.raises(KkpError) as caught:
        parse_script_text(text)
    assert str(caught.value).startswith(error), caught.value


def test_cli_add_and_list(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'crm.db'}"
    telecrm("users", "add", "boss", "--role", "supervisor", "--team", "Продажи", "--db", db)
    good, bad = tmp_path / "s.yaml", tmp_path / "bad.yaml"
    good.write_text(TEXT.format(name="Холодный звонок"), "utf-8")
    bad.write_text("stages:\n  - id: a\n    phrases: [a]\n    colour: red\n", "utf-8")

    failed = telecrm("kkp", "scripts", "add", "--team", "Продажи", str(bad), "--db", db,
                     check=False)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert f"telecrm: {bad}: строка 4: неизвестный ключ «colour»" in failed.stderr
    missing = telecrm("kkp", "scripts", "add", "--team", "Нет такой", str(good), "--db", db,
                      check=False)
    assert missing.returncode == 2 and missing.stderr == "telecrm: Отдела «Нет такой» нет.\n"

    telecrm("kkp", "scripts", "add", str(good), "--db", db)  # the company default
    telecrm("kkp", "scripts", "add", "--team", "Продажи", "--stage", "negotiation",
            "--from", "2026-12-01", "--fine", "300", str(good), "--db", db)
    import json
    rows = [json.loads(line) for line in
            telecrm("kkp", "scripts", "list", "--db", db).stdout.splitlines()]
    assert [(r["team"], r["stage"], r["fine_amount"]) for r in rows] == [
        ("Продажи", "negotiation", 300), (None, None, 0)]
    assert rows[0]["effective_from"] == "2026-11-30T21:00:00+00:00"  # midnight in Moscow
    assert rows[0]["version"] == rows[1]["version"]  # the same text, the same digest
