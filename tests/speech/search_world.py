"""Transcribed calls for the search and dictionary tests, on the floor of tests/support/browser.py.

Managers 101 and 102 and their supervisor «Мария Соколова» are «Отдел продаж»; 103 is
«Второй отдел». Each answered call gets a Russian transcript in which inflected forms
are to be found: 101 offers «скидки» (at 12 s, in the recorded call), 102's client
mentions «конкурентов», 103's client wants to «расторгнуть» the contract and also
names a competitor, so a search by the other team's words is a real attempt.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from crm_core.calls.models import Call
from crm_core.calls.services import record_call
from crm_core.db import create_engine, session_factory
from crm_core.speech.transcripts import save_transcript
from tests.support.browser import CLIENTS, HOOKS, World, _call


def words(line: str, start: float) -> list[dict[str, Any]]:
    return [{"word": w, "start": round(start + 0.4 * i, 2), "end": round(start + 0.4 * i + 0.3, 2),
             "conf": 0.95} for i, w in enumerate(line.split())]


def transcript(manager: list[tuple[str, float]], client: list[tuple[str, float]]
               ) -> dict[str, Any]:
    return {"duration": 30.0, "model": "test", "speakers": {
        "manager": [w for line, at in manager for w in words(line, at)],
        "client": [w for line, at in client for w in words(line, at)]}}


TRANSCRIPTS = {
    "romashka_101": transcript(
        [("добрый день компания телекрм меня зовут иван", 0.5),
         ("могу предложить вам скидки на годовой тариф", 12.0)],
        [("здравствуйте слушаю вас", 5.0), ("это дорого для нас", 18.0)]),
    "sidorov_102": transcript(
        [("добрый день это ольга", 0.5), ("какие задачи вы решаете", 8.0)],
        [("мы сейчас работаем с конкурентом и у конкурентов дешевле", 3.0)]),
    "vector_103b": transcript(
        [("добрый день алексей беспокоит", 0.5)],
        [("мы хотим расторгнуть договор у конкурентов скидка больше", 4.0)]),
}


async def seed_transcripts(db_url: str, world: World) -> None:
    """An answered call of 103 besides the floor's, and the transcripts above."""
    engine = create_engine(db_url)
    try:
        sessions = session_factory(engine, writer=True)
        async with sessions() as session, session.begin():
            first = await session.get(Call, world.calls["romashka_101"])
            assert first is not None
            data = _call("t-5.0", "outbound", "answered", CLIENTS[2][1], "103",
                         first.started_at + timedelta(minutes=20), 30.0)
            world.calls["vector_103b"] = (await record_call(session, data, hooks=HOOKS)).id
        async with sessions() as session, session.begin():
            for name, text in TRANSCRIPTS.items():
                await save_transcript(session, world.calls[name], text)
    finally:
        await engine.dispose()
