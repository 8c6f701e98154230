"""What the call-tracking tests share: the tracked site and a call to one of its numbers.

``seeded_site`` writes the small sales floor of :func:`tests.support.browser.seed_world`
and the site ``HOST`` (visits allowed from ``ORIGIN``) with its pool of numbers, into a
new SQLite database, and returns the database's URL; ``more`` may write the rest a test
needs in the same transaction. ``inbound`` is the snapshot of a caller's call to a tracked
number, as the call writer gets it from Asterisk.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.snapshot import CallData, LegData
from crm_core.calltracking.services import SiteOptions, add_pool_numbers, save_site
from crm_core.db import create_engine, session_factory
from tests.support.browser import seed_world

HOST = "shop.example"
ORIGIN = "https://shop.example"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


async def seeded_site(tmp_path: Path, pool: list[str], *, default: str = "+74951110001",
                      more: Callable[[AsyncSession], Awaitable[None]] | None = None) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    await seed_world(url, tmp_path / "recordings")
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session, session.begin():
            await save_site(session, HOST, SiteOptions(default_numbers=[default],
                                                       origins=[ORIGIN]))
            await add_pool_numbers(session, HOST, pool)
            if more is not None:
                await more(session)
    finally:
        await engine.dispose()
    return url



def inbound(linkedid: str, did: str, caller: str, start: datetime, *, talk: float = 90.0,
            answered: bool = True) -> CallData:
    end = start + timedelta(seconds=5 + talk)
    return CallData(
        linkedid=linkedid, direction="inbound", status="answered" if answered else "missed",
        client_number=caller, did=did, started_at=start,
        answered_at=start + timedelta(seconds=5) if answered else None, ended_at=end,
        ring_seconds=5.0, talk_seconds=talk if answered else 0.0, transferred=False,
        managers=(), recordings=(),
        legs=(LegData(f"{linkedid}-c", "PJSIP/carrier-1", "client", None, start,
                      start if answered else None, end, talk if answered else 0.0),))
