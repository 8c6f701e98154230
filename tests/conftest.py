"""Shared fixtures: real PostgreSQL and the real sandbox Asterisk.

Under ``CI=true`` a test that needs one of them fails instead of skipping: a green
CI must mean the real parts ran.
"""

import os
from datetime import datetime

import pytest

from tests.support.clock import pinned_clock
from tests.support.db_fixtures import (  # noqa: F401
    db_url,
    pg_url_fixture,
    postgres_server,
    private_postgres_server,
)
from tests.support.redis_fixtures import redis_server, redis_url  # noqa: F401
from tests.support.sandbox_fixtures import sandbox  # noqa: F401

REAL_PARTS = ("asterisk", "postgres", "s3")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    report = outcome.get_result()
    if (report.skipped and os.environ.get("CI") == "true"
            and any(item.get_closest_marker(m) for m in REAL_PARTS)):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where the real parts must run: {report.longrepr}"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--clock-at", metavar="ISO", action="append", default=[],
                     help="run every test as if it were this moment (e.g. just after "
                          "midnight on 1 January); given several times, every test runs "
                          "at each moment; tests that pin their own clock keep it")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One run of each test per ``--clock-at`` moment (one run if it pins its own)."""
    moments: list[str] = metafunc.config.getoption("--clock-at")
    if len(moments) > 1:
        pinned = metafunc.definition.get_closest_marker("clock") is not None
        chosen = moments[:1] if pinned else moments
        metafunc.fixturenames.append("clock_moment")
        metafunc.parametrize("clock_moment", chosen, ids=[f"at {m}" for m in chosen],
                             scope="function")


@pytest.fixture(name="clock_moment")
def clock_moment_fixture(request: pytest.FixtureRequest) -> str | None:
    """The ``--clock-at`` moment of this run of the test (None: the real clock)."""
    if hasattr(request, "param"):
        return str(request.param)
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
    if moment is None:
        yield None
        return
    with pinned_clock(datetime.fromisoformat(moment)) as traveller:
        yield traveller
