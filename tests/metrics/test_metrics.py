"""Issue 18.4: ``/metrics`` for the scraper and admins only, its figures, and JSON logs.

The figures are read back with prometheus_client's own text parser, as Prometheus would.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from crm_core.db import create_engine, session_factory
from crm_core.recordings.models import AudioStatus, CallAudio
from speech.jobs import InProcessQueue, RedisStreamQueue
from telecrm.logs import JsonFormatter
from telecrm.metrics import METRICS, registry
from telecrm.settings import Settings
from tests.recordings.test_recordings_e2e import login
from tests.support.browser import World, free_port, seed_world, serve_app
from tests.support.live import telecrm
from tests.support.redis_fixtures import redis_server_fixture, redis_url_fixture  # noqa: F401

TOKEN = "s3cr3t-scraper-token"


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[object, str, World, str]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    world = await seed_world(url, tmp_path / "recordings")
    settings = Settings(data_dir=tmp_path, database_url=url, metrics_token=TOKEN,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (app, base):
        yield app, base, world, url


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample by name and sorted labels."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def scrape(base: str, http: aiohttp.ClientSession | None = None,
                 token: str | None = None) -> tuple[int, str]:
    own = http is None
    http = http or aiohttp.ClientSession()
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    try:
        async with http.get(f"{base}/metrics", headers=headers, allow_redirects=False) as r:
            return r.status, await r.text()
    finally:
        if own:
            await http.close()


async def test_the_scraper_and_admins_read_metrics_and_nobody_else(
        served: tuple[object, str, World, str]) -> None:
    _, base, _, _ = served
    status, text = await scrape(base, token=TOKEN)
    assert status == 200, text
    samples = parse(text)
    for name in ("telecrm_event_stream_subscribers", "telecrm_recordings_waiting",
                 "telecrm_recordings_failed", "telecrm_transcription_backlog",
                 "telecrm_transcription_failed"):
        assert (name, ()) in samples, name
    assert value(samples, "telecrm_job_queue_depth", queue="transcription") == 0
    admin = await login(base, "admin")
    try:
        status, text = await scrape(base, admin)
    finally:
        await admin.close()
    assert status == 200 and ("telecrm_recordings_waiting", ()) in parse(text)

    status, text = await scrape(base)  # anonymous
    assert status == 401 and "Войдите в систему." in text and "telecrm_" not in text
    status, text = await scrape(base, token="guessed")
    assert status == 401 and "Неверный токен сборщика метрик." in text
    for who in ("petrov", "sokolova", "marketer"):
        user = await login(base, who)
        try:
            status, text = await scrape(base, user)
        finally:
            await user.close()
        assert status == 403, who
        assert "Метрики системы доступны только администратору." in text
        assert "telecrm_" not in text


async def test_without_a_token_setting_a_bearer_header_opens_nothing(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed_world(url, tmp_path / "recordings")
    settings = Settings(data_dir=tmp_path, database_url=url)
    async with serve_app(settings) as (_, base):
        for token in ("", "anything"):
            status, text = await scrape(base, token=token)
            assert status == 401 and "telecrm_" not in text


async def test_page_time_is_counted_under_the_routes_canonical_path(
        served: tuple[object, str, World, str]) -> None:
    _, base, world, _ = served
    admin = await login(base, "admin")
    try:
        for client_id in world.clients.values():  # three clients, three raw paths
            async with admin.get(f"{base}/clients/{client_id}") as r:
                assert r.status == 200
        async with admin.get(f"{base}/no-such-page/12345") as r:
            assert r.status == 404
        status, text = await scrape(base, admin)
    finally:
        await admin.close()
    assert status == 200
    samples = parse(text)
    count = value(samples, "telecrm_http_request_duration_seconds_count",
                  route="/clients/{id}", method="GET", status="2xx")
    assert count == len(world.clients) == 3
    assert value(samples, "telecrm_http_request_duration_seconds_count",
                 route="unmatched", method="GET", status="4xx") == 1
    routes = {dict(labels).get("route") for (name, labels) in samples
              if name.startswith("telecrm_http_request_duration_seconds")}
    assert not any(str(route).rstrip("}").split("/")[-1].isdigit() for route in routes), routes
    assert "/no-such-page/12345" not in text
    assert value(samples, "telecrm_http_request_duration_seconds_sum",
                 route="/clients/{id}", method="GET", status="2xx") > 0


async def test_backlogs_come_from_the_database_cached_for_a_few_seconds(
        served: tuple[object, str, World, str], monkeypatch: pytest.MonkeyPatch) -> None:
    _, base, world, url = served
    samples = parse((await scrape(base, token=TOKEN))[1])
    # the seeded floor: one ended call with a recording, neither finalized nor transcribed
    assert value(samples, "telecrm_recordings_waiting") == 1
    assert value(samples, "telecrm_recordings_failed") == 0
    assert value(samples, "telecrm_transcription_backlog") == 1
    assert value(samples, "telecrm_job_queue_depth", queue="recordings") == 1

    engine = create_engine(url)
    try:
        async with session_factory(engine, writer=True)() as session, session.begin():
            session.add(CallAudio(call_id=world.calls["romashka_101"], attempts=5,
                                  status=AudioStatus.FAILED.value, error="no such file"))
    finally:
        await engine.dispose()
    cached = parse((await scrape(base, token=TOKEN))[1])
    assert value(cached, "telecrm_recordings_failed") == 0  # read seconds ago: not again
    monkeypatch.setattr(registry, "BACKLOG_TTL_SECONDS", 0.0)
    fresh = parse((await scrape(base, token=TOKEN))[1])
    assert value(fresh, "telecrm_recordings_failed") == 1
    assert value(fresh, "telecrm_recordings_waiting") == 0


async def test_event_stream_subscribers_are_counted_while_open(
        served: tuple[object, str, World, str]) -> None:
    _, base, _, _ = served
    petrov = await login(base, "petrov")
    try:
        async with petrov.get(f"{base}/api/events") as stream:
            assert stream.status == 200
            await stream.content.readline()  # the stream is open
            samples = parse((await scrape(base, token=TOKEN))[1])
            assert value(samples, "telecrm_event_stream_subscribers") == 1
            async with petrov.post(f"{base}/api/logout") as r:  # ends his streams at once
                assert r.status == 200
            deadline = time.monotonic() + 5
            while True:
                samples = parse((await scrape(base, token=TOKEN))[1])
                if value(samples, "telecrm_event_stream_subscribers") == 0:
                    break
                assert time.monotonic() < deadline, "the ended stream is still counted"
                await asyncio.sleep(0.1)
    finally:
        await petrov.close()


async def test_each_app_has_its_own_registry(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed_world(url, tmp_path / "recordings")
    settings = Settings(data_dir=tmp_path, database_url=url, metrics_token=TOKEN)
    async with serve_app(settings) as (one, base_one), serve_app(settings) as (two, _):
        assert one[METRICS].registry is not two[METRICS].registry
        async with aiohttp.ClientSession() as http, http.get(f"{base_one}/login") as r:
            assert r.status == 200
        one_samples = parse((await scrape(base_one, token=TOKEN))[1])
        key = ("telecrm_http_request_duration_seconds_count",
               (("method", "GET"), ("route", "/login"), ("status", "2xx")))
        assert one_samples[key] == 1
        assert all(name != key[0] or labels != key[1]
                   for name, labels in parse(_text(two[METRICS].registry)))


def _text(registry_: object) -> str:
    from prometheus_client import generate_latest

    return generate_latest(registry_).decode()  # type: ignore[arg-type]


async def test_the_transcription_queue_is_read_in_redis_when_several_processes_share_it(
        tmp_path: Path, redis_url: str) -> None:
    """A web process that runs no worker still shows the shared queue: 3 jobs queued,
    a worker took one and failed it, 2 wait."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed_world(url, tmp_path / "recordings")
    queue = RedisStreamQueue(redis_url, consumer="test-worker")
    try:
        for call_id in (101, 102, 103):
            assert await queue.put(call_id)
        job = await queue.get(timeout=1)
        assert job is not None
        await queue.fail(job, "unreadable audio")
    finally:
        await queue.close()
    settings = Settings(data_dir=tmp_path, database_url=url, metrics_token=TOKEN,
                        redis_url=redis_url)
    async with serve_app(settings) as (_, base):
        samples = parse((await scrape(base, token=TOKEN))[1])
    assert value(samples, "telecrm_job_queue_depth", queue="transcription") == 2
    assert value(samples, "telecrm_transcription_failed") == 1


