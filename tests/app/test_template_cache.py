"""Compiled page templates kept between starts: the same pages, and never a failed page
because of the cache (a damaged file, a folder that cannot be written, switched off)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import aiohttp
import pytest

from telecrm.settings import Settings
from tests.support.browser import serve_app
from tests.support.db_fixtures import copy_migrated_sqlite


async def login_page(settings: Settings) -> tuple[int, str]:
    async with serve_app(settings) as (_, base), aiohttp.ClientSession() as http, \
            http.get(f"{base}/login") as response:
        # Each response has a fresh CSP nonce and CSRF token; the rest must be the same.
        page = re.sub(r'nonce="[^"]*"', 'nonce=""', await response.text())
        return response.status, re.sub(r'name="csrf_token" value="[^"]*"', "", page)


def settings_for(tmp_path: Path, cache: str) -> Settings:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    copy_migrated_sqlite(url)
    return Settings(data_dir=tmp_path, database_url=url, template_cache=cache)


async def test_a_second_start_serves_the_same_page_from_the_compiled_templates(
        tmp_path: Path) -> None:
    cache = tmp_path / "templates"
    cache.mkdir()
    settings = settings_for(tmp_path, str(cache))
    first = await login_page(settings)
    assert first[0] == 200 and "Вход" in first[1]
    kept = sorted(cache.iterdir())
    assert kept, "the first start keeps what it compiled"
    stamps = {path: path.stat().st_mtime_ns for path in kept}
    assert await login_page(settings) == first
    assert {path: path.stat().st_mtime_ns for path in kept} == stamps, "read, not rewritten"

    # Damaged files (a disk that filled up mid-write) are compiled afresh, not served.
    for path in kept:
        path.write_bytes(b"\x00garbage")
    assert await login_page(settings) == first


async def test_a_cache_that_cannot_be_written_or_is_off_still_serves_pages(
        tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the folder should be", encoding="utf-8")
    status, page = await login_page(settings_for(tmp_path, str(blocked)))
    assert status == 200 and "Вход" in page

    off = tmp_path / "off-run"
    off.mkdir()
    status, page = await login_page(settings_for(off, "off"))
    assert status == 200 and "Вход" in page
    assert not any(off.glob("**/*.cache"))


async def test_by_default_they_are_kept_in_the_users_cache_folder_not_a_temporary_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache_home, scratch = tmp_path / "cache-home", tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    status, _ = await login_page(settings_for(tmp_path, ""))
    assert status == 200
    assert any((cache_home / "telecrm" / "templates").iterdir())
    assert list(scratch.iterdir()) == [], "nothing left in the temporary folder"
