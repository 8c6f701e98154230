"""What needs a supervisor: failed recordings (API and CLI), and retention per team (CLI)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from crm_core.audit import AuditLog
from crm_core.db import create_engine, session_factory
from crm_core.recordings.models import AudioStatus
from recordings.config import RecordingsConfig
from recordings.store import DirectoryStore
from recordings.worker import FinalizeWorker
from telecrm.settings import Settings
from tests.recordings.test_recordings_e2e import login, seed_users
from tests.recordings.test_recordings_finalize import Env
from tests.recordings.test_recordings_support import side_file
from tests.support.browser import serve_app
from tests.support.live import telecrm as run_telecrm


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[Env, str]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    await seed_users(url)  # petrov 101 and smirnova 102, supervisor sokolova: one team
    engine = create_engine(url)
    sessions = session_factory(engine, writer=True)
    cfg = RecordingsConfig(store_dir=tmp_path / "store", settle_seconds=1.0, max_attempts=2,
                           retry_base_seconds=0.0)
    worker = FinalizeWorker(sessions, tmp_path / "monitor", DirectoryStore(cfg.store_dir), cfg)
    yield Env(sessions, tmp_path / "monitor", cfg.store_dir, cfg, worker, {}), url
    await engine.dispose()


def telecrm(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_telecrm("recordings", *args, check=False, env={"TELECRM_DATABASE_URL": url})


async def test_failed_recording_is_shown_to_the_teams_supervisor(env: tuple[Env, str],
                                                                 tmp_path: Path) -> None:
    crm, url = env
    call_id, paths = await crm.call()
    for path in paths:
        side_file(path, b"", at=0, total=3)  # silent: never a usable recording
    for _ in range(crm.cfg.max_attempts):
        await crm.worker.run_once()
    assert (await crm.audio(call_id)).status == AudioStatus.FAILED

    async with serve_app(Settings(data_dir=tmp_path, database_url=url,
                                  recordings_source=crm.monitor)) as (_, base):
        supervisor = await login(base, "sokolova")
        manager = await login(base, "petrov")
        try:
            async with supervisor.get(f"{base}/api/recordings/problems") as response:
                assert response.status == 200
                (problem,) = (await response.json())["problems"]
            assert problem["call_id"] == call_id and problem["page"] == f"/calls/{call_id}"
            assert "silent" in problem["error"] and problem["attempts"] == 2
            async with manager.get(f"{base}/api/recordings/problems") as response:
                assert response.status == 403
            async with supervisor.get(f"{base}/calls/{call_id}") as page:
                assert "Запись не удалось сохранить" in await page.text()
        finally:
            await supervisor.close()
            await manager.close()

    status = telecrm(url, "status")
    assert status.returncode == 1, status.stderr  # something needs a person
    report = json.loads(status.stdout)
    assert report["counts"] == {"failed": 1}
    assert [p["call_id"] for p in report["failed"]] == [call_id]
    assert all(p.exists() for p in paths), "the originals are kept for a retry"


async def test_retention_policy_per_team_from_the_cli(env: tuple[Env, str]) -> None:
    crm, url = env
    shown = telecrm(url, "policy")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == [{"team": "Отдел продаж", "days": 365,
                                         "own_policy": False}]
    changed = telecrm(url, "policy", "--team", "Отдел продаж", "--days", "90")
    assert changed.returncode == 0, changed.stderr
    assert json.loads(changed.stdout) == [{"team": "Отдел продаж", "days": 90,
                                           "own_policy": True}]
    async with crm.sessions() as session:  # type: ignore[operator]
        audit = list(await session.scalars(
            select(AuditLog).where(AuditLog.entity == "recording_retention")))
    assert [(a.actor, a.changes["days"]) for a in audit] == [("cli", [None, 90])]
    for args, message in ((("--team", "Нет такой", "--days", "5"),
                           "Отдела «Нет такой» нет (есть: Отдел продаж"),
                          (("--days", "5"), "Для --days укажите отдел: --team НАЗВАНИЕ."),
                          (("--team", "Отдел продаж", "--days", "0"),
                           "Срок хранения записей — не меньше одного дня.")):
        refused = telecrm(url, "policy", *args)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr


async def test_live_calls_page_and_api_are_for_supervisors(env: tuple[Env, str],
                                                           tmp_path: Path) -> None:
    _, url = env
    async with serve_app(Settings(data_dir=tmp_path, database_url=url)) as (_, base):
        supervisor = await login(base, "sokolova")
        manager = await login(base, "petrov")
        try:
            async with supervisor.get(f"{base}/api/calls/live") as response:
                assert response.status == 200
                assert await response.json() == {"calls": [], "phone": "201",
                                                  "telephony": False}
            async with supervisor.get(f"{base}/calls/live") as page:
                text = await page.text()
                assert page.status == 200 and "Разговоры команды сейчас" in text
                assert 'href="/calls/live"' in text  # in the navigation
            async with manager.get(f"{base}/api/calls/live") as response:
                assert response.status == 403 and "error" in await response.json()
            async with manager.get(f"{base}/calls/live") as page:
                assert page.status == 403
                assert 'href="/calls/live"' not in await page.text()
        finally:
            await supervisor.close()
            await manager.close()
