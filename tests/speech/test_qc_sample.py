"""The weekly random sample over HTTP and in the service, on SQLite and PostgreSQL.

A week of calls (9-15 November 2026, the clock on Friday the 20th): Иван Петров (101)
has five answered recorded calls, a missed one with a recording and an answered one
without; Ольга Смирнова (102) one answered recorded call; Алексей Кузнецов (103,
another team) three. Мария Соколова sets N for her team and draws.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from crm_core.calls.services import record_call
from crm_core.db import create_engine, session_factory
from crm_core.people.models import User
from crm_core.speech import sampling
from tests.speech.test_speech_web import call, qc_floor
from tests.support.browser import HOOKS, _call, fake_wav, seed_world
from tests.support.db_fixtures import db_url_fixture  # noqa: F401
from tests.support.live import telecrm

pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")
MSK = ZoneInfo("Europe/Moscow")
WEEK = datetime(2026, 11, 10, 10, 0, tzinfo=MSK)  # Tuesday of the week drawn


async def seed_week(db: str, root: Path) -> dict[str, list[int]]:
    """The week's calls by kind: ``eligible_101``, ``eligible_102``, ``other``."""
    specs: list[tuple[str, str, str, bool]] = (
        [("101", "answered", "eligible_101", True)] * 5
        + [("101", "missed", "other", True), ("101", "answered", "other", False)]
        + [("102", "answered", "eligible_102", True)] + [("103", "answered", "team_b", True)] * 3)
    out: dict[str, list[int]] = {}
    engine = create_engine(db)
    try:
        sessions = session_factory(engine, writer=True)
        for n, (ext, status, kind, recorded) in enumerate(specs):
            linkedid = f"1798000{n:03d}.1"
            files = (f"2026/11/10/{linkedid}.wav",) if recorded else ()
            for f in files:
                (root / f).parent.mkdir(parents=True, exist_ok=True)
                (root / f).write_bytes(fake_wav(seconds=1))
            data = _call(linkedid, "outbound", status, "+7 916 123-45-67", ext,
                         WEEK + timedelta(hours=n), 30.0, files)
            async with sessions() as session, session.begin():
                out.setdefault(kind, []).append((await record_call(session, data,
                                                                   hooks=HOOKS)).id)
    finally:
        await engine.dispose()
    return out


