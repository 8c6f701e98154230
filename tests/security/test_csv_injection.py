"""Issue 17.4: no export writes a cell a spreadsheet would run as a formula.

The attack: one anonymous ``POST /api/ct/session`` whose page URL carries
``utm_source=@SUM(1+1)*cmd|' /C calc'!A0``; after a call on the leased number the
marketer downloads ``/api/ct/report?by=source&format=csv``. Names typed by people
(a manager, a client) reach the sales reports, the missed report and the call log the
same way. Every CSV the product serves or prints is then read back: no cell starts
with ``=``, ``+``, ``-``, ``@``, a tab or a CR unless it is a number.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from crm_core.calls.services import record_call
from crm_core.calls.snapshot import CallData, LegData
from crm_core.calltracking.services import SiteOptions, add_pool_numbers, save_site
from crm_core.clients.models import Client
from crm_core.db import create_engine, session_factory
from crm_core.people.models import User
from crm_core.sales.reports import REPORTS as SALES_REPORTS
from crm_core.timestamps import utcnow
from telecrm.calltracking.public import CT
from telecrm.csv_safety import inert
from telecrm.settings import Settings
from telecrm.wiring import call_hooks
from tests.support.browser import seed_world, serve_app, signed_in
from tests.support.live import telecrm

# The exports read periods relative to today: make test-calendar. Not the writer's own
# tests below, which hold no date.
calendar = pytest.mark.calendar

HOOKS = call_hooks()
HOST = "shop.example"
ORIGIN = "https://shop.example"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
CALC = "@SUM(1+1)*cmd|' /C calc'!A0"
LINK = '=HYPERLINK("http://evil.example/phish","Подробнее")'
MANAGER = "-2+3+cmd|' /C calc'!A0"
ROOT = Path(__file__).resolve().parents[2]
FORMULA = re.compile(r"^[=+\-@\t\r]")
NUMBER = re.compile(r"[+-]?[0-9]+([.,][0-9]+)?")


def cells(text: str) -> list[str]:
    text = text.lstrip("\ufeff")
    delimiter = ";" if text.split("\n", 1)[0].count(";") > text.split("\n", 1)[0].count(",") \
        else ","
    return [cell for row in csv.reader(io.StringIO(text), delimiter=delimiter) for cell in row]


def assert_inert(text: str, where: str) -> list[str]:
    found = cells(text)
    assert found, f"{where}: an empty export proves nothing"
    bad = [c for c in found if FORMULA.match(c) and not NUMBER.fullmatch(c)]
    assert bad == [], f"{where}: {bad}"
    return found


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, str, web.Application]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed_world(url, tmp_path / "recordings")
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session, session.begin():
            await save_site(session, HOST, SiteOptions(default_numbers=["+74951110001"],
                                                       origins=[ORIGIN]))
            await add_pool_numbers(session, HOST, ["+74951110011"])
            petrov = await session.scalar(select(User).where(User.username == "petrov"))
            romashka = await session.scalar(select(Client).where(Client.name == "ООО Ромашка"))
            assert petrov is not None and romashka is not None
            petrov.name, romashka.name = MANAGER, LINK
    finally:
        await engine.dispose()
    settings = Settings(data_dir=tmp_path, database_url=url,
                        recordings_source=tmp_path / "recordings")
    async with serve_app(settings) as (app, base):
        yield base, url, app


async def attack(base: str, url: str, app: web.Application) -> None:
    """The anonymous visit with hostile UTM tags, then a call on the number it leased."""
    page = f"https://{HOST}/?" + urlencode({"utm_source": CALC, "utm_campaign": LINK})
    async with aiohttp.ClientSession() as http, http.post(
            f"{base}/api/ct/session", data=json.dumps({"site": HOST, "url": page}),
            headers={"Origin": ORIGIN, "User-Agent": BROWSER,
                     "Content-Type": "text/plain"}) as response:
        assert response.status == 200  # nobody signed in
        leased = await response.json()
    assert leased["tracked"] is True
    await app[CT].history.drain()
    engine = create_engine(url)
    start = utcnow()
    try:
        async with session_factory(engine)() as session, session.begin():
            await record_call(session, CallData(
                linkedid="evil-1", direction="inbound", status="answered",
                client_number="+79169990001", did=leased["number"], started_at=start,
                answered_at=start, ended_at=start, ring_seconds=1, talk_seconds=75,
                transferred=False, managers=("101",), recordings=(),
                legs=(LegData("evil-1-c", "PJSIP/carrier-1", "client", None, start, start,
                              start, 75.0),)), hooks=HOOKS)
    finally:
        await engine.dispose()


@calendar
async def test_hostile_utm_tags_reach_the_marketers_csv_inert(
        served: tuple[str, str, web.Application]) -> None:
    base, url, app = served
    await attack(base, url, app)
    marketer = await signed_in(base, "marketer")
    try:
        async with marketer.get(f"{base}/api/ct/report?by=source&format=csv") as response:
            assert response.status == 200
            found = assert_inert(await response.text(), "by source")
        assert "'" + CALC in found
        async with marketer.get(f"{base}/api/ct/report?by=campaign&format=csv") as response:
            found = assert_inert(await response.text(), "by campaign")
        assert "'" + LINK in found
    finally:
        await marketer.close()


@calendar
async def test_every_csv_export_is_inert(served: tuple[str, str, web.Application]) -> None:
    base, url, app = served
    await attack(base, url, app)
    exports = {"marketer": [f"/api/ct/report?by={by}&format=csv"
                            for by in ("channel", "source", "medium", "campaign")]
               + ["/calltracking/costs.csv?dummy=1"],
               "admin": ["/calls.csv", "/api/reports/missed?format=csv",
                         *(f"/api/reports/{name}?format=csv" for name in SALES_REPORTS)]}
    served_routes = {r.resource.canonical for r in app.router.routes()
                     if r.resource is not None}
    assert {"/calls.csv", "/calltracking/costs.csv", "/api/ct/report",
            "/api/reports/{name}", "/api/reports/missed"} <= served_routes
    texts: dict[str, str] = {}
    for role, paths in exports.items():
        http = await signed_in(base, role)
        try:
            for path in paths:
                async with http.get(base + path) as response:
                    assert response.status == 200, (path, await response.text())
                    assert response.content_type == "text/csv", path
                    texts[path] = await response.text()
        finally:
            await http.close()
    for path, text in texts.items():
        if path.startswith("/calltracking/costs.csv"):
            assert cells(text) == ["month", "channel", "amount"]  # no costs entered
            continue
        assert_inert(text, path)
    assert any(c.startswith("'" + LINK) for c in cells(texts["/calls.csv"]))  # the client
    for path in ("/api/reports/contact-frequency?format=csv", "/api/reports/deals?format=csv"):
        assert "'" + MANAGER in cells(texts[path]), path

    # the command line's CSV goes through the same writer (every report it knows)
    from telecrm.calltracking.cli import REPORTS as CLI_REPORTS

    telecrm("report", "nosuch", "--db", url, check=False)  # registers every feature's report
    assert {"calltracking", "missed", *SALES_REPORTS} <= set(CLI_REPORTS)
    for name in sorted(CLI_REPORTS):
        out = telecrm("report", name, "--format", "csv", "--db", url).stdout
        if out or name in ("calltracking", "contact-frequency", "deals"):
            assert_inert(out, f"telecrm report {name}")
    out = telecrm("report", "calltracking", "--by", "source", "--format", "csv", "--db", url)
    assert "'" + CALC in assert_inert(out.stdout, "telecrm report calltracking --by source")


def test_no_module_writes_csv_but_the_safe_writer() -> None:
    """A new export cannot forget: ``csv.writer``/``csv.DictWriter`` only in csv_safety."""
    offenders = []
    for package in ("telecrm", "crm_core", "pbx_bridge", "recordings", "speech"):
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "telecrm" / "csv_safety.py":
                continue
            text = path.read_text(encoding="utf-8")
            if re.search(r"\bcsv\.(writer|DictWriter)\b|from csv import", text):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


@pytest.mark.parametrize(("cell", "written"), [
    ("=1+1", "'=1+1"), ("+7 (916) cmd", "'+7 (916) cmd"), ("-cmd", "'-cmd"), ("@x", "'@x"),
    ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("\t5", "'\t5"), ("ООО Ромашка", "ООО Ромашка"),
    ("-5", "-5"), ("+7.5", "+7.5"), ("-1,5", "-1,5"), (-5, -5), (2.5, 2.5), (None, ""),
    ("'=1", "'=1"),
])
def test_inert_cells(cell: object, written: object) -> None:
    assert inert(cell) == written