async def test_the_in_process_queue_tells_its_depth_and_failures() -> None:
    queue = InProcessQueue()
    for call_id in (1, 2):
        await queue.put(call_id)
    assert (await queue.waiting(), await queue.failed_count()) == (2, 0)
    job = await queue.get(timeout=1)
    assert job is not None
    await queue.fail(job, "no such file")
    assert (await queue.waiting(), await queue.failed_count()) == (1, 1)


# -- JSON logs ------------------------------------------------------------------------------


def test_a_json_log_line_has_time_level_logger_message_and_exception() -> None:
    logger = logging.getLogger("telecrm.test")
    formatter = JsonFormatter()
    try:
        raise ValueError("плохой номер")
    except ValueError:
        record = logger.makeRecord("telecrm.test", logging.ERROR, __file__, 1,
                                   "call %s could not be recorded", ("1795406555.0",),
                                   sys.exc_info())
    line = formatter.format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR" and entry["logger"] == "telecrm.test"
    assert entry["message"] == "call 1795406555.0 could not be recorded"
    assert "ValueError: плохой номер" in entry["exception"]
    assert entry["time"].endswith("+00:00")


def test_the_command_line_logs_json_when_asked(tmp_path: Path) -> None:
    """A real ``telecrm`` process: every line it logs on stderr is one JSON object."""
    env = {"TELECRM_LOG_FORMAT": "json", "TELECRM_LOG_LEVEL": "DEBUG",
           "TELECRM_DATA_DIR": str(tmp_path)}
    result = telecrm("db", "upgrade", env=env, process=True)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    for line in lines:
        entry = json.loads(line)
        assert {"time", "level", "logger", "message"} <= entry.keys(), entry


