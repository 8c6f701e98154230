"""A hostile sales script: a YAML alias bomb is refused at once, and the server keeps
answering everyone else while it is refused (issue 17, item 5)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from speech.script import KkpError, parse_script_text
from telecrm.messages import sentence
from tests.support.db_fixtures import db_url_fixture  # noqa: F401
from tests.support.hostile import call, latencies_while, p99, world_served

pytestmark = pytest.mark.clock("2026-11-20T12:00:00+03:00")


def alias_bomb(depth: int = 8) -> str:
    """The review's script: nine references per level, ``depth`` levels (~480 bytes at
    depth 8, 9**8 strings once expanded)."""
    lines = ["name: bomb", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, depth + 1)]
    lines.append(f"stages: [{{id: s, phrases: *a{depth}}}]")
    return "\n".join(lines) + "\n"


def test_aliases_and_huge_scripts_are_refused_with_the_line() -> None:
    bomb = alias_bomb()
    assert 470 <= len(bomb.encode()) <= 490
    with pytest.raises(KkpError) as caught:
        parse_script_text(bomb)
    assert sentence(caught.value.code, caught.value.params) == (
        "Строка 3: ссылки YAML (* и &) в скрипте не поддерживаются — напишите фразы полностью.")
    many = "stages:\n" + "".join(f"  - {{id: s{n}, phrases: [a]}}\n" for n in range(5000))
    with pytest.raises(KkpError) as caught:
        parse_script_text(many)
    assert caught.value.code == "speech.script.too_big"
    with pytest.raises(KkpError) as caught:
        parse_script_text("name: " + "x" * 300_000)
    assert caught.value.code == "speech.script.too_long"


async def test_the_bomb_upload_is_refused_while_others_are_answered(
        db_url: str, tmp_path: Path) -> None:
    async with world_served(db_url, tmp_path, "sokolova") as (base, boss):
        async def attack() -> list[tuple[int, object]]:
            return [await call(boss, "POST", f"{base}/api/kkp/scripts",
                               {"text": alias_bomb()}) for _ in range(20)]
        answers, samples = await latencies_while(
            asyncio.wait_for(attack(), 20), f"{base}/healthz")
    for status, body in answers:
        assert status == 400
        assert isinstance(body, dict) and body["error"] == (
            "Ошибка в скрипте: строка 3: ссылки YAML (* и &) в скрипте не поддерживаются — "
            "напишите фразы полностью.")
    assert len(samples) >= 5
    # Walking the bomb's 387 million phrases would hold the event loop for half a minute;
    # on two busy cores a probe may wait a tenth of a second for its turn, which is not
    # what this test is about.
    assert p99(samples) < 0.5, sorted(samples)[-5:]
