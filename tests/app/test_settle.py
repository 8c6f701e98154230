"""A ``telecrm serve`` process loads its templates and sets its start-up's objects aside
from the garbage collector before it takes a request (``telecrm/settle.py``)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import aiohttp_jinja2

from telecrm.app import create_app
from telecrm.settings import Settings
from telecrm.settle import load_templates
from tests.support.browser import free_port
from tests.support.db_fixtures import copy_migrated_sqlite
from tests.support.live import TELECRM
from tests.support.processes import wait_healthy

TEMPLATES = Path(__file__).resolve().parents[2] / "telecrm" / "templates"


def _template_files() -> set[str]:
    return {path.relative_to(TEMPLATES).as_posix() for path in TEMPLATES.rglob("*.html")}


def test_every_page_template_is_loaded_once_the_web_role_is_set_up(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, template_cache="off")
    app = create_app(settings, with_listener=False)
    env = aiohttp_jinja2.get_env(app)
    assert env.cache is not None and len(env.cache) == 0  # nothing loaded by building the app
    assert load_templates(app) == len(_template_files())
    assert {name for _, name in env.cache.keys()} >= _template_files()
    # the listener role has no pages to load
    assert load_templates(create_app(settings, with_web=False)) == 0


def test_serve_is_settled_before_it_answers(tmp_path: Path) -> None:
    """The log says so before the port answers: every template, and the objects of the
    start-up (modules, schema, routes, templates: well over 100,000) set aside."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    copy_migrated_sqlite(url)
    env = {**os.environ, "TELECRM_DATABASE_URL": url, "TELECRM_DATA_DIR": str(tmp_path)}
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen([TELECRM, "serve", "--web", "--port", str(port)], env=env,
                                   stdout=log_file, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            wait_healthy(port, process)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    log = log_path.read_text()
    ready = re.search(r"ready: (\d+) templates loaded, (\d+) objects", log)
    assert ready is not None, log
    assert int(ready.group(1)) == len(_template_files())
    assert int(ready.group(2)) > 100_000
    assert ready.start() < log.index("serving (web)")