async def test_the_weekly_sample_is_random_reproducible_and_never_repeats(
        db_url: str, tmp_path: Path) -> None:
    await seed_world(db_url, tmp_path / "monitor")
    calls = await seed_week(db_url, tmp_path / "monitor")

    # -- the same week drawn twice on the same calls picks the same calls
    engine = create_engine(db_url)
    try:
        picks = []
        for _ in range(2):
            async with session_factory(engine, writer=True)() as session:
                admin = await session.scalar(select(User).where(User.username == "admin"))
                assert admin is not None
                teams = set(await session.scalars(
                    select(User.team_id).where(User.extension.in_(["101", "103"]))))
                for team_id in teams:
                    assert team_id is not None
                    await sampling.set_per_manager(session, admin, team_id, 2)
                drawn = await sampling.draw(session, admin, date(2026, 11, 12), MSK)
                picks.append(sorted((s.manager, s.call_id) for s in drawn))
                await session.rollback()
    finally:
        await engine.dispose()
    assert picks[0] == picks[1]
    assert [m for m, _ in picks[0]] == ["101", "101", "102", "103", "103"]

    async with qc_floor(db_url, tmp_path) as (base, as_user):
        boss, petrov = await as_user("sokolova"), await as_user("petrov")
        other, marketer = await as_user("kuznetsov"), await as_user("marketer")
        conf = f"{base}/api/qc/sample/settings"

        # -- N is set per team, by its supervisor (or an admin) only
        status, body = await call(petrov, "POST", conf, {"team": "Отдел продаж",
                                                         "per_manager": 2})
        assert status == 403
        assert body["error"] == "Выборку настраивают руководители и администраторы."
        status, body = await call(boss, "POST", conf, {"team": "Второй отдел",
                                                       "per_manager": 2})
        assert status == 403
        status, body = await call(boss, "POST", conf, {"team": "Отдел продаж",
                                                       "per_manager": 99})
        assert status == 400 and body["error"] == "Звонков на менеджера — от 0 до 50."
        status, rows = await call(boss, "POST", conf, {"team": "Отдел продаж",
                                                       "per_manager": 2})
        assert rows == [{"team_id": rows[0]["team_id"], "team": "Отдел продаж",
                         "per_manager": 2}]

        # -- the draw: N of each manager's answered recorded calls, his team only
        status, drawn = await call(boss, "POST", f"{base}/api/qc/sample",
                                   {"week": "2026-11-12"})
        assert status == 201 and drawn["week"] == "2026-11-09"
        first = {(c["manager"], c["call_id"]) for c in drawn["added"]}
        assert sorted(first) == [p for p in picks[0] if p[0] != "103"]  # as seeded
        assert {c for m, c in first if m == "101"} <= set(calls["eligible_101"])
        assert {c for m, c in first if m == "102"} == set(calls["eligible_102"])
        status, again = await call(boss, "POST", f"{base}/api/qc/sample",
                                   {"week": "2026-11-09"})
        assert again["added"] == []  # full already: nothing drawn twice

        # -- a larger N tops up with calls never drawn before
        await call(boss, "POST", conf, {"team": "Отдел продаж", "per_manager": 4})
        status, more = await call(boss, "POST", f"{base}/api/qc/sample",
                                  {"week": "2026-11-09"})
        added = {c["call_id"] for c in more["added"]}
        assert len(added) == 2 and not added & {c for _, c in first}
        assert added <= set(calls["eligible_101"])

        # -- who sees the week's sample
        status, week = await call(boss, "GET", f"{base}/api/qc/sample?week=2026-11-09")
        assert [c["manager"] for c in week["calls"]] == ["101"] * 4 + ["102"]
        assert all(c["scores"] == 0 for c in week["calls"])
        status, mine = await call(petrov, "GET", f"{base}/api/qc/sample?week=2026-11-09")
        assert {c["manager"] for c in mine["calls"]} == {"101"} and not mine["settings"]
        assert (await call(other, "GET", f"{base}/api/qc/sample?week=2026-11-09")
                )[1]["calls"] == []
        assert (await call(marketer, "GET", f"{base}/api/qc/sample"))[0] == 403
        async with boss.get(f"{base}/qc?week=2026-11-09") as response:
            page = await response.text()
        assert "Случайная выборка недели" in page and "с 09.11.2026 по 15.11.2026" in page
        assert page.count("ждёт оценки") == 5


async def test_the_command_draws_every_team_and_only_tops_up(db_url: str, tmp_path: Path
                                                             ) -> None:
    """``telecrm qc sample`` (a Monday timer): last week by default, every team's N."""
    await seed_world(db_url, tmp_path / "monitor")
    calls = await seed_week(db_url, tmp_path / "monitor")
    engine = create_engine(db_url)
    try:
        async with session_factory(engine, writer=True)() as session:
            admin = await session.scalar(select(User).where(User.username == "admin"))
            assert admin is not None
            for ext in ("101", "103"):
                team_id = await session.scalar(select(User.team_id)
                                               .where(User.extension == ext))
                assert team_id is not None
                await sampling.set_per_manager(session, admin, team_id, 1)
            await session.commit()
    finally:
        await engine.dispose()
    first = telecrm("qc", "sample", "--db", db_url)  # the clock's last week: 9-15 November
    drawn = [json.loads(line) for line in first.stdout.splitlines()]
    assert [(d["week"], d["manager"]) for d in drawn] == [
        ("2026-11-09", "101"), ("2026-11-09", "102"), ("2026-11-09", "103")]
    assert {d["call_id"] for d in drawn} <= {*calls["eligible_101"], *calls["eligible_102"],
                                            *calls["team_b"]}
    assert first.stderr.strip() == "В выборку недели с 09.11.2026 отобрано 3 звонка."
    again = telecrm("qc", "sample", "--week", "2026-11-15", "--db", db_url)
    assert again.stdout == ""
    assert again.stderr.strip() == "В выборку недели с 09.11.2026 отобрано 0 звонков."
    bad = telecrm("qc", "sample", "--week", "15.11.2026", "--db", db_url, check=False)
    assert bad.returncode != 0 and "не дата" in bad.stderr
