"""A pinned clock: the same "now" in the test process and in the ``telecrm`` it runs.

In the process time-machine moves the clock (also for the ``telecrm`` commands that
``tests.support.live.telecrm`` runs in the process); a program a test starts with
``subprocess_env()`` (``telecrm(..., process=True)``, ``telecrm demo``) gets libfaketime
through ``LD_PRELOAD``, started at the same instant. Only those: the browser, Asterisk
and the database servers keep the machine's clock. Tests that depend on "today" pin
it, so the suite gives the same answer on any day, at any hour.
"""

from __future__ import annotations

import contextlib
import glob
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import time_machine

LIBFAKETIME = next(iter(sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))), None)

# The moment the clock was pinned at and the real time.time() then, while pinned.
_pinned: tuple[datetime, float] | None = None


@contextlib.contextmanager
def pinned_clock(moment: datetime, *, tick: bool = True) -> Iterator[time_machine.Traveller]:
    """Move the clock to ``moment`` (aware) in this process and in ``telecrm`` commands."""
    global _pinned
    if moment.tzinfo is None:
        raise ValueError("pin the clock to an aware datetime")
    previous = _pinned
    _pinned = (moment, time.monotonic())
    try:
        with time_machine.travel(moment, tick=tick) as traveller:
            yield traveller
    finally:
        _pinned = previous


# The first minutes of the workday's date, in which the seeded "today" cannot be in the past.
DAY_START_ROOM = timedelta(minutes=20)
WORKDAY_TZ = "Europe/Moscow"  # the tests' companies work in Moscow time


def past_the_day_start(now: datetime) -> datetime | None:
    """The moment a test on the real clock runs at instead of ``now`` when ``now`` is in
    the first :data:`DAY_START_ROOM` of the Moscow date, else None.

    The tests' seeded floor is a quarter of an hour of calls "today, already over"
    (``tests.support.browser.seed_calls_start``); at 00:05 Moscow time there is no such
    quarter of an hour, and pages that show today, newest first, would show calls
    that have not happened yet. The same day at 00:20 has it.
    """
    local = now.astimezone(ZoneInfo(WORKDAY_TZ))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if local - midnight >= DAY_START_ROOM:
        return None
    return midnight + DAY_START_ROOM


def subprocess_env() -> dict[str, str]:
    """Environment variables that give a subprocess the pinned clock (none when unpinned)."""
    if _pinned is None:
        return {}
    if LIBFAKETIME is None:
        raise RuntimeError("libfaketime is missing: scripts/install-system-packages.sh installs it")
    moment, since = _pinned
    now = moment.timestamp() + (time.monotonic() - since)
    stamp = datetime.fromtimestamp(now, UTC).strftime("@%Y-%m-%d %H:%M:%S")
    return {"FAKETIME": stamp, "FAKETIME_DONT_FAKE_MONOTONIC": "1", "TZ": "UTC",
            "LD_PRELOAD": LIBFAKETIME}


def zone_at_midday(now: datetime) -> str:
    """A fixed-offset time zone in which ``now`` is around noon (``Etc/GMT±N``).

    Tests on the sandbox run on the real clock (Asterisk stamps the events); one whose
    subject is "today" (a retry later today, the working day's end) gives the company
    this zone, so the day does not end under it whatever the hour it runs at.
    """
    offset = (12 - now.astimezone(UTC).hour + 12) % 24 - 12  # -12..+11 hours east of UTC
    return "Etc/GMT" + ("" if offset == 0 else f"{-offset:+d}")  # POSIX signs: inverted
