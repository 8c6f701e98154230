"""A day of missed calls on the seeded floor (tests/support/browser.py), with hand-checked
figures for the missed-calls report.

The floor's own calls are put on 19.11.2026 (its missed call falls outside the period);
these are on 20.11.2026 from 12:00 Moscow time (T0). A = ООО Ромашка (owner 101, team
«Отдел продаж», queue ``sales``), B = ИП Сидоров (owner 102, same team), C = АО Вектор
(owner 103, «Второй отдел», no queue).

| call | what | returned after |
|---|---|---|
| m1 | A missed via sales | 240 s by an outbound busy call (trying counts) |
| m2 | A missed via sales, T0+1h | 600 s by A calling again, answered |
| m3 | B missed via sales | 1800 s by an outbound answered call |
| m4 | B missed via sales, T0+2h | never (m5 is B missing again: not a return) |
| m5 | B missed via sales, T0+3h | never |
| r1 | C rang 101 and 103, 103 answered | NOT missed (101 missed nothing) |
| m6 | C missed, no queue, T0+4h | 7200 s by an outbound no-answer call |
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from crm_core.calls.services import record_call
from crm_core.calls.snapshot import CallData, LegData
from crm_core.db import create_engine, session_factory
from tests.support.browser import HOOKS, World, seed_world

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # 12:00 in Moscow
DAY = "2026-11-20"
A, B, C = "+79161234567", "+79031234567", "+79265550011"
RING = 20.0  # a missed call rings this long before the caller gives up


def call(linkedid: str, direction: str, status: str, number: str, start: datetime, *,
         rang: tuple[str, ...] = (), talked: str | None = None, queue: str | None = None
         ) -> CallData:
    """A customer call as the tracker reports it (ended ``RING`` s after start when missed)."""
    answered = start + timedelta(seconds=5) if talked else None
    end = start + timedelta(seconds=65 if talked else RING)
    legs = [LegData(uniqueid=f"{linkedid}-c", channel="PJSIP/carrier-0001", role="client",
                    extension=None, started_at=start, answered_at=answered, ended_at=end,
                    talk_seconds=60.0 if talked else 0.0)]
    for i, ext in enumerate(rang):
        legs.append(LegData(uniqueid=f"{linkedid}-m{i}", channel=f"PJSIP/{ext}-000{i}",
                            role="manager", extension=ext, started_at=start,
                            answered_at=answered if ext == talked else None, ended_at=end,
                            talk_seconds=60.0 if ext == talked else 0.0))
    return CallData(linkedid=linkedid, direction=direction, status=status, client_number=number,
                    did="+74951110002" if direction == "inbound" else None, started_at=start,
                    answered_at=answered, ended_at=end, ring_seconds=5.0 if talked else RING,
                    talk_seconds=60.0 if talked else 0.0, transferred=False,
                    managers=(talked,) if talked else (), recordings=(), legs=tuple(legs),
                    rang=rang, queue=queue)


def missed(linkedid: str, number: str, start: datetime, queue: str | None = "sales",
           rang: tuple[str, ...] = ("101", "102")) -> CallData:
    return call(linkedid, "inbound", "missed", number, start, rang=rang, queue=queue)


def back(linkedid: str, missed_start: datetime, after_seconds: float, number: str,
         direction: str, status: str, ext: str) -> CallData:
    """A call ``after_seconds`` after the miss ended (it started ``RING`` s before that)."""
    start = missed_start + timedelta(seconds=RING + after_seconds)
    talked = ext if status == "answered" else None
    return call(linkedid, direction, status, number, start, rang=(ext,), talked=talked)


def day_calls() -> list[CallData]:
    h = timedelta(hours=1)
    return [
        missed("m1", A, T0), back("cb1", T0, 240, A, "outbound", "busy", "101"),
        missed("m2", A, T0 + h), back("cb2", T0 + h, 600, A, "inbound", "answered", "101"),
        missed("m3", B, T0), back("cb3", T0, 1800, B, "outbound", "answered", "102"),
        missed("m4", B, T0 + 2 * h), missed("m5", B, T0 + 3 * h),
        call("r1", "inbound", "answered", C, T0, rang=("101", "103"), talked="103"),
        missed("m6", C, T0 + 4 * h, queue=None, rang=("103",)),
        back("cb6", T0 + 4 * h, 7200, C, "outbound", "no_answer", "103"),
    ]


async def write_calls(db_url: str, calls: list[CallData]) -> dict[str, int]:
    """Store calls through the call writer with the product's hooks (callback tasks)."""
    engine = create_engine(db_url)
    ids = {}
    try:
        sessions = session_factory(engine, writer=True)
        for data in calls:
            async with sessions() as session, session.begin():
                ids[data.linkedid] = (await record_call(session, data, hooks=HOOKS)).id
    finally:
        await engine.dispose()
    return ids


async def seed_missed_day(db_url: str, tmp_path: Path) -> World:
    world = await seed_world(db_url, tmp_path / "recordings", calls_at=T0 - timedelta(days=1))
    world.calls.update(await write_calls(db_url, day_calls()))
    return world


def figures(missed: int, m5: int, m15: int, m60: int, never: int,
            median: float | None) -> dict[str, object]:
    return {"missed": missed, "called_back_5m": m5, "called_back_15m": m15,
            "called_back_60m": m60, "never_called_back": never,
            "median_callback_seconds": median}


EVERYONE = {
    "rows": [{"manager": "101", **figures(2, 1, 2, 2, 0, 420.0)},
             {"manager": "102", **figures(3, 0, 0, 1, 2, 1800.0)},
             {"manager": "103", **figures(1, 0, 0, 0, 0, 7200.0)},
             {"queue": "sales", **figures(5, 1, 2, 3, 2, 600.0)}],
    "total": figures(6, 1, 2, 3, 2, 1200.0),
}
TEAM = {  # the supervisor of «Отдел продаж»: 101, 102 and the sales queue
    "rows": [EVERYONE["rows"][0], EVERYONE["rows"][1], EVERYONE["rows"][3]],
    "total": figures(5, 1, 2, 3, 2, 600.0),
}
PETROV = {"rows": [EVERYONE["rows"][0]], "total": figures(2, 1, 2, 2, 0, 420.0)}
