"""Shared fixtures: real PostgreSQL and the real sandbox Asterisk.

Under ``CI=true`` a test that needs one of them fails instead of skipping: a green
CI must mean the real parts ran.
"""

import os
import re
import shutil
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

# Passwords are hashed with Argon2id at OWASP's minimum (TELECRM_PASSWORD_HASHING=light):
# the same code as in production at a sixth of the processor time, which the suite's
# thousands of sign-ins would otherwise spend. tests/app/test_passwords.py checks both.
os.environ.setdefault("TELECRM_PASSWORD_HASHING", "light")

from tests.support.chromium import shared_chromium_closed  # noqa: F401
from tests.support.clock import past_the_day_start, pinned_clock
from tests.support.collector import pytest_collection_finish, pytest_runtest_teardown  # noqa: F401
from tests.support.cpu_report import pytest_runtest_protocol  # noqa: F401
from tests.support.db_fixtures import (  # noqa: F401
    db_url,
    pg_url_fixture,
    postgres_server,
    private_postgres_server,
)
from tests.support.hang_report import pytest_runtest_call  # noqa: F401
from tests.support.redis_fixtures import redis_server, redis_url  # noqa: F401
from tests.support.s3_server import own_s3_server, s3_server  # noqa: F401
from tests.support.sandbox_fixtures import sandbox  # noqa: F401
from tests.support.statement_cache import share_compiled_statements

share_compiled_statements()

REAL_PARTS = ("asterisk", "postgres", "s3")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    report = outcome.get_result()
    if (report.skipped and os.environ.get("CI") == "true"
            and any(item.get_closest_marker(m) for m in REAL_PARTS)):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where the real parts must run: {report.longrepr}"
    if report.when == "call" and report.failed:
        _keep_captures(item, report)


FAILED_CAPTURES = Path(__file__).resolve().parent / "artifacts" / "failed-captures"


def _keep_captures(item: pytest.Item, report: pytest.TestReport) -> None:
    """A failed test's AMI capture files (what its listener heard) go to
    tests/artifacts/failed-captures/<test>/: a call log that came out wrong on a real
    PBX is read from them (``telecrm ami-replay``), and pytest's temporary folders are
    gone a few runs later."""
    tmp_path = getattr(item, "funcargs", {}).get("tmp_path")
    if not isinstance(tmp_path, Path):
        return
    captures = sorted(tmp_path.rglob("*.ami"))
    if not captures:
        return
    target = FAILED_CAPTURES / re.sub(r"[^\w.-]+", "_", item.nodeid)[-150:]
    target.mkdir(parents=True, exist_ok=True)
    for capture in captures:
        shutil.copy2(capture, target / "_".join(capture.relative_to(tmp_path).parts))
    report.sections.append(("AMI captures kept", str(target)))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--clock-at", metavar="ISO", action="append", default=[],
                     help="run every test as if it were this moment (e.g. just after "
                          "midnight on 1 January); given several times, every test runs "
                          "at each moment; tests that pin their own clock keep it")
    parser.addoption("--calendar-at", metavar="ISO", action="append", default=[],
                     help="run each test marked `calendar` (and not pinned, not on the "
                          "sandbox, PostgreSQL or S3) once more at this moment, besides "
                          "its run on the real clock; given several times, each such test "
                          "runs at one of them, chosen by its name")
    parser.addoption("--cpu-report", metavar="FILE", default=None,
                     help="append each test's processor and wall time to FILE as JSON "
                          "lines (tests/support/cpu_report.py)")


# Real servers keep the machine's clock: their tests are not moved by --calendar-at.
_MACHINE_CLOCK = ("asterisk", "postgres", "s3")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One run of each test per ``--clock-at`` moment (one run if it pins its own);
    with ``--calendar-at``, the date-sensitive tests run on the real clock and at one of
    those moments each, in the same session."""
    moments: list[str] = metafunc.config.getoption("--clock-at")
    pinned = metafunc.definition.get_closest_marker("clock") is not None
    if len(moments) > 1:
        chosen = moments[:1] if pinned else moments
        metafunc.fixturenames.append("clock_moment")
        metafunc.parametrize("clock_moment", chosen, ids=[f"at {m}" for m in chosen],
                             scope="function")
        return
    calendar: list[str] = metafunc.config.getoption("--calendar-at")
    if (calendar and not moments and not pinned
            and metafunc.definition.get_closest_marker("calendar") is not None):
        # one moment per test, the same on every run and machine; each moment gets about
        # an equal share of the tests (``make test-calendar`` runs every one at each)
        moment = calendar[zlib.crc32(metafunc.definition.nodeid.encode()) % len(calendar)]
        metafunc.fixturenames.append("clock_moment")
        metafunc.parametrize("clock_moment", [None, moment], ids=["now", f"at {moment}"],
                             scope="function")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the ``--calendar-at`` runs of tests on real servers (their clock is the
    machine's), and hand out the long files first so that no worker ends alone."""
    if config.getoption("--calendar-at"):
        moved = [item for item in items
                 if getattr(item, "callspec", None) is not None
                 and item.callspec.params.get("clock_moment") is not None  # type: ignore[attr-defined]
                 and any(item.get_closest_marker(m) for m in _MACHINE_CLOCK)]
        if moved:
            config.hook.pytest_deselected(items=moved)
            dropped = set(map(id, moved))
            items[:] = [item for item in items if id(item) not in dropped]
    long_files = {item.path for item in items
                  if item.get_closest_marker("asterisk") or "browser" in item.path.name}
    items.sort(key=lambda item: item.path not in long_files)  # stable: order kept within


@pytest.fixture(name="clock_moment")
def clock_moment_fixture(request: pytest.FixtureRequest) -> str | None:
    """The ``--clock-at`` moment of this run of the test (None: the real clock)."""
    if hasattr(request, "param"):
        return None if request.param is None else str(request.param)
    moments: list[str] = request.config.getoption("--clock-at")
    return moments[0] if moments else None


@pytest.fixture(autouse=True)
def _clock_of_the_test(request: pytest.FixtureRequest, clock_moment: str | None) -> object:
    """``@pytest.mark.clock("2026-11-20T12:00:00+03:00")``: the test runs at that moment.

    The clock still ticks from there, in the test and in the ``telecrm`` commands it
    runs, so a test that depends on "today" gives the same answer on any day.
    ``--clock-at`` moves every other test to a chosen moment the same way.
    """
    marker = request.node.get_closest_marker("clock")
    moment = marker.args[0] if marker is not None else clock_moment
    if (moment is None and request.node.get_closest_marker("calendar") is not None
            and request.node.get_closest_marker("asterisk") is None):
        # A date-sensitive test runs on the real clock, except in the first minutes of
        # the Moscow date (see past_the_day_start); tests of real calls keep it, as
        # Asterisk stamps them.
        moved = past_the_day_start(datetime.now(UTC))
        moment = moved.isoformat() if moved is not None else None
    if moment is None:
        yield None
        return
    with pinned_clock(datetime.fromisoformat(moment)) as traveller:
        yield traveller
