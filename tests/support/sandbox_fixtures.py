"""The session-wide sandbox Asterisk for tests (imported by tests/conftest.py).

One Sandbox (the PBX with the product's configuration, plus the phones instance)
serves the whole session: booting costs about a second, but sharing it keeps
every test's wall time down to its calls.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from asterisk_conf.sandbox import Sandbox, SandboxUnavailable

__all__ = ["sandbox", "skip_or_fail_unavailable"]


def skip_or_fail_unavailable(exc: SandboxUnavailable) -> None:
    """Skip with the reason, except under CI where a missing sandbox is a failure."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the Asterisk sandbox is required under CI=true: {exc}", pytrace=False)
    pytest.skip(f"Asterisk sandbox unavailable: {exc}")


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """A started Sandbox, stopped (recordings removed) at the end of the session."""
    box = Sandbox()
    try:
        box.start()
    except SandboxUnavailable as exc:
        skip_or_fail_unavailable(exc)
    try:
        yield box
    finally:
        box.stop()
        box.discard_recordings()