def test_an_unknown_log_format_is_refused_in_russian(tmp_path: Path) -> None:
    result = telecrm("db", "upgrade", env={"TELECRM_LOG_FORMAT": "xml",
                                           "TELECRM_DATA_DIR": str(tmp_path)}, process=True,
                     check=False)
    assert result.returncode == 2
    assert "Настройка TELECRM_LOG_FORMAT: непригодное значение «xml»." in result.stderr



async def test_a_listener_process_gives_its_metrics_to_the_scraper_alone(tmp_path: Path) -> None:
    """``serve --listener`` has no sign-in: its ``/metrics`` takes the token, nothing else."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed_world(url, tmp_path / "recordings")
    settings = Settings(data_dir=tmp_path, database_url=url, metrics_token=TOKEN,
                        ami_port=free_port())  # no PBX there: the listener keeps retrying
    async with serve_app(settings, with_listener=True, with_web=False) as (_, base), \
            aiohttp.ClientSession() as http:
        async with http.get(f"{base}/metrics") as refused:
            assert refused.status == 401
            assert await refused.text() == "Нужен токен сборщика метрик."
        async with http.get(f"{base}/clients") as page:
            assert page.status == 404  # no pages in a listener process
        async with http.get(f"{base}/metrics",
                            headers={"Authorization": f"Bearer {TOKEN}"}) as scraped:
            assert scraped.status == 200
            families = {f.name: f for f in text_string_to_metric_families(await scraped.text())}
        assert [s.value for s in families["telecrm_ami_connected"].samples] == [0.0]
