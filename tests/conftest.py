"""Shared fixtures: real PostgreSQL and the real sandbox Asterisk.

Under ``CI=true`` a test that needs one of them fails instead of skipping: a green
CI must mean the real parts ran.
"""

import os

import pytest

from tests.db_fixtures import (  # noqa: F401
    db_url,
    pg_url_fixture,
    postgres_server,
    private_postgres_server,
)
from tests.redis_fixtures import redis_server, redis_url  # noqa: F401
from tests.sandbox_fixtures import sandbox  # noqa: F401

REAL_PARTS = ("asterisk", "postgres", "s3")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    report = outcome.get_result()
    if (report.skipped and os.environ.get("CI") == "true"
            and any(item.get_closest_marker(m) for m in REAL_PARTS)):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where the real parts must run: {report.longrepr}"
