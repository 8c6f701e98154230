"""What every ``telecrm`` command shares: the usage error, dates, the database, JSON and
tables out.

Feature commands (``telecrm.<feature>.cli``) import from here, never from ``cli``,
so the root parser can import them without a cycle.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crm_core.errors import DomainError

from .settings import Settings


class UsageError(DomainError):
    """Bad input on the command line (an argument, a file, a setting): its Russian
    sentence (``telecrm.messages``) is printed, exit status 2."""


Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


def parse_moment(value: str, tz: ZoneInfo, *, end: bool = False) -> datetime:
    """A date (whole day in the workday timezone) or an ISO 8601 moment."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as exc:
            raise UsageError("cli.not_a_moment",
                             f"{value!r} is not a date (YYYY-MM-DD) or an ISO 8601 time",
                             value=value) from exc
        return moment if moment.tzinfo else moment.replace(tzinfo=tz)
    if end:
        day += timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=tz)


def workday_timezone(settings: Settings) -> ZoneInfo:
    try:
        return ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError("cli.timezone_unknown",
                         f"unknown timezone {settings.timezone!r} in TELECRM_TIMEZONE",
                         timezone=settings.timezone) from exc


async def open_sessions(settings: Settings, *, writer: bool = True) -> tuple[Any, Any]:
    """Engine and session factory on an up-to-date schema.

    Writer sessions take SQLite's write lock up front, so two processes writing at
    once wait for each other instead of failing with "database is locked".
    """
    from crm_core.db import create_engine, session_factory

    url = settings.resolved_database_url
    await upgrade_schema(settings)
    engine = create_engine(url)
    return engine, session_factory(engine, writer=writer)


async def upgrade_schema(settings: Settings, *, quiet: bool = True) -> None:
    """Bring the schema up to date, or say in one sentence why the database is unusable."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from crm_core.db import upgrade

    url = settings.resolved_database_url
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError as exc:
        raise UsageError("cli.database_url_invalid", f"{url!r} is not a database URL",
                         url=url) from exc
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        await upgrade(url, quiet=quiet)
    except (OSError, SQLAlchemyError, ValueError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise UsageError("cli.database_unusable", f"cannot use the database {shown}: {reason}",
                         database=shown, reason=reason) from exc
    except Exception as exc:  # driver errors (asyncpg) that SQLAlchemy did not wrap
        if type(exc).__module__.split(".")[0] not in ("asyncpg", "aiosqlite", "sqlite3"):
            raise
        raise UsageError("cli.database_unusable", f"cannot use the database {shown}: {exc}",
                         database=shown, reason=str(exc)) from exc


@contextlib.asynccontextmanager
async def database(settings: Settings, *, writer: bool = True) -> AsyncIterator[Any]:
    """A session factory on an up-to-date schema; the engine is closed on the way out."""
    engine, sessions = await open_sessions(settings, writer=writer)
    try:
        yield sessions
    finally:
        await engine.dispose()


def print_json(value: Any, *, indent: int | None = 2) -> None:
    """One JSON document on stdout, Cyrillic as is (dates and decimals as strings)."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=indent, default=str) + "\n")


def text_table(head: list[str], body: list[list[Any]]) -> str:
    """A plain-text table a person reads in a terminal: each column as wide as its widest
    cell, a rule under the head."""
    widths = [max(len(str(line[i])) for line in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(line)).rstrip()
             for line in [head, *body]]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def print_rows(rows: list[dict[str, Any]], output: str,
               table: Callable[[list[dict[str, Any]]], str], empty: str) -> None:
    """A listing command's answer: ``rows`` as JSON (``--format json``), else ``table(rows)``
    or the sentence ``empty`` when there are none."""
    if output == "json":
        print_json(rows)
    else:
        print(table(rows) if rows else empty)
